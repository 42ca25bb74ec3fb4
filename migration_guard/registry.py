"""One registry per extension point, built-ins included, loaded from entry points.

Built-in members are declared as entry points in ``pyproject.toml`` exactly like
third-party ones. ``builtins`` repeats them so that a source checkout that was
never installed still works.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from migration_guard.errors import UnknownNameError

T = TypeVar("T")


def _load_reference(reference: str) -> object:
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


class Registry(Generic[T]):
    """Named members of one extension point.

    ``kind`` is used in error messages ("unknown backend 'x'; known backends: ...").
    Members are loaded on first use so that listing names never imports them.
    """

    def __init__(self, group: str, kind: str, builtins: Mapping[str, str]) -> None:
        self.group = group
        self.kind = kind
        self._references: dict[str, str] = dict(builtins)
        self._loaded: dict[str, T] = {}
        self._entry_points_read = False

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        # Imported here: scanning the installed distributions is slow, and a
        # built-in member (the common case) never needs it.
        from importlib.metadata import entry_points

        for entry_point in entry_points(group=self.group):
            self._references.setdefault(entry_point.name, entry_point.value)

    def register(self, name: str, member: T) -> None:
        """Register ``member`` under ``name`` at run time (tests, plugins)."""
        self._loaded[name] = member

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(set(self._references) | set(self._loaded))

    def get(self, name: str) -> T:
        """The member called ``name``; :class:`UnknownNameError` lists the known ones."""
        if name in self._loaded:
            return self._loaded[name]
        reference = self._references.get(name)
        if reference is None:
            # Entry points never replace a built-in (see _read_entry_points), so they are
            # read (a scan of every installed distribution) only for another name.
            self._read_entry_points()
            reference = self._references.get(name)
        if reference is None:
            raise UnknownNameError(self.kind, name, self.names())
        member: T = _load_reference(reference)  # type: ignore[assignment]
        self._loaded[name] = member
        return member

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
