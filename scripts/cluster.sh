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
# Silo I serves the public API on http://127.0.0.1:$((5080+I)) and talks to its peers on http://127.0.0.1:$((11110+I)).
# Logs: .cluster/logs/silo-I.log and .cluster/logs/postgres.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
state="$repo_root/.cluster"
logs="$state/logs"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=lib/postgres.sh
source "$repo_root/scripts/lib/postgres.sh"

public_port() { echo $((5080 + $1)); }
silo_port() { echo $((11110 + $1)); }
silo_pid() { cat "$state/silo-$1.pid" 2>/dev/null || true; }
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

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
    [[ -f "$state/secret" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/secret"
    nohup dotnet Silo/bin/Release/net10.0/OrleansMeta.Silo.dll \
        --urls="http://127.0.0.1:$(public_port "$i")" \
        --ConnectionStrings:Postgres="$(connection_string)" \
        --Meta:ClusterId=local \
        --Meta:Cluster:ClusterSecret="$(cat "$state/secret")" \
        --Meta:Cluster:SiloEndpoint="http://127.0.0.1:$(silo_port "$i")" \
        --Meta:Cluster:SiloName="silo-$i" \
        >>"$logs/silo-$i.log" 2>&1 </dev/null &
    echo $! >"$state/silo-$i.pid"
}

wait_ready() {
    local i=$1 n
    for n in $(seq 1 120); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$(public_port "$i")/health/ready" 2>/dev/null; then return 0; fi
        if ! alive "$(silo_pid "$i")"; then echo "silo $i exited; see $logs/silo-$i.log" >&2; tail -n 20 "$logs/silo-$i.log" >&2; return 1; fi
        sleep 0.5
    done
    echo "silo $i did not become ready within 60 s; see $logs/silo-$i.log" >&2
    return 1
}

silo_indexes() { ls "$state"/silo-*.pid 2>/dev/null | sed 's/.*silo-\([0-9]*\)\.pid/\1/' | sort -n; }

status() {
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

case "${1:-}" in
    start)
        count="${2:-3}"
        [[ "$count" =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 start [N], N from 1 to 99" >&2; exit 2; }
        mkdir -p "$logs"
        echo "building the silo (Release)..."
        dotnet build Silo -c Release -nologo -v quiet >"$logs/build.log" 2>&1 || { tail -n 30 "$logs/build.log" >&2; exit 1; }
        start_postgres
        echo "PostgreSQL on 127.0.0.1:$(cat "$state/pg.port") ($(connection_string))"
        for i in $(seq 0 $((count - 1))); do start_silo "$i"; done
        for i in $(seq 0 $((count - 1))); do wait_ready "$i"; done
        status
        ;;
    status) status ;;
    kill)
        [[ -n "${2:-}" ]] || { echo "usage: $0 kill I" >&2; exit 2; }
        pid="$(silo_pid "$2")"
        alive "$pid" || { echo "silo $2 is not running" >&2; exit 1; }
        kill -9 "$pid"
        echo "silo $2 (pid $pid) killed with SIGKILL"
        ;;
    restart)
        [[ -n "${2:-}" ]] || { echo "usage: $0 restart I" >&2; exit 2; }
        start_postgres
        start_silo "$2"
        wait_ready "$2"
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
    *)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
