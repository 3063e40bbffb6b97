#!/usr/bin/env bash
# The chaos run's long form, by hand: builds the runner, which starts its own throwaway PostgreSQL (as the postgres user
# when root) and three silo processes on loopback, drives load while injecting faults, heals, settles, checks the
# history, prints its report and removes everything it started. Exit status 0 when no invariant was violated.
#   scripts/chaos.sh --minutes 10 --seed 7 [--max-operations 200000] [--keep-logs]
# CI runs the short form as a test (Tests/Chaos.Tests, ShortChaosTests). See docs/chaos.md.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=lib/postgres.sh
source "$repo_root/scripts/lib/postgres.sh"
pg_ensure_installed # the runner finds the binaries under /usr/lib/postgresql/*/bin itself

dotnet build Chaos/OrleansMeta.Chaos.csproj -c Release -nologo -v quiet >/dev/null
exec dotnet Chaos/bin/Release/net10.0/OrleansMeta.Chaos.dll "$@"
