"""The hand-written ``__init__`` of the analysis' value classes stays a dataclass ``__init__``."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from migration_guard.analysis import model
from migration_guard.analysis.rules import Violation

FAST = [getattr(model, name) for name in model.FAST_INIT] + [Violation]


@pytest.mark.parametrize("cls", FAST, ids=lambda cls: cls.__name__)
def test_the_init_takes_exactly_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        expected = (
            inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        )
        assert parameter.default == expected, field.name
        assert field.default_factory is dataclasses.MISSING


def test_the_value_classes_stay_frozen_comparable_and_replaceable() -> None:
    statement = model.Statement("DROP TABLE t", "m.sql", 3)
    table = model.TableRef("t", "s")
    operation = model.Operation(model.OpKind.DROP_TABLE, statement, table, if_exists=True)
    assert operation == model.Operation(
        model.OpKind.DROP_TABLE,
        model.Statement("DROP TABLE t", "m.sql", 3),
        model.TableRef("t", "s"),
        if_exists=True,
    )
    assert hash(operation) == hash(dataclasses.replace(operation))
    assert dataclasses.replace(statement, line=4).line == 4
    assert dataclasses.replace(statement, line=4).sql == "DROP TABLE t"
    assert repr(table) == "TableRef(name='t', schema='s')"
    assert vars(statement) == dataclasses.asdict(statement)
    for value in (statement, table, operation):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.line = 5  # type: ignore[misc, union-attr]


def test_new_operation_makes_what_the_constructor_makes() -> None:
    statement = model.Statement("DROP TABLE t", "m.sql", 3)
    table = model.TableRef("t", "s")
    fields = [field.name for field in dataclasses.fields(model.Operation)]
    cases: list[tuple[model.OpKind, model.TableRef | None, dict[str, object]]] = [
        (model.OpKind.INSERT, table, {}),
        (model.OpKind.OTHER_DDL, None, {}),
        (model.OpKind.DROP_TABLE, table, {"if_exists": True}),
        (model.OpKind.DELETE, table, {"has_where": False}),
        (model.OpKind.RENAME_COLUMN, table, {"column": "a", "new_name": "b"}),
    ]
    for kind, target, extra in cases:
        made = model.new_operation(kind, statement, target, extra or None)
        expected = model.Operation(kind, statement, target, **extra)  # type: ignore[arg-type]
        assert made == expected
        assert hash(made) == hash(expected)
        assert repr(made) == repr(expected)
        assert list(vars(made)) == fields
        assert dataclasses.replace(made) == expected
