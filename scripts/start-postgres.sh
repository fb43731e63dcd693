#!/usr/bin/env bash
# Start a private, throwaway PostgreSQL cluster for the tests and print its URL as the last line of stdout:
#
#   postgresql://postgres@127.0.0.1:PORT/weigen_test
#
# The cluster lives in a fresh temp directory, listens on 127.0.0.1 only (a free port, never 5432), trusts local
# connections and is run by the postgres user when we are root (by the current user otherwise). It never touches
# the system cluster. Idempotent: while the cluster recorded in the state file is up, running this again only
# prints its URL. scripts/stop-postgres.sh stops it and deletes its directory.
#
# Environment:
#   WEI_GEN_PG_STATE  state file (default ${TMPDIR:-/tmp}/wei-gen-postgres-$UID.env); .ci/run uses its own
#   WEI_GEN_PG_DB     database to create (default weigen_test)
#
# PostgreSQL 15+ is needed; when no /usr/lib/postgresql/<15+>/bin/initdb exists it is installed with apt-get
# (root only). Progress goes to stderr; stdout carries only the URL.
set -euo pipefail

STATE=${WEI_GEN_PG_STATE:-${TMPDIR:-/tmp}/wei-gen-postgres-$(id -u).env}
DB=${WEI_GEN_PG_DB:-weigen_test}
MIN_VERSION=15

say() { echo "start-postgres: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The newest /usr/lib/postgresql/<v>/bin with initdb, v >= MIN_VERSION (empty when there is none).
find_bin() {
    local dir version best="" best_version=0
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] || continue
        version=$(basename "$(dirname "$dir")")
        version=${version%%.*}
        [[ $version =~ ^[0-9]+$ ]] || continue
        if [ "$version" -ge "$MIN_VERSION" ] && [ "$version" -gt "$best_version" ]; then
            best=$dir best_version=$version
        fi
    done
    echo "$best"
}

# Run a server command as the postgres user when we are root (initdb refuses root), else as ourselves.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
    die "found no free port"
}

url_of() { echo "postgresql://postgres@127.0.0.1:$1/$DB"; }

# -- already running? --------------------------------------------------------------------------------------------
if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -n "${PG_BIN:-}" ] && [ -d "${PG_DATA:-/nonexistent}" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 \
        && "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$DB" -Atqc 'select 1' >/dev/null 2>&1; then
        say "already running (state $STATE)"
        url_of "$PG_PORT"
        exit 0
    fi
    say "stale state file $STATE: starting a new cluster"
    if [ -n "${PG_BIN:-}" ] && [ -d "${PG_DATA:-/nonexistent}" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    case "${PG_BASE:-}" in */wei-gen-pg.*) rm -rf "$PG_BASE" ;; esac
    rm -f "$STATE"
fi

# -- binaries ----------------------------------------------------------------------------------------------------
BIN=$(find_bin)
if [ -z "$BIN" ]; then
    [ "$(id -u)" -eq 0 ] || die "no PostgreSQL >= $MIN_VERSION under /usr/lib/postgresql and not root: install postgresql"
    say "no PostgreSQL >= $MIN_VERSION found: apt-get install postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN=$(find_bin)
    [ -n "$BIN" ] || die "apt-get installed no PostgreSQL >= $MIN_VERSION"
fi
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "there is no postgres user to run the server as"
fi

# -- a fresh cluster ---------------------------------------------------------------------------------------------
BASE=$(mktemp -d "${TMPDIR:-/tmp}/wei-gen-pg.XXXXXX")
chmod 755 "$BASE"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$BASE"; fi
DATA=$BASE/data
LOG=$BASE/server.log
cleanup_failed() {
    as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$BASE"
    rm -f "$STATE"
}
trap cleanup_failed EXIT  # any failure from here on leaves nothing behind

say "initdb $DATA ($BIN)"
as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$BASE/initdb.log" 2>&1 \
    || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }

started=""
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    [ "$PORT" != 5432 ] || continue
    # Throwaway data: no fsync. Socket in our own directory, TCP on loopback only.
    opts="-p $PORT -k $BASE -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if as_pg "$BIN/pg_ctl" -D "$DATA" -o "$opts" -l "$LOG" -w -t 30 start >/dev/null 2>&1; then
        started=1
        break
    fi
    say "start on port $PORT failed (attempt $attempt)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
done
if [ -z "$started" ]; then
    tail -n 20 "$LOG" >&2 || true
    die "the server did not start"
fi

cat >"$STATE" <<STATE_EOF
PG_BIN=$BIN
PG_BASE=$BASE
PG_DATA=$DATA
PG_PORT=$PORT
STATE_EOF

"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$DB\"" >&2
trap - EXIT
say "PostgreSQL $(basename "$(dirname "$BIN")") up on 127.0.0.1:$PORT, data in $DATA (state $STATE)"
url_of "$PORT"
