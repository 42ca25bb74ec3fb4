"""How ``backups list`` shows chains: each incremental under the backup it builds on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migration_guard.commands.backup import Manifest


def chain_order(manifests: list[Manifest]) -> list[Manifest]:
    """Newest first, each backup's incrementals (newest first) right under it."""
    listed = {m.id for m in manifests}
    children: dict[str, list[Manifest]] = {}
    for manifest in manifests:
        if manifest.parent in listed:
            children.setdefault(manifest.parent or "", []).append(manifest)
    ordered: list[Manifest] = []

    def add(manifest: Manifest) -> None:
        descendants: list[Manifest] = []
        pending = list(children.get(manifest.id, []))
        while pending:
            child = pending.pop(0)
            descendants.append(child)
            pending.extend(children.get(child.id, []))
        ordered.append(manifest)
        ordered.extend(sorted(descendants, key=lambda m: (m.started_at, m.id), reverse=True))

    for manifest in manifests:
        if manifest.parent not in listed:
            add(manifest)
    return ordered


def chain_text(manifest: Manifest, chain: dict[str, object]) -> str:
    """The type, and for an incremental the binlog range it covers and its parent."""
    if not manifest.parent:
        return manifest.type
    start = chain.get("binlog_start") or {}
    end = chain.get("binlog_end") or {}
    assert isinstance(start, dict) and isinstance(end, dict)
    root = chain.get("chain_root") or "BROKEN CHAIN"
    return (
        f"{manifest.type} of {manifest.parent} (chain {root}), {start.get('file')}:"
        f"{start.get('position')} -> {end.get('file')}:{end.get('position')}"
    )
