"""``protect status`` over many tables on the real PostgreSQL: the drift report names
exactly the tables that drifted, and the number of queries does not grow with the
number of protected tables (one catalog query per fact, not per table); plans name
tables as status does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from migration_guard.commands.protect import (
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
)
from migration_guard.config import Config
from tests.conftest import unique_name
from tests.db.test_protect_postgresql import run

pytestmark = pytest.mark.postgresql

TABLES = 50
OWNER_CHANGED = (3, 17)
GRANTS_CHANGED = (5, 29)
TRIGGER_DISABLED = (11, 40)


@dataclass
class Many:
    url: str
    database: str
    schema: str
    app: str
    other: str

    @property
    def guard(self) -> str:
        return f"migration_guard_owner_{self.database}"

    def table(self, number: int) -> str:
        return f"{self.schema}.t{number:02d}"


@pytest.fixture
def many(postgres_url: str) -> Iterator[Many]:
    database = str(make_url(postgres_url).database)
    state = Many(
        postgres_url, database, unique_name("mg_many"), unique_name("mg_app"), unique_name("mg_o")
    )
    tables = [state.table(n) for n in range(TABLES)]
    run(
        postgres_url,
        f"CREATE ROLE {state.app} LOGIN PASSWORD 'pw'",
        f"CREATE ROLE {state.other} NOLOGIN",
        f"CREATE SCHEMA {state.schema}",
        *(f"CREATE TABLE {t} (id int PRIMARY KEY, note text)" for t in tables),
        f"CREATE TABLE {state.schema}.p (id int, note text) PARTITION BY RANGE (id)",
        f"CREATE TABLE {state.schema}.p_1 PARTITION OF {state.schema}.p "
        "FOR VALUES FROM (0) TO (10)",
        f"GRANT USAGE ON SCHEMA {state.schema} TO {state.app}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA {state.schema} TO {state.app}",
    )
    try:
        yield state
    finally:
        admin = make_url(postgres_url).set(database="postgres").render_as_string(False)
        run(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (state.app, state.other, state.guard):
            run(admin, f'DROP ROLE IF EXISTS "{role}"')


def install(many: Many, pattern: str) -> None:
    protect_install(
        Config(protected_tables=(pattern,)), url=many.url, app_users=[many.app], yes=True
    )


def status(many: Many, pattern: str) -> Any:
    return protect_status(Config(protected_tables=(pattern,)), url=many.url)


def test_status_of_many_tables_names_exactly_the_drifted_ones(many: Many) -> None:
    install(many, f"{many.schema}.*")
    clean = status(many, f"{many.schema}.*")
    assert clean.installed and not clean.drifted, clean.render()
    assert len(clean.tables) == TABLES + 2  # and p, p_1
    run(
        many.url,
        "SET migration_guard.allow_delete = on",
        *(f"ALTER TABLE {many.table(n)} OWNER TO {many.other}" for n in OWNER_CHANGED),
        *(f"REVOKE DELETE ON {many.table(n)} FROM {many.app}" for n in GRANTS_CHANGED),
        *(f"ALTER TABLE {many.table(n)} DISABLE TRIGGER mg_guard_delete" for n in TRIGGER_DISABLED),
        f"CREATE TABLE {many.schema}.p_2 PARTITION OF {many.schema}.p FOR VALUES FROM (10) TO (20)",
        "ALTER EVENT TRIGGER migration_guard_drop DISABLE",
    )
    result = status(many, f"{many.schema}.*")
    drifted = {t.table: t.drift for t in result.tables if t.drift}
    expected = {
        **{
            many.table(n): [f"owner changed from the guard role {many.guard} to {many.other}"]
            for n in OWNER_CHANGED
        },
        **{
            many.table(n): [f"grants of {many.app} changed since install: now "]
            for n in GRANTS_CHANGED
        },
        **{many.table(n): ["guard trigger mg_guard_delete is disabled"] for n in TRIGGER_DISABLED},
        f"{many.schema}.p": [
            f"partition {many.schema}.p_2 is not protected (attached after install): "
            "run protect install"
        ],
    }
    assert sorted(drifted) == sorted(expected), result.render()
    for table, lines in expected.items():
        assert len(drifted[table]) == len(lines), drifted[table]
        for line, wanted in zip(drifted[table], lines, strict=True):
            assert line.startswith(wanted), (line, wanted)
    for n in GRANTS_CHANGED:
        assert "DELETE" not in drifted[many.table(n)][0].split("recorded")[0]
        assert "DELETE" in drifted[many.table(n)][0].split("recorded")[1]
    for n in TRIGGER_DISABLED:
        assert next(t for t in result.tables if t.table == many.table(n)).trigger == "disabled"
    assert result.drift == ["event trigger migration_guard_drop is disabled"], result.render()


def admin_queries(many: Many, action: Callable[[], Any]) -> int:
    """How many statements ``action`` sends as the admin (not as the application role)."""
    statements: list[str] = []

    def record(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if conn.engine.url.username != many.app:
            statements.append(statement)

    event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return len(statements)


def clean_status(many: Many, pattern: str) -> None:
    result = status(many, pattern)
    assert result.installed and not result.drifted, result.render()


def probe(many: Many, pattern: str) -> None:
    results = protect_verify(
        Config(protected_tables=(pattern,)), url=many.url, app_users=[many.app]
    )
    assert results and all(r.outcome in ("refused", "skipped") for r in results), results


def test_status_and_verify_queries_do_not_grow_with_the_number_of_tables(
    many: Many, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_APP_PASSWORD", "pw")
    counts: dict[str, tuple[int, int]] = {}
    for pattern in (f"{many.schema}.t0*", f"{many.schema}.*"):  # 10 tables, then 52
        install(many, pattern)
        counts[pattern] = (
            admin_queries(many, lambda: clean_status(many, pattern)),  # noqa: B023
            admin_queries(many, lambda: probe(many, pattern)),  # noqa: B023
        )
    few, all_of_them = counts.values()
    assert all_of_them == few


def test_plans_name_tables_and_sequences_as_status_does(many: Many) -> None:
    """One display name: bare in the current schema, else qualified, in every message."""
    other = f"{many.schema}.keep_too"
    run(
        many.url,
        "CREATE TABLE keep_me (id serial PRIMARY KEY)",
        f"CREATE TABLE {other} (id serial PRIMARY KEY)",
        f"ALTER TABLE keep_me OWNER TO {many.app}",
        f"ALTER TABLE {other} OWNER TO {many.app}",
    )
    patterns = ("keep_me", other)
    installed = protect_install(
        Config(protected_tables=patterns), url=many.url, app_users=[many.app], yes=True
    )
    shown = [
        "table keep_me",
        "sequence keep_me_id_seq",
        f"table {other}",
        f"sequence {other}_id_seq",
    ]
    kept = [s.description for s in installed.plan.steps if "let the former owner" in s.description]
    assert sorted(d.rsplit(" on ", 1)[1] for d in kept) == sorted(shown), kept
    assert {
        t.table for t in protect_status(Config(protected_tables=patterns), url=many.url).tables
    } == {
        "keep_me",
        other,
    }
    removed = protect_remove(Config(protected_tables=patterns), url=many.url, dry_run=True)
    taken = [s.description for s in removed.plan.steps if " given to " in s.description]
    names = sorted(d.rsplit(" on ", 1)[1].split(" given to ")[0] for d in taken)
    assert names == sorted(shown), taken
