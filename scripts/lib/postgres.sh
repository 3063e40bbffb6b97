# Throwaway PostgreSQL servers for scripts (sourced, not run). Functions:
#   pg_ensure_installed         find initdb/pg_ctl/postgres (installing the postgresql package with apt-get if missing); sets pg_bin
#   pg_start <dir> [options]    initdb a fresh data directory under <dir> and start a server on the first free port from
#                               ${PG_FIRST_PORT:-55432}, listening on 127.0.0.1 only; extra "-c name=value" server options
#                               may follow. Sets pg_port and pg_data. Runs the server as the postgres user when root.
#   pg_stop                     stop the server started by pg_start (immediate mode) if it runs
#   pg_psql <db> <sql>          run SQL as the postgres superuser
# Callers own <dir> and delete it themselves.

pg_die() { echo "${0##*/}: $*" >&2; exit 2; }

pg_find_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -n -r); do # newest major version first
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then echo "$dir"; return 0; fi
    done
    return 1
}

pg_ensure_installed() {
    if pg_bin="$(pg_find_bin)"; then return 0; fi
    echo "${0##*/}: PostgreSQL not found; installing it with apt-get" >&2
    local sudo_cmd=()
    if [[ $EUID -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo_cmd=(sudo -n)
        else
            pg_die "PostgreSQL (initdb, pg_ctl, postgres) is not installed and this script is neither root nor allowed passwordless sudo. Install it (e.g. 'sudo apt-get install -y postgresql') or run as root."
        fi
    fi
    "${sudo_cmd[@]}" apt-get update -qq </dev/null
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql </dev/null >/dev/null
    pg_bin="$(pg_find_bin)" || pg_die "apt-get installed postgresql but initdb/pg_ctl are still not found under /usr/lib/postgresql/*/bin."
}

pg_started=0
pg_work_dir=""

# initdb and postgres refuse to run as root: as root, the server runs as the postgres user and owns the directory.
pg_as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$pg_work_dir" && runuser -u postgres -- "$@")
    else
        (cd "$pg_work_dir" && "$@")
    fi
}

pg_start() {
    pg_work_dir="$1"; shift
    pg_data="$pg_work_dir/data"
    local socket_dir="$pg_work_dir/socket"
    mkdir -p "$socket_dir"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || pg_die "running as root but there is no 'postgres' user to run the server as (installing the postgresql package creates it)."
        chown -R postgres: "$pg_work_dir"
        chmod 700 "$pg_work_dir"
    fi
    pg_as_owner "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$pg_work_dir/initdb.log" 2>&1 \
        || { cat "$pg_work_dir/initdb.log" >&2; pg_die "initdb failed"; }

    local port=${PG_FIRST_PORT:-55432} attempt
    for attempt in $(seq 1 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            if pg_as_owner "$pg_bin/pg_ctl" start -D "$pg_data" -w -t 60 -l "$pg_work_dir/postgres.log" \
                -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$socket_dir $*" >/dev/null 2>&1; then
                pg_started=1
                pg_port=$port
                return 0
            fi
        fi
        port=$((port + 1)) # taken (perhaps by a parallel run between probe and start): try the next one
    done
    tail -n 30 "$pg_work_dir/postgres.log" >&2 || true
    pg_die "could not start PostgreSQL on any port from ${PG_FIRST_PORT:-55432} to $port"
}

pg_stop() {
    if [[ $pg_started -eq 1 ]]; then
        pg_as_owner "$pg_bin/pg_ctl" stop -D "$pg_data" -m immediate >/dev/null 2>&1 || true
        pg_started=0
    fi
}

pg_psql() {
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -v ON_ERROR_STOP=1 -qc "$2"
}
