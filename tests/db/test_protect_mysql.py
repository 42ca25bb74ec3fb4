"""``protect`` on the real MariaDB: triggers, privilege guard, remove, drift, verify."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from migration_guard.cli import main
from migration_guard.commands.protect import (
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
)
from migration_guard.config import Config
from migration_guard.errors import UsageError
from tests.conftest import unique_name

pytestmark = pytest.mark.mysql

INJECTION_TABLE = "x` ; DROP TABLE y; -- z"
BROAD_GRANT = "SELECT, INSERT, UPDATE, DELETE, DROP, ALTER"


@dataclass
class App:
    admin_url: str
    app_url: str
    user: str
    database: str

    @property
    def account(self) -> str:
        return f"{self.user}@%"


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _exec(url: str, *statements: str) -> None:
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement.replace("%", "%%"))
    finally:
        engine.dispose()


def _scalar(url: str, sql: str) -> Any:
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def _show_grants(url: str, user: str) -> list[str]:
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SHOW GRANTS FOR '{user}'@'%%'").fetchall()
            return sorted(str(row[0]) for row in rows)
    finally:
        engine.dispose()


@pytest.fixture
def app(mysql_url: str) -> Iterator[App]:
    """A database with protected and unprotected tables and a broadly granted app account."""
    database = str(make_url(mysql_url).database)
    user = unique_name("mg_app")
    password = "app-secret-pw"
    _exec(
        mysql_url,
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), note VARCHAR(50)) "
        "ENGINE=InnoDB",
        "INSERT INTO customers VALUES (1, 'ada', 'x'), (2, 'bob', 'y'), (3, 'cy', 'z')",
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT) ENGINE=InnoDB",
        "INSERT INTO orders VALUES (10, 1), (11, 2)",
        "CREATE TABLE scratch (id INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO scratch VALUES (1), (2)",
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT {BROAD_GRANT} ON `{database}`.* TO '{user}'@'%'",
    )
    app_url = str(make_url(mysql_url).set(username=user, password=password).render_as_string(False))
    try:
        yield App(mysql_url, app_url, user, database)
    finally:
        _exec(mysql_url, f"DROP USER IF EXISTS '{user}'@'%'")


def _config(*patterns: str, **sections: Any) -> Config:
    return Config(protected_tables=patterns, sections=sections)


def _install(app: App, *patterns: str, **kwargs: Any) -> Any:
    return protect_install(
        _config(*patterns),
        url=app.admin_url,
        app_users=[app.account],
        yes=True,
        **kwargs,
    )


def _as_app(app: App, sql: str) -> None:
    engine = _admin(app.app_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _refused(app: App, sql: str) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught:
        _as_app(app, sql)
    return str(caught.value.orig)


def _count(app: App, table: str) -> int:
    return int(_scalar(app.admin_url, f"SELECT COUNT(*) FROM `{table}`"))


def test_install_refuses_destruction_and_keeps_normal_work(app: App) -> None:
    result = _install(app, "customers", "orders")
    assert result.applied

    for sql in (
        "DELETE FROM customers",
        "DELETE FROM customers WHERE id = 1",
    ):
        assert "migration-guard: deleting from customers is blocked" in _refused(app, sql)
    for sql in (
        "TRUNCATE TABLE customers",
        "DROP TABLE customers",
        "ALTER TABLE customers DROP COLUMN note",
        "RENAME TABLE customers TO customers_old",
        "TRUNCATE TABLE orders",
    ):
        assert "denied" in _refused(app, sql)
    assert _count(app, "customers") == 3
    assert _count(app, "orders") == 2

    _as_app(app, "INSERT INTO customers VALUES (4, 'dee', 'w')")
    _as_app(app, "UPDATE customers SET name = 'ADA' WHERE id = 1")
    assert _scalar(app.app_url, "SELECT name FROM customers WHERE id = 1") == "ADA"
    _as_app(app, "DELETE FROM scratch WHERE id = 1")
    _as_app(app, "TRUNCATE TABLE scratch")
    _as_app(app, "ALTER TABLE scratch ADD COLUMN extra INT")
    assert _count(app, "scratch") == 0

    # The documented session switch lets a deliberate delete through.
    engine = _admin(app.app_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET @migration_guard_allow_delete = 1")
            conn.exec_driver_sql("DELETE FROM customers WHERE id = 4")
            conn.exec_driver_sql("SET @migration_guard_allow_delete = NULL")
            with pytest.raises(sa.exc.DBAPIError):
                conn.exec_driver_sql("DELETE FROM customers WHERE id = 3")
    finally:
        engine.dispose()
    assert _count(app, "customers") == 3


def test_second_install_is_empty_and_remove_restores_grants(app: App) -> None:
    before = _show_grants(app.admin_url, app.user)
    _install(app, "customers")
    assert _show_grants(app.admin_url, app.user) != before
    again = protect_install(_config("customers"), url=app.admin_url, app_users=[app.account])
    assert again.plan.is_empty, again.plan.render()

    removed = protect_remove(_config(), url=app.admin_url, yes=True)
    assert removed.applied
    assert any("restored exactly" in note for note in removed.notes)
    assert _show_grants(app.admin_url, app.user) == before
    _as_app(app, "DELETE FROM customers WHERE id = 3")
    assert _count(app, "customers") == 2
    assert (
        _scalar(
            app.admin_url,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'migration_guard_meta'",
        )
        == 0
    )


def test_new_table_is_picked_up_by_the_next_install(app: App) -> None:
    _install(app, "customers")
    _exec(
        app.admin_url,
        "CREATE TABLE invoices (id INT PRIMARY KEY)",
        "INSERT INTO invoices VALUES (1)",
    )
    _exec(app.admin_url, "CREATE TABLE notes (id INT PRIMARY KEY)")
    plan = protect_install(
        _config("customers", "invoices"), url=app.admin_url, app_users=[app.account]
    )
    sql = plan.plan.render()
    assert "CREATE TRIGGER `mg_guard_invoices_bd`" in sql
    assert "GRANT ALTER, DROP ON" in sql and "`notes`" in sql
    _install(app, "customers", "invoices")
    assert "migration-guard" in _refused(app, "DELETE FROM invoices")
    _as_app(app, "DROP TABLE notes")


def test_dry_run_and_no_yes_change_nothing(app: App) -> None:
    before = _show_grants(app.admin_url, app.user)
    for dry_run, yes in ((True, True), (False, False)):
        result = protect_install(
            _config("customers"),
            url=app.admin_url,
            app_users=[app.account],
            dry_run=dry_run,
            yes=yes,
        )
        assert not result.applied
        assert "CREATE TRIGGER" in result.plan.render()
        assert "REVOKE ALTER, DROP ON" in result.plan.render()
    assert _show_grants(app.admin_url, app.user) == before
    _as_app(app, "DELETE FROM customers WHERE id = 1")

    runner = CliRunner()
    outcome = runner.invoke(
        main,
        [
            "protect",
            "install",
            "--url",
            app.admin_url,
            "--protect",
            "customers",
            "--app-user",
            app.account,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "CREATE TRIGGER" in outcome.output and "--yes" in outcome.output
    assert _show_grants(app.admin_url, app.user) == before


def test_drift_detection(app: App) -> None:
    _install(app, "customers")
    status = protect_status(_config("customers"), url=app.admin_url)
    assert not status.drifted, status.render()

    runner = CliRunner()
    ok = runner.invoke(main, ["protect", "status", "--url", app.admin_url])
    assert ok.exit_code == 0, ok.output

    _exec(app.admin_url, "DROP TRIGGER mg_guard_customers_bd")
    dropped = runner.invoke(main, ["protect", "status", "--url", app.admin_url, "--format", "json"])
    assert dropped.exit_code == 1
    assert '"missing"' in dropped.output

    _install(app, "customers")
    assert not protect_status(_config(), url=app.admin_url).drifted
    _exec(app.admin_url, f"GRANT DROP ON `{app.database}`.* TO '{app.user}'@'%'")
    widened = protect_status(_config(), url=app.admin_url)
    assert widened.drifted
    assert any("DROP" in item for table in widened.tables for item in table.drift)
    assert runner.invoke(main, ["protect", "status", "--url", app.admin_url]).exit_code == 1


def test_user_trigger_is_kept_and_both_fire(app: App) -> None:
    _exec(
        app.admin_url,
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, deleted_id INT)",
        "CREATE TRIGGER user_audit BEFORE DELETE ON customers FOR EACH ROW "
        "INSERT INTO audit (deleted_id) VALUES (OLD.id)",
    )
    result = _install(app, "customers")
    assert "PRECEDES `user_audit`" in result.plan.render()
    engine = _admin(app.admin_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'customers'"
            ).fetchall()
    finally:
        engine.dispose()
    order: dict[str, int] = {str(name): int(position) for name, position in rows}
    assert set(order) == {"user_audit", "mg_guard_customers_bd"}
    assert order["mg_guard_customers_bd"] < order["user_audit"]

    _refused(app, "DELETE FROM customers WHERE id = 1")
    assert _count(app, "audit") == 0
    engine = _admin(app.app_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET @migration_guard_allow_delete = 1")
            conn.exec_driver_sql("DELETE FROM customers WHERE id = 1")
    finally:
        engine.dispose()
    assert _count(app, "audit") == 1

    protect_remove(_config(), url=app.admin_url, yes=True)
    remaining = _scalar(
        app.admin_url,
        "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    assert remaining == "user_audit"


def test_injection_through_a_table_name_is_impossible(app: App) -> None:
    _exec(
        app.admin_url,
        "CREATE TABLE `" + INJECTION_TABLE.replace("`", "``") + "` (id INT PRIMARY KEY)",
        "INSERT INTO `" + INJECTION_TABLE.replace("`", "``") + "` VALUES (1)",
        "CREATE TABLE y (id INT PRIMARY KEY)",
        "CREATE TABLE `it's \\\\ odd` (id INT PRIMARY KEY)",
        "INSERT INTO `it's \\\\ odd` VALUES (1)",
    )
    _install(app, "x*", "it's*")
    assert (
        _scalar(
            app.admin_url,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'y'",
        )
        == 1
    )
    quoted = "`" + INJECTION_TABLE.replace("`", "``") + "`"
    assert "migration-guard" in _refused(app, f"DELETE FROM {quoted}")
    assert "denied" in _refused(app, f"DROP TABLE {quoted}")
    assert "migration-guard" in _refused(app, "DELETE FROM `it's \\\\ odd`")
    status = protect_status(_config(), url=app.admin_url)
    assert not status.drifted, status.render()


def test_verify_reports_refused_operations(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(app, "customers")
    monkeypatch.setenv("MIGRATION_GUARD_APP_PASSWORD", "app-secret-pw")
    results = protect_verify(_config(), url=app.admin_url, app_users=[app.account])
    outcomes = {result.operation: result.outcome for result in results}
    assert outcomes == {
        "DELETE": "refused",
        "TRUNCATE": "refused",
        "DROP TABLE": "refused",
        "ALTER TABLE DROP COLUMN": "refused",
        "RENAME TABLE": "refused",
    }, results
    assert _count(app, "customers") == 3

    # Widen the grants again: verify sees it, and nothing is harmed by the probe.
    _exec(app.admin_url, f"GRANT DROP, ALTER ON `{app.database}`.`customers` TO '{app.user}'@'%'")
    runner = CliRunner()
    outcome = runner.invoke(
        main, ["protect", "verify", "--url", app.admin_url, "--app-user", app.account]
    )
    assert outcome.exit_code == 1, outcome.output
    assert "allowed" in outcome.output
    assert "app-secret-pw" not in outcome.output
    assert _count(app, "customers") == 3


def test_bad_input_exits_2_and_changes_nothing(app: App) -> None:
    runner = CliRunner()
    missing_user = runner.invoke(
        main,
        [
            "protect",
            "install",
            "--url",
            app.admin_url,
            "--protect",
            "customers",
            "--app-user",
            "no_such_user_mg@%",
            "--yes",
        ],
    )
    assert missing_user.exit_code == 2
    assert "does not exist" in missing_user.output

    no_match = runner.invoke(
        main, ["protect", "install", "--url", app.admin_url, "--protect", "nothing_like_this*"]
    )
    assert no_match.exit_code == 2
    assert "nothing_like_this*" in no_match.output

    no_patterns = runner.invoke(main, ["protect", "install", "--url", app.admin_url])
    assert no_patterns.exit_code == 2
    assert "--protect" in no_patterns.output

    with pytest.raises(UsageError, match="unknown key 'delete'"):
        protect_install(
            _config("customers", tables={"customers": {"delete": "allow"}}), url=app.admin_url
        )
    assert (
        _scalar(
            app.admin_url,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
        )
        == 0
    )


def test_global_ddl_grant_is_refused(app: App) -> None:
    _exec(app.admin_url, f"GRANT DROP ON *.* TO '{app.user}'@'%'")
    with pytest.raises(UsageError, match="global level"):
        _install(app, "customers")


def test_admin_without_grant_option_is_named(app: App) -> None:
    admin = unique_name("mg_adm")
    _exec(
        app.admin_url,
        f"CREATE USER '{admin}'@'%' IDENTIFIED BY 'adm-pw'",
        f"GRANT ALL PRIVILEGES ON `{app.database}`.* TO '{admin}'@'%'",
        f"GRANT SELECT ON mysql.* TO '{admin}'@'%'",
    )
    try:
        url = make_url(app.admin_url).set(username=admin, password="adm-pw")
        with pytest.raises(UsageError, match="GRANT OPTION"):
            protect_install(_config("customers"), url=url, app_users=[app.account], yes=True)
    finally:
        _exec(app.admin_url, f"DROP USER IF EXISTS '{admin}'@'%'")


def test_deletes_allow_option_leaves_rows_alone(app: App) -> None:
    config = _config("customers", tables={"customers": {"deletes": "allow"}})
    protect_install(config, url=app.admin_url, app_users=[app.account], yes=True)
    _as_app(app, "DELETE FROM customers WHERE id = 1")
    assert "denied" in _refused(app, "DROP TABLE customers")
    assert not protect_status(config, url=app.admin_url).drifted


def test_failed_step_rolls_back_completed_steps(app: App) -> None:
    from migration_guard.errors import ProtectError
    from migration_guard.protect import Account, PlanStep
    from migration_guard.protect.mysql import MySQLProtector

    before = _show_grants(app.admin_url, app.user)
    protector = MySQLProtector()
    engine = _admin(app.admin_url)
    try:
        with engine.connect() as conn:
            plan = protector.plan_install(conn, ["customers"], [Account(app.user)], {})
            plan.steps.append(PlanStep("a step that fails", "GRANT NONSENSE ON nothing"))
            with pytest.raises(ProtectError, match="rolled back; nothing was changed") as caught:
                protector.apply(conn, plan)
            assert caught.value.rolled_back
    finally:
        engine.dispose()
    assert _show_grants(app.admin_url, app.user) == before
    _as_app(app, "DELETE FROM customers WHERE id = 1")
    assert (
        _scalar(
            app.admin_url,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'migration_guard_meta'",
        )
        == 0
    )
