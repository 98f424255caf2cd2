# Shared preamble of the bench entry points (bench/run, bench/router.sh, bench/server.sh).
# Source it after setting `bench_name`; then call `bench_args "$@"`, which sets `skip_install`
# (yes for --no-install, -h and --help) and `args` (the arguments without --no-install).
# shellcheck shell=bash

export DEBIAN_FRONTEND=noninteractive

say() { printf '[%s] %s\n' "${bench_name:-bench}" "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    say "need root (or sudo) to run: $*"; exit 1; fi
}

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then as_root apt-get update -q >&2; apt_updated=yes; fi
  as_root apt-get install -y -q "$@" >&2
}

# skip_install and args are read by the script that sources this file.
# shellcheck disable=SC2034
bench_args() {
  skip_install=no
  args=()
  for a in "$@"; do
    case "$a" in --no-install|-h|--help) skip_install=yes ;; esac
    [ "$a" = "--no-install" ] || args+=("$a")
  done
}
