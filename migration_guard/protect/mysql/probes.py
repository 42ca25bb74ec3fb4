"""``protect verify`` on MySQL/MariaDB: harmless attempts as the application account.

A DELETE runs inside a transaction that is always rolled back; TRUNCATE, DROP,
ALTER and RENAME run while the admin connection holds a shared metadata lock,
so a statement that passes the privilege check waits and times out instead of
running. Each attempt is classified by the server's error code.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.dialects.base import connect_engine
from migration_guard.errors import describe
from migration_guard.protect.base import require_installed
from migration_guard.protect.mysql import server, sql
from migration_guard.protect.mysql.grants import Grants, effective_grants
from migration_guard.protect.mysql.sql import Quoting
from migration_guard.protect.options import require_app_url
from migration_guard.protect.report import ProbeResult

#: Engines that can roll a probe DELETE back.
TRANSACTIONAL_ENGINES = frozenset({"innodb", "rocksdb", "tokudb", "ndbcluster"})

#: error code -> (outcome, detail) of a probe that the server stopped with it.
_OUTCOMES: dict[int, tuple[str, str]] = {
    server.ER_SIGNAL_EXCEPTION: ("refused", "the delete trigger refused it"),
    server.ER_TABLEACCESS_DENIED: ("refused", "privilege denied"),
    server.ER_DBACCESS_DENIED: ("refused", "privilege denied"),
    server.ER_LOCK_WAIT_TIMEOUT: ("allowed", "privilege check passed; held back by the probe"),
    server.ER_CANT_DROP_FIELD: ("allowed", "privilege check passed; held back by the probe"),
}


def verify(admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
    """Probe every table recorded by install as the account of ``app_url``."""
    app_url = require_app_url(app_url, "account", "USER[@HOST]")
    admin_engine = connect_engine(admin_url)
    app_engine = connect_engine(app_url)
    try:
        with admin_engine.connect() as admin, app_engine.connect() as app:
            quoting = server.session_quoting(admin)
            state = require_installed(server.read_install_state(admin, quoting))
            database = server.database_name(admin)
            account = server.current_account(app)
            predicted: list[Grants]
            try:
                predicted = effective_grants(admin, account, database)
            except sa.exc.DBAPIError:
                predicted = []  # the prediction only spares attempts; the probes decide
            engines = {
                str(name): str(engine or "")
                for name, engine in admin.execute(sa.text(sql.TABLE_ENGINES_SQL))
            }
            admin.rollback()
            admin_raw = admin.connection.dbapi_connection
            app_raw = app.connection.dbapi_connection
            assert admin_raw is not None and app_raw is not None
            results: list[ProbeResult] = []
            for table, entry in sorted(state["tables"].items()):
                if table not in engines:
                    continue
                probe = _Probe(admin_raw, app_raw, table, quoting, str(account))
                if entry.get("deletes") == "allow":
                    results.append(probe.result("DELETE", "skipped", 'deletes = "allow"'))
                else:
                    results.append(probe.delete(engines[table]))
                held = [d for g in predicted for d in g.guarded_on(table)]
                results.extend(probe.ddl(held))
            return results
    finally:
        admin_engine.dispose()
        app_engine.dispose()


class _Probe:
    """Harmless attempts, as the application account, on one protected table."""

    def __init__(self, admin: Any, app: Any, table: str, quoting: Quoting, who: str) -> None:
        self.admin = admin
        self.app = app
        self.table = table
        self.name = quoting.ident(table)
        self.quoting = quoting
        self.who = who

    def result(self, operation: str, outcome: str, detail: str) -> ProbeResult:
        return ProbeResult(self.table, operation, outcome, detail, self.who)

    def _admin_has_rows(self) -> bool:
        cursor = self.admin.cursor()
        try:
            cursor.execute(f"SELECT 1 FROM {self.name} LIMIT 1")
            return cursor.fetchone() is not None
        finally:
            cursor.close()

    def delete(self, engine: str) -> ProbeResult:
        """DELETE one row inside a transaction that is always rolled back."""
        if engine.lower() not in TRANSACTIONAL_ENGINES:
            return self.result("DELETE", "skipped", f"engine {engine} cannot roll a probe back")
        has_rows = self._admin_has_rows()
        self.admin.rollback()
        if not has_rows:
            return self.result("DELETE", "skipped", "the table is empty, so no trigger can fire")
        cursor = self.app.cursor()
        try:
            cursor.execute(f"SET {sql.BYPASS_VARIABLE} = NULL")
            self.app.begin()
            try:
                cursor.execute(f"DELETE FROM {self.name} LIMIT 1")
                return self.result("DELETE", "allowed", "rolled back")
            except Exception as exc:  # classified below
                return classify(self.table, "DELETE", exc, self.who)
            finally:
                self.app.rollback()
        finally:
            cursor.close()

    def ddl(self, held: list[str]) -> list[ProbeResult]:
        """TRUNCATE, DROP, ALTER and RENAME while the admin holds a metadata lock.

        The admin connection reads the table in an open transaction, which holds a
        shared metadata lock: a statement that passes the privilege check waits for
        the lock and times out after one second instead of running.
        """
        probe_column = self.quoting.ident("mg_probe_no_such_column")
        suffix = hashlib.sha256(self.table.encode("utf-8")).hexdigest()[:12]
        probe_table = self.quoting.ident(f"mg_probe_{suffix}")
        operations = [
            ("TRUNCATE", f"TRUNCATE TABLE {self.name}"),
            ("DROP TABLE", f"DROP TABLE {self.name}"),
            ("ALTER TABLE DROP COLUMN", f"ALTER TABLE {self.name} DROP COLUMN {probe_column}"),
            ("RENAME TABLE", f"RENAME TABLE {self.name} TO {probe_table}"),
        ]
        results = []
        self._admin_has_rows()  # takes the shared metadata lock
        try:
            for operation, statement in operations:
                if held and operation != "ALTER TABLE DROP COLUMN":
                    # Never attempt what the grants already say will run.
                    results.append(self.result(operation, "allowed", f"holds {held[0]}"))
                    continue
                cursor = self.app.cursor()
                try:
                    cursor.execute("SET SESSION lock_wait_timeout = 1")
                    try:
                        cursor.execute(statement)
                    except Exception as exc:  # classified below
                        results.append(classify(self.table, operation, exc, self.who))
                        continue
                    results.append(self.result(operation, "allowed", "the statement ran"))
                finally:
                    cursor.close()
        finally:
            self.admin.rollback()
        return results


def classify(table: str, operation: str, exc: BaseException, who: str) -> ProbeResult:
    """What the server's refusal of a probe says about the protection."""
    code = server.error_code(exc)
    text = describe(exc)
    # RENAME needs privileges on the new name too: a denial naming another table
    # means the protected table itself would have let it through.
    if (
        operation == "RENAME TABLE"
        and code in (server.ER_TABLEACCESS_DENIED, server.ER_DBACCESS_DENIED)
        and f"`{table}`" not in text
    ):
        return ProbeResult(table, operation, "allowed", f"passed on {table}: {text}", who)
    outcome, detail = _OUTCOMES.get(code or 0, ("skipped", f"inconclusive: {text}"))
    return ProbeResult(table, operation, outcome, detail, who)
