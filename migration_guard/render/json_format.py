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


def render_json(report: Report) -> str:
    """Render ``report`` as pretty-printed JSON (indent 2, ASCII-safe, stable key order)."""
    return json.dumps(report_to_dict(report), indent=2)
