#!/usr/bin/env bash
# Runs the benchmarks (Benchmarks/) in Release against a throwaway PostgreSQL with the server's default durability
# settings (fsync and synchronous_commit on, as in production), so that grain-runtime figures and PostgreSQL's own
# rates are measured on the same machine in the same run. Arguments go to the benchmark program, e.g.
#   scripts/bench.sh grain-calls state-writes --seconds 10
#   scripts/bench.sh api-writes --seconds 10      (durable API writes next to etcd and pgbench, 1 and 3 silos; --silos 3 for three only; --alloc-types adds the types each run allocated)
#   scripts/bench.sh watch-slow --seconds 30      (silo heap with ten slow watchers vs none, same writes)
#   scripts/bench.sh offsets --seconds 10         (durable offset commits of 1000 groups next to pgbench's single-row updates)
#   scripts/bench.sh group-listing                (10k groups / 1M offsets: load time, memory per offset, GET /v1/groups next to a PostgreSQL GROUP BY)
#   scripts/bench.sh group-commits --seconds 10   (the same through the API on 3 silos, wrk in separate processes: to the coordinator, and through any silo; --sdk adds committers through the SDK in the silos' process)
#   scripts/bench.sh group-commits --silos 1 --group-partitions 100 --connections 16   (one silo; groups of 100 partitions, each commit naming all of them; 16 wrk connections instead of 64)
#   scripts/bench.sh rebalance --seconds 10       (consumer groups on 1 and 3 silos: joins/s and time until 100 groups x 10 members (12 and 120 partitions) and 1 group x 100 members are stable, then after one leave and one join per group, ownership history checked; steady heartbeats/s with wrk and the SDK; next to pgbench; --silos 3, --shapes GxMxP,...)
#   scripts/bench.sh failover --partitions 10000,100000 [--silos 3] [--alloc-types]   (a broker leading a third of the partitions dies: time to all re-led and visible; --alloc-types adds the types the window allocated)
#   scripts/bench.sh cold-start-log               (1M partitions and 10M partition changes generated into the log: cold start without and with a snapshot)
# BENCH_READY_TO_RUN=1 runs the benchmark published with ReadyToRun (precompiled), as a published silo would run,
# instead of `dotnet run`, where every method starts in the JIT.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Installs a Debian package (when root) if its command is missing: apt_install_for COMMAND PACKAGE WHAT-IF-NOT.
apt_install_for() {
    if ! command -v "$1" >/dev/null 2>&1 && [[ $EUID -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" </dev/null >/dev/null 2>&1 \
            || { apt-get update -qq </dev/null >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" </dev/null >/dev/null 2>&1; } \
            || echo "bench.sh: $2 could not be installed; $3" >&2
    fi
}

# wrk is the separate-process HTTP load generator for the metadata-read scenarios (the in-process one runs too) and
# for api-writes; etcd (Debian's etcd-server, started by the benchmark itself on loopback) is api-writes' reference.
apt_install_for wrk wrk "HTTP scenarios use the in-process load generator only, and api-writes cannot run"
if [[ " $* " == *" api-writes "* ]]; then
    apt_install_for etcd etcd-server "api-writes cannot run"
fi

# shellcheck source=lib/postgres.sh
source "$repo_root/scripts/lib/postgres.sh"
pg_ensure_installed

work_dir="$(mktemp -d -t orleans-meta-bench.XXXXXX)"
trap 'pg_stop; rm -rf "$work_dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# BENCH_POSTGRES_SETTINGS adds server settings to try, e.g. "-c commit_delay=200 -c commit_siblings=2".
# shellcheck disable=SC2086
PG_FIRST_PORT=56432 pg_start "$work_dir" -c max_connections=300 -c shared_buffers=256MB ${BENCH_POSTGRES_SETTINGS:-}
pg_psql postgres "CREATE DATABASE orleans_meta_bench" >/dev/null
echo "bench.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port, default durability${BENCH_POSTGRES_SETTINGS:+, with $BENCH_POSTGRES_SETTINGS}"

export ORLEANS_META_BENCH_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=orleans_meta_bench;Maximum Pool Size=100"
if [[ "${BENCH_READY_TO_RUN:-}" == 1 ]]; then
    case "$(uname -m)" in
        x86_64) rid=linux-x64 ;;
        aarch64) rid=linux-arm64 ;;
        *) echo "bench.sh: no ReadyToRun runtime identifier for $(uname -m)" >&2; exit 2 ;;
    esac
    dotnet publish Benchmarks -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o "$work_dir/bench" -nologo -v quiet >&2
    echo "bench.sh: ReadyToRun ($rid)"
    "$work_dir/bench/OrleansMeta.Benchmarks" "$@"
else
    dotnet run -c Release --project Benchmarks -- "$@"
fi
