"""Pieces shared by several renderers: the summary sentence and path handling."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from migration_guard.analysis.model import Report

# C0 controls, DEL and C1 controls: SQL files are untrusted input, and a table
# name holding an escape sequence must not be able to drive the user's terminal.
_CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` on one line with control characters (newlines included) escaped."""
    return text.translate(_CONTROL_CHARACTERS)


def plural(count: int, noun: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(report: Report) -> str:
    """One sentence such as ``2 errors, 1 warning, 1 suppressed in 14 statements (3 files)``."""
    counts = report.summary()
    parts = [
        plural(counts[key], noun)
        for key, noun in (("errors", "error"), ("warnings", "warning"), ("notes", "note"))
        if counts[key]
    ]
    if not parts:
        parts.append("no findings")
    if counts["suppressed"]:
        parts.append(f"{counts['suppressed']} suppressed")
    where = plural(counts["statements"], "statement")
    if counts["files"]:
        where += f" ({plural(counts['files'], 'file')})"
    return f"{', '.join(parts)} in {where}"


def relative_posix_path(path: str, base: Path | None = None) -> str | None:
    """``path`` relative to ``base`` (default: the working directory) with forward slashes.

    Returns ``None`` when the path lies outside ``base`` (callers then fall back
    to an absolute form). Relative input is taken as relative to ``base``.
    """
    root = Path.cwd() if base is None else base
    # Windows separators arrive even on POSIX when a report was built elsewhere.
    if "\\" in path and not PurePosixPath(path).is_absolute():
        path = PureWindowsPath(path).as_posix()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        relative = os.path.relpath(os.path.normpath(candidate), os.path.normpath(root))
    except ValueError:  # another drive on Windows
        return None
    relative_posix = PurePosixPath(*Path(relative).parts).as_posix()
    if relative_posix == ".." or relative_posix.startswith("../"):
        return None
    return relative_posix
