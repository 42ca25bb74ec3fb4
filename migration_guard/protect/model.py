"""What protection is made of, whatever the database: accounts, options and plans.

Kept free of SQLAlchemy so that reading the guard's names (the upgrade guard
skips :data:`META_TABLE`) costs no database import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migration_guard.errors import UsageError

#: Guard metadata table created in the protected database.
META_TABLE = "migration_guard_meta"
#: Prefix and suffix of every trigger the guard creates.
TRIGGER_PREFIX = "mg_guard_"
TRIGGER_SUFFIX = "_bd"
#: The two values of a table's ``deletes`` option.
DELETE_MODES = ("block", "allow")


@dataclass(frozen=True, order=True)
class Account:
    """A MySQL/MariaDB account ``user@host`` (host ``%`` when not given)."""

    user: str
    host: str = "%"

    @classmethod
    def parse(cls, text: str) -> Account:
        """``USER`` or ``USER@HOST``; the last ``@`` separates the host."""
        user, separator, host = text.rpartition("@")
        if not separator:
            user, host = text, "%"
        if not user:
            raise UsageError(f"--app-user {text!r} has no user name; use USER or USER@HOST")
        return cls(user, host or "%")

    @property
    def key(self) -> str:
        return f"{self.user}@{self.host}"

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


@dataclass(frozen=True)
class TableOptions:
    """Per-table settings from ``[tool.migration_guard.tables.<table>]``."""

    #: ``block`` (default): a trigger refuses row deletes; ``allow``: no delete trigger.
    deletes: str = "block"

    @property
    def blocks_deletes(self) -> bool:
        return self.deletes == "block"


def options_for(options: Mapping[str, TableOptions], table: str) -> TableOptions:
    """The options of ``table`` (keys are lower-cased table names); defaults when absent."""
    return options.get(table.lower(), TableOptions())


@dataclass(frozen=True)
class PlanStep:
    """One statement of a plan; ``undo`` reverses it when a later step fails."""

    description: str
    sql: str
    undo: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "sql": self.sql, "undo": list(self.undo)}


@dataclass
class ProtectPlan:
    """What ``install`` or ``remove`` would do, statement by statement."""

    action: str
    dialect: str
    database: str
    steps: list[PlanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Dialect-private facts carried from planning to applying (not rendered).
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def add(self, description: str, sql: str, *undo: str) -> None:
        self.steps.append(PlanStep(description, sql, tuple(undo)))

    def render(self) -> str:
        """The exact SQL, each statement preceded by a comment saying why."""
        lines = [
            f"-- migration-guard protect {self.action}: {self.dialect} database {self.database}"
        ]
        for note in self.notes:
            lines.append(f"-- note: {note}")
        if self.is_empty:
            lines.append("-- nothing to do: the protection is already in place")
        for number, step in enumerate(self.steps, 1):
            lines.append(f"-- {number}. {step.description}")
            lines.append(step.sql.rstrip().rstrip(";") + ";")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "dialect": self.dialect,
            "database": self.database,
            "notes": list(self.notes),
            "steps": [step.to_dict() for step in self.steps],
        }


def dump_json(value: Any) -> str:
    """Stable JSON (sorted keys, no spaces) so that equal states compare equal as text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
