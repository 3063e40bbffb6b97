# Throwaway PostgreSQL servers for scripts (sourced, not run). Functions:
#   pg_ensure_installed         find initdb/pg_ctl/postgres (installing the postgresql package with apt-get if missing); sets pg_bin
#   pg_start <dir> [options]    initdb a fresh data directory under <dir> and start a server on the first free port from
#                               ${PG_FIRST_PORT:-55432}, listening on 127.0.0.1 only; extra "-c name=value" server options
#                               may follow. Sets pg_port and pg_data. Runs the server as the postgres user when root.
#   pg_stop                     stop the server started by pg_start (immediate mode) if it runs
#   pg_psql <db> <sql>          run SQL as the postgres superuser
# Streaming replication (several servers at once, so these take the data directory instead of the globals above):
#   pg_start_replica <dir> <primary port> <name> [options]
#                               pg_basebackup -R a copy of the primary on 127.0.0.1:<primary port> into <dir>/data and
#                               start it as a hot standby on the next free port; <name> is its application_name, the
#                               name synchronous_standby_names refers to. Sets pg_replica_port and pg_replica_data.
#   pg_wait_streaming <port> <name> [sync|async]
#                               wait until the server on <port> streams to the standby <name> (and, given sync, counts it
#                               as its synchronous standby, which it does only once the standby has reported a flush)
#   pg_replica_upstream <replica port> <port>
#                               point the standby on <replica port> at 127.0.0.1:<port> instead of its primary (a proxy
#                               in front of the primary, e.g. one that delays WAL) and wait until it streams from there
#   pg_promote <data dir>       promote a standby to primary (pg_ctl promote, waits until it accepts writes)
#   pg_kill9 <data dir>         kill -9 the postmaster and every process it started, as a crashed machine would
#   pg_stop_dir <data dir>      stop the server of that data directory (immediate mode) if it runs
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

pg_free_port() { # the first port from $1 on that nothing listens on
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

pg_start_replica() {
    local dir="$1" primary_port="$2" name="$3"; shift 3
    pg_work_dir="$dir"
    pg_replica_data="$dir/data"
    local socket_dir="$dir/socket"
    mkdir -p "$socket_dir"
    if [[ $EUID -eq 0 ]]; then
        chown -R postgres: "$dir"
        chmod 700 "$dir"
    fi
    # -R writes primary_conninfo and standby.signal; application_name is what synchronous_standby_names matches.
    pg_as_owner "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$pg_replica_data" -X stream -R \
        -d "application_name=$name" >"$dir/basebackup.log" 2>&1 \
        || { cat "$dir/basebackup.log" >&2; pg_die "pg_basebackup from port $primary_port failed"; }
    local port attempt
    port=$(pg_free_port "$((primary_port + 1))")
    for attempt in $(seq 1 20); do
        if pg_as_owner "$pg_bin/pg_ctl" start -D "$pg_replica_data" -w -t 60 -l "$dir/postgres.log" \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$socket_dir $*" >/dev/null 2>&1; then
            pg_replica_port=$port
            return 0
        fi
        port=$(pg_free_port "$((port + 1))")
    done
    tail -n 30 "$dir/postgres.log" >&2 || true
    pg_die "could not start the replica"
}

pg_wait_streaming() {
    local port="$1" name="$2" want="${3:-async}" attempt state
    for attempt in $(seq 1 300); do
        state=$("$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
            "SELECT state || '/' || sync_state FROM pg_stat_replication WHERE application_name = '$name'" 2>/dev/null || true)
        [[ "$state" == streaming/* && ( "$want" != sync || "$state" == */sync ) ]] && return 0
        sleep 0.1
    done
    pg_die "the standby $name never started streaming from port $port"
}

pg_replica_upstream() {
    local replica_port="$1" port="$2" conninfo attempt state
    local psql=("$pg_bin/psql" -h 127.0.0.1 -p "$replica_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atqc)
    conninfo=$("${psql[@]}" "SHOW primary_conninfo")
    conninfo=$(sed -E "s/(^| )port=[0-9]+/\1port=$port/" <<<"$conninfo")
    # primary_conninfo is reloadable: the WAL receiver restarts on the new one at once. ALTER SYSTEM works on a standby
    # (it writes postgresql.auto.conf, no WAL); after a promotion the setting is simply unused.
    "${psql[@]}" "ALTER SYSTEM SET primary_conninfo = '${conninfo//\'/\'\'}'" >/dev/null
    "${psql[@]}" "SELECT pg_reload_conf()" >/dev/null
    for attempt in $(seq 1 300); do
        state=$("${psql[@]}" "SELECT status || '/' || sender_port FROM pg_stat_wal_receiver" 2>/dev/null || true)
        [[ "$state" == "streaming/$port" ]] && return 0
        sleep 0.1
    done
    pg_die "the standby on port $replica_port never streamed through port $port (last state: ${state:-none})"
}

pg_promote() {
    local data="$1"
    pg_work_dir="$(dirname "$data")"
    pg_as_owner "$pg_bin/pg_ctl" promote -D "$data" -w -t 60 >/dev/null || pg_die "pg_ctl promote of $data failed"
}

pg_kill9() {
    local data="$1" pid children
    [[ -f "$data/postmaster.pid" ]] || return 0
    pid=$(head -n 1 "$data/postmaster.pid")
    # The children first noted, then the postmaster: a crashed machine takes its backends and WAL sender with it,
    # so no backend outlives the postmaster to finish a commit or stream more WAL.
    children=$(pgrep -P "$pid" || true)
    kill -9 "$pid" $children 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
}

pg_stop_dir() {
    local data="$1"
    [[ -f "$data/postmaster.pid" ]] || return 0
    pg_work_dir="$(dirname "$data")"
    pg_as_owner "$pg_bin/pg_ctl" stop -D "$data" -m immediate >/dev/null 2>&1 || true
}

pg_psql() {
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -v ON_ERROR_STOP=1 -qc "$2"
}
