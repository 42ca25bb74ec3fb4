"""Public-key backups end to end: a backup host with only recipients, restores with the identity.

On SQLite and the real MariaDB: the host that writes cannot read (exit 2, naming
the key it lacks, no traceback), cannot claim a level-1 verification, and the
identity restores the data unchanged. Secrets never reach an output.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from migration_guard.backup import create, list_backups, restore, verify
from migration_guard.backup.x25519 import Identity, generate_identity, identity_file_text
from migration_guard.config import Config
from migration_guard.errors import EncryptionKeyError
from migration_guard.monitoring.health import run_checks
from tests.db.test_backup_trust import (
    archive_of,
    databases,  # noqa: F401  (fixture)
    make_sqlite,
    manifest_file,
    mysql_state,
    refused_restore,
    run_cli,
    run_sql,
    sqlite_state,
)

RECIPIENTS = "MIGRATION_GUARD_RECIPIENTS"
KEY_FILE = "MIGRATION_GUARD_KEY_FILE"


def identity_file(directory: Path, identity: Identity, name: str = "identity.txt") -> Path:
    path = directory / name
    path.write_text(identity_file_text(identity))
    path.chmod(0o600)
    return path


class Host:
    """Switches the environment between a backup host (public keys) and a restore host."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path

    def backup_host(self, *identities: Identity) -> None:
        self.monkeypatch.delenv(KEY_FILE, raising=False)
        self.monkeypatch.setenv(RECIPIENTS, " ".join(i.recipient.text for i in identities))

    def restore_host(self, identity: Identity) -> None:
        self.monkeypatch.delenv(RECIPIENTS, raising=False)
        path = identity_file(self.tmp_path, identity, f"{identity.recipient.fingerprint[7:]}.txt")
        self.monkeypatch.setenv(KEY_FILE, str(path))


@pytest.fixture
def host(backup_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Host:
    return Host(monkeypatch, tmp_path)


def test_sqlite_public_key_round_trip(
    config: Config, host: Host, backup_dir: Path, tmp_path: Path
) -> None:
    identity = generate_identity()
    source_path = tmp_path / "app.db"
    source = make_sqlite(source_path)
    host.backup_host(identity)
    code, output = run_cli("backup", "--url", source, "--format", "json")
    assert code == 0, output
    backup = json.loads(output)
    assert backup["artifact"]["encryption"]["key_fingerprint"] == identity.recipient.fingerprint
    assert (
        json.loads(manifest_file(backup_dir, backup["id"]).read_text())["authentication"]["scheme"]
        == "hmac-sha256"
    )

    # The backup host cannot read what it wrote.
    target = tmp_path / "copy.db"
    code, output = run_cli("restore", backup["id"], "--url", f"sqlite:///{target}")
    assert code == 2, output
    assert "Traceback" not in output and identity.recipient.fingerprint in output
    assert "private key" in output and not target.exists()
    code, output = run_cli("decrypt", backup["id"], "-o", str(tmp_path / "plain.sql"))
    assert code == 2 and identity.recipient.fingerprint in output
    assert not (tmp_path / "plain.sql").exists()

    # Level 0 only, and it says so; nothing recorded as a verification.
    code, output = run_cli("backups", "verify", backup["id"], "--format", "json")
    result = json.loads(output)
    assert code == 0 and result["level"] == 0 and result["ok"] is True
    assert any("level 1 not run" in detail for detail in result["details"])
    assert list_backups(config)[0].verification.level == 0
    code, output = run_cli("backups", "verify", backup["id"], "--restore-test")
    assert code == 2 and "private key" in output
    code, output = run_cli("drill", "--url", "sqlite://")
    assert code == 2 and "private key" in output and "Traceback" not in output

    host.restore_host(identity)
    checked = verify(config, backup["id"])
    assert checked.ok and checked.level == 1, checked.details
    restored = restore(config, backup["id"], url=f"sqlite:///{target}")
    assert restored.ok, restored.mismatches
    assert sqlite_state(target) == sqlite_state(source_path)
    # Nothing written anywhere (backups, manifests, event log, run records) holds the
    # identity, apart from the identity file itself.
    secret = identity.text.encode()
    identity_files = set(tmp_path.glob("*.txt"))
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p not in identity_files]
    assert any(p.suffix == ".mgb" for p in written)
    for path in written:
        assert secret not in path.read_bytes(), path
        assert secret.lower() not in path.read_bytes(), path


def test_wrong_identity_and_multiple_recipients(config: Config, host: Host, tmp_path: Path) -> None:
    ops, dr, stranger = generate_identity(), generate_identity(), generate_identity()
    source_path = tmp_path / "app.db"
    source = make_sqlite(source_path)
    host.backup_host(ops, dr)
    backup = create(config, url=source)
    fingerprints = f"{ops.recipient.fingerprint},{dr.recipient.fingerprint}"
    assert backup.artifact.encryption is not None
    assert backup.artifact.encryption.key_fingerprint == fingerprints

    host.restore_host(stranger)
    code, output = run_cli("restore", backup.id, "--url", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "wrong key" in output, output
    assert ops.recipient.fingerprint in output and stranger.recipient.fingerprint in output
    assert stranger.text not in output and "Traceback" not in output

    for number, identity in enumerate((ops, dr)):
        host.restore_host(identity)
        target = tmp_path / f"copy{number}.db"
        assert verify(config, backup.id).ok
        assert restore(config, backup.id, url=f"sqlite:///{target}").ok
        assert sqlite_state(target) == sqlite_state(source_path)


def test_swapped_public_key_archive_is_refused(
    config: Config, host: Host, backup_dir: Path, tmp_path: Path
) -> None:
    identity = generate_identity()
    a_path = tmp_path / "a.db"
    a = make_sqlite(a_path, "accounts")
    b = make_sqlite(tmp_path / "b.db", "intruder")
    host.backup_host(identity)
    backup_a = create(config, url=a)
    backup_b = create(config, url=b)
    shutil.copyfile(archive_of(backup_dir, backup_b.id), archive_of(backup_dir, backup_a.id))
    before = sqlite_state(a_path)
    host.restore_host(identity)
    message = refused_restore(config, backup_a.id, url=a, yes=True)
    assert backup_b.id in message
    assert sqlite_state(a_path) == before


def test_edited_manifest_of_a_public_key_backup_is_refused(
    config: Config, host: Host, backup_dir: Path, tmp_path: Path
) -> None:
    identity = generate_identity()
    host.backup_host(identity)
    backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    path = manifest_file(backup_dir, backup.id)
    data = json.loads(path.read_text())
    data["tables"]["accounts"]["rows"] = 3
    path.write_text(json.dumps(data))
    host.restore_host(identity)
    target = tmp_path / "copy.db"
    message = refused_restore(config, backup.id, url=f"sqlite:///{target}")
    assert "was modified" in message and not target.exists()


def test_verify_after_backup_on_a_public_key_host_warns_and_succeeds(
    backup_dir: Path, host: Host, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(sections={"backup": {"verify_after_backup": "level1"}})
    identity = generate_identity()
    host.backup_host(identity)
    # An Alembic fileConfig in an earlier test of this worker may have disabled it.
    host.monkeypatch.setattr(logging.getLogger("migration_guard.backup"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="migration_guard.backup"):
        backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    assert backup.verification.level == 0 and backup.verification.ok is True
    assert any("level 1 not run" in record.getMessage() for record in caplog.records)
    assert "private key" in caplog.text
    (recorded,) = list_backups(config)
    assert any("level 1 not run" in detail for detail in recorded.verification.details)
    # unverified: the monitor reports it once it is older than verify_within
    checks = Config(
        sections={
            "monitor": {"max_age": "1000d", "verify_within": "35d", "drill_within": "1000d"},
            "backup": {"verify_after_backup": "level1"},
        }
    )
    _, results = run_checks(checks, now=recorded.finished + timedelta(days=100))
    (verify_within,) = [r for r in results if r.check == "verify_within"]
    assert verify_within.failed, verify_within.summary
    # where the identity is, the same setting verifies at level 1
    host.restore_host(identity)
    again = create(config, url=make_sqlite(tmp_path / "other.db"))
    assert again.verification.level == 1 and again.verification.ok


def test_recipients_count_as_a_key_for_require_encryption(
    config: Config, host: Host, tmp_path: Path
) -> None:
    identity = generate_identity()
    host.backup_host(identity)
    source = make_sqlite(tmp_path / "app.db")
    assert create(config, url=source).encrypted
    host.monkeypatch.delenv(RECIPIENTS)
    with pytest.raises(EncryptionKeyError, match="refusing to write an unencrypted backup"):
        create(config, url=source)


@pytest.mark.mysql
def test_mariadb_public_key_round_trip(
    config: Config,
    host: Host,
    databases: Callable[..., str],  # noqa: F811
) -> None:
    source = databases()
    target = databases(create=False)
    run_sql(
        source,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(40), photo BLOB)",
        "INSERT INTO accounts VALUES (1, 'alice', x'00ff10'), (2, 'bob 🐬', NULL)",
    )
    identity = generate_identity()
    host.backup_host(identity)
    backup = create(config, url=source)
    assert backup.encrypted
    with pytest.raises(EncryptionKeyError, match="private key"):
        restore(config, backup.id, url=target)

    host.restore_host(identity)
    result = verify(config, backup.id, restore_test=True, scratch_url=source)
    assert result.ok and result.restore_test_ok, result.details
    restored = restore(config, backup.id, url=target)
    assert restored.ok, restored.mismatches
    assert mysql_state(target) == mysql_state(source)
    # a restore over live data takes a safety backup, to the identity's own public key
    again = restore(config, backup.id, url=target, yes=True)
    assert again.ok and again.safety_backup_id
    safety = verify(config, again.safety_backup_id)
    assert safety.ok and safety.level == 1, safety.details
