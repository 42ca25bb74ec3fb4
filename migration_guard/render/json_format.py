"""Machine-readable report: ``{"findings", "summary", "notes", "version"}``.

Named ``json_format`` so that ``import json`` inside this package still means
the standard library.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii

from migration_guard import __version__
from migration_guard.analysis.model import Finding, Report


def report_to_dict(report: Report, *, findings: bool = True) -> dict[str, object]:
    """The JSON document as plain Python values, keys in their documented order
    (without ``"findings"`` when ``findings`` is false).

    Suppressed findings are included with ``"suppressed": true`` and their reason.
    """
    document: dict[str, object] = {}
    if findings:
        document["findings"] = [finding.to_dict() for finding in report.findings]
    document["summary"] = report.summary()
    document["notes"] = list(report.notes)
    document["version"] = __version__
    return document


def render_json(report: Report, *, pretty: bool = False) -> str:
    """Render ``report`` as JSON (ASCII-safe, stable key order): compact on one line, or
    indented by 2 when ``pretty``.

    Compact output is exactly what ``json.dumps(..., separators=(",", ":"))`` writes,
    its findings encoded by :func:`_compact_findings`; ``indent`` makes the standard
    library fall back to its pure-Python encoder, which dominated the time of
    ``check --format json`` on reports with thousands of findings.
    """
    if pretty:
        return json.dumps(report_to_dict(report), indent=2)
    findings = _compact_findings(report.findings)
    rest = json.dumps(report_to_dict(report, findings=False), separators=(",", ":"))
    return f'{{"findings":[{findings}],{rest[1:]}'


def _value(value: str | bool | int | None) -> str:
    """``json.dumps(value)`` for the scalars of a finding (ASCII-safe)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return encode_basestring_ascii(value)


def _compact_findings(findings: list[Finding]) -> str:
    """The findings as ``json.dumps(..., separators=(",", ":"))`` writes them, faster.

    A report may hold thousands of findings, most sharing their rule, severity, file
    and hint: those are encoded once each; every other value goes through the same
    C string encoder :mod:`json` uses. Keys in the order of :meth:`Finding.to_dict`;
    tests/unit/test_render.py holds the text to ``json.dumps`` byte for byte.
    """
    encoded: dict[str | bool | int | None, str] = {}

    def shared(value: str) -> str:
        text = encoded.get(value)
        if text is None:
            text = encoded[value] = _value(value)
        return text

    quote = encode_basestring_ascii
    return ",".join(
        f'{{"rule":{shared(f.rule)},"severity":{shared(f.severity.value)},'
        f'"table":{_value(f.table)},"file":{shared(f.file)},'
        f'"line":{_value(f.line)},"column":{_value(f.column)},'
        f'"message":{quote(f.message)},"statement":{quote(f.statement)},'
        f'"hint":{shared(f.hint)},"suppressed":{_value(f.suppressed)},'
        f'"reason":{_value(f.reason)}}}'
        for f in findings
    )
