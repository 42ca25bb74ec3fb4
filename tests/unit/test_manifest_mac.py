"""The manifest MAC: stable across the JSON round trip the catalog makes, blind to the
mutable state (verification, drills), and broken by any other edit."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup.manifest import (
    MAC_SCHEME,
    NO_MAC_SCHEME,
    Artifact,
    Encryption,
    Manifest,
    TableEntry,
    Verification,
    mac_matches,
    seal_manifest,
)

KEY = os.urandom(32)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def manifest(**changes: Any) -> Manifest:
    base = Manifest(
        id="20250101T000000Z-full-abcdef",
        type="full",
        source_url="mysql+pymysql://app@db/shop",
        dialect="mysql",
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:01:00Z",
        artifact=Artifact(
            "20250101T000000Z-full-abcdef.mgb",
            1234,
            "ab" * 32,
            "zstd",
            Encryption("0123456789abcdef"),
            "mysql-sql",
            5678,
        ),
        backend="mysqldump",
        tool_version="0.1.0",
        created_by="ops@host",
        tables={
            "customers": TableEntry(rows=3, checksum=42, size=100, ddl_sha256="cd" * 32),
            "zoë 😀": TableEntry(rows=0, checksum="x", content_sha256="ef" * 32),
        },
        extra={"database_options": {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"}},
    )
    return dataclasses.replace(base, **changes)


def round_trip(item: Manifest) -> Manifest:
    return Manifest.from_json(item.to_json())


@settings(max_examples=60, deadline=None)
@given(labels=st.dictionaries(st.text(max_size=10), json_values, max_size=4), extra=json_values)
def test_mac_survives_the_json_round_trip(labels: dict[str, Any], extra: Any) -> None:
    item = manifest(labels=labels, extra={"database_options": {}, "more": extra})
    seal_manifest(item, KEY)
    assert item.authentication is not None and item.authentication["scheme"] == MAC_SCHEME
    assert mac_matches(round_trip(item), KEY)
    assert mac_matches(round_trip(round_trip(item)), KEY)


def test_mutable_state_is_outside_the_mac() -> None:
    item = manifest()
    seal_manifest(item, KEY)
    loaded = round_trip(item)
    loaded.verification = Verification(last_verified_at="2025-02-01T00:00:00Z", level=2, ok=True)
    loaded.extra["last_drill"] = {"ok": False, "seconds": 1.5}
    assert mac_matches(round_trip(loaded), KEY)


def test_every_other_edit_breaks_the_mac() -> None:
    item = manifest()
    seal_manifest(item, KEY)
    text = item.to_json()
    edits = {
        '"rows": 3': '"rows": 4',
        '"charset": "utf8mb4"': '"charset": "latin1"',
        '"size": 1234': '"size": 1235',
        '"type": "full"': '"type": "safety"',
        '"key_fingerprint": "0123456789abcdef"': '"key_fingerprint": "fedcba9876543210"',
        '"labels": {}': '"labels": {"x": 1}',
    }
    for old, new in edits.items():
        assert old in text, old
        assert not mac_matches(Manifest.from_json(text.replace(old, new)), KEY), old
    assert not mac_matches(round_trip(item), os.urandom(32))


def test_unencrypted_manifests_are_marked_and_never_match() -> None:
    item = manifest()
    seal_manifest(item, None)
    assert item.authentication == {"scheme": NO_MAC_SCHEME}
    assert json.loads(item.to_json())["authentication"] == {"scheme": NO_MAC_SCHEME}
    assert not mac_matches(round_trip(item), KEY)
    legacy = manifest()
    assert legacy.authentication is None
    assert "authentication" in json.loads(legacy.to_json())
    assert round_trip(legacy).authentication is None
