"""The revisions ``check`` looks at, rendered offline with their ``op.`` call sites.

``load_alembic_config`` reads ``alembic.ini`` the way ``alembic -c`` does,
``render_range`` walks the revisions between the database's current heads (or ``base``)
and the target in upgrade order and renders each with
:class:`~migration_guard.alembic.offline.OfflineRenderer`. The user's ``env.py`` is never
run: rendering needs no database and is faster than ``alembic upgrade --sql``.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.offline import (
    OfflineRenderer,
    RenderedRevision,
    down_revisions,
    is_revision_file,
    render_revision_file,
    unrenderable_statement,
)
from migration_guard.alembic.offline.sealed import no_database
from migration_guard.analysis.model import Statement
from migration_guard.config import DIALECT_ALIASES, DIALECTS
from migration_guard.errors import AlembicConfigError, RevisionRangeError, translate

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

_SCRIPT_ATTRIBUTE = "migration_guard.script_directory"
_BROKEN_ATTRIBUTE = "migration_guard.broken_revision_files"
UNREACHABLE_NOTE = "database not reachable; checking base:head"
DEFAULT_CONNECT_TIMEOUT = 3


@dataclass
class RenderedPlan:
    """Every statement of the revisions in ``range``, in upgrade order."""

    revisions: list[RenderedRevision]
    statements: list[Statement]
    notes: list[str] = field(default_factory=list)
    dialect: str = ""
    range: str = ""


# --------------------------------------------------------------------------- config


def load_alembic_config(path: str | os.PathLike[str]) -> Config:
    """Load ``alembic.ini`` (and a neighbouring ``pyproject.toml`` ``[tool.alembic]``).

    Raises :class:`AlembicConfigError` when the file is missing or unreadable, has no
    ``script_location``, or the script directory cannot be loaded.
    """
    from alembic.config import Config
    from alembic.util import CommandError

    ini = Path(path)
    if not ini.is_file():
        raise AlembicConfigError(
            f"Alembic config file not found: {ini}. Pass the path of your alembic.ini "
            "with -c/--config (the default is ./alembic.ini)."
        )
    toml = ini.parent / "pyproject.toml"
    config = Config(str(ini), toml_file=str(toml) if toml.is_file() else None)
    try:
        location = config.get_alembic_option("script_location")
    except configparser.ParsingError as exc:
        if isinstance(exc, configparser.MissingSectionHeaderError):
            numbers = [exc.lineno]
        else:
            numbers = [entry[0] for entry in getattr(exc, "errors", [])]
        lines = ", ".join(str(number) for number in numbers) or "?"
        raise AlembicConfigError(
            f"{ini} is not a valid INI file (cannot parse line(s) {lines}); "
            "fix the file or point -c/--config at your alembic.ini."
        ) from exc
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AlembicConfigError(
            f"{ini} is not a valid INI file ({first_line}); "
            "fix the file or point -c/--config at your alembic.ini."
        ) from exc
    except (CommandError, UnicodeDecodeError) as exc:
        raise AlembicConfigError(
            f"{ini} has no [alembic] section with a script_location; "
            "point -c/--config at your project's alembic.ini."
        ) from exc
    if not location:
        raise AlembicConfigError(
            f"{ini} has no script_location in its [alembic] section; add "
            "'script_location = %(here)s/migrations' (or where your migrations live)."
        )
    script = _script_directory(config, ini)
    config.attributes[_SCRIPT_ATTRIBUTE] = script
    return config


def _script_directory(config: Config, ini: Path) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(config)
    except Exception as exc:
        raise AlembicConfigError(
            f"cannot load the Alembic script directory named by {ini}: {exc}. "
            "Check script_location (it is relative to the current directory unless it "
            "uses %(here)s)."
        ) from exc
    if not os.path.isfile(os.path.join(script.dir, "env.py")):
        raise AlembicConfigError(
            f"{script.dir} has no env.py, so it is not an Alembic script directory; "
            f"check script_location in {ini}."
        )
    broken: list[tuple[str, BaseException]] = []
    config.attributes[_BROKEN_ATTRIBUTE] = broken
    # Loading revisions imports every file; one broken file must not hide the others.
    from alembic.script.revision import RevisionMap

    script.revision_map = RevisionMap(lambda: _load_revisions_tolerantly(script, broken))
    return script


def _script(config: Config) -> ScriptDirectory:
    script = config.attributes.get(_SCRIPT_ATTRIBUTE)
    if script is None:
        ini = Path(config.config_file_name or "alembic.ini")
        script = _script_directory(config, ini)
        config.attributes[_SCRIPT_ATTRIBUTE] = script
    return script  # type: ignore[no-any-return]


def dialect_from_config(config: Config) -> str | None:
    """The dialect named by ``sqlalchemy.url`` (``mysql``, ``mariadb``, ``postgresql``,
    ``sqlite``), or None when the URL is absent, unparseable or another database."""
    try:
        url = config.get_main_option("sqlalchemy.url")
    except Exception:
        return None
    return dialect_from_url(url)


def dialect_from_url(url: str | None) -> str | None:
    """The dialect of a SQLAlchemy URL string, or None (see :func:`dialect_from_config`)."""
    if not url:
        return None
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception:
        return None
    # Only the dialects ``check`` can render for; anything else is "not known".
    name = backend.lower()
    name = DIALECT_ALIASES.get(name, name)
    return name if name in DIALECTS else None


# --------------------------------------------------------------------------- loading


_REVISION_ASSIGNMENT = re.compile(
    r"^revision\s*(?::[^=\n]*)?=\s*(?P<value>['\"][^'\"\n]+['\"])", re.MULTILINE
)
_DOWN_ASSIGNMENT = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(?P<value>.+)$", re.MULTILINE)


def _load_revisions_tolerantly(
    script: ScriptDirectory, broken: list[tuple[str, BaseException]]
) -> Iterator[Script]:
    """``ScriptDirectory._load_revisions``, with files that fail to import kept in the
    revision map as placeholders whose ``upgrade()`` re-raises the import error."""
    from alembic.script import Script

    seen: set[Path] = set()
    for location in script._version_locations:
        if not location.exists():
            continue
        for file_path in Script._list_py_dir(script, location):
            real_path = Path(file_path).resolve()
            if real_path in seen:
                continue
            seen.add(real_path)
            try:
                with no_database():  # module-level code must not reach a database either
                    loaded = Script._from_path(script, real_path)
            except Exception as exc:
                loaded = _placeholder_script(real_path, exc)
                if loaded is None:
                    broken.append((str(real_path), exc))
            if loaded is not None:
                yield loaded


def _placeholder_script(path: Path, error: BaseException) -> Script | None:
    from alembic.script import Script

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _REVISION_ASSIGNMENT.search(text)
    if not found:
        return None
    try:
        revision = str(ast.literal_eval(found.group("value")))
    except (ValueError, SyntaxError):
        return None
    down: Any = None
    found_down = _DOWN_ASSIGNMENT.search(text)
    if found_down:
        try:
            down = ast.literal_eval(found_down.group("value").split("#", 1)[0].strip())
        except (ValueError, SyntaxError):
            down = None
    module = types.ModuleType(f"_migration_guard_broken_{path.stem}")
    module.revision = revision  # type: ignore[attr-defined]
    module.down_revision = down  # type: ignore[attr-defined]
    module.branch_labels = None  # type: ignore[attr-defined]
    module.depends_on = None  # type: ignore[attr-defined]
    module.__migration_guard_load_error__ = error  # type: ignore[attr-defined]
    return Script(module, revision, str(path))


# --------------------------------------------------------------------------- ranges


def render_range(
    config: Config,
    *,
    range_: str | None,
    dialect: str,
    url: str | None = None,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
) -> RenderedPlan:
    """Render the revisions of ``range_`` (``FROM:TO`` as Alembic spells it) offline.

    With ``range_`` None the range starts at the database's current revision(s) when the
    database at ``url`` (default ``sqlalchemy.url``) can be reached, else at ``base`` with
    a note. Unknown revisions raise :class:`RevisionRangeError` naming the known heads.
    """
    script = _script(config)
    notes: list[str] = []
    heads = _heads(script)
    if range_ is None:
        database_url = url if url is not None else _configured_url(config)
        current = database_heads(database_url, timeout=connect_timeout)
        if current is None:
            notes.append(UNREACHABLE_NOTE)
            lower: tuple[str, ...] = ()
            label = "base:head"
        else:
            lower = current
            label = f"{','.join(current) or 'base'}:heads"
        upper = "heads"
    else:
        lower, upper = _parse_range(range_)
        label = range_
    scripts = _upgrade_order(script, lower, upper, range_ if range_ is not None else label, heads)

    revisions: list[RenderedRevision] = []
    broken = config.attributes.get(_BROKEN_ATTRIBUTE) or []
    for path, error in broken:
        unit = os.path.splitext(os.path.basename(path))[0]
        broken_revision = RenderedRevision(revision=unit, down_revision=(), path=path)
        broken_revision.statements.append(unrenderable_statement(path, unit, error))
        revisions.append(broken_revision)
        notes.append(f"{path} could not be loaded as an Alembic revision")
    if scripts:
        with OfflineRenderer(dialect, config, script) as renderer:
            for item in scripts:
                rendered = RenderedRevision(
                    revision=item.revision,
                    down_revision=down_revisions(item.module),
                    path=item.path,
                )
                rendered.statements = renderer.render_module(
                    item.module, path=item.path, unit=item.revision
                )
                revisions.append(rendered)
    statements = [statement for revision in revisions for statement in revision.statements]
    return RenderedPlan(
        revisions=revisions, statements=statements, notes=notes, dialect=dialect, range=label
    )


def _configured_url(config: Config) -> str | None:
    try:
        return config.get_main_option("sqlalchemy.url")
    except Exception:
        return None


def _heads(script: ScriptDirectory) -> tuple[str, ...]:
    with translate(
        {Exception: AlembicConfigError},
        doing=f"the Alembic revisions in {script.dir} cannot be loaded",
    ):
        return tuple(script.get_heads())


def _parse_range(range_: str) -> tuple[tuple[str, ...], str]:
    text = range_.strip()
    if ":" in text:
        lower_text, upper = (part.strip() for part in text.split(":", 1))
    else:
        lower_text, upper = "base", text
    lower = tuple(
        part.strip()
        for part in lower_text.split(",")
        if part.strip() and part.strip().lower() != "base"
    )
    return lower, upper or "heads"


def _upgrade_order(
    script: ScriptDirectory,
    lower: tuple[str, ...],
    upper: str,
    range_label: str,
    heads: tuple[str, ...],
) -> list[Script]:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    if upper == "head" and len(heads) > 1:
        # Alembic refuses "head" with several heads; checking all of them is what is meant.
        upper = "heads"
    known = ", ".join(heads) or "(none: the project has no revisions)"
    try:
        walked = list(
            script.revision_map.iterate_revisions(upper, lower or None, implicit_base=True)
        )
    except (CommandError, RevisionError, KeyError, ValueError) as exc:
        raise RevisionRangeError(
            f"revision range {range_label!r} does not exist in {script.dir}: {exc}. "
            f"Known heads: {known}. Use --range FROM:TO such as base:head."
        ) from exc
    if not walked and lower:
        try:
            resolved = script.revision_map.get_revisions(upper)
        except Exception:
            resolved = ()
        targets = {str(getattr(item, "revision", item)) for item in resolved if item is not None}
        if not targets <= set(lower):
            raise RevisionRangeError(
                f"revision range {range_label!r} goes backwards: {upper} is older than "
                f"{','.join(lower)}; check's range is FROM:TO in upgrade order. "
                f"Known heads: {known}."
            )
    return [item for item in reversed(walked) if item is not None]  # type: ignore[misc]


def database_heads(
    url: str | None, *, timeout: int = DEFAULT_CONNECT_TIMEOUT
) -> tuple[str, ...] | None:
    """The revisions the database at ``url`` is at (``()`` for an empty database), or None
    when it cannot be reached quickly. A SQLite file that does not exist is unreachable
    (connecting would create it)."""
    if not url:
        return None
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.pool import NullPool

    from migration_guard.dialects import get_dialect_ops

    try:
        parsed = sa.engine.make_url(url)
        connect_args = get_dialect_ops(parsed.get_backend_name()).probe_connect_args(
            parsed, timeout
        )
    except Exception:  # an unknown or unparsable URL is simply unreachable here
        return None
    if connect_args is None:
        return None
    engine = None
    try:
        engine = sa.create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    except Exception:
        return None
    finally:
        if engine is not None:
            engine.dispose()


__all__ = [
    "UNREACHABLE_NOTE",
    "RenderedPlan",
    "RenderedRevision",
    "database_heads",
    "dialect_from_config",
    "dialect_from_url",
    "is_revision_file",
    "load_alembic_config",
    "render_range",
    "render_revision_file",
]
