"""Alembic revision files outside any project: recognising them and rendering one
without its project's ``env.py`` (what ``check`` does with loose files).
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from migration_guard.alembic.offline.capture import unrenderable_statement
from migration_guard.alembic.offline.renderer import OfflineRenderer
from migration_guard.alembic.offline.sealed import no_database
from migration_guard.analysis.model import (
    Statement,
)

if TYPE_CHECKING:
    pass


_REVISION_FILE_LIMIT = 4 * 1024 * 1024
_REVISION_RE = re.compile(r"^revision\s*(?::[^=\n]*)?=", re.MULTILINE)
_UPGRADE_RE = re.compile(r"^def\s+upgrade\s*\(", re.MULTILINE)


@dataclass
class RenderedRevision:
    """The statements one revision produces, each pointing at its ``op.`` call."""

    revision: str
    down_revision: tuple[str, ...]
    path: str
    statements: list[Statement] = field(default_factory=list)


def is_revision_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an Alembic revision: a ``.py`` file with a module-level
    ``revision =`` assignment and a ``def upgrade``."""
    path = os.fspath(path)
    if not path.endswith(".py") or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as handle:
            text = handle.read(_REVISION_FILE_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_REVISION_RE.search(text) and _UPGRADE_RE.search(text))


def render_revision_file(path: str | os.PathLike[str], *, dialect: str) -> RenderedRevision:
    """Render one revision file offline for ``dialect`` without its project's ``env.py``.

    Errors while loading or running the revision become an ``unanalyzable`` statement.
    """
    path = os.path.abspath(os.fspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        module = _load_module(path)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        revision = RenderedRevision(revision=stem, down_revision=(), path=path)
        revision.statements.append(unrenderable_statement(path, stem, exc))
        return revision
    rev_id = str(getattr(module, "revision", None) or stem)
    rendered = RenderedRevision(revision=rev_id, down_revision=down_revisions(module), path=path)
    from alembic.config import Config

    with OfflineRenderer(dialect, Config()) as renderer:
        rendered.statements = renderer.render_module(module, path=path, unit=rev_id)
    return rendered


def down_revisions(module: ModuleType) -> tuple[str, ...]:
    """The revision's ``down_revision`` as a tuple (empty for a base revision)."""
    value = getattr(module, "down_revision", None)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(item) for item in value)
    except TypeError:
        return (str(value),)


def _load_module(path: str) -> ModuleType:
    name = f"_migration_guard_revision_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    with no_database():  # module-level code runs here too
        spec.loader.exec_module(module)
    return module
