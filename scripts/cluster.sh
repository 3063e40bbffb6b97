#!/usr/bin/env bash
# A local Orleans.Meta cluster by hand: a PostgreSQL and N silos on loopback ports.
#
#   scripts/cluster.sh start [N]    build, start PostgreSQL (kept in .cluster/pg) and N silos (default 3); print URLs
#   scripts/cluster.sh status       the silos' processes and the membership view
#   scripts/cluster.sh kill I       kill -9 silo I (a crash: the others declare it dead within seconds)
#   scripts/cluster.sh restart I    start silo I again (a new generation)
#   scripts/cluster.sh stop         stop every silo gracefully, then PostgreSQL (data kept)
#   scripts/cluster.sh clean        stop, then delete .cluster/
#
# Ports: --base-port B (anywhere on the command line) or CLUSTER_BASE_PORT=B; default 5100, clear of the development
# silo on 5080. Silo I serves the public API on http://127.0.0.1:$((B+I)) and talks to its peers on
# http://127.0.0.1:$((B+100+I)). The base port is kept in .cluster/ for later commands; change it only after stop.
# Logs: .cluster/logs/silo-I.log and .cluster/logs/postgres.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
state="$repo_root/.cluster"
logs="$state/logs"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=lib/postgres.sh
source "$repo_root/scripts/lib/postgres.sh"

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# --base-port may come anywhere; what is left are the command and its argument.
requested_base="${CLUSTER_BASE_PORT:-}"
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base-port) [[ $# -ge 2 ]] || usage; requested_base="$2"; shift 2 ;;
        --base-port=*) requested_base="${1#*=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"

silo_pid() { cat "$state/silo-$1.pid" 2>/dev/null || true; }
# A killed process lingers as a zombie until its parent reaps it; it serves nothing, so it does not count as alive.
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
silo_indexes() { ls "$state"/silo-*.pid 2>/dev/null | sed 's/.*silo-\([0-9]*\)\.pid/\1/' | sort -n; }
running_silos() { local i; for i in $(silo_indexes); do alive "$(silo_pid "$i")" && echo "$i"; done; true; }

# The base port: asked for, else the one this cluster was started with, else 5100. Changing it under running silos
# would lose track of them.
stored_base="$(cat "$state/base-port" 2>/dev/null || true)"
base_port="${requested_base:-${stored_base:-5100}}"
[[ "$base_port" =~ ^[0-9]+$ ]] && ((base_port >= 1024 && base_port <= 65535 - 199)) \
    || die "base port '$base_port' is not a number from 1024 to $((65535 - 199)) (silo I uses base+I and base+100+I)."
if [[ -n "$requested_base" && -n "$stored_base" && "$requested_base" != "$stored_base" && -n "$(running_silos)" ]]; then
    die "silos of this cluster run on base port $stored_base; run 'scripts/cluster.sh stop' before switching to $requested_base."
fi

public_port() { echo $((base_port + $1)); }
silo_port() { echo $((base_port + 100 + $1)); }

# The cluster id is unique to this .cluster/ directory, so that a silo of another cluster answering on one of our ports
# (another checkout, a test run, the development silo) is never taken for ours.
cluster_id() {
    mkdir -p "$state"
    [[ -s "$state/cluster-id" ]] || echo "local-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$state/cluster-id"
    cat "$state/cluster-id"
}

# Who listens on a loopback TCP port, if anyone: "pid 123 (dotnet)", "an unknown process", or nothing when free.
port_holder() {
    local port=$1 line
    if command -v ss >/dev/null 2>&1; then
        line="$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)"
        if [[ -n "$line" ]]; then
            if [[ "$line" =~ \(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
                echo "pid ${BASH_REMATCH[2]} (${BASH_REMATCH[1]})"
            else
                echo "an unknown process"
            fi
            return
        fi
    fi
    # Without ss (or for a listener ss could not attribute): anyone accepting a connection holds it.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "an unknown process"; fi
}

check_port_free() {
    local port=$1 what=$2 holder
    holder="$(port_holder "$port")"
    [[ -z "$holder" ]] && return 0
    echo "cluster.sh: port $port ($what) is in use by $holder." >&2
    echo "  Stop that process, or start this cluster on other ports: scripts/cluster.sh stop; scripts/cluster.sh --base-port N start" >&2
    echo "  (silo I listens on N+I and N+100+I; now N=$base_port)." >&2
    return 1
}

start_postgres() {
    pg_ensure_installed
    mkdir -p "$state/pg" "$logs"
    if [[ -f "$state/pg.port" ]] && "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$(cat "$state/pg.port")"; then
        pg_port="$(cat "$state/pg.port")"
        return
    fi
    if [[ -d "$state/pg/data" ]]; then
        # Restart the kept data directory.
        pg_work_dir="$state/pg" pg_data="$state/pg/data"
        pg_port="$(cat "$state/pg.port")"
        pg_as_owner "$pg_bin/pg_ctl" start -D "$pg_data" -w -t 60 -l "$pg_work_dir/postgres.log" \
            -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_work_dir/socket -c max_connections=300" >/dev/null
    else
        PG_FIRST_PORT=57432 pg_start "$state/pg" -c max_connections=300
        pg_psql postgres "CREATE DATABASE orleans_meta" >/dev/null
        echo "$pg_port" >"$state/pg.port"
    fi
    ln -sf "$state/pg/postgres.log" "$logs/postgres.log"
}

connection_string() { echo "Host=127.0.0.1;Port=$(cat "$state/pg.port");Username=postgres;Database=orleans_meta"; }

start_silo() {
    local i=$1 pid
    pid="$(silo_pid "$i")"
    if alive "$pid"; then echo "silo $i already runs (pid $pid)"; return; fi
    check_port_free "$(public_port "$i")" "public API of silo $i" || return 1
    check_port_free "$(silo_port "$i")" "silo-to-silo endpoint of silo $i" || return 1
    [[ -f "$state/secret" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/secret"
    nohup dotnet Silo/bin/Release/net10.0/OrleansMeta.Silo.dll \
        --urls="http://127.0.0.1:$(public_port "$i")" \
        --ConnectionStrings:Postgres="$(connection_string)" \
        --Meta:ClusterId="$(cluster_id)" \
        --Meta:Cluster:ClusterSecret="$(cat "$state/secret")" \
        --Meta:Cluster:SiloEndpoint="http://127.0.0.1:$(silo_port "$i")" \
        --Meta:Cluster:SiloName="silo-$i" \
        >>"$logs/silo-$i.log" 2>&1 </dev/null &
    echo $! >"$state/silo-$i.pid"
}

# Ready means: our process is alive, the silo answering on its port is the one we started (our cluster id, its own
# name and silo-to-silo endpoint), and it reports ready (joined, storage reachable).
wait_ready() {
    local i=$1 n url view who pid
    url="http://127.0.0.1:$(public_port "$i")"
    pid="$(silo_pid "$i")"
    for n in $(seq 1 120); do
        if ! alive "$pid"; then
            echo "silo $i (pid $pid) exited; see $logs/silo-$i.log" >&2
            tail -n 20 "$logs/silo-$i.log" >&2
            return 1
        fi
        if view="$(curl -fsS --max-time 2 "$url/v1/cluster" 2>/dev/null)"; then
            if ! who="$(python3 "$repo_root/scripts/lib/silo_identity.py" "$(cluster_id)" "silo-$i" "http://127.0.0.1:$(silo_port "$i")" <<<"$view")"; then
                echo "cluster.sh: another process answers on $url: $who. Silo $i (pid $pid) is not ready." >&2
                echo "  Stop that process, or use other ports: scripts/cluster.sh stop; scripts/cluster.sh --base-port N start" >&2
                return 1
            fi
            if curl -fsS --max-time 2 -o /dev/null "$url/health/ready" 2>/dev/null && alive "$pid"; then return 0; fi
        fi
        sleep 0.5
    done
    echo "silo $i did not become ready within 60 s; see $logs/silo-$i.log" >&2
    return 1
}

status() {
    echo "cluster $(cat "$state/cluster-id" 2>/dev/null || echo '(not started)'), base port $base_port"
    printf '%-6s %-8s %-8s %-26s %-26s\n' SILO PID PROCESS PUBLIC SILO-TO-SILO
    local i pid
    for i in $(silo_indexes); do
        pid="$(silo_pid "$i")"
        printf '%-6s %-8s %-8s %-26s %-26s\n' "$i" "$pid" "$(alive "$pid" && echo up || echo down)" \
            "http://127.0.0.1:$(public_port "$i")" "http://127.0.0.1:$(silo_port "$i")"
    done
    for i in $(silo_indexes); do
        if alive "$(silo_pid "$i")"; then
            echo
            echo "membership view as silo $i sees it:"
            curl -fsS "http://127.0.0.1:$(public_port "$i")/v1/cluster" | python3 "$repo_root/scripts/lib/cluster_view.py" 2>/dev/null || curl -fsS "http://127.0.0.1:$(public_port "$i")/v1/cluster"
            return
        fi
    done
}

remember_base_port() { mkdir -p "$state"; echo "$base_port" >"$state/base-port"; }

case "${1:-}" in
    start)
        count="${2:-3}"
        [[ "$count" =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 [--base-port B] start [N], N from 1 to 99" >&2; exit 2; }
        mkdir -p "$logs"
        remember_base_port
        echo "building the silo (Release)..."
        dotnet build Silo -c Release -nologo -v quiet >"$logs/build.log" 2>&1 || { tail -n 30 "$logs/build.log" >&2; exit 1; }
        start_postgres
        echo "PostgreSQL on 127.0.0.1:$(cat "$state/pg.port") ($(connection_string))"
        for i in $(seq 0 $((count - 1))); do start_silo "$i" || exit 1; done
        for i in $(seq 0 $((count - 1))); do wait_ready "$i" || exit 1; done
        status
        ;;
    status) status ;;
    kill)
        [[ -n "${2:-}" ]] || { echo "usage: $0 kill I" >&2; exit 2; }
        pid="$(silo_pid "$2")"
        alive "$pid" || { echo "silo $2 is not running" >&2; exit 1; }
        kill -9 "$pid"
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done # SIGKILL is delivered asynchronously
        echo "silo $2 (pid $pid) killed with SIGKILL"
        ;;
    restart)
        [[ -n "${2:-}" ]] || { echo "usage: $0 restart I" >&2; exit 2; }
        [[ "$2" =~ ^[0-9]{1,2}$ ]] || { echo "usage: $0 restart I, I from 0 to 99" >&2; exit 2; }
        remember_base_port
        start_postgres
        start_silo "$2" || exit 1
        wait_ready "$2" || exit 1
        status
        ;;
    stop|clean)
        for i in $(silo_indexes); do
            pid="$(silo_pid "$i")"
            if alive "$pid"; then kill -TERM "$pid"; fi
        done
        for i in $(silo_indexes); do
            pid="$(silo_pid "$i")"
            for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.5; done
            rm -f "$state/silo-$i.pid"
        done
        if [[ -d "$state/pg/data" ]]; then
            pg_ensure_installed
            pg_work_dir="$state/pg" pg_data="$state/pg/data" pg_started=1
            pg_stop
        fi
        if [[ "$1" == clean ]]; then rm -rf "$state"; echo "stopped and removed .cluster/"; else echo "stopped (data kept in .cluster/pg)"; fi
        ;;
    *) usage ;;
esac
