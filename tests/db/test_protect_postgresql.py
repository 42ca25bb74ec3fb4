"""``protect`` on the real PostgreSQL: guard triggers, owner transfer, event triggers,
remove, drift, verify, a non-superuser admin and hostile names."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from migration_guard.cli import main
from migration_guard.commands.protect import (
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
)
from migration_guard.config import Config
from migration_guard.errors import ProtectError, UsageError
from tests.conftest import unique_name

pytestmark = pytest.mark.postgresql

PROTECTED = ("customers", "app.accounts", "owned")
DESTRUCTIVE = {
    "DELETE": "DELETE FROM {t} WHERE id = 1",
    "DELETE without WHERE": "DELETE FROM {t}",
    "TRUNCATE": "TRUNCATE {t}",
    "TRUNCATE CASCADE": "TRUNCATE {t} CASCADE",
    "DROP TABLE": "DROP TABLE {t}",
    "DROP TABLE CASCADE": "DROP TABLE {t} CASCADE",
    "ALTER TABLE DROP COLUMN": "ALTER TABLE {t} DROP COLUMN note",
    "ALTER TABLE RENAME": "ALTER TABLE {t} RENAME TO renamed",
    "ALTER TABLE DISABLE TRIGGER": "ALTER TABLE {t} DISABLE TRIGGER ALL",
    # With the TRIGGER privilege a role could add a trigger that switches the bypass
    # on for every session deleting from the table.
    "CREATE TRIGGER": "CREATE TRIGGER a_first BEFORE DELETE ON {t} FOR EACH ROW "
    "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
}
#: What a refusal says: the guard's triggers, or the missing ownership/privilege.
#: (A plain TRUNCATE of a referenced table stops at the foreign key; TRUNCATE CASCADE
#: then shows the guard.)
REASONS = (
    "migration-guard:",
    "must be owner",
    "permission denied",
    "cannot truncate a table referenced in a foreign key",
)
QUALIFIED = {"customers": "public.customers", "app.accounts": "app.accounts", "owned": "owned"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Db:
    """A database with protected and unprotected tables, and two application roles."""

    url: str
    name: str
    app: str  # holds ALL on every table
    owner: str  # owned the table ``owned`` (and ``owner_scratch``) before install
    roles: list[str] = field(default_factory=list)

    def url_as(self, role: str) -> str:
        return make_url(self.url).set(username=role, password="pw").render_as_string(False)

    @property
    def guard(self) -> str:
        return f"migration_guard_owner_{self.name}"


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def run(url: str, *statements: str) -> None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
    finally:
        engine.dispose()


def rows(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(statement), params)]
    finally:
        engine.dispose()


def counts(db: Db) -> dict[str, int]:
    return {
        table: rows(db.url, f"SELECT count(*) FROM {qualified}")[0][0]
        for table, qualified in QUALIFIED.items()
    }


SNAPSHOT_SQL = (
    "SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), "
    "coalesce((SELECT string_agg(g.grantee || ':' || g.grantor || ':' || g.privilege_type "
    "|| ':' || g.is_grantable, ',' ORDER BY g.grantee, g.grantor, g.privilege_type) "
    "FROM information_schema.role_table_grants g "
    "WHERE g.table_schema = n.nspname AND g.table_name = c.relname), '') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT IN ('pg_catalog', "
    "'information_schema', 'pg_toast') ORDER BY 1, 2"
)
SCHEMA_ACL_SQL = "SELECT nspname, coalesce(nspacl::text, 'default') FROM pg_namespace ORDER BY 1"
SEQUENCE_ACL_SQL = (
    "SELECT c.relname, coalesce(c.relacl::text, 'default') FROM pg_class c "
    "WHERE c.relkind = 'S' ORDER BY 1"
)


def snapshot(db: Db) -> list[tuple[Any, ...]]:
    """Owner and every grant of every table, sequence and schema."""
    return (
        rows(db.url, SNAPSHOT_SQL) + rows(db.url, SEQUENCE_ACL_SQL) + rows(db.url, SCHEMA_ACL_SQL)
    )


@pytest.fixture
def db(postgres_url: str) -> Iterator[Db]:
    name = str(make_url(postgres_url).database)
    app, owner = unique_name("mg_app"), unique_name("mg_own")
    run(
        postgres_url,
        f"CREATE ROLE {app} LOGIN PASSWORD 'pw'",
        f"CREATE ROLE {owner} LOGIN PASSWORD 'pw'",
        "CREATE SCHEMA app",
        "CREATE TABLE customers (id serial PRIMARY KEY, name text, note text)",
        "INSERT INTO customers (name, note) VALUES ('ada', 'x'), ('bob', 'y'), ('cy', 'z')",
        "CREATE TABLE app.accounts (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "customer_id int REFERENCES customers (id), note text)",
        "INSERT INTO app.accounts (customer_id, note) VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE owned (id serial PRIMARY KEY, note text)",
        "INSERT INTO owned (note) VALUES ('o1'), ('o2')",
        "CREATE TABLE orders (id int PRIMARY KEY, note text)",
        "INSERT INTO orders VALUES (10, 'n'), (11, 'm')",
        "CREATE TABLE owner_scratch (id int)",
        "INSERT INTO owner_scratch VALUES (1)",
        f"ALTER TABLE owned OWNER TO {owner}",
        f"ALTER TABLE owner_scratch OWNER TO {owner}",
        f"GRANT USAGE ON SCHEMA app TO {app}, {owner}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public, app TO {app}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public, app TO {app}",
        f"GRANT SELECT, INSERT, UPDATE ON customers TO {owner}",
        f"GRANT USAGE ON SEQUENCE customers_id_seq TO {owner}",
    )
    state = Db(postgres_url, name, app, owner, [app, owner])
    try:
        yield state
    finally:
        admin = POSTGRES_ADMIN(postgres_url)
        run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in [*state.roles, state.guard]:
            run(admin, f"DROP ROLE IF EXISTS {q(role)}")


def POSTGRES_ADMIN(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(False)


def config(*patterns: str) -> Config:
    return Config(protected_tables=patterns)


def install(
    db: Db, *roles: str, url: str | None = None, patterns: tuple[str, ...] = PROTECTED
) -> Any:
    return protect_install(
        config(*patterns), url=url or db.url, app_users=list(roles or (db.app, db.owner)), yes=True
    )


def refused(url: str, statement: str) -> str:
    """The error text of a statement that must fail."""
    with pytest.raises(sa.exc.DBAPIError) as caught:
        run(url, statement)
    return str(caught.value.orig)


@pytest.mark.parametrize("who", ["app", "owner"])
def test_destructive_statements_are_refused_and_no_row_is_lost(db: Db, who: str) -> None:
    """As a role holding ALL, and as the role that owned a table before install."""
    install(db)
    before = counts(db)
    url = db.url_as(getattr(db, who))
    targets = ("public.customers", "app.accounts", "owned")
    for table in targets:
        for label, template in DESTRUCTIVE.items():
            message = refused(url, template.format(t=table))
            assert any(reason in message for reason in REASONS), (label, table, message)
    assert counts(db) == before
    assert (
        rows(
            db.url,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = "
            "'note' AND table_name IN ('customers', 'accounts', 'owned')",
        )[0][0]
        == 3
    )


@pytest.mark.parametrize("who", ["app", "owner"])
def test_insert_and_update_still_work(db: Db, who: str) -> None:
    install(db)
    url = db.url_as(getattr(db, who))
    if who == "app":
        run(
            url,
            "INSERT INTO customers (name) VALUES ('new')",
            "UPDATE customers SET note = 'changed' WHERE id = 1",
            "INSERT INTO app.accounts (customer_id) VALUES (3)",
            "UPDATE app.accounts SET note = 'c' WHERE id = 1",
        )
    run(url, "INSERT INTO owned (note) VALUES ('o3')", "UPDATE owned SET note = 'u' WHERE id = 1")
    assert rows(db.url, "SELECT note FROM owned WHERE id = 1") == [("u",)]
    assert rows(db.url, "SELECT count(*) FROM owned") == [(3,)]


def test_unprotected_tables_are_untouched(db: Db) -> None:
    before = [row for row in snapshot(db) if row[1] in ("orders", "owner_scratch")]
    install(db)
    after = [row for row in snapshot(db) if row[1] in ("orders", "owner_scratch")]
    assert after == before
    assert rows(
        db.url,
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relname IN ('orders', 'owner_scratch')",
    ) == [(0,)]
    run(db.url_as(db.app), "DELETE FROM orders WHERE id = 10", "TRUNCATE orders")
    run(
        db.url_as(db.owner),
        "ALTER TABLE owner_scratch ADD COLUMN x int",
        "DROP TABLE owner_scratch",
    )


def test_superuser_ddl_is_refused_by_the_event_trigger_unless_bypassed(db: Db) -> None:
    install(db)
    for table in ("public.customers", "app.accounts"):
        assert "migration-guard" in refused(db.url, f"DROP TABLE {table} CASCADE")
        assert "migration-guard" in refused(db.url, f"ALTER TABLE {table} DROP COLUMN note")
        assert "migration-guard" in refused(db.url, f"DELETE FROM {table}")
        assert "migration-guard" in refused(db.url, f"TRUNCATE {table} CASCADE")
    assert "migration-guard" in refused(db.url, "DROP SCHEMA app CASCADE")
    assert "migration-guard" in refused(db.url, "DROP TRIGGER mg_guard_delete ON customers")
    assert counts(db) == {"customers": 3, "app.accounts": 2, "owned": 2}
    # The bypass lets a deliberate change through, in that session only.
    run(
        db.url,
        "SET migration_guard.allow_delete = on",
        "DELETE FROM app.accounts WHERE id = 2",
        "ALTER TABLE app.accounts ADD COLUMN extra int",
    )
    assert counts(db)["app.accounts"] == 1
    assert "migration-guard" in refused(db.url, "DELETE FROM app.accounts")


@pytest.mark.parametrize("who", ["app", "owner"])
def test_deliberate_delete_with_the_bypass_still_works(db: Db, who: str) -> None:
    """The bypass deletes through foreign keys that cross schemas (checks run as the owner)."""
    install(db)
    run(
        db.url_as(getattr(db, who)),
        "SET migration_guard.allow_delete = on",
        "DELETE FROM owned WHERE id = 2",
    )
    run(
        db.url_as(db.app),
        "SET migration_guard.allow_delete = on",
        "DELETE FROM app.accounts WHERE customer_id = 3",
        "INSERT INTO customers (name) VALUES ('gone soon')",
        "DELETE FROM customers WHERE name = 'gone soon'",
    )
    assert counts(db)["owned"] == 1
    message = refused(
        db.url_as(db.app),
        "SET migration_guard.allow_delete = on; DELETE FROM customers WHERE id = 1",
    )
    assert "foreign key" in message  # refused by the reference, not by a missing privilege


def test_remove_restores_owners_and_grants_exactly(db: Db) -> None:
    before = snapshot(db)
    result = install(db)
    assert result.applied
    during = {row[1]: row[3] for row in rows(db.url, SNAPSHOT_SQL)}
    assert {during[t] for t in ("customers", "accounts", "owned")} == {db.guard}
    assert during["owned_id_seq"] == db.guard
    removed = protect_remove(config(*PROTECTED), url=db.url, yes=True)
    assert removed.applied
    assert snapshot(db) == before
    assert any("restored exactly" in note for note in removed.notes)
    assert rows(db.url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'mg_guard%'") == [(0,)]
    assert rows(db.url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'migration_guard'") == [
        (0,)
    ]
    assert rows(db.url, "SELECT count(*) FROM pg_event_trigger") == [(0,)]
    assert rows(db.url, "SELECT count(*) FROM pg_roles WHERE rolname = :r", r=db.guard) == [(0,)]
    run(db.url_as(db.owner), "DROP TABLE owned")  # the owner's powers are back


def test_install_is_idempotent_and_status_is_clean(db: Db) -> None:
    install(db)
    again = install(db)
    assert again.plan.is_empty, again.plan.render()
    status = protect_status(config(*PROTECTED), url=db.url)
    assert status.installed and not status.drifted, status.render()
    assert {t.table for t in status.tables} == set(PROTECTED)


DRIFTS = {
    "trigger disabled": (
        "ALTER TABLE customers DISABLE TRIGGER mg_guard_delete",
        "mg_guard_delete is disabled",
    ),
    "trigger dropped": (
        "DROP TRIGGER mg_guard_truncate ON app.accounts",
        "mg_guard_truncate is missing",
    ),
    "owner changed": ("ALTER TABLE owned OWNER TO {owner}", "owner changed"),
    "grants changed": ("GRANT TRUNCATE ON owned TO {owner}", "grants of"),
    "app role made a member of the guard role": ("GRANT {guard} TO {app}", "can DROP/ALTER"),
    "bypass on by default for the app role": (
        "ALTER ROLE {app} SET migration_guard.allow_delete = on",
        "on by default for role",
    ),
    "bypass on by default in the database": (
        'ALTER DATABASE "{db}" SET migration_guard.allow_delete = true',
        "on by default for every role in this database",
    ),
    "event trigger disabled": ("ALTER EVENT TRIGGER migration_guard_drop DISABLE", "is disabled"),
    "function replaced": (
        "CREATE OR REPLACE FUNCTION migration_guard.refuse_delete() RETURNS trigger "
        "LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
        "missing or altered",
    ),
}


#: Drift that install does not manage, so it stays reported until undone by hand.
REPORTED_UNTIL_UNDONE = {
    "app role made a member of the guard role",
    "bypass on by default for the app role",
    "bypass on by default in the database",
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_status_detects_drift_and_install_repairs_it(db: Db, drift: str) -> None:
    install(db)
    statement, expected = DRIFTS[drift]
    run(
        db.url,
        "SET migration_guard.allow_delete = on",
        statement.format(owner=db.owner, app=db.app, guard=db.guard, db=db.name),
    )
    status = protect_status(config(*PROTECTED), url=db.url)
    assert status.drifted
    assert expected in status.render(), status.render()
    result = runner_status(db)
    assert result.exit_code == 1
    install(db)
    repaired = protect_status(config(*PROTECTED), url=db.url)
    if drift in REPORTED_UNTIL_UNDONE:
        assert repaired.drifted
        return
    assert not repaired.drifted, repaired.render()


def runner_status(db: Db) -> Any:
    return CliRunner().invoke(main, ["protect", "status", "--url", db.url], catch_exceptions=False)


def test_verify_probes_are_refused_and_harmless(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    install(db)
    before = counts(db)
    monkeypatch.setenv("MIGRATION_GUARD_APP_PASSWORD", "pw")
    results = protect_verify(config(*PROTECTED), url=db.url, app_users=[db.owner])
    assert results and all(r.outcome == "refused" for r in results), results
    assert {r.operation for r in results} == {
        "DELETE",
        "TRUNCATE",
        "DROP TABLE",
        "ALTER TABLE DROP COLUMN",
    }
    run(
        db.url,
        "SET migration_guard.allow_delete = on",
        "ALTER TABLE customers DISABLE TRIGGER mg_guard_delete",
    )
    results = protect_verify(config(*PROTECTED), url=db.url, app_users=[db.app])
    allowed = {(r.table, r.operation) for r in results if r.outcome == "allowed"}
    assert allowed == {("customers", "DELETE")}
    assert counts(db) == before  # every probe was rolled back


def test_install_refuses_unknown_and_superuser_roles_before_any_change(db: Db) -> None:
    before = snapshot(db)
    with pytest.raises(UsageError, match="does not exist"):
        install(db, "no_such_role_mg")
    with pytest.raises(UsageError, match="superuser"):
        install(db, "postgres")
    assert snapshot(db) == before


def test_non_superuser_admin_gets_partial_protection(db: Db) -> None:
    migrator = unique_name("mg_mig")
    db.roles.append(migrator)
    run(
        db.url,
        f"CREATE ROLE {migrator} LOGIN PASSWORD 'pw' NOSUPERUSER",
        f'GRANT CREATE ON DATABASE "{db.name}" TO {migrator}',
        f"GRANT USAGE ON SCHEMA app TO {migrator}",
        f"ALTER TABLE customers OWNER TO {migrator}",
        f"ALTER TABLE app.accounts OWNER TO {migrator}",
    )
    result = install(db, db.app, url=db.url_as(migrator), patterns=("customers", "app.accounts"))
    assert result.applied
    assert any("superuser" in note for note in result.plan.notes), result.plan.notes
    status = protect_status(config("customers", "app.accounts"), url=db.url_as(migrator))
    assert any("partial protection" in item for item in status.limitations)
    assert "partial protection" in status.render()
    for table in ("customers", "app.accounts"):
        for label in (
            "DELETE",
            "DELETE without WHERE",
            "TRUNCATE",
            "DROP TABLE",
            "ALTER TABLE DROP COLUMN",
        ):
            refused(db.url_as(db.app), DESTRUCTIVE[label].format(t=table))
    assert counts(db)["customers"] == 3
    assert rows(db.url, "SELECT count(*) FROM pg_event_trigger") == [(0,)]
    protect_remove(config(), url=db.url_as(migrator), yes=True)
    assert rows(db.url, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'mg_guard%'") == [(0,)]


HOSTILE_SCHEMA = 's"; DROP SCHEMA public CASCADE; --'
HOSTILE_TABLE = 'a"; DROP TABLE x; --'
HOSTILE_ROLE = "r\"; DROP ROLE postgres; -- '\\"


def test_hostile_names_stay_names(db: Db) -> None:
    role = HOSTILE_ROLE + unique_name("")
    db.roles.append(role)
    run(
        db.url,
        f"CREATE SCHEMA {q(HOSTILE_SCHEMA)}",
        f"CREATE TABLE {q(HOSTILE_SCHEMA)}.{q(HOSTILE_TABLE)} (id int, note text)",
        f"INSERT INTO {q(HOSTILE_SCHEMA)}.{q(HOSTILE_TABLE)} VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE x (id int)",
        f"CREATE ROLE {q(role)} LOGIN PASSWORD 'pw'",
        f"GRANT USAGE ON SCHEMA {q(HOSTILE_SCHEMA)} TO {q(role)}",
        f"ALTER TABLE {q(HOSTILE_SCHEMA)}.{q(HOSTILE_TABLE)} OWNER TO {q(role)}",
    )
    before = snapshot(db)
    pattern = f"{HOSTILE_SCHEMA}.{HOSTILE_TABLE}".replace("[", "[[]")
    result = install(db, role, patterns=(pattern,))
    assert result.applied
    target = f"{q(HOSTILE_SCHEMA)}.{q(HOSTILE_TABLE)}"
    url = db.url_as(role)
    for label in (
        "DELETE",
        "DELETE without WHERE",
        "TRUNCATE",
        "DROP TABLE",
        "ALTER TABLE DROP COLUMN",
    ):
        refused(url, DESTRUCTIVE[label].format(t=target))
    assert rows(db.url, f"SELECT count(*) FROM {target}") == [(2,)]
    assert rows(db.url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'") == [(1,)]
    assert rows(db.url, "SELECT to_regclass('public.x') IS NOT NULL") == [(True,)]
    assert not protect_status(config(pattern), url=db.url).drifted
    protect_remove(config(pattern), url=db.url, yes=True)
    assert snapshot(db) == before


def test_cli_install_dry_run_changes_nothing_and_prints_quoted_sql(db: Db) -> None:
    before = snapshot(db)
    result = CliRunner().invoke(
        main,
        [
            "protect",
            "install",
            "--url",
            db.url,
            "--app-user",
            db.app,
            "--protect",
            "app.*",
            "--dry-run",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert 'ALTER TABLE "app"."accounts" OWNER TO' in result.output
    assert "nothing was changed" in result.output
    assert snapshot(db) == before


def _waiting_backend(db: Db, timeout: float = 30.0) -> int:
    """The pid of the session of ``db`` that waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(
            POSTGRES_ADMIN(db.url),
            "SELECT pid FROM pg_stat_activity WHERE datname = :d AND wait_event_type = 'Lock'",
            d=db.name,
        )
        if found:
            return int(found[0][0])
        time.sleep(0.05)
    raise AssertionError("install never waited for the lock")


def _guard_objects(db: Db) -> list[tuple[Any, ...]]:
    """Everything install creates, as one comparable list."""
    return rows(
        db.url,
        "SELECT 'schema', nspname FROM pg_namespace WHERE nspname = 'migration_guard' "
        "UNION ALL SELECT 'trigger', tgname FROM pg_trigger WHERE tgname LIKE 'mg_guard%' "
        "UNION ALL SELECT 'event trigger', evtname FROM pg_event_trigger "
        "UNION ALL SELECT 'role', rolname FROM pg_roles WHERE rolname = :guard",
        guard=db.guard,
    )


def test_install_killed_half_way_changes_nothing(db: Db) -> None:
    """SIGKILL while install waits for the last table's lock: the earlier steps
    (schema, functions, role, other tables' triggers and owners) must not stay."""
    before = snapshot(db)
    blocker = _engine(db.url).connect()
    blocker.exec_driver_sql("BEGIN")
    blocker.exec_driver_sql("LOCK TABLE owned IN ACCESS SHARE MODE")
    command = [
        sys.executable, "-m", "migration_guard", "protect", "install", "--url", db.url,
        "--app-user", db.app, *[arg for p in PROTECTED for arg in ("--protect", p)], "--yes",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        backend = _waiting_backend(db)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and rows(
            POSTGRES_ADMIN(db.url), "SELECT 1 FROM pg_stat_activity WHERE pid = :p", p=backend
        ):
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        blocker.exec_driver_sql("ROLLBACK")
        blocker.close()
    assert _guard_objects(db) == []
    assert snapshot(db) == before


def test_install_that_cannot_get_a_lock_rolls_back_everything(db: Db) -> None:
    before = snapshot(db)
    blocker = _engine(db.url).connect()
    blocker.exec_driver_sql("BEGIN")
    blocker.exec_driver_sql("LOCK TABLE owned IN ACCESS SHARE MODE")
    try:
        with pytest.raises(ProtectError, match="owned") as caught:
            install(db)
    finally:
        blocker.exec_driver_sql("ROLLBACK")
        blocker.close()
    assert caught.value.rolled_back
    assert "nothing was changed" in str(caught.value)
    assert _guard_objects(db) == []
    assert snapshot(db) == before


def test_partitions_of_a_protected_table_are_protected_too(db: Db) -> None:
    """A partition is a table of its own: TRUNCATE or DROP of it must be refused."""
    run(
        db.url,
        "CREATE TABLE events (id int, note text) PARTITION BY RANGE (id)",
        "CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100)",
        "CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (100) TO (200) "
        "PARTITION BY RANGE (id)",
        "CREATE TABLE events_high_a PARTITION OF events_high FOR VALUES FROM (100) TO (150)",
        "INSERT INTO events VALUES (1, 'a'), (2, 'b'), (120, 'c')",
        f"ALTER TABLE events OWNER TO {db.owner}",
        f"ALTER TABLE events_low OWNER TO {db.owner}",
        f"ALTER TABLE events_high OWNER TO {db.owner}",
        f"ALTER TABLE events_high_a OWNER TO {db.owner}",
    )
    before = snapshot(db)
    install(db, db.owner, patterns=("events",))
    url = db.url_as(db.owner)
    for table in ("events", "events_low", "events_high_a"):
        for label in ("DELETE without WHERE", "TRUNCATE", "DROP TABLE", "ALTER TABLE DROP COLUMN"):
            message = refused(url, DESTRUCTIVE[label].format(t=table))
            assert any(reason in message for reason in REASONS), (label, table, message)
        assert "migration-guard" in refused(db.url, f"TRUNCATE {table}")
    refused(url, "ALTER TABLE events DETACH PARTITION events_low")
    assert "migration-guard" in refused(db.url, "DROP TABLE events_high_a")
    assert rows(db.url, "SELECT count(*) FROM events") == [(3,)]
    status = protect_status(config("events"), url=db.url)
    assert not status.drifted, status.render()
    run(db.url, "CREATE TABLE events_late PARTITION OF events FOR VALUES FROM (200) TO (300)")
    status = protect_status(config("events"), url=db.url)
    assert "events_late" in status.render() and status.drifted, status.render()
    # Even before a re-install, the late partition carries the cloned row trigger,
    # and a drop that takes a guard trigger with it is refused.
    assert "migration-guard" in refused(db.url, "DROP TABLE events_late")
    run(db.url, "SET migration_guard.allow_delete = on", "DROP TABLE events_late")
    protect_remove(config("events"), url=db.url, yes=True)
    assert snapshot(db) == before


def test_hostile_database_name_reaches_the_guard_role_as_a_name(
    postgres_admin_engine: sa.Engine,
) -> None:
    """The guard role is named after the database, and its name is embedded in the
    event trigger's function body: quotes and backslashes must stay data."""
    from migration_guard.protect.postgresql.catalog import default_guard_role

    name = unique_name("mg_test") + "'\"; DROP ROLE x; --\\"
    guard = default_guard_role(name)
    app = unique_name("mg_app")
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {q(name)}")
    url = make_url(POSTGRES_ADMIN(str(postgres_admin_engine.url))).set(database=name)
    admin = url.render_as_string(False)
    try:
        run(
            admin,
            f"CREATE ROLE {app} LOGIN PASSWORD 'pw'",
            "CREATE TABLE customers (id int PRIMARY KEY, note text)",
            "INSERT INTO customers VALUES (1, 'a')",
            f"ALTER TABLE customers OWNER TO {app}",
        )
        protect_install(config("customers"), url=admin, app_users=[app], yes=True)
        assert rows(admin, "SELECT pg_get_userbyid(relowner) FROM pg_class "
                    "WHERE relname = 'customers'") == [(guard,)]  # fmt: skip
        app_url = url.set(username=app, password="pw").render_as_string(False)
        for statement in ("DELETE FROM customers", "TRUNCATE customers", "DROP TABLE customers"):
            refused(app_url, statement)
        assert "migration-guard" in refused(admin, "DROP TABLE customers")
        run(admin, f"SET ROLE {q(guard)}", "ALTER TABLE customers ADD COLUMN x int")
        assert not protect_status(config("customers"), url=admin).drifted
        protect_remove(config("customers"), url=admin, yes=True)
        assert rows(admin, "SELECT count(*) FROM pg_roles WHERE rolname = :r", r=guard) == [(0,)]
    finally:
        with postgres_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(name)} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {q(guard)}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {q(app)}")


def test_concurrent_writer_loses_nothing_during_install_and_remove(db: Db) -> None:
    """The former owner writes without pause while its table changes hands: owner and
    grants change in one transaction, so no insert ever sees a role without rights."""
    stop = threading.Event()
    errors: list[str] = []
    written: list[int] = []

    def writer() -> None:
        engine = _engine(db.url_as(db.owner))
        try:
            with engine.connect() as conn:
                while not stop.is_set():
                    try:
                        conn.exec_driver_sql("INSERT INTO owned (note) VALUES ('w')")
                        written.append(1)
                    except sa.exc.DBAPIError as exc:
                        errors.append(str(exc.orig))
        finally:
            engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            time.sleep(0.01)
        install(db)
        mid = len(written)
        while len(written) < mid + 20:
            time.sleep(0.01)
        protect_remove(config(*PROTECTED), url=db.url, yes=True)
        end = len(written)
        while len(written) < end + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert rows(db.url, "SELECT count(*) FROM owned WHERE note = 'w'") == [(len(written),)]


@pytest.mark.parametrize("who", ["app", "owner"])
def test_application_roles_cannot_touch_the_guard_itself(db: Db, who: str) -> None:
    """The install record, the functions and the event triggers are out of reach."""
    install(db)
    url = db.url_as(getattr(db, who))
    attacks = [
        "UPDATE migration_guard.migration_guard_meta SET value = '{}'",
        "SELECT value FROM migration_guard.migration_guard_meta",
        "CREATE OR REPLACE FUNCTION migration_guard.refuse_delete() RETURNS trigger "
        "LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'",
        "DROP FUNCTION migration_guard.refuse_delete() CASCADE",
        "ALTER EVENT TRIGGER migration_guard_drop DISABLE",
        "DROP EVENT TRIGGER migration_guard_alter",
        "DROP TRIGGER mg_guard_delete ON customers",
        "ALTER TABLE owned ENABLE REPLICA TRIGGER mg_guard_delete",
        "SET session_replication_role = replica",
        f"SET ROLE {db.guard}",
    ]
    for statement in attacks:
        message = refused(url, statement)
        assert "permission denied" in message or "must be" in message, (statement, message)
    assert not protect_status(config(*PROTECTED), url=db.url).drifted


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_literals_and_identifiers_round_trip_through_the_server(
    postgres_admin_engine: sa.Engine, text: str
) -> None:
    """Every string the guard embeds (role names, the install record, function
    bodies) comes back from the server exactly as it went in."""
    from migration_guard.protect.postgresql.sql import ident, string

    with postgres_admin_engine.connect() as conn:
        for standard in ("on", "off"):
            conn.exec_driver_sql(f"SET standard_conforming_strings = {standard}")
            value = conn.exec_driver_sql(
                f"SELECT {string(text)} AS {ident(text or 'x')}",
                execution_options={"no_parameters": True},
            )
            name = text or "x"
            assert list(value.keys()) == [name] or len(name.encode()) > 63  # truncated
            assert value.scalar() == text
