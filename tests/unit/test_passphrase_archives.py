"""Passphrase archives: a salt per archive, scrypt n >= 2**17, and old archives still open.

``tests/fixtures/passphrase-v1/`` holds an archive written by the code before
per-archive salts (format version 1: scrypt n=2**15, one fixed salt, a
passphrase-wide fingerprint), with its plain stream.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migration_guard.backup.archive import copy_plain, open_reader, open_writer, read_header
from migration_guard.backup.keys import (
    LEGACY_SCRYPT,
    archive_fingerprint,
    passphrase_key,
)
from migration_guard.cli import main
from migration_guard.errors import ArchiveError
from tests.conftest import REPO_ROOT

PASSPHRASE = "correct horse battery staple"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "passphrase-v1"
OLD_ARCHIVE = FIXTURE / "20261206T205356Z-tables-9fc602.mgb"
OLD_PLAIN = FIXTURE / "plain.sql"
KEY_VARIABLES = ("MIGRATION_GUARD_KEY", "MIGRATION_GUARD_KEY_FILE", "MIGRATION_GUARD_PASSPHRASE")


def header_json(data: bytes) -> dict[str, Any]:
    (length,) = struct.unpack(">I", data[10:14])
    header: dict[str, Any] = json.loads(data[14 : 14 + length])
    return header


def new_archive(plain: bytes, passphrase: str = PASSPHRASE) -> bytes:
    out = io.BytesIO()
    with open_writer(out, backup_id="b-new", key=passphrase_key(passphrase)) as writer:
        writer.write(plain)
    return out.getvalue()


@pytest.fixture
def passphrase_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", PASSPHRASE)


def test_fixture_is_an_old_format_archive() -> None:
    data = OLD_ARCHIVE.read_bytes()
    assert struct.unpack(">H", data[8:10]) == (1,)
    kdf = header_json(data)["encryption"]["kdf"]
    assert kdf["n"] == 2**15 and kdf["salt"] == "bWlncmF0aW9uLWd1YXJkIHBhc3NwaHJhc2UgdjE="


def test_old_passphrase_archive_opens_with_its_recorded_fixed_salt() -> None:
    with OLD_ARCHIVE.open("rb") as handle:
        out = io.BytesIO()
        copy_plain(handle, out, key=passphrase_key(PASSPHRASE))
    assert out.getvalue() == OLD_PLAIN.read_bytes()
    with OLD_ARCHIVE.open("rb") as handle:
        header = read_header(handle)
    assert header.kdf == LEGACY_SCRYPT
    # Its fingerprint was the passphrase-wide one of the old code: still recognised.
    assert header.key_fingerprint == archive_fingerprint(passphrase_key(PASSPHRASE), LEGACY_SCRYPT)


def test_old_passphrase_archive_refuses_a_wrong_passphrase() -> None:
    with OLD_ARCHIVE.open("rb") as handle, pytest.raises(ArchiveError) as caught:
        copy_plain(handle, io.BytesIO(), key=passphrase_key(PASSPHRASE + " and more"))
    assert caught.value.reason == "wrong-key"
    assert PASSPHRASE not in str(caught.value)


def test_old_passphrase_archive_decrypts_through_the_cli(
    passphrase_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    out = tmp_path / "plain.sql"
    result = CliRunner().invoke(main, ["decrypt", str(OLD_ARCHIVE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == OLD_PLAIN.read_bytes()


def test_documented_script_still_reads_old_archives(tmp_path: Path) -> None:
    text = (REPO_ROOT / "docs" / "format.md").read_text()
    found = re.search(r"<!-- mg_decrypt\.py[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert found
    script = tmp_path / "mg_decrypt.py"
    script.write_text(found.group(1))
    environment = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    for archive, plain in ((OLD_ARCHIVE, OLD_PLAIN.read_bytes()), (None, b"new rows\n" * 99)):
        if archive is None:
            archive = tmp_path / "new.mgb"
            archive.write_bytes(new_archive(plain))
        completed = subprocess.run(
            [sys.executable, str(script), str(archive)],
            capture_output=True,
            env={**environment, "MIGRATION_GUARD_PASSPHRASE": PASSPHRASE},
            check=False,
        )
        assert completed.returncode == 0, completed.stderr.decode()
        assert completed.stdout == plain


def test_new_passphrase_archives_have_version_two_and_their_own_salt() -> None:
    first, second = new_archive(b"rows"), new_archive(b"rows")
    for data in (first, second):
        assert struct.unpack(">H", data[8:10]) == (2,)
    one, two = (header_json(data)["encryption"] for data in (first, second))
    assert one["kdf"]["n"] >= 2**17 and len(one["kdf"]["salt"]) >= 24  # 16+ bytes, base64
    assert one["kdf"]["salt"] != two["kdf"]["salt"]
    assert one["key_fingerprint"] != two["key_fingerprint"]
    legacy = archive_fingerprint(passphrase_key(PASSPHRASE), LEGACY_SCRYPT)
    assert legacy not in (one["key_fingerprint"], two["key_fingerprint"]), "passphrase-wide"
    key = passphrase_key(PASSPHRASE)
    with open_reader(io.BytesIO(first), key=key) as reader:
        assert reader.read() == b"rows"


def test_new_passphrase_archive_refuses_a_wrong_passphrase_without_naming_a_fingerprint() -> None:
    data = new_archive(b"secret rows")
    with pytest.raises(ArchiveError) as caught:
        copy_plain(io.BytesIO(data), io.BytesIO(), key=passphrase_key(PASSPHRASE + "?"))
    assert caught.value.reason == "wrong-key"
    assert "passphrase" in str(caught.value)
    assert header_json(data)["encryption"]["key_fingerprint"] not in str(caught.value)


def test_weakened_kdf_in_a_new_header_is_detected() -> None:
    # An attacker lowers the recorded cost (or swaps the salt) to make guessing cheaper:
    # the archive then no longer opens with the right passphrase, and nothing is read.
    data = new_archive(b"secret rows")
    header = header_json(data)
    weakened = dict(header)
    weakened["encryption"] = {**header["encryption"], "kdf": {**header["encryption"]["kdf"]}}
    weakened["encryption"]["kdf"]["n"] = 2**14
    body = json.dumps(weakened, sort_keys=True, separators=(",", ":")).encode()
    (length,) = struct.unpack(">I", data[10:14])
    forged = data[:10] + struct.pack(">I", len(body)) + body + data[14 + length :]
    with pytest.raises(ArchiveError) as caught:
        copy_plain(io.BytesIO(forged), io.BytesIO(), key=passphrase_key(PASSPHRASE))
    assert caught.value.reason in ("wrong-key", "corrupted")


@pytest.mark.parametrize("archive_kind", ["old", "new"])
def test_decrypt_with_a_wrong_passphrase_is_a_usage_error_and_writes_nothing(
    passphrase_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive_kind: str
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    source = OLD_ARCHIVE
    if archive_kind == "new":
        source = tmp_path / "new.mgb"
        source.write_bytes(new_archive(b"rows\n"))
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "not the passphrase at all")
    out = tmp_path / "plain.sql"
    result = CliRunner().invoke(main, ["decrypt", str(source), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "wrong key" in result.output and "not the passphrase" not in result.output
    assert not out.exists() and list(tmp_path.glob(".plain*")) == []
