#!/usr/bin/env bash
# dozen router benchmark entry point: installs wrk and nginx if missing, builds the router's bench
# examples (release), raises the open-file limit for the 10,000-connection memory test, then runs
# bench/router.py with the given arguments (--duration, --reps, --idle-conns, ...).
# Meant for a fresh Debian machine of the project's kind, run as root (or with passwordless sudo).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

bench_name=bench/router.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_args "$@"

if [ "$skip_install" = no ]; then
  if ! command -v python3 >/dev/null; then say "installing python3"; apt_install python3; fi
  if ! command -v wrk >/dev/null; then say "installing wrk"; apt_install wrk; fi
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then say "installing nginx"; apt_install nginx; fi
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  say "building the router bench examples (cargo build --release -p dozen-router --examples)"
  (cd "$root" && cargo build --release -q -p dozen-router --examples) >&2
fi

# 10,000 client sockets plus 10,000 router sockets: both processes inherit this limit.
hard="$(ulimit -Hn)"
want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || want="$hard"
fi
ulimit -n "$want" 2>/dev/null || say "could not raise the open-file limit to $want (now $(ulimit -n))"

exec python3 "$here/router.py" "${args[@]}"
