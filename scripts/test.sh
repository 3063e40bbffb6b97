#!/usr/bin/env bash
# Runs every test project under Tests/ against a throwaway PostgreSQL that this script starts (installing PostgreSQL
# with apt-get if it is missing) and always stops and deletes afterwards. The last line printed is
#   tests: N passed, M failed[, K skipped]
# and the exit status is non-zero if any test failed, any test project crashed, or nothing ran.
#
# Environment: CONFIGURATION (default Release), TEST_RESULTS_DIR (default TestResults/ in the repository).
# ORLEANS_META_TEST_POSTGRES is always overwritten: the suite runs against its own server, never a shared one.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
configuration="${CONFIGURATION:-Release}"
results_dir="${TEST_RESULTS_DIR:-$repo_root/TestResults}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

die() { echo "test.sh: $*" >&2; exit 2; }

# --- tools -------------------------------------------------------------------------------------------------------------

if ! command -v dotnet >/dev/null 2>&1; then
    for candidate in "$HOME/.dotnet" /usr/share/dotnet /usr/lib/dotnet; do
        if [[ -x "$candidate/dotnet" ]]; then export PATH="$candidate:$PATH"; break; fi
    done
fi
command -v dotnet >/dev/null 2>&1 || die "dotnet not found on PATH (nor in ~/.dotnet, /usr/share/dotnet). Install the .NET SDK pinned in global.json."

# shellcheck source=lib/postgres.sh
source "$repo_root/scripts/lib/postgres.sh"
pg_ensure_installed

# --- throwaway server --------------------------------------------------------------------------------------------------

work_dir="$(mktemp -d -t orleans-meta-pg.XXXXXX)"
stop_server() { pg_stop; rm -rf "$work_dir"; }
# Silent, so that the summary stays the last line; runs on every exit path, including failed tests and Ctrl-C.
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fsync=off: the data directory is deleted when the run ends, so surviving an OS crash buys nothing and fsync would
# dominate test time on slow disks. synchronous_commit stays on, so commits behave as in production.
pg_start "$work_dir" -c max_connections=300 -c fsync=off
pg_psql postgres "CREATE DATABASE orleans_meta_test" >/dev/null || die "could not create the test database"
# Tests create their own databases from this one; the user is a superuser so that they can.
export ORLEANS_META_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=orleans_meta_test"
echo "test.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (data in $pg_data)"

# --- build and test ----------------------------------------------------------------------------------------------------

dotnet build Orleans.Meta.sln -c "$configuration" -nologo -v quiet || die "build failed"

rm -rf "$results_dir"
mkdir -p "$results_dir"

counter() { # counter <name> <counters-element>: one attribute of a TRX <Counters .../> element (0 if absent).
    local value
    value="$(printf '%s' "$2" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]\+' || true)"
    echo "${value:-0}"
}

passed=0 failed=0 skipped=0 crashed=0 projects=0
mapfile -t test_projects < <(find Tests -name '*.Tests.csproj' | sort)
[[ ${#test_projects[@]} -gt 0 ]] || die "no test projects (*.Tests.csproj) found under Tests/"

for project in "${test_projects[@]}"; do
    projects=$((projects + 1))
    name="$(basename "$project" .csproj)"
    trx="$results_dir/$name.trx"
    echo "test.sh: testing $name"
    status=0
    # A test host that hangs is killed after 5 minutes (and the hanging test named) instead of stalling CI.
    dotnet test "$project" -c "$configuration" --no-build --nologo --blame-hang-timeout 5m \
        --logger "trx;LogFileName=$name.trx" --results-directory "$results_dir" || status=$?

    if [[ ! -f "$trx" ]]; then
        echo "test.sh: FAILED $name: no test results were written (dotnet test exited with $status; the test host crashed or the project did not build)" >&2
        crashed=$((crashed + 1))
        continue
    fi

    counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1 || true)"
    p="$(counter passed "$counters")"
    f=$(( $(counter failed "$counters") + $(counter error "$counters") + $(counter timeout "$counters") + $(counter aborted "$counters") ))
    s="$(counter notExecuted "$counters")"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    if [[ $status -ne 0 && $f -eq 0 ]]; then
        echo "test.sh: FAILED $name: dotnet test exited with $status but its results record no failed test (the run was aborted)" >&2
        crashed=$((crashed + 1))
    fi
done

stop_server

failed=$((failed + crashed))
summary="tests: $passed passed, $failed failed"
[[ $skipped -gt 0 ]] && summary="$summary, $skipped skipped"
if [[ $crashed -gt 0 ]]; then echo "test.sh: $crashed test project(s) crashed; each counts as one failure" >&2; fi
if [[ $((passed + failed)) -eq 0 ]]; then echo "test.sh: no tests ran" >&2; fi
echo "$summary"
[[ $failed -eq 0 && $passed -gt 0 ]]
