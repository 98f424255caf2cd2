#!/usr/bin/env bash
# dozen server benchmark entry point: installs wrk (and psql) if missing, builds dozen, then runs
# bench/server.py with the given arguments (--quick, --stores, --deploys, --no-django, ...).
# The Django deploys download the app's packages from PyPI.
# Like bench/run: meant for a fresh Debian machine of the project's kind, run as root (or with
# passwordless sudo); it never prompts. PostgreSQL itself must already answer at 127.0.0.1:5432
# (or wherever --pg-admin-url points), as it does for the store tests.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

bench_name=bench/server.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_args "$@"

if [ "$skip_install" = no ]; then
  if ! command -v python3 >/dev/null; then say "installing python3"; apt_install python3; fi
  # wrk: the load generator (Debian package). Without it server.py falls back to a slower
  # Python load generator, so a failed install is not fatal.
  if ! command -v wrk >/dev/null; then say "installing wrk"; apt_install wrk || say "could not install wrk; using the Python load generator"; fi
  # psql: creates and drops the scratch PostgreSQL database.
  if ! command -v psql >/dev/null; then say "installing postgresql-client"; apt_install postgresql-client; fi

  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  say "building dozen (cargo build --release -p dozen)"
  (cd "$root" && cargo build --release -q -p dozen) >&2
fi

exec python3 "$here/server.py" "${args[@]}"
