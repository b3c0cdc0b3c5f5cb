#!/usr/bin/env bash
# Installs (if needed) and starts a local PostgreSQL for the state database tests, then prints
# the export line for AUTOPILOTDESK_TEST_DATABASE_URL as its last line. Safe to run twice.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd /tmp # su postgres cannot enter root-owned working directories

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/var/tmp/autopilotdesk-pg
port=55432

if ! "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q; then
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    chown postgres:postgres "$data"
    su postgres -s /bin/sh -c "$bin/initdb -D $data -A trust -U postgres" >&2
  fi
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -l $data/server.log -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -w start" >&2
fi
for _ in $(seq 1 30); do
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && break
  sleep 1
done
if ! su postgres -s /bin/sh -c "psql -h 127.0.0.1 -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname='autopilotdesk_test'\"" | grep -q 1; then
  su postgres -s /bin/sh -c "psql -h 127.0.0.1 -p $port -c 'CREATE DATABASE autopilotdesk_test'" >&2
fi
echo "export AUTOPILOTDESK_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/autopilotdesk_test?sslmode=disable"
