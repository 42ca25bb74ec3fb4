"""Planning steps every protector shares, whatever the database.

The install record's bookkeeping: tables recorded by an earlier install that
are gone or stay protected, and the accounts a ``remove`` applies to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from migration_guard.errors import UsageError
from migration_guard.protect.model import ProtectPlan

T = TypeVar("T")


def reconcile_recorded_tables(
    plan: ProtectPlan,
    recorded: dict[str, Any],
    live: Collection[str],
    requested: Collection[str],
) -> None:
    """Drop recorded tables that no longer exist from ``recorded``, noting each, and
    note those an earlier install protected that stay protected."""
    for gone in sorted(set(recorded) - set(live)):
        plan.notes.append(f"{gone} no longer exists; it is dropped from the guard's record")
        del recorded[gone]
    for leftover in sorted(set(recorded) - set(requested)):
        plan.notes.append(f"{leftover} was protected by an earlier install and stays protected")


def accounts_to_remove(
    requested: Sequence[T],
    recorded: Mapping[str, Any],
    key: Callable[[T], str],
    from_record: Callable[[Any], T],
) -> list[T]:
    """The accounts ``remove`` restores: those asked for (each must be recorded) or all."""
    selected = list(requested) or [from_record(item) for item in recorded.values()]
    for account in selected:
        if key(account) not in recorded:
            raise UsageError(
                f"{account} is not guarded by protect install here; guarded accounts: "
                f"{', '.join(sorted(recorded)) or '(none)'}"
            )
    return selected
