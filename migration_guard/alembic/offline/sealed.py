"""No real database is reachable from revision code while it is rendered offline.

``check``, ``upgrade --dry-run`` and the planning step of ``upgrade`` run each revision's
``upgrade()`` against an offline context. A revision that opens a database of its own
(``sa.create_engine(os.environ["DATABASE_URL"])``, ``engine.connect()``,
``sqlite3.connect(path)``) would otherwise run its statements for real while it is
only being looked at. Inside :func:`no_database`, on the thread that entered it, these
calls raise :class:`OfflineDatabaseAccess` instead; the renderer turns that into an
``unanalyzable`` finding at the revision's line. In-memory SQLite stays allowed: it is
no one's data.

The patches are installed once for all threads (reference-counted under a lock) and
act only where a :class:`contextvars.ContextVar` says the code is being rendered, so
the guard's own connections on other threads are untouched; they are removed when the
last block exits, on success or error.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["OfflineDatabaseAccess", "no_database", "patches_installed"]


class OfflineDatabaseAccess(RuntimeError):
    """Revision code tried to reach a real database while it was rendered offline."""


#: The refusals of the innermost :func:`no_database` block of this context (None outside).
_SEALED: contextvars.ContextVar[list[OfflineDatabaseAccess] | None] = contextvars.ContextVar(
    "migration_guard_offline_sealed", default=None
)
_LOCK = threading.Lock()
_installed: list[tuple[Any, str, Any]] = []
_depth = 0
#: DBAPI modules whose ``connect`` is sealed when they are loaded.
_DBAPI_MODULES = (
    "sqlite3",
    "sqlite3.dbapi2",
    "pymysql",
    "MySQLdb",
    "mariadb",
    "psycopg2",
    "psycopg",
)


@contextlib.contextmanager
def no_database() -> Iterator[list[OfflineDatabaseAccess]]:
    """Refuse every real database connection made on this thread inside the block.

    Yields the list of refusals, which stays filled when revision code caught the
    error and carried on.
    """
    refusals: list[OfflineDatabaseAccess] = []
    token = _SEALED.set(refusals)
    _install()
    try:
        yield refusals
    finally:
        _uninstall()
        _SEALED.reset(token)


@contextlib.contextmanager
def patches_installed() -> Iterator[None]:
    """Keep the patches installed across the :func:`no_database` blocks inside (one
    install instead of one per block); they refuse nothing outside those blocks."""
    _install()
    try:
        yield
    finally:
        _uninstall()


def _refuse(what: str) -> OfflineDatabaseAccess:
    error = OfflineDatabaseAccess(
        f"the revision called {what} while migration-guard rendered it offline; a revision "
        "must not open a database connection of its own (use op.get_bind(), which the "
        "guard sees), so it cannot be analysed and nothing was run"
    )
    refusals = _SEALED.get()
    if refusals is not None:
        refusals.append(error)
    return error


def _in_memory(url: Any) -> bool:
    """Whether ``url`` names an in-memory SQLite database (no one's data)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return False
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    )


def _sealed_create_engine(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_engine(url: Any, *args: Any, **kw: Any) -> Any:
        if _SEALED.get() is not None and not _in_memory(url):
            raise _refuse("sqlalchemy.create_engine()")
        return original(url, *args, **kw)

    return create_engine


def _sealed_engine_method(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kw: Any) -> Any:
        if _SEALED.get() is not None and not _in_memory(self.url):
            raise _refuse(f"Engine.{name}()")
        return original(self, *args, **kw)

    return method


def _sealed_dbapi_connect(original: Callable[..., Any], module: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def connect(*args: Any, **kw: Any) -> Any:
        database = args[0] if args else kw.get("database")
        memory = module.startswith("sqlite3") and database in (":memory:", "")
        if _SEALED.get() is not None and not memory:
            raise _refuse(f"{module}.connect()")
        return original(*args, **kw)

    return connect


def _dbapi_patches() -> list[tuple[Any, str, Any]]:
    """The ``connect`` of each database driver loaded now and not sealed yet."""
    sealed = {id(owner) for owner, _name, _original in _installed}
    patches: list[tuple[Any, str, Any]] = []
    for module_name in _DBAPI_MODULES:
        module = sys.modules.get(module_name)
        connect = getattr(module, "connect", None) if module is not None else None
        if callable(connect) and id(module) not in sealed:
            patches.append((module, "connect", _sealed_dbapi_connect(connect, module_name)))
    return patches


def _patches() -> list[tuple[Any, str, Any]]:
    import sqlite3  # noqa: F401  (always sealed: a revision can open a file directly)

    import sqlalchemy
    import sqlalchemy.engine
    import sqlalchemy.engine.create
    from sqlalchemy.engine import Engine

    patches: list[tuple[Any, str, Any]] = []
    original = sqlalchemy.engine.create.create_engine
    wrapped = _sealed_create_engine(original)
    for owner in (sqlalchemy, sqlalchemy.engine, sqlalchemy.engine.create):
        if getattr(owner, "create_engine", None) is original:
            patches.append((owner, "create_engine", wrapped))
    for name in ("connect", "begin", "raw_connection"):
        method = Engine.__dict__.get(name)
        if method is not None:
            patches.append((Engine, name, _sealed_engine_method(method, name)))
    return patches + _dbapi_patches()


def _install() -> None:
    global _depth
    with _LOCK:
        _depth += 1
        try:
            # Already installed: only a driver loaded since then is new to seal.
            for owner, name, replacement in _patches() if _depth == 1 else _dbapi_patches():
                _installed.append((owner, name, getattr(owner, name)))
                setattr(owner, name, replacement)
        except BaseException:
            if _depth == 1:
                _restore()
            _depth -= 1
            raise


def _uninstall() -> None:
    global _depth
    with _LOCK:
        _depth -= 1
        if _depth == 0:
            _restore()


def _restore() -> None:
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)
