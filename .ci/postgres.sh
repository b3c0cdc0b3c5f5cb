#!/usr/bin/env bash
# Installs PostgreSQL when missing, starts its cluster, creates the role and database of the state
# database tests, and prints `export AUTOPILOTDESK_TEST_DATABASE_URL=...` as its last line, so that
#   eval "$(bash .ci/postgres.sh | tail -n 1)"
# sets it. Works as root in a container without systemd; running it again changes nothing.
# Everything except the export line goes to stderr.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd / # the postgres user cannot enter a root-owned working directory

role=autopilotdesk_test
database=autopilotdesk_test
password=autopilotdesk_test # a throwaway database reachable only on loopback
cluster=main
default_port=5432

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "installing PostgreSQL" >&2
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# pg_lsclusters -h prints: version cluster port status owner data-directory log-file
cluster_field() { pg_lsclusters -h | awk -v v="$version" -v c="$cluster" -v f="$1" '$1 == v && $2 == c { print $f }'; }

if [ -z "$(cluster_field 2)" ]; then
  echo "creating cluster $version/$cluster" >&2
  as_root pg_createcluster --port "$default_port" "$version" "$cluster" >&2
fi
port=$(cluster_field 3)

if [ "$(cluster_field 4)" != online ]; then
  echo "starting cluster $version/$cluster on port $port" >&2
  # --skip-systemctl-redirect: start the server directly even where systemd is absent or not PID 1.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2
fi

ready=false
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then
    ready=true
    break
  fi
  sleep 0.5
done
if [ "$ready" != true ]; then
  echo "PostgreSQL $version/$cluster did not become ready on 127.0.0.1:$port" >&2
  exit 1
fi

as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')\gexec
ALTER ROLE $role LOGIN PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$database', '$role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$database')\gexec
SQL

echo "export AUTOPILOTDESK_TEST_DATABASE_URL=postgres://$role:$password@127.0.0.1:$port/$database?sslmode=disable"
