#!/usr/bin/env bash
# The migration-guard demo on the embedded SQLite default (examples/shop).
# `make demo` runs this with the project's .venv first on PATH.
set -euo pipefail
cd "$(dirname "$0")/shop"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MIGRATION_GUARD_BACKUP_DIR="$work/backups"
cp -r alembic.ini migrations pyproject.toml "$work/"
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. check: the pending migrations contain a destructive step"
set +e
migration-guard check
status=$?
set -e
echo "(exit code $status: 1 means an unsuppressed error was found)"
[ "$status" -eq 1 ] || { echo "demo: expected the check to find the destructive migration" >&2; exit 1; }

step "2. the same check as JSON, for CI"
migration-guard check --format json | python -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d["summary"]))' || true

if migration-guard backup --help >/dev/null 2>&1; then
  step "3. apply the safe revisions and put some customers in"
  alembic -c alembic.ini upgrade 3c4d5e6f7a8b >/dev/null 2>&1
  python - <<'PY'
import sqlite3
db = sqlite3.connect("shop.db")
db.executemany("INSERT INTO customers (id, email, name) VALUES (?, ?, ?)",
               [(i, f"c{i}@example.com", f"Customer {i}") for i in range(1, 101)])
db.commit()
print("customers:", db.execute("SELECT count(*) FROM customers").fetchone()[0])
PY

  step "4. an encrypted, verified backup"
  export MIGRATION_GUARD_KEY="$(migration-guard keygen)"
  migration-guard backup --url "sqlite:///$work/shop.db"
  migration-guard backups list
  id=$(migration-guard backups list --format json | python -c 'import json,sys; d=json.load(sys.stdin); d=d.get("backups", d) if isinstance(d, dict) else d; print(d[0]["id"])')
  migration-guard backups verify "$id" --restore-test

  step "5. disaster: someone deletes the customers"
  python -c 'import sqlite3; db=sqlite3.connect("shop.db"); db.execute("DELETE FROM customers"); db.commit(); print("customers:", db.execute("SELECT count(*) FROM customers").fetchone()[0])'

  step "6. restore in one command"
  migration-guard restore "$id" --url "sqlite:///$work/shop.db" --yes
  python -c 'import sqlite3; print("customers:", sqlite3.connect("shop.db").execute("SELECT count(*) FROM customers").fetchone()[0])'
fi

step "done"
