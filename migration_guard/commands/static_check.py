"""``check``: static analysis of pending migrations before they run."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from migration_guard.analysis.model import Report, Statement
from migration_guard.config import Config, Dialect, normalise_dialect
from migration_guard.errors import InputError, translate

STDIN = "-"
STDIN_NAME = "<stdin>"
#: The dialect SQL is read in when neither --dialect, the configuration nor alembic.ini names one.
DEFAULT_DIALECT = Dialect.MYSQL.value
#: Directory names never descended into when a directory is checked.
SKIPPED_DIRECTORIES = frozenset(
    {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}
)


@dataclass
class _Inputs:
    """Statements to analyse and the text of every file they came from."""

    statements: list[Statement] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _display_path(path: str) -> str:
    """Paths relative to the working directory when below it, as editors and CI expect."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path


def _read_text(path: str) -> str:
    with translate({OSError: InputError}, doing="cannot read"), open(path, "rb") as handle:
        data = handle.read()
    # Migration files are UTF-8 by convention; a stray byte must not stop the check.
    return data.decode("utf-8", errors="replace")


def _expand(paths: Sequence[str], exclude: Sequence[str]) -> Iterator[str]:
    """Files to check (``-``: stdin), in a stable order. Every missing path is an error
    before any work. Plain strings and :mod:`os.path`: a check never imports
    :mod:`pathlib`, whose import costs more than a short check's own work."""
    missing = [p for p in paths if p != STDIN and not os.path.exists(p)]
    if missing:
        raise InputError(
            f"path not found: {', '.join(missing)}; check the spelling or run from the project root"
        )
    for raw in paths:
        if raw == STDIN:
            yield STDIN
            continue
        if os.path.isfile(raw):
            yield raw
            continue
        for root, dirs, files in os.walk(raw):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES)
            for name in sorted(files):
                candidate = os.path.join(root, name)
                shown = _display_path(candidate)
                if any(fnmatch.fnmatch(shown, pattern) for pattern in exclude):
                    continue
                if name.endswith(".sql") or (name.endswith(".py") and _is_revision(candidate)):
                    yield candidate


def _is_revision(path: str) -> bool:
    # Imported on demand: plain .sql input never loads the Alembic support.
    from pathlib import Path

    from migration_guard.alembic.plan import is_revision_file

    return is_revision_file(Path(path))


def _collect_paths(
    paths: Sequence[str], *, dialect: str, exclude: Sequence[str], stdin_text: str | None
) -> _Inputs:
    from migration_guard.analysis.splitter import split_sql

    inputs = _Inputs()
    for item in _expand(paths, exclude):
        if item == STDIN:
            text = stdin_text if stdin_text is not None else _read_stdin()
            inputs.sources[STDIN_NAME] = text
            inputs.files.append(STDIN_NAME)
            inputs.statements.extend(
                split_sql(text, file=STDIN_NAME, dialect=dialect, unit=STDIN_NAME)
            )
            continue
        shown = _display_path(item)
        text = _read_text(item)
        inputs.sources[shown] = text
        inputs.files.append(shown)
        if item.endswith(".py"):
            from migration_guard.alembic.plan import render_revision_file

            rendered = render_revision_file(shown, dialect=dialect)
            inputs.statements.extend(rendered.statements)
        else:
            inputs.statements.extend(split_sql(text, file=shown, dialect=dialect, unit=shown))
    return inputs


def _read_stdin() -> str:
    import sys

    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


def _collect_alembic(
    alembic_config: str, *, dialect: str | None, range_: str | None
) -> tuple[_Inputs, str]:
    from migration_guard.alembic.plan import dialect_from_config, load_alembic_config, render_range

    cfg = load_alembic_config(alembic_config)
    chosen = dialect or dialect_from_config(cfg) or DEFAULT_DIALECT
    plan = render_range(cfg, range_=range_, dialect=chosen)
    inputs = _Inputs(notes=list(plan.notes))
    for revision in plan.revisions:
        path = os.fspath(revision.path)
        shown = _display_path(path)
        inputs.files.append(shown)
        inputs.sources[shown] = _read_text(path)
    inputs.statements = [_relative_statement(s) for s in plan.statements]
    return inputs, chosen


def _relative_statement(statement: Statement) -> Statement:
    import dataclasses

    shown = _display_path(statement.file)
    return statement if shown == statement.file else dataclasses.replace(statement, file=shown)


def check(
    config: Config,
    paths: Sequence[str] = (),
    *,
    alembic_config: str | None = None,
    range_: str | None = None,
    dialect: str | None = None,
    protect: Iterable[str] = (),
    stdin_text: str | None = None,
) -> Report:
    """Analyse migrations and return every finding.

    With ``paths`` (``.sql`` files, Alembic revision files, directories, or
    ``-`` for stdin) those are analysed; without, the Alembic project named by
    ``alembic_config`` (default: the configured ``alembic.ini``) is rendered
    offline for ``range_`` (default: the database's current revision to head,
    or ``base:head`` when the database cannot be reached).

    Raises :class:`~migration_guard.errors.UsageError` subclasses for bad input;
    never raises for SQL it cannot understand (that becomes an ``unanalyzable``
    finding).
    """
    from migration_guard.analysis.analyzer import analyze

    chosen_dialect = normalise_dialect(dialect) if dialect else config.dialect
    if paths:
        if range_:
            raise InputError("--range applies to an Alembic project; do not combine it with PATHS")
        chosen_dialect = chosen_dialect or DEFAULT_DIALECT
        inputs = _collect_paths(
            paths, dialect=chosen_dialect, exclude=config.exclude, stdin_text=stdin_text
        )
    else:
        inputs, chosen_dialect = _collect_alembic(
            alembic_config or config.alembic_config, dialect=chosen_dialect, range_=range_
        )
    protected = config.protected.with_patterns(protect)
    report = analyze(
        inputs.statements, dialect=chosen_dialect, protected=protected, sources=inputs.sources
    )
    report.notes[:0] = inputs.notes
    report.files = inputs.files
    return report
