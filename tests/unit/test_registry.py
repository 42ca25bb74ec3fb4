"""Every extension point is one registry whose built-ins are also entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from migration_guard.errors import UnknownNameError
from migration_guard.registry import Registry


def registries() -> list[Registry[object]]:
    from migration_guard.backup.backends import BACKENDS
    from migration_guard.backup.storage import STORAGES
    from migration_guard.dialects import DIALECT_OPS
    from migration_guard.monitoring.health import HEALTH_CHECKS
    from migration_guard.monitoring.notify import NOTIFIERS
    from migration_guard.protect import PROTECTORS

    return [BACKENDS, DIALECT_OPS, HEALTH_CHECKS, NOTIFIERS, PROTECTORS, STORAGES]  # type: ignore[list-item]


def test_builtins_are_declared_as_entry_points() -> None:
    for registry in registries():
        declared = {e.name: e.value for e in entry_points(group=registry.group)}
        for name in registry.names():
            assert name in declared, f"{registry.group}: {name} is not an entry point"
            assert registry.get(name) is not None


def test_unknown_name_lists_the_known_ones() -> None:
    registry: Registry[object] = Registry("migration_guard.test_nothing", "widget", {"a": "os:sep"})
    with pytest.raises(UnknownNameError) as caught:
        registry.get("b")
    assert str(caught.value) == "unknown widget 'b'; known widgets: a"
    assert caught.value.exit_code == 2


def test_members_load_lazily_and_can_be_registered() -> None:
    import os

    registry: Registry[object] = Registry("migration_guard.none", "widget", {"sep": "os:sep"})

    assert registry.get("sep") == os.sep
    registry.register("extra", 42)
    assert registry.get("extra") == 42
    assert registry.names() == ["extra", "sep"]
    assert "extra" in registry
