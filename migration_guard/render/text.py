"""Human-readable report: one line per finding, a hint, notes, then a summary.

Active findings come first in report order; suppressed ones follow, dimmed and
marked with their reason, so an approval stays visible in review without
being mistaken for a problem.
"""

from __future__ import annotations

from migration_guard.analysis.model import Finding, Report, Severity
from migration_guard.render._common import printable, summary_line

# Plain ANSI codes: importing rich would cost more start-up time than the
# whole check of a typical pre-commit run.
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_SEVERITY_STYLE = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;36m",
}


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def _location(finding: Finding) -> str:
    return f"{printable(finding.file)}:{finding.line}:{finding.column}"


def _finding_line(finding: Finding, color: bool) -> str:
    table = printable(finding.table) if finding.table else "-"
    severity = _paint(finding.severity.value, _SEVERITY_STYLE[finding.severity], color)
    return (
        f"{_paint(_location(finding), _BOLD, color)} {severity} {finding.rule} {table}"
        f" — {printable(finding.message)}"
    )


def _suppressed_line(finding: Finding, color: bool) -> str:
    table = printable(finding.table) if finding.table else "-"
    reason = printable(finding.reason) if finding.reason else "no reason given"
    line = (
        f"{_location(finding)} {finding.severity.value} {finding.rule} {table}"
        f" — {printable(finding.message)} (suppressed: {reason})"
    )
    return _paint(line, _DIM, color)


def render_text(report: Report, *, color: bool = False) -> str:
    """Render ``report`` for a terminal; ``color`` adds ANSI colours."""
    lines: list[str] = []
    for finding in report.active:
        lines.append(_finding_line(finding, color))
        if finding.hint:
            lines.append(_paint(f"    hint: {printable(finding.hint)}", _DIM, color))
    lines.extend(
        _suppressed_line(finding, color) for finding in report.findings if finding.suppressed
    )
    lines.extend(f"note: {printable(note)}" for note in report.notes)
    summary = summary_line(report)
    if color:
        style = _SEVERITY_STYLE[Severity.ERROR] if report.has_errors else _BOLD
        summary = _paint(summary, style, color)
    if lines:
        lines.append("")
    lines.append(summary)
    return "\n".join(lines)
