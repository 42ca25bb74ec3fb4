"""Machine-readable report: ``{"findings", "summary", "notes", "version"}``.

Named ``json_format`` so that ``import json`` inside this package still means
the standard library.
"""

from __future__ import annotations

import json

from migration_guard import __version__
from migration_guard.analysis.model import Report


def report_to_dict(report: Report) -> dict[str, object]:
    """The JSON document as plain Python values, keys in their documented order.

    Suppressed findings are included with ``"suppressed": true`` and their reason.
    """
    return {
        "findings": [finding.to_dict() for finding in report.findings],
        "summary": report.summary(),
        "notes": list(report.notes),
        "version": __version__,
    }


def render_json(report: Report, *, pretty: bool = False) -> str:
    """Render ``report`` as JSON (ASCII-safe, stable key order): compact on one line, or
    indented by 2 when ``pretty``.

    Compact output goes through the C encoder of :mod:`json`; ``indent`` makes the
    standard library fall back to its pure-Python encoder, which dominated the time
    of ``check --format json`` on reports with thousands of findings.
    """
    document = report_to_dict(report)
    if pretty:
        return json.dumps(document, indent=2)
    return json.dumps(document, separators=(",", ":"))
