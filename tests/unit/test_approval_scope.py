"""Issue 11 (part C): approvals are scoped to the revision, the rule and the qualified
table they name; protected patterns know the connection's default schema; a revision
that cannot be rendered offline is an error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from migration_guard.alembic.approvals import Allowance, Approvals, apply_approvals
from migration_guard.alembic.intercept import StatementInterceptor
from migration_guard.alembic.plan import render_revision_file
from migration_guard.alembic.results import UpgradeResult
from migration_guard.analysis.analyzer import analyze, analyze_sql
from migration_guard.analysis.model import Severity
from migration_guard.config import ProtectedTables
from migration_guard.errors import BlockedMigration, BlockedStatement

R2 = "/proj/migrations/versions/r2.py"
R3 = "/proj/migrations/versions/r3.py"


def interceptor(approved: Approvals, protected: ProtectedTables) -> StatementInterceptor:
    return StatementInterceptor(
        dialect="mysql",
        protected=protected,
        approved=approved,
        existing_tables={"customers": "customers", "orders": "orders"},
        revision_files=(R2, R3),
    )


def judge(guard: StatementInterceptor, sql: str, file: str | None) -> None:
    """Inspect ``sql`` as if the revision ``file`` ran it."""
    guard._call_site = lambda: (file, 7)  # type: ignore[method-assign]
    guard.inspect(sql)


# ------------------------------------------------------------------ revision scope
def test_an_inline_approval_approves_only_its_own_revision() -> None:
    approved = Approvals(default_schema="app")
    approved.add("drop-column", "customers", R2)
    guard = interceptor(approved, ProtectedTables(("customers",)))
    judge(guard, "ALTER TABLE customers DROP COLUMN notes", R2)
    with pytest.raises(BlockedStatement) as blocked:
        judge(guard, "ALTER TABLE customers DROP COLUMN email", R3)
    assert blocked.value.finding.rule == "drop-column"
    # A statement no revision frame can be found for gets no inline approval either.
    with pytest.raises(BlockedStatement):
        judge(
            interceptor(approved, ProtectedTables(("customers",))),
            "ALTER TABLE customers DROP COLUMN email",
            None,
        )


def test_a_command_line_approval_holds_in_every_revision_for_its_table_only() -> None:
    approved = Approvals(default_schema="app")
    approved.add("drop-column", "customers", None)
    guard = interceptor(approved, ProtectedTables(("customers", "orders")))
    judge(guard, "ALTER TABLE customers DROP COLUMN notes", R2)
    judge(guard, "ALTER TABLE customers DROP COLUMN email", R3)
    with pytest.raises(BlockedStatement):
        judge(guard, "ALTER TABLE orders DROP COLUMN total", R3)


def test_a_suppressed_finding_without_a_table_never_becomes_a_wildcard() -> None:
    report = analyze_sql(
        "-- migration-guard: allow unanalyzable because: audited by hand\n"
        "PREPARE s FROM @built_elsewhere;\n",
        file=R2,
        protected=ProtectedTables(("customers",)),
    )
    (finding,) = report.findings
    assert finding.suppressed and finding.table is None
    result = UpgradeResult(command="upgrade", target="head", run_id="x")
    approved = apply_approvals(report, [], result, command="upgrade", refuse=True)
    assert approved.allows("unanalyzable", None, R2)
    assert not approved.allows("unanalyzable", "customers", R2)
    assert not approved.allows("unanalyzable", None, R3)
    assert not approved.allows("delete-without-where", "customers", R2)


# ------------------------------------------------------------------ schemas
def test_approvals_are_keyed_by_the_qualified_name() -> None:
    approved = Approvals(default_schema="app")
    approved.add("drop-table", "app.orders", None)
    assert approved.allows("drop-table", "orders", None)  # the default schema is app
    assert approved.allows("drop-table", "APP.Orders", None)
    assert not approved.allows("drop-table", "billing.orders", None)
    other = Approvals(default_schema="billing")
    other.add("drop-table", "app.orders", None)
    assert not other.allows("drop-table", "orders", None)


def test_a_qualified_pattern_protects_the_unqualified_name_in_the_default_schema() -> None:
    plain = ProtectedTables(("app.customers",))
    assert not plain.is_protected("customers")  # no default schema known: unchanged
    in_app = ProtectedTables(("app.customers",), default_schema="app")
    assert in_app.is_protected("customers")
    assert in_app.is_protected("customers", "app")
    assert not in_app.is_protected("customers", "billing")
    in_billing = ProtectedTables(("app.customers",), default_schema="billing")
    assert not in_billing.is_protected("customers")
    assert in_billing.is_protected("customers", "app")


def test_the_interceptor_blocks_unqualified_sql_on_a_qualified_pattern() -> None:
    protected = ProtectedTables(("app.orders",), default_schema="app")
    guard = interceptor(Approvals(default_schema="app"), protected)
    with pytest.raises(BlockedStatement) as blocked:
        judge(guard, "DELETE FROM orders", R2)
    assert blocked.value.finding.rule == "delete-without-where"


# ------------------------------------------------------------------ --allow
def test_a_wildcard_unanalyzable_allowance_is_refused() -> None:
    from migration_guard.alembic.approvals import parse_allowances
    from migration_guard.errors import UsageError

    for text in ("unanalyzable:*", "unanalyzable:**", "unanalyzable:*.*", "unanalyzable:?*"):
        with pytest.raises(UsageError, match="inline comment"):
            parse_allowances([text], "trust me")
    assert parse_allowances(["unanalyzable:customers"], "audited") == [
        Allowance("unanalyzable", "customers", "audited")
    ]


# ------------------------------------------------------------------ renames
def test_an_approved_rename_does_not_approve_dropping_the_new_name() -> None:
    report = analyze_sql(
        "-- migration-guard: allow rename-table because: archived (#42)\n"
        "ALTER TABLE orders RENAME TO orders_old;\n"
        "DROP TABLE orders_old;\n",
        file=R2,
        protected=ProtectedTables(("orders",)),
    )
    errors = [f for f in report.findings if not f.suppressed and f.severity is Severity.ERROR]
    assert [(f.rule, f.table) for f in errors] == [("drop-table", "orders_old")]


# ------------------------------------------------------------------ unrenderable
def test_a_revision_that_cannot_be_rendered_is_an_error_with_protected_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r9_broken.py"
    path.write_text(
        textwrap.dedent(
            """
            from alembic import op
            import sqlalchemy as sa

            revision = "r9"
            down_revision = None


            def upgrade():
                count = op.get_bind().execute(sa.text("SELECT count(*) FROM users")).scalar()
                if count > 10:
                    op.drop_column("users", "email")
            """
        )
    )
    rendered = render_revision_file(path, dialect="mysql")
    report = analyze(
        rendered.statements, dialect="mysql", protected=ProtectedTables(("customers",))
    )
    unrenderable = [f for f in report.findings if f.rule == "unanalyzable"]
    assert unrenderable and all(f.severity is Severity.ERROR for f in unrenderable)
    assert "could not be rendered" in unrenderable[0].message
    result = UpgradeResult(command="upgrade", target="head", run_id="x")
    with pytest.raises(BlockedMigration):
        apply_approvals(report, [], result, command="upgrade", refuse=True)


def test_a_table_created_in_another_schema_does_not_exempt_the_default_ones() -> None:
    protected = ProtectedTables(("customers",), default_schema="app")
    guard = interceptor(Approvals(default_schema="app"), protected)
    judge(guard, "CREATE TABLE scratch.customers (id INT PRIMARY KEY)", R2)
    judge(guard, "DROP TABLE scratch.customers", R2)  # made by this run: fine
    assert guard.created == {"scratch.customers"}
    judge(guard, "CREATE TABLE scratch.customers (id INT PRIMARY KEY)", R2)
    with pytest.raises(BlockedStatement) as blocked:
        judge(guard, "DROP TABLE customers", R2)  # app.customers existed: protected
    assert blocked.value.finding.rule == "drop-table"
    # Named with its (default) schema, it is the same listed table.
    with pytest.raises(BlockedStatement):
        judge(guard, "DROP TABLE app.customers", R2)
