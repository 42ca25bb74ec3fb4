"""Renderers for the report of ``migration-guard check``.

One module per format, each imported only when its format is asked for, so a
pre-commit run that prints text never pays for SARIF or the rule catalogue.
Every renderer returns the whole output as one string without a trailing
newline; nothing is printed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from migration_guard.errors import UnknownNameError

if TYPE_CHECKING:
    from migration_guard.analysis.model import Report

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


# One renderer per format, each importing its module only when its format is asked for;
# each gets the report, the rule catalogue (or None), ``color`` and ``pretty``.
def _text(report: Report, rules: Sequence[RuleInfo] | None, color: bool, pretty: bool) -> str:
    from migration_guard.render.text import render_text

    return render_text(report, color=color)


def _json(report: Report, rules: Sequence[RuleInfo] | None, color: bool, pretty: bool) -> str:
    from migration_guard.render.json_format import render_json

    return render_json(report, pretty=pretty)


def _sarif(report: Report, rules: Sequence[RuleInfo] | None, color: bool, pretty: bool) -> str:
    from migration_guard.render.sarif import render_sarif

    return render_sarif(report, available_rules() if rules is None else rules)


def _github(report: Report, rules: Sequence[RuleInfo] | None, color: bool, pretty: bool) -> str:
    from migration_guard.render.github import render_github

    return render_github(report)


_RENDERERS: dict[str, Callable[[Report, Sequence[RuleInfo] | None, bool, bool], str]] = {
    "text": _text,
    "json": _json,
    "sarif": _sarif,
    "github": _github,
}
#: The formats ``render_report`` knows, in the order ``--format`` lists them.
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def render_report(
    report: Report,
    fmt: str,
    *,
    rules: Sequence[RuleInfo] | None = None,
    color: bool = False,
    pretty: bool = False,
) -> str:
    """Render ``report`` in format ``fmt`` (one of :data:`FORMATS`).

    ``rules`` describes the rules for formats that embed rule metadata (SARIF);
    when it is ``None`` the analyser's catalogue is loaded. A rule seen in a finding
    but missing from ``rules`` is described from the finding. ``color`` adds ANSI colours
    to the text format and is ignored by the machine-readable ones. ``pretty`` indents
    the JSON format (compact, on one line, otherwise).

    Raises :class:`~migration_guard.errors.UnknownNameError` (exit code 2) for an
    unknown format.
    """
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise UnknownNameError("format", fmt, FORMATS)
    return renderer(report, rules, color, pretty)
