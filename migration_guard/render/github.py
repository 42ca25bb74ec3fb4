"""GitHub Actions workflow commands: one ``::error``/``::warning`` annotation per
active finding, then a plain summary line.

Suppressed findings are omitted: an approved change must not decorate the pull
request. Escaping follows the runner's rules (``%``, CR and LF everywhere;
``:`` and ``,`` too inside properties), so a file name or message can never
end a command early or inject a second one.
"""

from __future__ import annotations

from migration_guard.analysis.model import Finding, Report, Severity
from migration_guard.render._common import printable, relative_posix_path, summary_line

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(text: str) -> str:
    """Escape the message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (``file=``, ``title=``...) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(finding: Finding) -> str:
    path = relative_posix_path(finding.file) or finding.file
    properties = {
        "file": path,
        "line": str(max(1, finding.line)),
        "col": str(max(1, finding.column)),
        "title": f"migration-guard {finding.rule}",
    }
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    message = finding.message or finding.rule
    if finding.hint:
        message = f"{message}\nhint: {finding.hint}"
    return f"::{_COMMANDS[finding.severity]} {rendered}::{escape_data(message)}"


def render_github(report: Report) -> str:
    """Render ``report`` as workflow commands for a GitHub Actions log."""
    lines = [_annotation(finding) for finding in report.active]
    # A note is plain log text; keeping it on one line means it can never start a command.
    lines.extend(f"note: {printable(note)}" for note in report.notes)
    lines.append(f"migration-guard: {summary_line(report)}")
    return "\n".join(lines)
