#!/usr/bin/env bash
# Time `dozen doctor` against `grep -rE` with the same kind of patterns over a large real tree.
#
#   bench/doctor.sh [TREE]
#
# TREE defaults to Django's source release (downloaded once with pip into $BENCH_DIR).
# The doctor is `$DOZEN doctor` when that binary has the subcommand, else the crate's example
# binary (built with --release). Each side runs $RUNS times (default 3); the best time counts.
# Prints both times and the ratio grep/doctor (> 1 means the doctor is faster).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR=${BENCH_DIR:-/tmp/dozen-bench}
RUNS=${RUNS:-3}
TREE=${1:-}

if [[ -z "$TREE" ]]; then
  mkdir -p "$BENCH_DIR"
  TREE=$(find "$BENCH_DIR" -maxdepth 1 -type d -name 'django-*' | sort | tail -1)
  if [[ -z "$TREE" ]]; then
    python3 -m pip download --quiet --no-deps --no-binary :all: django -d "$BENCH_DIR" >/dev/null
    tar xzf "$(ls "$BENCH_DIR"/django-*.tar.gz | tail -1)" -C "$BENCH_DIR"
    TREE=$(find "$BENCH_DIR" -maxdepth 1 -type d -name 'django-*' | sort | tail -1)
  fi
fi

DOZEN=${DOZEN:-target/release/dozen}
if [[ -x "$DOZEN" ]] && "$DOZEN" doctor --help >/dev/null 2>&1; then
  DOCTOR=("$DOZEN" doctor --format json --fail-on never)
else
  cargo build --quiet --release -p dozen-doctor --example doctor
  DOCTOR=(target/release/examples/doctor)
fi

# The doctor's line rules in grep's ERE dialect (secrets, service URLs, hosts, ports, logging,
# sessions, uploads, migrations, debug, env-name branching, private keys, tool calls).
PATTERNS=$(mktemp)
trap 'rm -f "$PATTERNS"' EXIT
cat >"$PATTERNS" <<'PAT'
(AKIA|ASIA)[0-9A-Z]{16}
gh[pousr]_[A-Za-z0-9]{36,}
xox[abprs]-[A-Za-z0-9-]{10,}
[sr]k_live_[0-9A-Za-z]{20,}
AIza[0-9A-Za-z_-]{35}
[A-Za-z0-9_.-]*(password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|private[_-]?key|client[_-]?secret)[A-Za-z0-9_]*["']?[[:space:]]*(:=|=>|=|:)[[:space:]]*["'][^"']{8,200}["']
-----BEGIN (RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY
[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^[:space:]:/@'`<>]{1,64}:[^[:space:]@/'`<>]{1,128}@
(postgres(ql)?|mysql2?|mariadb|mongodb|redis|rediss|amqps?|memcached?|smtps?)://[^[:space:]"'<>]+
jdbc:[a-z]+:[^[:space:]"'<>]+
(localhost|127\.0\.0\.1|0\.0\.0\.0):(5432|3306|6379|27017|11211|5672|9200|9092|1433|1521|465|587)
(email|smtp|mail|db|database|redis|cache|mongo|broker|postgres|mysql)[_.-]?(host|hostname|server)["']?[[:space:]]*(=|:)[[:space:]]*["'][a-z0-9.-]+["']
(env|environ|environment|_env|stage)[^;{]{0,60}(==|!=|===|!==)[[:space:]]*["'](prod|production|staging|dev|development)["']
Rails\.env\.(production|development|staging)\?
^DEBUG[[:space:]]*=[[:space:]]*True
FileHandler\(|logging\.basicConfig\([^)]*filename=|transports\.File\(|RotatingFileHandler|TimedRotatingFileHandler|FileAppender|RollingFileAppender|lumberjack\.Logger
Logger\.new\([^)]*\.log
\.listen\([[:space:]]*[0-9]{2,5}[[:space:]]*[,)]
\.run\([^)]*port[[:space:]]*=[[:space:]]*[0-9]{2,5}
ListenAndServe(TLS)?\([[:space:]]*"[a-z0-9.]*:[0-9]{2,5}"
multer\([[:space:]]*\{[[:space:]]*dest|FileSystemStorage|SESSION_ENGINE|MemoryStore\(
sequelize\.sync\(|knex\.migrate\.latest\(|\.AutoMigrate\(|metadata\.create_all\(|db\.create_all\(\)
call_command\(|Artisan::call\(|Rake::Task\[
subprocess\.(run|call|check_call|check_output|Popen)\([[:space:]]*\[?[[:space:]]*["'](ffmpeg|convert|wkhtmltopdf|pdftotext|gs|tesseract|pandoc)
ip_hash;|sessionAffinity:[[:space:]]*ClientIP
PAT

best() { # best wall time in seconds of RUNS runs of "$@"
  local best="" t0 t1 t
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    t=$(echo "$t1 - $t0" | bc -l)
    if [[ -z "$best" ]] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  printf '%.3f' "$best"
}

files=$(find "$TREE" -type f | wc -l)
size=$(du -sh "$TREE" | cut -f1)
echo "tree: $TREE ($files files, $size)"
d=$(best "${DOCTOR[@]}" "$TREE")
g=$(best grep -rE -f "$PATTERNS" "$TREE")
echo "dozen doctor: ${d}s"
echo "grep -rE:     ${g}s  ($(wc -l <"$PATTERNS") patterns)"
echo "ratio grep/doctor: $(echo "scale=2; $g / $d" | bc -l)x"
