"""The first pass of an all-or-nothing restore: ``archive.authenticate`` over a whole archive.

It must find every damage a full read finds (without decompressing), hand back the
manifest key the writer used, and expose the header's ``manifest_mac`` announcement.
"""

from __future__ import annotations

import io
import random

import pytest

from migration_guard.backup import archive
from migration_guard.backup.keys import UserKey
from migration_guard.errors import ArchiveError
from tests.unit.test_archive import KEY, OTHER_KEY, SMALL_CHUNK, make, reason_of, sample


def authenticate_reason(blob: bytes, key: UserKey | None) -> str:
    with pytest.raises(ArchiveError) as caught:
        archive.authenticate(io.BytesIO(blob), key=key)
    return caught.value.reason


@pytest.mark.parametrize("key", [KEY, None], ids=["encrypted", "plain"])
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_authenticate_accepts_an_intact_archive(key: UserKey | None, compression: str) -> None:
    data = sample(5 * SMALL_CHUNK + 123)
    blob = make(data, key=key, compression=compression)
    checked = archive.authenticate(io.BytesIO(blob), key=key)
    assert checked.plain_bytes == len(data)
    assert checked.header.backup_id == "b-1"
    if key is None:
        assert checked.manifest_key is None and checked.header.manifest_mac is None
    else:
        assert checked.header.manifest_mac == archive.MANIFEST_MAC
        assert checked.manifest_key is not None and len(checked.manifest_key) == 32


def test_manifest_key_is_the_writers_and_differs_per_archive() -> None:
    out = io.BytesIO()
    with archive.open_writer(out, backup_id="b-1", key=KEY) as writer:
        writer.write(b"data")
    with archive.open_reader(io.BytesIO(out.getvalue()), key=KEY) as reader:
        assert reader.manifest_key == writer.manifest_key
    other = make(b"data", key=KEY)
    assert archive.authenticate(io.BytesIO(other), key=KEY).manifest_key != writer.manifest_key


@pytest.mark.parametrize("key", [KEY, None], ids=["encrypted", "plain"])
def test_authenticate_finds_what_a_full_read_finds(key: UserKey | None) -> None:
    rng = random.Random(7)
    blob = make(sample(6 * SMALL_CHUNK), key=key)
    cases = {
        "cut": blob[: len(blob) * 6 // 10],
        "cut at a chunk edge": blob[:-40],
        "appended": blob + b"more",
        "chunks swapped": _swap_chunks(blob),
    }
    for position in rng.sample(range(len(blob)), 20):
        flipped = bytearray(blob)
        flipped[position] ^= 0x01
        cases[f"bit at {position}"] = bytes(flipped)
    for name, damaged in cases.items():
        assert authenticate_reason(damaged, key) == reason_of(damaged, key), name


def test_wrong_key_is_refused_before_any_chunk() -> None:
    blob = make(sample(2 * SMALL_CHUNK), key=KEY)
    assert authenticate_reason(blob, OTHER_KEY) == "wrong-key"


def _swap_chunks(blob: bytes) -> bytes:
    start = 14 + int.from_bytes(blob[10:14], "big") + 32
    size = SMALL_CHUNK + 16
    first = blob[start : start + size]
    second = blob[start + size : start + 2 * size]
    return blob[:start] + second + first + blob[start + 2 * size :]
