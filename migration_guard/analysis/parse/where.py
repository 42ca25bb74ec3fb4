"""Whether a WHERE clause is a tautology that selects every row.

``DELETE FROM t WHERE 1 = 1`` is as destructive as no WHERE at all; this
constant-folds the condition and says True only when that is provable for
every row, never on a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

_Const = tuple[str, Any]


def _constant(node: Any) -> _Const | None:
    """A literal's value: ("num", float) or ("str", text); None if not a constant."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return ("str", node.this)
        try:
            return ("num", float(node.this))
        except ValueError:
            return None
    if isinstance(node, exp.Neg):
        inner = _constant(node.this)
        if inner is not None and inner[0] == "num":
            return ("num", -inner[1])
    if isinstance(node, exp.Boolean):
        return ("num", 1.0 if node.this else 0.0)
    return None


def _as_number(value: _Const) -> float | None:
    if value[0] == "num":
        return float(value[1])
    try:
        return float(value[1])
    except ValueError:
        return None


#: Comparison node -> its verdict on ``left - right`` (or on the collation order).
_COMPARISONS: dict[type[exp.Expression], Callable[[float], bool]] = {
    exp.EQ: lambda difference: difference == 0,
    exp.NullSafeEQ: lambda difference: difference == 0,
    exp.NEQ: lambda difference: difference != 0,
    exp.GT: lambda difference: difference > 0,
    exp.GTE: lambda difference: difference >= 0,
    exp.LT: lambda difference: difference < 0,
    exp.LTE: lambda difference: difference <= 0,
}


def _compare(node: Any) -> bool | None:
    left, right = node.this, node.expression
    left_const, right_const = _constant(left), _constant(right)
    if left_const is None or right_const is None:
        if isinstance(left, exp.Column) and isinstance(right, exp.Column) and left == right:
            # ``x = x`` is true for every non-NULL x: close enough to "every row".
            return isinstance(node, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) or None
        return None
    if left_const[0] == "str" and right_const[0] == "str":
        if left_const[1] == right_const[1]:
            difference = 0.0
        elif str(left_const[1]).lower() == str(right_const[1]).lower():
            return None  # equal or not depending on the collation
        else:
            difference = -1.0 if left_const[1] < right_const[1] else 1.0
    else:
        left_number, right_number = _as_number(left_const), _as_number(right_const)
        if left_number is None or right_number is None:
            return None
        difference = left_number - right_number
    verdict = _COMPARISONS.get(type(node))
    return verdict(difference) if verdict is not None else None


def _flatten(node: Any, kind: type[Any]) -> list[Any]:
    if isinstance(node, kind):
        return _flatten(node.this, kind) + _flatten(node.expression, kind)
    while isinstance(node, exp.Paren):
        node = node.this
        if isinstance(node, kind):
            return _flatten(node, kind)
    return [node]


def _null_test_key(node: Any) -> tuple[bool, Any] | None:
    """For ``x IS NULL`` -> (True, x); ``x IS NOT NULL`` -> (False, x)."""
    negated = False
    while isinstance(node, (exp.Paren, exp.Not)):
        if isinstance(node, exp.Not):
            negated = not negated
        node = node.this
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if node.args.get("negate"):
            negated = not negated
        return (not negated, node.this)
    return None


def _truth(node: Any) -> bool | None:
    """Constant-fold a condition: True/False when provable for every row, else None."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        branches = _flatten(node, exp.Or)
        values = [_truth(branch) for branch in branches]
        if any(value is True for value in values):
            return True
        null_tests = [_null_test_key(branch) for branch in branches]
        is_null = [key[1] for key in null_tests if key and key[0]]
        if any(key[1] in is_null for key in null_tests if key and not key[0]):
            return True
        return False if all(value is False for value in values) else None
    if isinstance(node, exp.And):
        values = [_truth(branch) for branch in _flatten(node, exp.And)]
        if any(value is False for value in values):
            return False
        return True if all(value is True for value in values) else None
    if isinstance(node, exp.Not):
        inner = _truth(node.this)
        return None if inner is None else not inner
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, (exp.Literal, exp.Neg)):
        value = _constant(node)
        number = _as_number(value) if value is not None else None
        return None if number is None else number != 0
    if type(node) in _COMPARISONS:
        return _compare(node)
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if isinstance(node.this, exp.Null):
            result: bool | None = True
        else:
            result = False if _constant(node.this) is not None else None
        if result is not None and node.args.get("negate"):
            return not result
        return result
    if isinstance(node, exp.In) and not node.args.get("query"):
        needle = _constant(node.this)
        if needle is None:
            return None
        options = [_constant(option) for option in node.expressions]
        if any(option == needle for option in options):
            return True
        return False if options and all(option is not None for option in options) else None
    return None


def is_tautology(condition: Any) -> bool:
    return _truth(condition) is True
