"""The record of what a run did (the restore's scope) and the row comparison, without a
database."""

from __future__ import annotations

from migration_guard.alembic.changes import RunChanges
from migration_guard.alembic.rows import TableRows, compare
from migration_guard.analysis.model import Operation, OpKind, Statement, TableRef
from migration_guard.dialects.base import ForeignKeyAction

STATEMENT = Statement(sql="-", file="r.py", line=1)


def _op(kind: OpKind, table: str | None, new_name: str | None = None) -> Operation:
    ref = TableRef(table) if table else None
    return Operation(kind, STATEMENT, table=ref, new_name=new_name)


FOREIGN_KEYS = [
    ForeignKeyAction("orders", "customers", on_delete="CASCADE"),
    ForeignKeyAction("order_lines", "orders", on_delete="SET NULL"),
    ForeignKeyAction("invoices", "customers", on_delete="RESTRICT", on_update="CASCADE"),
]


def _changes() -> RunChanges:
    return RunChanges(
        existing=frozenset({"customers", "orders", "order_lines", "invoices", "scratch"}),
        load_foreign_keys=lambda: FOREIGN_KEYS,
    )


def test_ddl_writes_and_creations_are_told_apart() -> None:
    changes = _changes()
    changes.record(_op(OpKind.ADD_COLUMN, "orders"))
    changes.record(_op(OpKind.INSERT, "scratch"))
    changes.record(_op(OpKind.CREATE_TABLE, "half_done"))
    changes.record(_op(OpKind.RENAME_TABLE, "scratch", new_name="scratch_old"))
    state = {key: (e.ddl, e.wrote, e.created) for key, e in changes.tables.items()}
    assert state == {
        "orders": (True, False, False),
        "scratch": (True, True, False),
        "half_done": (True, False, True),
        "scratch_old": (True, False, True),
    }
    assert sorted(changes.created()) == ["half_done", "scratch_old"]
    assert not changes.unknown


def test_delete_cascades_through_every_changing_action_and_returns_them_to_back_up() -> None:
    changes = _changes()
    cascaded = changes.record(_op(OpKind.DELETE, "customers"))
    assert cascaded == ["orders", "order_lines"]  # RESTRICT on invoices changes nothing
    assert changes.tables["orders"].wrote and changes.tables["orders"].via == ["customers"]
    assert changes.tables["order_lines"].via == ["orders"]
    assert "invoices" not in changes.tables


def test_update_follows_on_update_actions_and_a_drop_follows_on_delete() -> None:
    changes = _changes()
    assert changes.record(_op(OpKind.UPDATE, "customers")) == ["invoices"]
    assert _changes().record(_op(OpKind.DROP_TABLE, "customers")) == ["orders", "order_lines"]


def test_ddl_and_tables_made_by_the_run_fire_no_action() -> None:
    changes = _changes()
    assert changes.record(_op(OpKind.ADD_COLUMN, "customers")) == []
    changes.record(_op(OpKind.CREATE_TABLE, "tmp"))
    assert changes.record(_op(OpKind.DROP_TABLE, "tmp")) == []


def test_unreadable_foreign_keys_or_statements_widen_the_scope() -> None:
    def broken() -> list[ForeignKeyAction]:
        raise RuntimeError("database gone")

    changes = RunChanges(load_foreign_keys=broken)
    assert changes.record(_op(OpKind.DELETE, "customers")) == []
    assert changes.unknown
    other = RunChanges()
    other.record(_op(OpKind.UNANALYZABLE, None))
    assert other.unknown


def test_the_record_round_trips_and_saves_only_on_something_new() -> None:
    saved: list[int] = []
    changes = _changes()
    changes.on_change = lambda: saved.append(1)
    changes.record(_op(OpKind.DELETE, "customers"))
    changes.record(_op(OpKind.DELETE, "customers"))
    assert len(saved) == 1
    again = RunChanges.from_dict(changes.to_dict())
    assert again.to_dict() == changes.to_dict()


def _rows(columns: dict[str, str], key: list[str], *rows: dict[str, object]) -> TableRows:
    return TableRows(columns, key, list(rows))


def test_compare_finds_new_and_changed_rows_on_the_restored_columns() -> None:
    restored = _rows(
        {"id": "INTEGER", "total": "INTEGER"}, ["id"], {"id": 1, "total": 5}, {"id": 2, "total": 7}
    )
    before = _rows(
        {"id": "INTEGER", "total": "INTEGER", "note": "VARCHAR(20)"},
        ["id"],
        {"id": 1, "total": 5, "note": "x"},
        {"id": 2, "total": 8, "note": None},
        {"id": 3, "total": 9, "note": None},
    )
    diff = compare(before, restored)
    assert diff.new == [{"id": 3, "total": 9}]
    assert diff.changed == [({"id": 2}, {"total": 8})]
    assert diff.retyped == []
    assert diff.describe() == "1 row added and 1 row changed (id 3, 2)"


def test_compare_flags_retyped_columns_and_compares_rows_whole_without_a_key() -> None:
    restored = _rows({"a": "INTEGER", "b": "TEXT"}, [], {"a": 1, "b": "x"}, {"a": 1, "b": "x"})
    before = _rows(
        {"a": "INTEGER", "b": "VARCHAR(5)"},
        [],
        {"a": 1, "b": "x"},
        {"a": 1, "b": "x"},
        {"a": 1, "b": "x"},
    )
    diff = compare(before, restored)
    assert diff.retyped == ["b"]
    assert diff.new == [{"a": 1, "b": "x"}]
    assert diff.count == 1


def test_planned_changes_need_no_save_and_a_dead_runs_scope_includes_them() -> None:
    from migration_guard.analysis.analyzer import operations_of
    from migration_guard.analysis.splitter import split_sql

    statements = list(
        split_sql(
            "CREATE TABLE half_done (id INTEGER); ALTER TABLE orders ADD COLUMN note TEXT;"
            " UPDATE scratch SET payload = 'x' WHERE id = 1;",
            file="r.py",
            dialect="sqlite",
        )
    )
    saved: list[int] = []
    changes = RunChanges(on_change=lambda: saved.append(1))
    operations = [op for statement in statements for op in operations_of(statement, "sqlite")]
    changes.plan(operations, ["orders", "scratch"], "alembic_version")
    changes.record(_op(OpKind.CREATE_TABLE, "alembic_version"))
    changes.record(_op(OpKind.INSERT, "alembic_version"))
    changes.record(_op(OpKind.CREATE_TABLE, "half_done"))
    changes.record(_op(OpKind.ADD_COLUMN, "orders"))
    assert saved == []  # the plan, saved before the run, says as much already
    changes.record(_op(OpKind.DELETE, "orders"))
    assert saved == [1]  # not planned: saved before it runs
    dead = RunChanges.from_dict(changes.to_dict()).merged()
    assert {key: (e.ddl, e.wrote, e.created) for key, e in dead.tables.items()} == {
        "half_done": (True, False, True),
        "orders": (True, True, False),
        "scratch": (False, True, False),
        "alembic_version": (True, True, True),
    }
    # The run's own restore uses what it recorded: scratch was never reached.
    assert "scratch" not in changes.tables


def test_a_schema_qualified_delete_cascades_like_an_unqualified_one() -> None:
    changes = _changes()
    operation = Operation(OpKind.DELETE, STATEMENT, table=TableRef("customers", "shop"))
    assert changes.record(operation) == ["orders", "order_lines"]
    assert changes.tables["shop.customers"].wrote


def test_a_batch_rebuilds_drop_fires_no_action() -> None:
    changes = _changes()
    changes.record(_op(OpKind.CREATE_TABLE, "_alembic_tmp_customers"))
    assert changes.record(_op(OpKind.DROP_TABLE, "customers")) == []
    assert "orders" not in changes.tables
