"""Driving Alembic from the inside: the patches that let the guard see a run.

:func:`hooked_alembic` wraps :meth:`EnvironmentContext.configure` and
:meth:`EnvironmentContext.run_migrations` for the duration of a guarded command, so
that the guard learns the connection the user's ``env.py`` really uses and prepares
before the first migration step. :func:`render_steps` renders the pending steps
offline in the middle of that real run, which needs Alembic's global proxies kept
and its "static SQL" logging silenced.
"""

from __future__ import annotations

import contextlib
import functools
import os
import types
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.results import PlannedRevision
from migration_guard.errors import BlockedStatement

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext

    from migration_guard.alembic.session import GuardSession
    from migration_guard.analysis.model import Statement


#: Runs of :func:`run_guarded` in progress in this process; the env.py guard steps aside
#: for them instead of guarding (and locking) the same run twice.
ACTIVE_RUNS: list[GuardSession] = []


@contextlib.contextmanager
def hooked_alembic(session: GuardSession) -> Iterator[None]:
    """Wrap ``EnvironmentContext.configure``/``run_migrations`` for the duration."""
    from alembic.runtime.environment import EnvironmentContext

    original_configure = EnvironmentContext.configure
    original_run = EnvironmentContext.run_migrations
    state = {"busy": False}

    def configure(self: EnvironmentContext, *args: Any, **kw: Any) -> None:
        if not state["busy"] and not kw.get("as_sql"):
            existing = kw.get("on_version_apply") or ()
            if callable(existing):
                existing = (existing,)
            kw["on_version_apply"] = (
                *tuple(existing),
                functools.partial(_refuse_after_block, session),
                session.on_version_apply,
            )
        original_configure(self, *args, **kw)

    def run_migrations(self: EnvironmentContext, **kw: Any) -> None:
        if state["busy"]:
            original_run(self, **kw)
            return
        state["busy"] = True
        try:
            guarded = session.prepare(self)
        finally:
            state["busy"] = False
        try:
            original_run(self, **kw)
            if guarded and session.interceptor is not None:
                session.interceptor.raise_if_blocked()  # before env.py commits
        except Exception as error:
            blocked = session.interceptor.blocked if session.interceptor is not None else None
            if guarded and blocked is not None and not isinstance(error, BlockedStatement):
                # The block is why the revision failed (the driver's refusal of a raw
                # write, or an error after the revision swallowed the block).
                raise blocked from error
            raise
        finally:
            if guarded:
                session.detach()

    EnvironmentContext.configure = configure  # type: ignore[method-assign]
    EnvironmentContext.run_migrations = run_migrations  # type: ignore[method-assign]
    try:
        yield
    finally:
        EnvironmentContext.configure = original_configure  # type: ignore[method-assign]
        EnvironmentContext.run_migrations = original_run  # type: ignore[method-assign]


def steps_once(
    steps_of: Callable[..., Iterable[Any]], heads: tuple[str, ...], steps: list[Any]
) -> Callable[..., Iterable[Any]]:
    """Alembic's step function, answering its first question with the plan's ``steps``.

    When it runs, Alembic asks again for the steps from the heads it reads (under the
    guard's lock: the ones the plan started from); walking the revision map a second
    time would give the same steps. Other heads, or a second run, get a fresh answer.
    """
    pending = [steps]

    def migrations_fn(current: Sequence[str], context: Any) -> Iterable[Any]:
        if pending and tuple(current) == heads:
            return list(pending.pop())
        return steps_of(current, context)

    return migrations_fn


def _refuse_after_block(session: GuardSession, **_kw: Any) -> None:
    """Alembic callback after each revision step, before its transaction commits: a
    revision that caught a :class:`~migration_guard.errors.BlockedStatement` fails here."""
    if session.interceptor is not None:
        session.interceptor.raise_if_blocked()


@contextlib.contextmanager
def _preserved_alembic_proxies() -> Iterator[None]:
    """Keep Alembic's global ``context``/``op`` proxies as they are across the block.

    Offline rendering installs (and on exit removes) its own proxies; the real run,
    which is in progress around it, needs its own back.
    """
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext

    saved: list[tuple[MutableMapping[str, Any], dict[str, Any], set[str]]] = []
    for cls in (EnvironmentContext, Operations):
        attr_names, modules = cls._setups[cls]  # type: ignore[attr-defined]
        for globals_, _locals in modules:
            keys = {"_proxy", *attr_names}
            saved.append((globals_, {k: globals_[k] for k in keys if k in globals_}, keys))
    try:
        yield
    finally:
        for globals_, values, keys in saved:
            for key in keys:
                if key in values:
                    globals_[key] = values[key]
                else:
                    globals_.pop(key, None)


@contextlib.contextmanager
def _quiet_alembic_logs() -> Iterator[None]:
    """Offline rendering would log "Generating static SQL" as if the user ran ``--sql``."""
    import logging

    logger = logging.getLogger("alembic.runtime.migration")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def render_steps(
    environment: EnvironmentContext, steps: Sequence[Any], dialect: str
) -> tuple[list[PlannedRevision], list[Statement], dict[str, str]]:
    """The plan of ``steps``: per step the SQL it renders to offline, all statements
    for the analysis and the source of each revision file (for inline suppressions)."""
    from migration_guard.alembic.offline import OfflineRenderer

    plan: list[PlannedRevision] = []
    statements: list[Statement] = []
    sources: dict[str, str] = {}
    with (
        _preserved_alembic_proxies(),
        _quiet_alembic_logs(),
        OfflineRenderer(dialect, environment.config, environment.script) as renderer,
    ):
        for step in steps:
            script = step.revision
            if script is None:
                continue
            path = _display_path(script.path)
            direction = "upgrade" if step.is_upgrade else "downgrade"
            module = script.module if step.is_upgrade else _downgrade_shim(script.module)
            rendered = renderer.render_module(module, path=path, unit=script.revision)
            statements.extend(rendered)
            with contextlib.suppress(OSError):
                sources[path] = Path(script.path).read_text(encoding="utf-8", errors="replace")
            plan.append(
                PlannedRevision(script.revision, direction, path, [s.sql.strip() for s in rendered])
            )
    return plan, statements, sources


def _display_path(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _downgrade_shim(module: types.ModuleType) -> types.ModuleType:
    """A stand-in module whose ``upgrade()`` is ``module.downgrade()``, for rendering."""
    shim = types.ModuleType(module.__name__ + "_downgrade")
    shim.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    downgrade = getattr(module, "downgrade", None)
    shim.upgrade = downgrade  # type: ignore[attr-defined]
    return shim
