"""What ``protect status`` and ``protect verify`` found, and how it reads as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
