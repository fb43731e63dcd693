#!/usr/bin/env bash
# Stop the throwaway cluster scripts/start-postgres.sh started and delete its directory. Safe to run when nothing is
# running. Uses the same state file (WEI_GEN_PG_STATE, default ${TMPDIR:-/tmp}/wei-gen-postgres-$UID.env).
set -euo pipefail

STATE=${WEI_GEN_PG_STATE:-${TMPDIR:-/tmp}/wei-gen-postgres-$(id -u).env}
say() { echo "stop-postgres: $*" >&2; }

if [ ! -f "$STATE" ]; then
    say "nothing to stop (no state file $STATE)"
    exit 0
fi
# shellcheck disable=SC1090
. "$STATE"

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

if [ -n "${PG_BIN:-}" ] && [ -d "${PG_DATA:-/nonexistent}" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 \
        || say "pg_ctl stop failed (already stopped?)"
fi
# Only ever delete a directory start-postgres.sh made.
case "${PG_BASE:-}" in */wei-gen-pg.*) rm -rf "$PG_BASE" ;; esac
rm -f "$STATE"
say "stopped (port ${PG_PORT:-?})"
