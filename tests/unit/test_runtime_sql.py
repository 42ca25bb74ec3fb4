"""What a string sent to the server runs (the interceptor's view), and the offline seal."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration_guard.alembic.offline.sealed import OfflineDatabaseAccess, no_database
from migration_guard.alembic.runtime_sql import is_read_only, runs, runtime_statements


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select * from orders where id = 1;",
        "SHOW TABLES",
        "SET @x = 1",
        "BEGIN",
        "PRAGMA foreign_keys=ON",
        "COMMIT;  ",
    ],
)
def test_one_read_only_statement_takes_the_fast_path(sql: str) -> None:
    assert is_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE customers",
        "SET @x = 1; DELETE FROM customers",
        "select 1;delete from customers;",
        "EXPLAIN ANALYZE DELETE FROM customers",
        "ANALYZE DELETE FROM customers",
        "BEGIN NOT ATOMIC DELETE FROM customers; END",
        "SELECT * INTO new_table FROM customers",
        "DELETE FROM customers",
    ],
)
def test_anything_else_is_judged(sql: str) -> None:
    assert not is_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("EXPLAIN ANALYZE DELETE FROM orders", "DELETE FROM orders"),
        ("explain analyze verbose DELETE FROM orders", "DELETE FROM orders"),
        ("EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET total = 0", "UPDATE orders SET total = 0"),
        ("EXPLAIN FORMAT=JSON DELETE FROM orders", "EXPLAIN FORMAT=JSON DELETE FROM orders"),
        ("ANALYZE DELETE FROM orders", "DELETE FROM orders"),
        ("ANALYZE FORMAT=JSON DELETE FROM orders", "DELETE FROM orders"),
        ("ANALYZE TABLE orders", "ANALYZE TABLE orders"),
        ("IF n = 1 THEN DELETE FROM orders", "DELETE FROM orders"),
        ("lbl: WHILE n > 0 DO DELETE FROM orders", "DELETE FROM orders"),
        ("END IF", None),
        ("END", None),
        ("DECLARE n INT DEFAULT 1", None),
        ("BEGIN", "BEGIN"),
        ("BEGIN WORK", "BEGIN WORK"),
    ],
)
def test_runs_peels_wrappers(sql: str, expected: str | None) -> None:
    assert runs(sql) == expected


def test_a_compound_block_yields_each_inner_statement() -> None:
    block = (
        "BEGIN NOT ATOMIC\n  DECLARE n INT DEFAULT 1;\n"
        "  UPDATE customers SET points = n WHERE id = 1;\n"
        "  IF n = 1 THEN DELETE FROM orders; ELSE DROP TABLE scratch; END IF;\nEND"
    )
    statements = runtime_statements(block, dialect="mariadb", file="<runtime>", unit="u")
    assert [s.sql for s in statements] == [
        "UPDATE customers SET points = n WHERE id = 1",
        "DELETE FROM orders",
        "DROP TABLE scratch",
    ]


def test_offline_seal_refuses_real_databases_and_is_undone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    url = f"sqlite:///{path}"
    original = sa.create_engine
    with no_database():
        with pytest.raises(OfflineDatabaseAccess, match="create_engine"):
            sa.create_engine(url)
        with pytest.raises(OfflineDatabaseAccess, match=r"sqlite3\.connect"):
            sqlite3.connect(str(path))
        memory = sa.create_engine("sqlite://")  # no one's data: allowed
        with memory.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    assert sa.create_engine is original
    assert not path.exists()


def test_offline_seal_is_undone_on_error_and_acts_only_on_its_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = sa.create_engine(url)  # made before: connecting is refused all the same
    seen: list[object] = []

    def other_thread() -> None:
        with engine.connect() as conn:
            seen.append(conn.execute(sa.text("SELECT 2")).scalar())

    with pytest.raises(ZeroDivisionError), no_database():
        with pytest.raises(OfflineDatabaseAccess):
            engine.connect()
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        1 / 0  # noqa: B018
    assert seen == [2]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 3")).scalar() == 3
    engine.dispose()


def test_raw_write_guard_refuses_unjudged_writes_to_protected_tables(tmp_path: Path) -> None:
    from migration_guard.alembic.raw_guard import RawWriteGuard
    from migration_guard.config import ProtectedTables

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    refused: list[tuple[str, str]] = []
    guard = RawWriteGuard(ProtectedTables(patterns=("orders",)), lambda *a: refused.append(a))
    with engine.connect() as conn:
        for sql in (
            "CREATE TABLE orders (id INT)",
            "CREATE TABLE scratch (id INT)",
            "INSERT INTO orders VALUES (1)",
            "INSERT INTO scratch VALUES (1)",
        ):
            conn.exec_driver_sql(sql)
        conn.commit()
        guard.watch(conn)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for sql in ("DELETE FROM orders", "UPDATE orders SET id = 2", "DROP TABLE orders"):
            with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
                raw.execute(sql)
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            raw.executescript("SELECT 1; DELETE FROM orders;")
        raw.execute("DELETE FROM scratch")  # not protected
        guard.judged(True)  # the statement the interceptor just passed
        raw.execute("UPDATE orders SET id = 3")
        guard.judged(False)
        guard.close()
        raw.execute("DELETE FROM orders")  # the hook is gone after the run
    engine.dispose()
    assert refused[:3] == [("delete", "orders"), ("update", "orders"), ("drop", "orders")]


def test_a_revision_that_catches_the_refusal_is_still_unanalyzable(tmp_path: Path) -> None:
    from migration_guard.alembic.offline import render_revision_file

    database = tmp_path / "app.db"
    revision = tmp_path / "r9.py"
    revision.write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        "revision = 'r9'\n"
        "down_revision = None\n\n\n"
        "def upgrade():\n"
        "    try:\n"
        f"        sa.create_engine({f'sqlite:///{database}'!r}).connect()\n"
        "    except Exception:\n"
        "        pass\n"
        "    op.drop_table('orders')\n"
    )
    rendered = render_revision_file(revision, dialect="sqlite")
    kinds = [op.kind.value for s in rendered.statements for op in s.known_operations]
    assert "unanalyzable" in kinds
    assert any(s.line == 10 for s in rendered.statements if s.known_operations)
    assert any("DROP TABLE orders" in s.sql for s in rendered.statements)
    assert not database.exists()
