"""The archive container: round trips, and every kind of damage detected and named."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.backup import archive
from migration_guard.backup.archive import (
    COMPRESSIONS,
    MIN_CHUNK_SIZE,
    TAG_SIZE,
    TRAILER,
    ArchiveReader,
    copy_plain,
    open_reader,
    open_writer,
    read_header,
)
from migration_guard.backup.keys import UserKey, generate_key, parse_key, passphrase_key
from migration_guard.errors import ArchiveError, BackupError, ConfigError, EncryptionKeyError

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_CHUNK = MIN_CHUNK_SIZE
KEY_TEXT = generate_key()
KEY = parse_key(KEY_TEXT)
OTHER_KEY = parse_key(generate_key())
PASSPHRASE = "correct horse battery staple"
REASONS = {
    "truncated",
    "reordered",
    "corrupted",
    "wrong-key",
    "not-an-archive",
    "unsupported-version",
}


@pytest.fixture(scope="module")
def passphrase_user_key() -> UserKey:
    return passphrase_key(PASSPHRASE)


def sample(size: int, seed: int = 0) -> bytes:
    """Half incompressible, half SQL-like text: exercises both compressor paths."""
    rng = random.Random(seed)
    noise = rng.randbytes(size // 2)
    text = b"INSERT INTO `t` VALUES (1,'abc',NULL);\n" * (size // 40 + 1)
    return (noise + text)[:size]


def make(
    data: bytes,
    *,
    key: UserKey | None = None,
    compression: str = "none",
    chunk_size: int = SMALL_CHUNK,
    backup_id: str = "b-1",
) -> bytes:
    out = io.BytesIO()
    with open_writer(
        out, backup_id=backup_id, compression=compression, key=key, chunk_size=chunk_size
    ) as writer:
        writer.write(data)
    return out.getvalue()


def unseal(blob: bytes, key: UserKey | None = None) -> bytes:
    out = io.BytesIO()
    copy_plain(io.BytesIO(blob), out, key=key)
    return out.getvalue()


def reason_of(blob: bytes, key: UserKey | None = None) -> str:
    with pytest.raises(ArchiveError) as caught:
        unseal(blob, key)
    assert caught.value.reason in REASONS
    return caught.value.reason


def data_start(blob: bytes) -> int:
    header_length = int.from_bytes(blob[10:14], "big")
    return 14 + header_length + 32


def stored_chunks(blob: bytes, chunk_size: int = SMALL_CHUNK) -> list[tuple[int, int]]:
    """(start, end) offsets of every stored chunk."""
    start, end = data_start(blob), len(blob) - TRAILER.size
    size = chunk_size + TAG_SIZE
    spans = []
    while end - start > size:
        spans.append((start, start + size))
        start += size
    spans.append((start, end))
    return spans


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("chunk_size", [SMALL_CHUNK, 1 << 20], ids=["64KiB", "1MiB"])
@pytest.mark.parametrize("size_name", ["empty", "one-byte", "one-chunk", "chunk+1", "several-MB"])
def test_round_trip(compression: str, encrypted: bool, chunk_size: int, size_name: str) -> None:
    size = {
        "empty": 0,
        "one-byte": 1,
        "one-chunk": chunk_size,
        "chunk+1": chunk_size + 1,
        "several-MB": 3 * 1024 * 1024 + 17,
    }[size_name]
    data = sample(size, seed=size)
    key = KEY if encrypted else None
    out = io.BytesIO()
    with open_writer(
        out, backup_id="rt", compression=compression, key=key, chunk_size=chunk_size
    ) as writer:
        assert writer.write(data) == len(data)
    blob = out.getvalue()
    assert unseal(blob, key) == data
    stats = writer.stats
    assert stats.plain_bytes == len(data)
    assert stats.stored_bytes == len(blob)
    assert stats.sha256 == hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_with_passphrase(compression: str, passphrase_user_key: UserKey) -> None:
    data = sample(200_000)
    blob = make(data, key=passphrase_user_key, compression=compression)
    header = read_header(io.BytesIO(blob))
    assert header.key_kind == "passphrase"
    assert header.kdf is not None and header.kdf.n >= 2**15
    assert unseal(blob, passphrase_user_key) == data


@given(
    data=st.binary(max_size=200_000),
    compression=st.sampled_from(COMPRESSIONS),
    encrypted=st.booleans(),
    pieces=st.integers(min_value=1, max_value=7),
)
@settings(max_examples=60, deadline=None)
def test_arbitrary_bytes_in_arbitrary_writes_round_trip(
    data: bytes, compression: str, encrypted: bool, pieces: int
) -> None:
    key = KEY if encrypted else None
    out = io.BytesIO()
    step = max(1, len(data) // pieces)
    with open_writer(
        out, backup_id="h", compression=compression, key=key, chunk_size=SMALL_CHUNK, threads=0
    ) as writer:
        for start in range(0, len(data), step):
            writer.write(memoryview(data)[start : start + step])
    assert unseal(out.getvalue(), key) == data


def test_many_small_writes_and_bytearray_input() -> None:
    data = sample(300_000, seed=3)
    out = io.BytesIO()
    with open_writer(out, backup_id="small", key=KEY, chunk_size=SMALL_CHUNK) as writer:
        for start in range(0, len(data), 997):
            writer.write(bytearray(data[start : start + 997]))
    assert unseal(out.getvalue(), KEY) == data


def test_reader_is_a_file_like_stream() -> None:
    data = sample(500_000, seed=4)
    blob = make(data, key=KEY, compression="zstd")
    with open_reader(io.BytesIO(blob), key=KEY) as reader:
        assert reader.readable()
        assert reader.header.backup_id == "b-1"
        head = reader.read(10)
        buffer = bytearray(1000)
        count = reader.readinto(buffer)
        rest = reader.read()
        assert reader.read(10) == b""
        assert reader.plain_bytes == len(data)
    assert head + bytes(buffer[:count]) + rest == data
    with open_reader(io.BytesIO(blob), key=KEY) as reader:
        assert io.BufferedReader(reader).read() == data


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_reads_are_bounded_even_for_extreme_compression_ratios(compression: str) -> None:
    data = bytes(20 * 1024 * 1024)
    blob = make(data, compression=compression, chunk_size=SMALL_CHUNK)
    assert len(blob) < 100_000
    total = 0
    with open_reader(io.BytesIO(blob)) as reader:
        while piece := reader.read(65536):
            assert len(piece) <= 65536
            total += len(piece)
    assert total == len(data)


def test_inner_streams_are_standard_zstd_and_gzip() -> None:
    """With the framing removed, the payload is what `zstd -d` and `zcat` read."""
    data = sample(150_000, seed=5)
    for compression, decompress in (
        ("zstd", lambda raw: zstandard.ZstdDecompressor().decompressobj().decompress(raw)),
        ("gzip", gzip.decompress),
    ):
        blob = make(data, compression=compression)
        inner = b"".join(blob[start : end - TAG_SIZE] for start, end in stored_chunks(blob))
        assert decompress(inner) == data


def test_header_is_readable_without_the_key() -> None:
    blob = make(b"x", key=KEY, compression="gzip", backup_id="20250101-full-abc")
    header = read_header(io.BytesIO(blob))
    assert header.format_version == 1
    assert header.backup_id == "20250101-full-abc"
    assert header.compression == "gzip"
    assert header.chunk_size == SMALL_CHUNK
    assert header.encrypted and header.key_kind == "key"
    assert header.key_fingerprint == KEY.fingerprint
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", header.created_at)
    json.dumps(header.to_json_dict())
    plain = read_header(io.BytesIO(make(b"x")))
    assert not plain.encrypted and plain.key_fingerprint is None


def test_key_is_ignored_for_unencrypted_archives() -> None:
    assert unseal(make(b"hello"), KEY) == b"hello"


def test_each_archive_has_its_own_data_key() -> None:
    first, second = make(b"same" * 1000, key=KEY), make(b"same" * 1000, key=KEY)
    assert first[data_start(first) :] != second[data_start(second) :]


# -- keys ------------------------------------------------------------------------------


def test_wrong_key_is_detected_before_any_data_and_names_both_fingerprints() -> None:
    blob = make(sample(100_000), key=KEY)
    with pytest.raises(ArchiveError) as caught:
        open_reader(io.BytesIO(blob), key=OTHER_KEY)
    error = caught.value
    assert error.reason == "wrong-key"
    assert KEY.fingerprint in str(error) and OTHER_KEY.fingerprint in str(error)
    assert KEY_TEXT.removeprefix("mgk1:") not in str(error)


def test_wrong_passphrase_and_wrong_kind_are_wrong_key(passphrase_user_key: UserKey) -> None:
    blob = make(b"secret rows", key=passphrase_user_key)
    assert reason_of(blob, passphrase_key(PASSPHRASE + "?")) == "wrong-key"
    assert reason_of(blob, KEY) == "wrong-key"
    assert reason_of(make(b"secret rows", key=KEY), passphrase_user_key) == "wrong-key"


def test_missing_key_tells_which_variables_to_set(passphrase_user_key: UserKey) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        open_reader(io.BytesIO(make(b"x", key=KEY)), key=None)
    assert "MIGRATION_GUARD_KEY" in str(caught.value)
    assert KEY.fingerprint in str(caught.value)
    with pytest.raises(EncryptionKeyError, match="MIGRATION_GUARD_PASSPHRASE"):
        open_reader(io.BytesIO(make(b"x", key=passphrase_user_key)), key=None)


# -- damage ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["encrypted", "plain"])
def damage_case(request: pytest.FixtureRequest) -> tuple[bytes, bytes, UserKey | None]:
    """A four-chunk archive with uncompressed framing, so chunk offsets are known."""
    key = KEY if request.param == "encrypted" else None
    data = sample(3 * SMALL_CHUNK + 1000, seed=9)
    return make(data, key=key), data, key


def test_damage_case_has_several_chunks(damage_case: tuple[bytes, bytes, UserKey | None]) -> None:
    blob, _, _ = damage_case
    assert len(stored_chunks(blob)) == 4


@given(cut=st.integers(min_value=0), chunked_read=st.booleans())
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_truncation_is_detected_as_truncated(
    damage_case: tuple[bytes, bytes, UserKey | None], cut: int, chunked_read: bool
) -> None:
    blob, data, key = damage_case
    cut %= len(blob)
    received = bytearray()
    with pytest.raises(ArchiveError) as caught:
        reader = open_reader(io.BytesIO(blob[:cut]), key=key)
        while piece := reader.read(4096 if chunked_read else -1):
            received += piece
    assert caught.value.reason == "truncated"
    # Whatever came out before the error is authentic, just incomplete.
    assert data.startswith(bytes(received))


@pytest.mark.parametrize("chunks_kept", [0, 1, 3])
def test_dropping_whole_final_chunks_is_truncated(
    damage_case: tuple[bytes, bytes, UserKey | None], chunks_kept: int
) -> None:
    blob, _, key = damage_case
    spans = stored_chunks(blob)
    end = spans[chunks_kept - 1][1] if chunks_kept else data_start(blob)
    assert reason_of(blob[:end], key) == "truncated"
    # Keeping the trailer does not help: chunk count and last flag give it away.
    assert reason_of(blob[:end] + blob[-TRAILER.size :], key) == "truncated"


@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_flipped_bit_is_detected(
    damage_case: tuple[bytes, bytes, UserKey | None], position: int, bit: int
) -> None:
    blob, _, key = damage_case
    damaged = bytearray(blob)
    damaged[position % len(blob)] ^= 1 << bit
    reason = reason_of(bytes(damaged), key)
    assert reason in {"corrupted", "not-an-archive", "unsupported-version", "truncated"}


@given(
    compression=st.sampled_from(["zstd", "gzip"]),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
@settings(max_examples=100, deadline=None)
def test_flipped_bits_in_compressed_archives_never_yield_wrong_data(
    compression: str, position: int, bit: int
) -> None:
    blob = _compressed_blob(compression)
    damaged = bytearray(blob)
    damaged[position % len(blob)] ^= 1 << bit
    reason_of(bytes(damaged), KEY)


_COMPRESSED: dict[str, bytes] = {}


def _compressed_blob(compression: str) -> bytes:
    if compression not in _COMPRESSED:
        _COMPRESSED[compression] = make(sample(400_000, seed=11), key=KEY, compression=compression)
    return _COMPRESSED[compression]


def test_flipped_bit_in_a_chunk_names_the_chunk(
    damage_case: tuple[bytes, bytes, UserKey | None],
) -> None:
    blob, _, key = damage_case
    start, _ = stored_chunks(blob)[2]
    damaged = bytearray(blob)
    damaged[start + 100] ^= 0x10
    with pytest.raises(ArchiveError) as caught:
        unseal(bytes(damaged), key)
    assert caught.value.reason == "corrupted"
    assert "chunk 2" in str(caught.value)


def _swap(blob: bytes, first: int, second: int) -> bytes:
    spans = stored_chunks(blob)
    parts = [blob[start:end] for start, end in spans]
    parts[first], parts[second] = parts[second], parts[first]
    return blob[: data_start(blob)] + b"".join(parts) + blob[spans[-1][1] :]


@pytest.mark.parametrize(("first", "second"), [(0, 1), (0, 2), (1, 2)])
def test_swapped_chunks_are_reported_as_reordered(
    damage_case: tuple[bytes, bytes, UserKey | None], first: int, second: int
) -> None:
    blob, _, key = damage_case
    with pytest.raises(ArchiveError) as caught:
        unseal(_swap(blob, first, second), key)
    assert caught.value.reason == "reordered"
    assert f"chunk {first}" in str(caught.value)


def test_duplicated_chunk_is_reported_as_reordered(
    damage_case: tuple[bytes, bytes, UserKey | None],
) -> None:
    blob, _, key = damage_case
    (first_start, first_end), (second_start, second_end) = stored_chunks(blob)[:2]
    duplicated = blob[:second_start] + blob[first_start:first_end] + blob[second_end:]
    assert reason_of(duplicated, key) == "reordered"


def test_appended_data_after_the_final_chunk_is_detected(
    damage_case: tuple[bytes, bytes, UserKey | None],
) -> None:
    blob, _, key = damage_case
    assert reason_of(blob + b"\x00" * 100, key) in {"corrupted", "reordered"}
    assert reason_of(blob + blob, key) in {"corrupted", "reordered"}


def test_chunks_from_another_archive_with_the_same_key_are_rejected() -> None:
    data = sample(2 * SMALL_CHUNK + 10, seed=12)
    first, second = make(data, key=KEY), make(data, key=KEY)
    spliced = first[: data_start(first)] + second[data_start(second) :]
    assert reason_of(spliced, KEY) == "corrupted"


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_header_tampering_is_detected(encrypted: bool) -> None:
    key = KEY if encrypted else None
    blob = make(b"payload" * 100, key=key, backup_id="backup-A")
    tampered = blob.replace(b'"backup-A"', b'"backup-B"', 1)
    assert tampered != blob
    with pytest.raises(ArchiveError) as caught:
        open_reader(io.BytesIO(tampered), key=key)
    assert caught.value.reason == "corrupted"
    assert "header" in str(caught.value)


def test_header_claiming_another_fingerprint_is_corrupted_not_wrong_key() -> None:
    blob = make(b"payload", key=KEY)
    tampered = blob.replace(KEY.fingerprint.encode(), OTHER_KEY.fingerprint.encode(), 1)
    assert reason_of(tampered, KEY) == "corrupted"


def test_garbage_is_not_an_archive() -> None:
    assert reason_of(os.urandom(5000)) == "not-an-archive"
    assert reason_of(b"-- MariaDB dump 10.19\n" * 10) == "not-an-archive"
    with pytest.raises(ArchiveError, match="gzip") as caught:
        read_header(io.BytesIO(gzip.compress(b"select 1;")))
    assert caught.value.reason == "not-an-archive"


def test_empty_file_is_truncated() -> None:
    assert reason_of(b"") == "truncated"


def test_unknown_version_is_unsupported() -> None:
    blob = bytearray(make(b"x"))
    blob[8:10] = (4).to_bytes(2, "big")  # 3 is X25519 recipients now
    with pytest.raises(ArchiveError) as caught:
        read_header(io.BytesIO(bytes(blob)))
    assert caught.value.reason == "unsupported-version"
    assert "version 4" in str(caught.value)


def test_errors_stick_once_raised() -> None:
    blob = bytearray(make(sample(3 * SMALL_CHUNK), key=KEY))
    blob[-TRAILER.size - 100] ^= 1
    reader: ArchiveReader = open_reader(io.BytesIO(bytes(blob)), key=KEY)
    with pytest.raises(ArchiveError):
        reader.read()
    with pytest.raises(ArchiveError):
        reader.read(10)


# -- the writer ----------------------------------------------------------------------


def test_writer_interrupted_by_an_exception_leaves_a_truncated_archive() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError), open_writer(out, backup_id="x", key=KEY) as writer:
        writer.write(sample(3 * 1024 * 1024))
        raise RuntimeError("dump failed")
    assert writer.closed
    assert reason_of(out.getvalue(), KEY) == "truncated"
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        _ = writer.stats


def test_writer_whose_destination_failed_cannot_be_finished() -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: object) -> int:
            if self.tell() > 200_000:
                raise OSError(28, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    writer = open_writer(FullDisk(), backup_id="x", compression="none", chunk_size=SMALL_CHUNK)
    with pytest.raises(OSError):
        writer.write(sample(1_000_000))
    with pytest.raises(BackupError):
        writer.close()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"compression": "bzip2"}, "compression"),
        ({"chunk_size": 1024}, "chunk_size"),
        ({"chunk_size": 4 << 20}, "chunk_size"),
        ({"compression": "zstd", "level": 99}, "level"),
        ({"compression": "gzip", "level": 10}, "level"),
        ({"backup_id": ""}, "backup_id"),
    ],
)
def test_bad_writer_options_are_config_errors(options: dict[str, object], key: str) -> None:
    arguments: dict[str, object] = {"backup_id": "x", **options}
    with pytest.raises(ConfigError) as caught:
        open_writer(io.BytesIO(), **arguments)  # type: ignore[arg-type]
    assert caught.value.key == key


# -- the hand-decryption script in docs/format.md ------------------------------------------


def _doc_script() -> str:
    text = (REPO_ROOT / "docs" / "format.md").read_text()
    found = re.search(r"<!-- mg_decrypt\.py[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/format.md lost its mg_decrypt.py block"
    return found.group(1)


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", ["key", "passphrase", "unencrypted", "x25519"])
def test_documented_script_decrypts_archives(
    tmp_path: Path, compression: str, kind: str, passphrase_user_key: UserKey
) -> None:
    from migration_guard.backup.keys import load_user_key
    from migration_guard.backup.x25519 import generate_identity, identity_file_text

    script = tmp_path / "mg_decrypt.py"
    script.write_text(_doc_script())
    identity, other = generate_identity(), generate_identity()
    recipients = load_user_key(
        {"MIGRATION_GUARD_RECIPIENTS": f"{other.recipient.text} {identity.recipient.text}"}
    )
    key = {"key": KEY, "passphrase": passphrase_user_key, "unencrypted": None}.get(kind, recipients)
    data = sample(2 * SMALL_CHUNK + 123, seed=13)
    path = tmp_path / "backup.mgb"
    path.write_bytes(make(data, key=key, compression=compression))
    env = {
        **os.environ,
        # for X25519 the identity file as age-keygen writes it: comments and the key
        "MIGRATION_GUARD_KEY": identity_file_text(identity) if kind == "x25519" else KEY_TEXT,
        "MIGRATION_GUARD_PASSPHRASE": PASSPHRASE,
    }

    def run(target: Path) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, str(script), str(target)], capture_output=True, env=env, check=False
        )

    result = run(path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == data
    cut = tmp_path / "cut.mgb"
    cut.write_bytes(path.read_bytes()[:-200])
    assert run(cut).returncode != 0


def test_archive_module_names_its_format_constants() -> None:
    assert archive.MAGIC == b"\x89MGARC\r\n"
    assert archive.FORMAT_VERSION == 1
    assert TRAILER.size == 40
