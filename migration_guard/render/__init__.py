"""Renderers for the report of ``migration-guard check``.

One module per format, each imported only when its format is asked for, so a
pre-commit run that prints text never pays for SARIF or the rule catalogue.
Every renderer returns the whole output as one string without a trailing
newline; nothing is printed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from migration_guard.errors import UnknownNameError

if TYPE_CHECKING:
    from migration_guard.analysis.model import Report

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "github")

__all__ = ["FORMATS", "RuleInfo", "available_rules", "render_report"]


class RuleInfo(Protocol):
    """What a renderer needs to know about a rule (satisfied by the analysis rules)."""

    @property
    def id(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def hint(self) -> str: ...


def available_rules() -> list[RuleInfo]:
    """The analyser's rule catalogue.

    Imported lazily: the catalogue loads every rule module, which only SARIF needs.
    """
    from migration_guard.analysis.rules import all_rules

    rules: list[RuleInfo] = list(all_rules())
    return rules


def render_report(
    report: Report,
    fmt: str,
    *,
    rules: Sequence[RuleInfo] | None = None,
    color: bool = False,
) -> str:
    """Render ``report`` in format ``fmt`` (one of :data:`FORMATS`).

    ``rules`` describes the rules for formats that embed rule metadata (SARIF);
    when it is ``None`` the analyser's catalogue is loaded, and failing that only
    the rule ids seen in the findings are described. ``color`` adds ANSI colours
    to the text format and is ignored by the machine-readable ones.

    Raises :class:`~migration_guard.errors.UnknownNameError` (exit code 2) for an
    unknown format.
    """
    if fmt == "text":
        from migration_guard.render.text import render_text

        return render_text(report, color=color)
    if fmt == "json":
        from migration_guard.render.json_format import render_json

        return render_json(report)
    if fmt == "sarif":
        from migration_guard.render.sarif import render_sarif

        return render_sarif(report, available_rules() if rules is None else rules)
    if fmt == "github":
        from migration_guard.render.github import render_github

        return render_github(report)
    raise UnknownNameError("format", fmt, FORMATS)
