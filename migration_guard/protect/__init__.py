"""Protection inside the database: delete triggers and DDL privilege guards.

One :class:`~migration_guard.protect.base.Protector` per dialect, looked up in
:data:`PROTECTORS` by SQLAlchemy dialect name. This module holds the shared,
database-independent data types: the plan that ``install``/``remove`` print and
apply, the status report and the results of ``verify``'s probes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_guard.errors import ConfigError, UsageError
from migration_guard.registry import Registry

if TYPE_CHECKING:
    from migration_guard.protect.base import Protector

__all__ = [
    "BYPASS_VARIABLE",
    "META_TABLE",
    "PROTECTORS",
    "Account",
    "PlanStep",
    "ProbeResult",
    "ProtectPlan",
    "ProtectStatus",
    "TableOptions",
    "TableStatus",
    "parse_table_options",
]

#: Guard metadata table created in the protected database.
META_TABLE = "migration_guard_meta"
#: MySQL/MariaDB session variable that lets deliberate deletes through.
BYPASS_VARIABLE = "@migration_guard_allow_delete"
#: Prefix and suffix of every trigger the guard creates.
TRIGGER_PREFIX = "mg_guard_"
TRIGGER_SUFFIX = "_bd"

PROTECTORS: Registry[type[Protector]] = Registry(
    "migration_guard.protectors",
    "protector",
    {
        "mysql": "migration_guard.protect.mysql:MySQLProtector",
        "mariadb": "migration_guard.protect.mysql:MySQLProtector",
        "sqlite": "migration_guard.protect.sqlite:SQLiteProtector",
    },
)


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


# ---------------------------------------------------------------------------- options

DELETE_MODES = ("block", "allow")
TABLE_OPTION_KEYS = ("deletes",)


@dataclass(frozen=True)
class TableOptions:
    """Per-table settings from ``[tool.migration_guard.tables.<table>]``."""

    #: ``block`` (default): a trigger refuses row deletes; ``allow``: no delete trigger.
    deletes: str = "block"

    @property
    def blocks_deletes(self) -> bool:
        return self.deletes == "block"


def parse_table_options(section: Mapping[str, Any]) -> dict[str, TableOptions]:
    """Validate ``[tool.migration_guard.tables]``; keys are table names (case-insensitive)."""
    options: dict[str, TableOptions] = {}
    for table, values in section.items():
        where = f"[tool.migration_guard.tables.{table}]"
        if not isinstance(values, Mapping):
            raise ConfigError(f'{where} must be a table, e.g. deletes = "allow"', key="tables")
        for key in values:
            if key not in TABLE_OPTION_KEYS:
                raise ConfigError(
                    f"unknown key {key!r} in {where}; known keys: {', '.join(TABLE_OPTION_KEYS)}",
                    key="tables",
                )
        deletes = values.get("deletes", "block")
        if deletes not in DELETE_MODES:
            raise ConfigError(
                f"{where}: deletes must be one of {', '.join(DELETE_MODES)}, not {deletes!r}",
                key="tables",
            )
        options[str(table).lower()] = TableOptions(deletes=str(deletes))
    return options


def options_for(options: Mapping[str, TableOptions], table: str) -> TableOptions:
    return options.get(table.lower(), TableOptions())


# ---------------------------------------------------------------------------- plans


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


# ---------------------------------------------------------------------------- status


@dataclass
class TableStatus:
    """The protection of one table."""

    table: str
    #: ``intact``, ``missing``, ``altered``, ``not-required`` (deletes = "allow") or
    #: ``table-missing``.
    trigger: str
    trigger_name: str | None = None
    #: account -> ``guarded`` or a description of the DDL privileges it holds.
    privileges: dict[str, str] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.drift)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "trigger": self.trigger,
            "trigger_name": self.trigger_name,
            "privileges": dict(self.privileges),
            "drift": list(self.drift),
        }


@dataclass
class ProtectStatus:
    """``protect status``: per table trigger and privilege state, and drift."""

    dialect: str
    database: str
    installed: bool
    tables: list[TableStatus] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    #: Drift not tied to one table (an unguarded account, no install at all).
    drift: list[str] = field(default_factory=list)
    #: What this database cannot protect, stated plainly.
    limitations: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.drift) or any(table.drifted for table in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "database": self.database,
            "installed": self.installed,
            "drifted": self.drifted,
            "accounts": list(self.accounts),
            "drift": list(self.drift),
            "limitations": list(self.limitations),
            "tables": [table.to_dict() for table in self.tables],
        }

    def render(self) -> str:
        lines = [f"protection of {self.dialect} database {self.database}"]
        if not self.installed:
            lines.append("  not installed: run `migration-guard protect install`")
        if self.accounts:
            lines.append(f"  application accounts: {', '.join(self.accounts)}")
        for table in self.tables:
            trigger = table.trigger
            if table.trigger_name and trigger not in ("not-required", "table-missing"):
                trigger = f"{trigger} ({table.trigger_name})"
            lines.append(f"  {table.table}: delete trigger {trigger}")
            for account, state in sorted(table.privileges.items()):
                lines.append(f"    {account}: {state}")
            for item in table.drift:
                lines.append(f"    DRIFT: {item}")
        for item in self.drift:
            lines.append(f"  DRIFT: {item}")
        for item in self.limitations:
            lines.append(f"  cannot protect: {item}")
        lines.append("drift found" if self.drifted else "no drift")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class ProbeResult:
    """One attempted operation as the application account."""

    table: str
    operation: str
    #: ``refused``, ``allowed`` or ``skipped``.
    outcome: str
    detail: str = ""
    account: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "table": self.table,
            "operation": self.operation,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def render_probes(results: list[ProbeResult]) -> str:
    """One line per probe: ``refused`` is what protection should produce."""
    lines = []
    for result in results:
        who = f"{result.account} " if result.account else ""
        detail = f" ({result.detail})" if result.detail else ""
        lines.append(f"{who}{result.operation} {result.table}: {result.outcome}{detail}")
    allowed = sum(1 for result in results if result.outcome == "allowed")
    lines.append(
        f"{allowed} operation(s) allowed that protection should refuse"
        if allowed
        else "every probed operation was refused"
    )
    return "\n".join(lines) + "\n"


def dump_json(value: Any) -> str:
    """Stable JSON (sorted keys, no spaces) so that equal states compare equal as text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
