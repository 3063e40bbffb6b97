#!/usr/bin/env bash
# Measures a PostgreSQL failover under write load: a primary and a streaming replica (scripts/pg-ha.sh), silos (the real
# binary) connected through a multi-host connection string, writers changing topic configs through the public API; the
# primary is killed with kill -9 mid-load and the replica promoted at once. Every acknowledged write is checked against
# the promoted server. Runs Tests/Failover.Tests, which is the driver (and, in sync mode, the suite's assertion).
#   scripts/pg-failover.sh [--runs N] [--silos N] [--writers N] [--lag-ms N ...] [--acks N] [sync|async ...]
#       default: 3 runs each of sync and async, replica not delayed. --lag-ms N makes the replica lag N ms behind the
#       primary (it streams through a proxy that holds each byte N ms, and what the proxy holds dies with the primary);
#       several --lag-ms run each mode at each lag (0: no proxy). --acks N: writes acknowledged before the kill (300;
#       fewer for synchronous runs with a long lag, where every log-appending commit waits for the replica).
# Prints one line per run: replication, lag, acknowledged writes, lost writes, time without service, promotion time,
# the replica's lag at the kill (bytes, write_lag), how far back the loss reaches, and silos that stopped and restarted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=3 silos=2 writers=4 acks=300 modes=() lags=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --silos) silos="$2"; shift 2 ;;
    --writers) writers="$2"; shift 2 ;;
    --lag-ms) lags+=("$2"); shift 2 ;;
    --acks) acks="$2"; shift 2 ;;
    sync|async) modes+=("$1"); shift ;;
    *) echo "usage: ${0##*/} [--runs N] [--silos N] [--writers N] [--lag-ms N ...] [--acks N] [sync|async ...]" >&2; exit 2 ;;
    esac
done
[[ ${#modes[@]} -gt 0 ]] || modes=(sync async)
[[ ${#lags[@]} -gt 0 ]] || lags=(0)

dotnet build Tests/Failover.Tests/OrleansMeta.Failover.Tests.csproj -c Release -nologo -v quiet >/dev/null
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for lag in "${lags[@]}"; do
    for mode in "${modes[@]}"; do
        for run in $(seq 1 "$runs"); do
            ORLEANS_META_FAILOVER_MODE=$mode ORLEANS_META_FAILOVER_REPORT=$report ORLEANS_META_FAILOVER_SILOS=$silos \
                ORLEANS_META_FAILOVER_WRITERS=$writers ORLEANS_META_FAILOVER_LAG_MS=$lag ORLEANS_META_FAILOVER_ACKS=$acks \
                dotnet test Tests/Failover.Tests/OrleansMeta.Failover.Tests.csproj -c Release --no-build -nologo >/dev/null \
                || echo "run $run ($mode, lag $lag ms) failed; see: dotnet test Tests/Failover.Tests" >&2
        done
    done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); PostgreSQL $(/usr/lib/postgresql/*/bin/postgres --version | head -1 | awk '{print $3}')"
cat "$report"
