"""Issue 16 at run time: the interceptor follows dynamic SQL and stored programs as
``check`` does, so the approvals of the plan's findings are the ones it applies."""

from __future__ import annotations

import pytest

from migration_guard.alembic.intercept import StatementInterceptor
from migration_guard.config import ProtectedTables
from migration_guard.errors import BlockedStatement

SET_PREPARED = (
    "SET @preparedStatement = (SELECT IF((SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS"
    " WHERE table_name = 'TeamMembers') > 0,"
    " 'ALTER TABLE TeamMembers DROP COLUMN SchemeUser;', 'SELECT 1'))"
)


def interceptor(*approved: tuple[str, str]) -> StatementInterceptor:
    return StatementInterceptor(
        dialect="mysql",
        protected=ProtectedTables(),
        approved=set(approved),
        existing_tables={"teammembers": "TeamMembers", "posts": "Posts"},
    )


def run(guard: StatementInterceptor, *statements: str) -> None:
    for sql in statements:
        guard.inspect(sql)


def test_an_approved_drop_inside_prepare_runs() -> None:
    guard = interceptor(("drop-column", "teammembers"))
    run(
        guard,
        SET_PREPARED,
        "PREPARE s FROM @preparedStatement",
        "EXECUTE s",
        "DEALLOCATE PREPARE s",
    )
    assert guard.blocked is None


def test_an_unapproved_drop_inside_prepare_is_blocked_at_the_prepare() -> None:
    guard = interceptor(("drop-column", "posts"))
    with pytest.raises(BlockedStatement) as blocked:
        run(guard, SET_PREPARED, "PREPARE s FROM @preparedStatement", "EXECUTE s")
    assert blocked.value.finding.rule == "drop-column"
    assert "PREPARE" in guard.executed[-1].sql


def test_prepare_from_an_unknown_variable_stays_blocked() -> None:
    guard = interceptor(("drop-column", "teammembers"))
    with pytest.raises(BlockedStatement) as blocked:
        run(guard, "PREPARE s FROM @set_elsewhere")
    assert blocked.value.finding.rule == "unanalyzable"


def test_a_called_procedure_is_judged_by_its_body() -> None:
    create = "CREATE PROCEDURE p()\nBEGIN\n  ALTER TABLE Posts DROP COLUMN ParentId;\nEND"
    approved = interceptor(("drop-column", "posts"))
    run(approved, create, "CALL p()", "DROP PROCEDURE p")
    assert approved.blocked is None
    guard = interceptor(("drop-column", "teammembers"))
    with pytest.raises(BlockedStatement) as blocked:
        run(guard, create, "CALL p()")
    assert (blocked.value.finding.rule, blocked.value.finding.table) == ("drop-column", "Posts")


def test_an_anonymous_block_is_not_taken_for_a_transaction() -> None:
    guard = interceptor()
    with pytest.raises(BlockedStatement) as blocked:
        run(guard, "BEGIN NOT ATOMIC\n  DROP TABLE TeamMembers;\nEND")
    assert blocked.value.finding.rule == "drop-table"
