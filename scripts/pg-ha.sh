#!/usr/bin/env bash
# A PostgreSQL primary and a streaming replica on loopback, for failover tests and measurements.
#   scripts/pg-ha.sh start <dir> [--sync|--async]   start both; prints primary_port=, replica_port=, connection=
#                                                   (the multi-host Npgsql connection string silos use)
#   scripts/pg-ha.sh relay <dir> <port>             stream the replica from 127.0.0.1:<port>, a proxy in front of the
#                                                   primary (e.g. one that delays WAL, to make the replica lag)
#   scripts/pg-ha.sh kill-primary <dir>             kill -9 the primary's postmaster and its processes
#   scripts/pg-ha.sh promote <dir>                  promote the replica (returns once it accepts writes)
#   scripts/pg-ha.sh stop <dir>                     stop whatever of the two still runs
# --sync (the default) names the replica in synchronous_standby_names, so a commit is acknowledged only once the
# replica has flushed it; --async streams without waiting. <dir> belongs to the caller, who deletes it afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/postgres.sh"

usage() { echo "usage: ${0##*/} start|relay|kill-primary|promote|stop <dir> [--sync|--async | <port>]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
command="$1" dir="$2"; shift 2
pg_ensure_installed
replica_name=replica1

case "$command" in
start)
    mode=sync
    for arg in "$@"; do
        case "$arg" in --sync) mode=sync ;; --async) mode=async ;; *) usage ;; esac
    done
    mkdir -p "$dir"
    dir="$(readlink -f "$dir")"
    chmod 755 "$dir" # the postgres user must reach the data directories below it
    options=(-c wal_level=replica -c max_wal_senders=5)
    # Given on the command line, not with ALTER SYSTEM: pg_basebackup copies postgresql.auto.conf, and a promoted
    # replica that still named a synchronous standby would wait for one that does not exist and never acknowledge.
    [[ $mode == sync ]] && options+=(-c "synchronous_standby_names=$replica_name")
    PG_FIRST_PORT=${PG_FIRST_PORT:-57400} pg_start "$dir/primary" "${options[@]}"
    pg_start_replica "$dir/replica" "$pg_port" "$replica_name"
    pg_wait_streaming "$pg_port" "$replica_name" "$mode"
    connection="Host=127.0.0.1:$pg_port,127.0.0.1:$pg_replica_port;Username=postgres;Target Session Attributes=read-write;Host Recheck Seconds=1"
    printf 'primary_port=%s\nreplica_port=%s\nmode=%s\n' "$pg_port" "$pg_replica_port" "$mode" | tee "$dir/ports"
    echo "connection=$connection"
    ;;
relay)
    [[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || usage
    primary_port=$(sed -n 's/^primary_port=//p' "$dir/ports")
    replica_port=$(sed -n 's/^replica_port=//p' "$dir/ports")
    mode=$(sed -n 's/^mode=//p' "$dir/ports")
    pg_replica_upstream "$replica_port" "$1"
    pg_wait_streaming "$primary_port" "$replica_name" "$mode"
    ;;
kill-primary) pg_kill9 "$dir/primary/data" ;;
promote) pg_promote "$dir/replica/data" ;;
stop)
    pg_stop_dir "$dir/primary/data"
    pg_stop_dir "$dir/replica/data"
    ;;
*) usage ;;
esac
