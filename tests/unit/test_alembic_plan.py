"""Offline rendering of Alembic revisions: call sites, ranges, batch, get_bind, dialects."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from migration_guard.alembic.offline import column_type_from_text
from migration_guard.alembic.plan import (
    UNREACHABLE_NOTE,
    RenderedPlan,
    database_heads,
    dialect_from_config,
    dialect_from_url,
    is_revision_file,
    load_alembic_config,
    render_range,
    render_revision_file,
)
from migration_guard.analysis.model import ColumnType, OpKind, Statement
from migration_guard.errors import AlembicConfigError, RevisionRangeError

TESTS = Path(__file__).resolve().parent.parent
PROJECT = TESTS / "alembic_project"
VERSIONS = PROJECT / "migrations" / "versions"
EXAMPLE = TESTS.parent / "examples" / "shop"
ALL_REVISIONS = [
    "0001_create_tables",
    "0002_add_nickname",
    "0003_batch_drop_nickname",
    "0004_cleanup_orders",
    "0005a_audit_events",
    "0005b_order_status",
    "0006_merge",
    "0007_drop_audit_events",
]


def line_of(path: Path, needle: str) -> int:
    """1-based line of the only occurrence of ``needle`` in ``path`` before ``downgrade()``."""
    lines = path.read_text().split("def downgrade", 1)[0].splitlines()
    hits = [number for number, text in enumerate(lines, start=1) if needle in text]
    assert len(hits) == 1, f"{needle!r} occurs {len(hits)} times in {path.name}"
    return hits[0]


def column_of(path: Path, needle: str) -> int:
    text = path.read_text().splitlines()[line_of(path, needle) - 1]

    return text.index(needle) + 1


def revision_path(revision: str) -> Path:
    return VERSIONS / f"{revision}.py"


def statements_of(plan: RenderedPlan, revision: str) -> list[Statement]:
    return [statement for statement in plan.statements if statement.unit == revision]


def kinds(statement: Statement) -> list[OpKind]:
    return [operation.kind for operation in statement.known_operations]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A private copy of the test project: tests that touch a database use it."""
    target = tmp_path / "project"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    return target


@pytest.fixture(scope="module")
def sqlite_plan() -> RenderedPlan:
    config = load_alembic_config(PROJECT / "alembic.ini")
    return render_range(config, range_="base:head", dialect="sqlite")


def write_revision(directory: Path, name: str, body: str, *, revision: str = "abc123") -> Path:
    path = directory / f"{name}.py"
    header = textwrap.dedent(
        f'''\
        """{name}"""
        from alembic import op
        import sqlalchemy as sa

        revision = {revision!r}
        down_revision = None
        branch_labels = None
        depends_on = None

        '''
    )
    path.write_text(header + textwrap.dedent(body))
    return path


# --------------------------------------------------------------------------- config


def test_the_test_project_has_no_database_committed() -> None:
    assert not list(PROJECT.rglob("*.db"))


def test_load_config_and_dialect() -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    assert dialect_from_config(config) == "sqlite"


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("mysql+pymysql://u:p@h/db", "mysql"),
        ("mysql://h/db", "mysql"),
        ("mariadb+pymysql://h/db", "mariadb"),
        ("postgresql+psycopg://h/db", "postgresql"),
        ("postgresql://h/db", "postgresql"),
        ("sqlite:///x.db", "sqlite"),
        ("mssql+pyodbc://h/db", None),
        ("driver://user:pass@localhost/dbname", None),
        ("not a url", None),
        ("", None),
        (None, None),
    ],
)
def test_dialect_from_url(url: str | None, dialect: str | None) -> None:
    assert dialect_from_url(url) == dialect


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(AlembicConfigError, match="not found"):
        load_alembic_config(tmp_path / "alembic.ini")


def test_config_without_alembic_section(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[loggers]\nkeys = root\n")
    with pytest.raises(AlembicConfigError, match=r"\[alembic\] section"):
        load_alembic_config(ini)


def test_config_that_is_not_ini(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("this is not\nan ini file\n")
    with pytest.raises(AlembicConfigError, match="not a valid INI file"):
        load_alembic_config(ini)


def test_config_with_broken_line_does_not_echo_it(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = x\nhunter2-secret-line\n")
    with pytest.raises(AlembicConfigError) as caught:
        load_alembic_config(ini)
    assert "hunter2" not in str(caught.value)
    assert "line(s) 3" in str(caught.value)


def test_config_without_script_location(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nsqlalchemy.url = sqlite://\n")
    with pytest.raises(AlembicConfigError, match="script_location"):
        load_alembic_config(ini)


def test_config_with_missing_script_directory(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s/nowhere\n")
    with pytest.raises(AlembicConfigError, match="script directory"):
        load_alembic_config(ini)


def test_config_with_directory_that_has_no_env_py(tmp_path: Path) -> None:
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    with pytest.raises(AlembicConfigError, match=r"no env\.py"):
        load_alembic_config(ini)


# --------------------------------------------------------------------------- call sites


def test_every_revision_is_rendered_in_upgrade_order(sqlite_plan: RenderedPlan) -> None:
    order = [revision.revision for revision in sqlite_plan.revisions]
    assert sorted(order) == sorted(ALL_REVISIONS)
    position = {revision: index for index, revision in enumerate(order)}
    for revision in sqlite_plan.revisions:
        for parent in revision.down_revision:
            assert position[parent] < position[revision.revision]
    assert order[0] == "0001_create_tables"
    assert order[-1] == "0007_drop_audit_events"
    assert sqlite_plan.statements == [
        statement for revision in sqlite_plan.revisions for statement in revision.statements
    ]
    assert sqlite_plan.range == "base:head"
    assert sqlite_plan.notes == []


def test_statements_point_at_op_call_lines(sqlite_plan: RenderedPlan) -> None:
    path = revision_path("0001_create_tables")
    create_users, create_orders, create_index = statements_of(sqlite_plan, "0001_create_tables")
    assert create_users.sql.startswith("CREATE TABLE users")
    assert create_users.file == str(path)
    # A call spread over several lines is reported at its first line.
    assert create_users.line == line_of(path, "'users',") - 1
    if sys.version_info >= (3, 11):
        assert create_users.end_line == line_of(path, "'users',") + 4
    upgrade_lines = path.read_text().split("def downgrade", 1)[0].splitlines()
    create_calls = [n for n, text in enumerate(upgrade_lines, 1) if "op.create_table(" in text]
    assert [create_users.line, create_orders.line] == create_calls
    assert create_orders.sql.startswith("CREATE TABLE orders")
    assert create_index.sql.startswith("CREATE INDEX ix_orders_user_id")
    assert create_index.line == line_of(path, "op.create_index(")
    if sys.version_info >= (3, 11):
        assert create_index.column == column_of(path, "op.create_index(")
    else:
        assert create_index.column == 5


def test_multi_statement_execute_keeps_the_call_site(sqlite_plan: RenderedPlan) -> None:
    path = revision_path("0004_cleanup_orders")
    statements = statements_of(sqlite_plan, "0004_cleanup_orders")
    assert [statement.sql.split()[0] for statement in statements] == ["UPDATE", "DELETE", "INSERT"]
    delete = statements[1]
    assert delete.sql == "DELETE FROM orders"
    expected = line_of(path, "op.execute(")
    assert {statement.line for statement in statements} == {expected}
    assert all(statement.known_operations == () for statement in statements)
    # The ';' inside the string literal does not split the UPDATE.
    assert "ticket 42" in statements[0].sql


def test_alter_column_rename_keeps_operation_level_detail(sqlite_plan: RenderedPlan) -> None:
    path = revision_path("0002_add_nickname")
    add, rename = statements_of(sqlite_plan, "0002_add_nickname")
    assert add.sql == "ALTER TABLE users ADD COLUMN nickname VARCHAR(50)"
    assert add.line == line_of(path, "op.add_column(")
    assert rename.sql == "ALTER TABLE users RENAME COLUMN name TO full_name"
    assert rename.line == line_of(path, "op.alter_column(")
    (operation,) = rename.known_operations
    assert operation.kind is OpKind.RENAME_COLUMN
    assert (operation.column, operation.new_name) == ("name", "full_name")
    assert operation.table is not None and operation.table.name == "users"


def test_batch_on_sqlite_is_inspected_at_operation_level(sqlite_plan: RenderedPlan) -> None:
    path = revision_path("0003_batch_drop_nickname")
    drop, alter = statements_of(sqlite_plan, "0003_batch_drop_nickname")
    assert drop.line == line_of(path, "batch_op.drop_column('nickname')")
    assert alter.line == line_of(path, "batch_op.alter_column(")
    if sys.version_info >= (3, 11):
        assert drop.column == column_of(path, "batch_op.drop_column('nickname')")
    assert drop.sql == "ALTER TABLE users DROP COLUMN nickname"
    assert kinds(drop) == [OpKind.DROP_COLUMN]
    assert drop.known_operations[0].column == "nickname"
    (change,) = alter.known_operations
    assert change.kind is OpKind.ALTER_COLUMN_TYPE
    assert change.old_type == ColumnType("VARCHAR", (255,), text="VARCHAR(255)")
    assert change.new_type == ColumnType("VARCHAR", (320,), text="VARCHAR(320)")
    # The table-recreate SQL ("DROP TABLE users") must never show up as a dropped table.
    assert not any("DROP TABLE users" in statement.sql for statement in sqlite_plan.statements)


def test_get_bind_reads_are_captured_and_later_ops_reported(sqlite_plan: RenderedPlan) -> None:
    path = revision_path("0007_drop_audit_events")
    select, drop = statements_of(sqlite_plan, "0007_drop_audit_events")
    assert select.sql == "SELECT id, payload FROM audit_events"
    assert select.line == line_of(path, "bind.execute(")
    assert drop.sql == "DROP TABLE audit_events"
    assert drop.line == line_of(path, "op.drop_table('audit_events')")


def test_no_statement_is_unanalyzable_in_the_test_project(sqlite_plan: RenderedPlan) -> None:
    assert not any(OpKind.UNANALYZABLE in kinds(statement) for statement in sqlite_plan.statements)


# --------------------------------------------------------------------------- dialects


@pytest.mark.parametrize(
    ("dialect", "rename_sql"),
    [
        ("sqlite", "ALTER TABLE users RENAME COLUMN name TO full_name"),
        ("mysql", "ALTER TABLE users CHANGE name full_name VARCHAR(50) NULL"),
        ("mariadb", "ALTER TABLE users CHANGE name full_name VARCHAR(50) NULL"),
        ("postgresql", "ALTER TABLE users RENAME name TO full_name"),
    ],
)
def test_rendering_for_each_dialect(dialect: str, rename_sql: str) -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    plan = render_range(config, range_="base:heads", dialect=dialect)
    assert plan.dialect == dialect
    rename = statements_of(plan, "0002_add_nickname")[1]
    assert rename.sql == rename_sql
    assert rename.line == line_of(revision_path("0002_add_nickname"), "op.alter_column(")
    delete = [s for s in plan.statements if s.sql == "DELETE FROM orders"]
    assert len(delete) == 1
    assert len(statements_of(plan, "0003_batch_drop_nickname")) == 2


def test_postgresql_alter_column_type_keeps_existing_type(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "widen",
        """\
        def upgrade():
            op.alter_column(
                "users", "name", existing_type=sa.String(50), type_=sa.String(100)
            )
            op.alter_column("users", "age", type_=sa.BigInteger())
        """,
    )
    rendered = render_revision_file(path, dialect="postgresql")
    widen, age = rendered.statements
    assert widen.sql == "ALTER TABLE users ALTER COLUMN name TYPE VARCHAR(100)"
    assert widen.line == line_of(path, "existing_type=sa.String(50)") - 1
    (change,) = widen.known_operations
    assert change.old_type == ColumnType("VARCHAR", (50,), text="VARCHAR(50)")
    assert change.new_type == ColumnType("VARCHAR", (100,), text="VARCHAR(100)")
    assert age.known_operations[0].old_type is None
    assert age.known_operations[0].new_type == ColumnType("BIGINT", text="BIGINT")


def test_mysql_modify_renders_and_types_are_compiled_for_mysql(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "modify",
        """\
        def upgrade():
            op.alter_column("t", "n", existing_type=sa.Integer(), type_=sa.SmallInteger(),
                            existing_nullable=False)
        """,
    )
    (statement,) = render_revision_file(path, dialect="mysql").statements
    assert statement.sql == "ALTER TABLE t MODIFY n SMALLINT NOT NULL"
    (change,) = statement.known_operations
    assert (change.old_type, change.new_type) == (
        ColumnType("INTEGER", text="INTEGER"),
        ColumnType("SMALLINT", text="SMALLINT"),
    )


# --------------------------------------------------------------------------- ranges


def test_range_from_a_revision_to_head() -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    plan = render_range(config, range_="0004_cleanup_orders:head", dialect="sqlite")
    assert plan.revisions[0].revision in {"0005a_audit_events", "0005b_order_status"}
    assert sorted(r.revision for r in plan.revisions) == ALL_REVISIONS[4:]
    assert plan.range == "0004_cleanup_orders:head"


def test_range_between_two_revisions() -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    plan = render_range(
        config, range_="0001_create_tables:0003_batch_drop_nickname", dialect="mysql"
    )
    assert [r.revision for r in plan.revisions] == ["0002_add_nickname", "0003_batch_drop_nickname"]


def test_range_along_one_branch() -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    plan = render_range(config, range_="base:0005a_audit_events", dialect="sqlite")
    assert [r.revision for r in plan.revisions] == ALL_REVISIONS[:5]


@pytest.mark.parametrize(
    "range_", ["base:nope", "nope:head", "0007_drop_audit_events:0001_create_tables", "zz"]
)
def test_unknown_range_lists_the_heads(range_: str) -> None:
    config = load_alembic_config(PROJECT / "alembic.ini")
    with pytest.raises(RevisionRangeError) as caught:
        render_range(config, range_=range_, dialect="sqlite")
    assert "0007_drop_audit_events" in str(caught.value)
    assert range_ in str(caught.value)


def test_default_range_without_database_is_base_to_head(project_copy: Path) -> None:
    config = load_alembic_config(project_copy / "alembic.ini")
    plan = render_range(config, range_=None, dialect="sqlite")
    assert plan.notes == [UNREACHABLE_NOTE]
    assert plan.range == "base:head"
    assert len(plan.revisions) == len(ALL_REVISIONS)
    # Looking for the database must not create it.
    assert not (project_copy / "app.db").exists()


def test_default_range_starts_at_the_database_revision(project_copy: Path) -> None:
    from alembic import command

    config = load_alembic_config(project_copy / "alembic.ini")
    command.upgrade(config, "0003_batch_drop_nickname")
    assert (project_copy / "app.db").exists()
    plan = render_range(
        load_alembic_config(project_copy / "alembic.ini"), range_=None, dialect="sqlite"
    )
    assert plan.notes == []
    assert plan.range == "0003_batch_drop_nickname:heads"
    assert sorted(r.revision for r in plan.revisions) == ALL_REVISIONS[3:]
    assert plan.statements[0].file == str(
        project_copy / "migrations" / "versions" / "0004_cleanup_orders.py"
    )


def test_database_at_base_checks_everything(project_copy: Path) -> None:
    import sqlite3

    sqlite3.connect(project_copy / "app.db").close()
    config = load_alembic_config(project_copy / "alembic.ini")
    plan = render_range(config, range_=None, dialect="sqlite")
    assert plan.notes == []
    assert plan.range == "base:heads"
    assert len(plan.revisions) == len(ALL_REVISIONS)


def test_unreachable_server_does_not_hang() -> None:
    import time

    started = time.monotonic()
    assert database_heads("mysql+pymysql://root@127.0.0.1:1/none", timeout=2) is None
    assert database_heads("postgresql+psycopg://postgres@127.0.0.1:1/none", timeout=2) is None
    assert database_heads("sqlite:///does/not/exist.db") is None
    assert database_heads("sqlite://") is None
    assert database_heads("nonsense") is None
    assert time.monotonic() - started < 10


@pytest.mark.mysql
def test_current_revision_from_mariadb(project_copy: Path, mysql_url: str) -> None:
    from alembic import command

    config = load_alembic_config(project_copy / "alembic.ini")
    config.set_main_option("sqlalchemy.url", mysql_url)
    command.upgrade(config, "0002_add_nickname")
    assert database_heads(mysql_url) == ("0002_add_nickname",)
    plan = render_range(config, range_=None, dialect="mysql")
    assert plan.notes == []
    assert sorted(r.revision for r in plan.revisions) == ALL_REVISIONS[2:]


# --------------------------------------------------------------------------- failures


def test_revision_that_fails_midway_reports_ops_before_and_the_failure(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "reads_then_fails",
        """\
        def upgrade():
            op.drop_column("users", "email")
            bind = op.get_bind()
            count = bind.execute(sa.text("SELECT count(*) FROM users")).scalar()
            if count > 10:
                op.drop_table("users")
        """,
    )
    rendered = render_revision_file(path, dialect="sqlite")
    drop, select, failure = rendered.statements
    assert drop.sql == "ALTER TABLE users DROP COLUMN email"
    assert drop.line == line_of(path, 'op.drop_column("users", "email")')
    assert select.sql == "SELECT count(*) FROM users"
    assert kinds(failure) == [OpKind.UNANALYZABLE]
    assert failure.line == line_of(path, "if count > 10:")
    reason = failure.known_operations[0].reason
    assert reason is not None and reason.startswith("revision could not be rendered: TypeError")


def test_syntax_error_is_unanalyzable_at_its_line(tmp_path: Path) -> None:
    path = write_revision(tmp_path, "broken", "def upgrade(:\n    op.drop_table('x')\n")
    rendered = render_revision_file(path, dialect="mysql")
    (statement,) = rendered.statements
    assert kinds(statement) == [OpKind.UNANALYZABLE]
    assert statement.line == line_of(path, "def upgrade(:")
    assert statement.file == str(path)
    assert "SyntaxError" in (statement.known_operations[0].reason or "")


def test_import_error_is_unanalyzable(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "imports",
        "import no_such_module_for_migration_guard\n\ndef upgrade():\n    pass\n",
    )
    (statement,) = render_revision_file(path, dialect="sqlite").statements
    assert kinds(statement) == [OpKind.UNANALYZABLE]
    assert statement.line == line_of(path, "import no_such_module_for_migration_guard")


def test_operation_that_cannot_render_offline_is_inspected(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "constraint",
        """\
        def upgrade():
            op.drop_constraint("uq_users_email", "users", type_="unique")
            op.rename_table("users", "accounts")
        """,
    )
    constraint, rename = render_revision_file(path, dialect="sqlite").statements
    assert kinds(constraint) == [OpKind.OTHER_DDL]
    assert constraint.sql == "ALTER TABLE users DROP CONSTRAINT uq_users_email"
    assert constraint.line == line_of(path, "op.drop_constraint(")
    assert rename.sql == "ALTER TABLE users RENAME TO accounts"
    assert rename.line == line_of(path, "op.rename_table(")


def test_sqlite_batch_without_copy_from_in_a_single_file(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "batch",
        """\
        def upgrade():
            with op.batch_alter_table("customers", schema="shop") as batch_op:
                batch_op.add_column(sa.Column("vip", sa.Boolean(), nullable=True))
                batch_op.alter_column("name", new_column_name="full_name")
                batch_op.drop_column("legacy_notes")
        """,
    )
    add, rename, drop = render_revision_file(path, dialect="sqlite").statements
    assert kinds(add) == [OpKind.ADD_COLUMN]
    assert kinds(rename) == [OpKind.RENAME_COLUMN]
    assert kinds(drop) == [OpKind.DROP_COLUMN]
    table = drop.known_operations[0].table
    assert table is not None and (table.schema, table.name) == ("shop", "customers")
    assert [add.line, rename.line, drop.line] == [
        line_of(path, "batch_op.add_column"),
        line_of(path, "batch_op.alter_column"),
        line_of(path, "batch_op.drop_column"),
    ]


def test_execute_bulk_insert_and_offline_mode_flag(tmp_path: Path) -> None:
    path = write_revision(
        tmp_path,
        "data",
        """\
        from alembic import context

        def upgrade():
            t = op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
            op.bulk_insert(t, [{"id": 1}, {"id": 2}])
            if not context.is_offline_mode():
                op.drop_table("never_offline")
            op.execute(sa.text("TRUNCATE TABLE t"))
        """,
    )
    create, insert_one, insert_two, truncate = render_revision_file(
        path, dialect="postgresql"
    ).statements
    assert create.sql.startswith("CREATE TABLE t")
    assert insert_one.sql == "INSERT INTO t (id) VALUES (1)"
    assert insert_two.line == insert_one.line == line_of(path, "op.bulk_insert(")
    assert truncate.sql == "TRUNCATE TABLE t"
    assert truncate.line == line_of(path, "op.execute(")


def test_broken_revision_in_a_project_does_not_hide_the_others(project_copy: Path) -> None:
    broken = project_copy / "migrations" / "versions" / "0005b_order_status.py"
    text = broken.read_text().replace("def upgrade() -> None:", "def upgrade() -> None\n    oops")
    broken.write_text(text)
    config = load_alembic_config(project_copy / "alembic.ini")
    plan = render_range(config, range_="base:head", dialect="sqlite")
    assert sorted(r.revision for r in plan.revisions) == ALL_REVISIONS
    (statement,) = statements_of(plan, "0005b_order_status")
    assert kinds(statement) == [OpKind.UNANALYZABLE]
    assert statement.line == line_of(broken, "def upgrade() -> None")
    assert any(s.sql == "DROP TABLE audit_events" for s in plan.statements)


def test_unloadable_file_without_revision_id(project_copy: Path) -> None:
    stray = project_copy / "migrations" / "versions" / "0008_stray.py"
    stray.write_text("raise RuntimeError('boom')\n")
    config = load_alembic_config(project_copy / "alembic.ini")
    plan = render_range(config, range_="base:head", dialect="sqlite")
    assert plan.revisions[0].path == str(stray)
    (statement,) = plan.revisions[0].statements
    assert kinds(statement) == [OpKind.UNANALYZABLE]
    assert statement.line == 1
    assert any("0008_stray.py" in note for note in plan.notes)


# --------------------------------------------------------------------------- helpers


def test_is_revision_file(tmp_path: Path) -> None:
    assert is_revision_file(revision_path("0001_create_tables"))
    assert not is_revision_file(PROJECT / "migrations" / "env.py")
    plain = tmp_path / "plain.py"
    plain.write_text("revision = 1\n")
    assert not is_revision_file(plain)
    sql = tmp_path / "x.sql"
    sql.write_text("revision = 'a'\ndef upgrade(): pass\n")
    assert not is_revision_file(sql)
    assert not is_revision_file(tmp_path / "missing.py")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("VARCHAR(255)", ColumnType("VARCHAR", (255,), text="VARCHAR(255)")),
        ("NUMERIC(10, 2)", ColumnType("NUMERIC", (10, 2), text="NUMERIC(10, 2)")),
        ("INTEGER UNSIGNED", ColumnType("INTEGER", (), True, "INTEGER UNSIGNED")),
        ("DOUBLE PRECISION", ColumnType("DOUBLE PRECISION", text="DOUBLE PRECISION")),
        ("ENUM('a','b')", ColumnType("ENUM", text="ENUM('a','b')")),
    ],
)
def test_column_type_from_text(text: str, expected: ColumnType) -> None:
    assert column_type_from_text(text) == expected


# --------------------------------------------------------------------------- example


def test_example_shop_has_a_destructive_migration_on_sqlite(tmp_path: Path) -> None:
    # A copy, so that a shop.db left by a demo run cannot move the default range.
    example = tmp_path / "shop"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    config = load_alembic_config(example / "alembic.ini")
    assert dialect_from_config(config) == "sqlite"
    plan = render_range(config, range_=None, dialect="sqlite")
    assert plan.notes == [UNREACHABLE_NOTE]
    path = example / "migrations" / "versions" / "4d5e6f7a8b9c_drop_legacy_notes_and_audit_log.py"
    destructive = {
        (operation.kind, str(operation.table), operation.column): statement.line
        for statement in plan.statements
        for operation in statement.known_operations
    }
    assert destructive[(OpKind.DROP_COLUMN, "customers", "legacy_notes")] == line_of(
        path, "batch_op.drop_column('legacy_notes')"
    )
    drop_table = [s for s in plan.statements if s.sql == "DROP TABLE audit_log"]
    assert [s.line for s in drop_table] == [line_of(path, "op.drop_table('audit_log')")]
    assert 'protected_tables = ["customers", "orders"]' in (example / "pyproject.toml").read_text()
