#!/usr/bin/env bash
# The migration-guard demo on the embedded SQLite default, with the example project
# examples/shop. `make demo` runs it with the project's .venv first on PATH.
# Everything happens in a temporary copy; nothing in the repository changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/shop/alembic.ini" "$here/shop/migrations" "$here/shop/pyproject.toml" "$work/"
cd "$work"
export MIGRATION_GUARD_BACKUP_DIR="$work/backups"
export MIGRATION_GUARD_KEY="$(migration-guard keygen)"   # backups are encrypted with it
url="sqlite:///$work/shop.db"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_exit() {  # expect_exit CODE command... : run, show the exit code, stop the demo if it differs
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  echo "(exit code $got)"
  [ "$got" -eq "$want" ] || { echo "demo: expected exit code $want from: $*" >&2; exit 1; }
}
count() { python -c "import sqlite3,sys; print(sys.argv[1], sqlite3.connect('shop.db').execute('SELECT count(*) FROM ' + sys.argv[1]).fetchone()[0])" "$1"; }

step "1. check: a pending migration drops a column of the protected table customers"
expect_exit 1 migration-guard check

step "2. apply the harmless revisions, then put customers and orders in"
migration-guard upgrade 3c4d5e6f7a8b --yes
python - <<'PY'
import sqlite3
db = sqlite3.connect("shop.db")
db.executemany("INSERT INTO customers (id, email, name) VALUES (?, ?, ?)",
               [(i, f"c{i}@example.com", f"Customer {i}") for i in range(1, 101)])
db.executemany("INSERT INTO orders (id, customer_id, total_cents) VALUES (?, ?, ?)",
               [(i, 1 + i % 100, 100 * i) for i in range(1, 251)])
db.commit()
PY
count customers; count orders

step "3. upgrade refuses the destructive revision: nothing changes"
expect_exit 1 migration-guard upgrade --yes

step "4. approved with a reason: a safety backup is taken, then the revision is applied"
migration-guard upgrade --allow drop-column:customers \
  --reason "legacy notes archived in TICKET-42" --yes

step "5. a revision fails half-way: the guard restores the database and proves it"
cat > migrations/versions/5e6f7a8b9c0d_orders_currency.py <<'EOF'
"""add orders.currency, then fail half-way"""
import sqlalchemy as sa
from alembic import op

revision = "5e6f7a8b9c0d"
down_revision = "4d5e6f7a8b9c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("currency", sa.String(3), nullable=True))
    op.execute("UPDATE orders SET currency = 'EUR' WHERE currency IS NULL")
    raise RuntimeError("simulated failure half-way through the migration")


def downgrade() -> None:
    op.drop_column("orders", "currency")
EOF
expect_exit 1 migration-guard upgrade --yes
count orders

step "6. an encrypted, verified backup; someone deletes every customer; one command restores"
migration-guard backup --url "$url"
id=$(migration-guard backups list --format json | python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
migration-guard backups verify "$id" --restore-test
python -c 'import sqlite3; db=sqlite3.connect("shop.db"); db.execute("DELETE FROM customers"); db.commit()'
count customers
migration-guard restore "$id" --url "$url" --yes
count customers

step "7. status: the safety net at a glance"
migration-guard status
