"""``protect verify`` on PostgreSQL: the refused operations, attempted for real as the
application role inside one transaction that is always rolled back.

PostgreSQL's DDL is transactional, so even a DROP TABLE that got through would be
undone by the rollback; each attempt runs in its own savepoint with a one-second
``lock_timeout`` so that a probe never waits long behind the application's locks.
Each attempt is classified by its SQLSTATE.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import connect_engine, run_sql
from migration_guard.errors import describe
from migration_guard.protect.base import require_installed
from migration_guard.protect.options import require_app_url
from migration_guard.protect.postgresql import catalog, sql
from migration_guard.protect.report import ProbeResult

#: SQLSTATE -> (outcome, detail) of a probe the server stopped.
_OUTCOMES: dict[str, tuple[str, str]] = {
    "42501": ("refused", "privilege denied (not the owner)"),
    "55P03": ("skipped", "inconclusive: the table is locked by another session"),
    "57014": ("skipped", "inconclusive: cancelled by a timeout"),
    # The row got past every BEFORE trigger; only a foreign key stopped it.
    "23503": ("allowed", "passed the guard; only a foreign key stopped it"),
    "0A000": ("skipped", "inconclusive: a foreign key refuses it before any trigger runs"),
}
#: The last live column of each relation: ``(relation oid, column)``.
_COLUMNS_SQL = (
    "SELECT DISTINCT ON (attrelid) attrelid, attname FROM pg_attribute "
    "WHERE attrelid = ANY (CAST(:oids AS oid[])) AND attnum > 0 AND NOT attisdropped "
    "ORDER BY attrelid, attnum DESC"
)


def verify(admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
    """Probe every table recorded by install as the role of ``app_url``."""
    app_url = require_app_url(app_url, "role", "ROLE")
    admin_engine = connect_engine(admin_url)
    try:
        with admin_engine.connect() as admin:
            state = require_installed(catalog.read_install_state(admin))
            entries = state["tables"]
            live = catalog.tables_by_oid(admin, [int(e["oid"]) for e in entries.values()])
            rows = admin.execute(sa.text(_COLUMNS_SQL), {"oids": sorted(live)})
            columns = {int(oid): str(column) for oid, column in rows}
            targets = [
                (table, entry.get("deletes") != "allow", columns.get(table.oid))
                for entry in entries.values()
                if (table := live.get(int(entry["oid"]))) is not None
            ]
            admin.rollback()
    finally:
        admin_engine.dispose()
    app_engine = connect_engine(app_url)
    try:
        with app_engine.connect() as app:
            who = str(app.exec_driver_sql("SELECT current_user").scalar())
            app.rollback()
            results: list[ProbeResult] = []
            for table, blocks, column in sorted(targets, key=lambda t: t[0].name):
                results.extend(_probe_table(app, table, blocks, column, who))
            return results
    finally:
        app_engine.dispose()


def _probe_table(
    app: Connection, table: catalog.Table, blocks: bool, column: Any, who: str
) -> list[ProbeResult]:
    name = sql.qualified(table.schema, table.table)
    operations: list[tuple[str, str | None, str]] = [
        (
            "DELETE",
            f"DELETE FROM {name} WHERE ctid = (SELECT ctid FROM {name} LIMIT 1)"
            if blocks
            else None,
            'deletes = "allow"',
        ),
        ("TRUNCATE", f"TRUNCATE {name}", ""),
        ("DROP TABLE", f"DROP TABLE {name}", ""),
        (
            "ALTER TABLE DROP COLUMN",
            f"ALTER TABLE {name} DROP COLUMN {sql.ident(str(column))}" if column else None,
            "the table has no column",
        ),
    ]
    results = []
    transaction = app.begin()
    try:
        run_sql(app, "SET LOCAL lock_timeout = '1s'")
        run_sql(app, f"SET LOCAL {sql.BYPASS_SETTING} = off")
        for operation, statement, why_not in operations:
            if statement is None:
                results.append(ProbeResult(table.name, operation, "skipped", why_not, who))
                continue
            savepoint = app.begin_nested()
            try:
                outcome = run_sql(app, statement)
                rows = getattr(outcome, "rowcount", -1)
                detail = "rolled back"
                if operation == "DELETE" and rows == 0:
                    outcome_name, detail = "skipped", "the table is empty, so no trigger fired"
                else:
                    outcome_name = "allowed"
                results.append(ProbeResult(table.name, operation, outcome_name, detail, who))
            except sa.exc.DBAPIError as exc:
                results.append(classify(table.name, operation, exc, who))
            finally:
                savepoint.rollback()
    finally:
        transaction.rollback()
    return results


def classify(table: str, operation: str, exc: BaseException, who: str) -> ProbeResult:
    """What the server's refusal of a probe says about the protection."""
    orig = getattr(exc, "orig", exc)
    state = str(getattr(orig, "sqlstate", "") or "")
    text = describe(exc)
    if sql.MESSAGE_PREFIX in text:
        return ProbeResult(table, operation, "refused", "the guard refused it", who)
    outcome, detail = _OUTCOMES.get(state, ("skipped", f"inconclusive: {text}"))
    return ProbeResult(table, operation, outcome, detail, who)
