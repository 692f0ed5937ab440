#!/usr/bin/env bash
# Sets up piaojue on a Debian/Ubuntu machine without Docker: PostgreSQL and RabbitMQ (installed
# and started if missing), a virtual environment with the project, and the schemas migrated.
# Safe to run again: it only does what is missing. Run as root (or with sudo rights for apt).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
PY=${PYTHON:-python3}

apt_install() {
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Python 3.11+ with venv
if ! "$PY" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  apt_install python3 python3-venv
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { log "piaojue needs Python 3.11 or newer"; exit 1; }
fi

# --- PostgreSQL
if ! command -v pg_ctlcluster >/dev/null; then
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# The default settings connect as postgres/postgres over TCP; give the role that password if it
# has none (a no-op where the server trusts local connections).
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1; then
  log "setting the local postgres role's password (for PIAOJUE_DATABASE_URL's default)"
  $SUDO -u postgres psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" 2>/dev/null \
    || su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\""
fi

# --- RabbitMQ
if ! command -v rabbitmqctl >/dev/null; then
  apt_install rabbitmq-server
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  $SUDO rabbitmq-server -detached
fi
for _ in $(seq 1 60); do $SUDO rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
$SUDO rabbitmqctl -q status >/dev/null || { log "RabbitMQ did not start"; exit 1; }

# --- The browser tests (tests/browser) and `piaojue screenshots`: Debian's Chromium, driven by
# Playwright with executable_path (Playwright's own browser downloads are not used), and CJK fonts
if ! command -v chromium >/dev/null || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  apt_install chromium fonts-noto-cjk
fi

# --- The project
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import piaojue, pytest, hypothesis, yaml, playwright, jinja2, openpyxl' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  log "installing piaojue and its test tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch .venv/.installed
fi

# --- The database and the schemas
db_url=$(.venv/bin/python -c 'from shared.settings import get_settings; print(get_settings().database_url)')
db_name=$(.venv/bin/python -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).path.lstrip("/"))' "$db_url")
admin_url=${db_url%/*}/postgres
if [ "$(psql "$admin_url" -tAc "select 1 from pg_database where datname = '$db_name'")" != "1" ]; then
  log "creating database $db_name"
  psql "$admin_url" -qc "CREATE DATABASE \"$db_name\""
fi
.venv/bin/piaojue migrate >&2
# The first administrator of the county, on a fresh install only: its password is printed once.
.venv/bin/piaojue users init --county taihu   # the demo's county; a real one: piaojue users init --county <yours>
log "ready"
