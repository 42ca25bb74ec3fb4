"""The statement interceptor does each piece of work once per text, and no more.

A guarded run executes many statements with the same text (Alembic's version-table
``UPDATE`` after each revision, whose parameters it judges as ``NULL``): the parse of
a text is reused, told where the statement runs now, and its verdict is the same every
time. The runtime of dynamic SQL is made only when a statement needs it.
"""

from __future__ import annotations

from typing import Any

import pytest

from migration_guard.alembic.intercept import StatementInterceptor
from migration_guard.analysis import analyzer
from migration_guard.config import ProtectedTables
from migration_guard.errors import BlockedStatement


def interceptor() -> StatementInterceptor:
    return StatementInterceptor(
        dialect="mysql",
        protected=ProtectedTables(patterns=("customers",)),
        approved=set(),
        existing_tables={"customers": "customers", "alembic_version": "alembic_version"},
    )


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = analyzer.operations_of

    def counting(statement: Any, dialect: str) -> Any:
        seen.append(statement.sql)
        return real(statement, dialect)

    monkeypatch.setattr(analyzer, "operations_of", counting)
    return seen


def test_a_text_that_runs_again_is_parsed_once(parses: list[str]) -> None:
    guard = interceptor()
    update = "UPDATE alembic_version SET version_num=%(version_num)s WHERE version_num = %(v)s"
    for index in range(5):
        guard.inspect(update, {"version_num": f"r{index + 1}", "v": f"r{index}"})
    assert len(parses) == 1
    assert guard.touched == {"alembic_version"}
    assert len(guard.executed) == 5


def test_a_reused_parse_gets_the_same_verdict(parses: list[str]) -> None:
    guard = interceptor()
    for _ in range(2):
        with pytest.raises(BlockedStatement):
            guard.inspect("DELETE FROM customers")
    assert len(parses) == 1


def test_the_runtime_is_made_only_for_a_statement_that_needs_it() -> None:
    guard = interceptor()
    guard.inspect("ALTER TABLE customers ADD COLUMN note TEXT NULL")
    guard.inspect("UPDATE alembic_version SET version_num='r2' WHERE version_num = 'r1'")
    assert guard._runtime is None
    guard.inspect("SET @t = 'customers'")
    assert guard._runtime is not None
