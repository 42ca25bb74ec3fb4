"""Issue 12 (part A) beyond the attacks of test_backup_trust.py: the manifest MAC,
old manifests, swapped unencrypted archives, a file changed during the load, and the
database options of a manifest checked against the real servers."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, decrypt, keygen, restore, verify
from migration_guard.backup.archive import open_writer
from migration_guard.backup.manifest import MAC_SCHEME, NO_MAC_SCHEME
from migration_guard.config import Config
from migration_guard.dialects import get_dialect_ops
from migration_guard.errors import ArchiveError, RestoreFailed, UsageError
from tests.conftest import FIXTURES
from tests.db import test_backup_trust as attacks
from tests.db.test_backup_trust import (
    archive_of,
    make_sqlite,
    manifest_file,
    mysql_state,
    run_sql,
    sqlite_state,
)

# The fixtures of the attack tests, shared.
key = attacks.key
databases = attacks.databases

LEGACY = FIXTURES / "legacy_backups"
LEGACY_KEY = "mgk1:TUlHElE9rNJehkXIhzy3qhQt3wmPu1bzfS6M-aGC6P4"
LEGACY_ENCRYPTED = "20261206T205840Z-full-97d141"
LEGACY_PLAIN = "20261206T205840Z-full-cedb54"


def edit_manifest(
    backup_dir: Path, backup_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    path = manifest_file(backup_dir, backup_id)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


# -- the manifest MAC -----------------------------------------------------------------------
def test_manifest_mac_survives_verification_and_drills_but_not_an_edit(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    data = json.loads(manifest_file(backup_dir, backup.id).read_text())
    assert data["authentication"]["scheme"] == MAC_SCHEME
    assert len(data["authentication"]["mac"]) == 64
    # mutable state is outside the MAC: a verification and a drill record
    assert verify(config, backup.id, restore_test=True).ok
    edit_manifest(backup_dir, backup.id, lambda d: d["extra"].update(last_drill={"ok": True}))
    result = restore(config, backup.id, url=f"sqlite:///{tmp_path / 'first.db'}")
    assert result.ok, result.mismatches
    assert not [note for note in result.notes if "warning" in note], result.notes

    # any authenticated field edited: the row count of a table
    edit_manifest(backup_dir, backup.id, lambda d: d["tables"]["accounts"].update(rows=3))
    target = tmp_path / "second.db"
    with pytest.raises(ArchiveError, match=f"manifest of backup {backup.id} was modified"):
        restore(config, backup.id, url=f"sqlite:///{target}")
    assert not target.exists()
    checked = verify(config, backup.id)
    assert not checked.ok and checked.reason == "manifest", checked.details


def test_deleting_the_manifest_mac_is_refused(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    """The authenticated header announces the MAC: removing it is no way back to 'legacy'."""
    backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    edit_manifest(backup_dir, backup.id, lambda d: d.pop("authentication"))
    with pytest.raises(ArchiveError, match="was modified"):
        restore(config, backup.id, url=f"sqlite:///{tmp_path / 'target.db'}")
    assert not verify(config, backup.id).ok


def test_unencrypted_manifest_is_marked_and_restores_with_a_warning(
    config: Config, backup_dir: Path, tmp_path: Path
) -> None:
    backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    assert not backup.encrypted
    data = json.loads(manifest_file(backup_dir, backup.id).read_text())
    assert data["authentication"] == {"scheme": NO_MAC_SCHEME}
    result = restore(config, backup.id, url=f"sqlite:///{tmp_path / 'target.db'}")
    assert result.ok
    assert any("not encrypted" in note for note in result.notes), result.notes


def test_old_manifests_without_a_mac_still_open_with_a_warning(
    config: Config, backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(LEGACY, backup_dir)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", LEGACY_KEY)
    for backup_id in (LEGACY_ENCRYPTED, LEGACY_PLAIN):
        target = tmp_path / f"{backup_id}.db"
        result = restore(config, backup_id, url=f"sqlite:///{target}", allow_unencrypted=True)
        assert result.ok, result.mismatches
        assert sqlite_state(target)["customers"][1][0] == (1, "customer 0")
        assert len(sqlite_state(target)["orders"][1]) == 120
        warning = "not authenticated" if backup_id == LEGACY_ENCRYPTED else "not encrypted"
        assert any(warning in note for note in result.notes), result.notes
        checked = verify(config, backup_id)
        assert checked.ok, checked.details
    # an old manifest is not authenticated, but the archive still is: a swap is refused
    shutil.copyfile(archive_of(backup_dir, LEGACY_PLAIN), archive_of(backup_dir, LEGACY_ENCRYPTED))
    with pytest.raises(ArchiveError, match="holds backup"):
        restore(config, LEGACY_ENCRYPTED, url=f"sqlite:///{tmp_path / 'swapped.db'}")


# -- swapped and changed archives ------------------------------------------------------------
def test_swapped_unencrypted_sqlite_archive_is_refused(
    config: Config, backup_dir: Path, tmp_path: Path
) -> None:
    a_path = tmp_path / "a.db"
    a = make_sqlite(a_path, "accounts")
    backup_a = create(config, url=a)
    backup_b = create(config, url=make_sqlite(tmp_path / "b.db", "intruder"))
    assert not backup_a.encrypted
    shutil.copyfile(archive_of(backup_dir, backup_b.id), archive_of(backup_dir, backup_a.id))
    before = sqlite_state(a_path)
    with pytest.raises(ArchiveError, match=f"holds backup {backup_b.id}") as caught:
        restore(config, backup_a.id, url=a, yes=True)
    assert caught.value.reason == "mismatch"
    assert sqlite_state(a_path) == before


def test_encrypted_manifest_with_a_plain_archive_is_refused(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    """An unencrypted archive is not accepted in place of an encrypted one."""
    source = make_sqlite(tmp_path / "app.db")
    sealed = create(config, url=source)
    # a well-formed unencrypted archive of the same data, under the sealed backup's id
    plain = tmp_path / "plain.db"
    decrypt(config, sealed.id, plain)
    with (
        archive_of(backup_dir, sealed.id).open("wb") as handle,
        open_writer(handle, backup_id=sealed.id, key=None) as writer,
    ):
        writer.write(plain.read_bytes())
    with pytest.raises(ArchiveError, match="says its archive is encrypted"):
        restore(config, sealed.id, url=f"sqlite:///{tmp_path / 'target.db'}")
    assert not (tmp_path / "target.db").exists()


@pytest.mark.mysql
def test_archive_changed_during_the_load_reports_a_partial_target(
    config: Config, key: str, backup_dir: Path, databases: Callable[..., str]
) -> None:
    """The load re-checks what it streams; the failure names the state and the safety backup."""
    url = databases()
    run_sql(url, "CREATE TABLE big (id INT PRIMARY KEY, note VARCHAR(300))")
    run_sql(
        url,
        "INSERT INTO big (id, note) VALUES (:id, :note)",
        params=[{"id": i, "note": f"{i:0300d}"[:300]} for i in range(12000)],
    )
    backup = create(config, url=url, compress="none")
    before = mysql_state(url)
    path = archive_of(backup_dir, backup.id)
    damaged: list[bool] = []

    def damage(done: int, total: int | None) -> None:
        if not damaged:  # the first progress report comes from the load, after the check
            with path.open("r+b") as handle:
                handle.seek(-100, 2)
                last = handle.read(1)
                handle.seek(-100, 2)
                handle.write(bytes([last[0] ^ 0xFF]))
            damaged.append(True)

    with pytest.raises(RestoreFailed) as caught:
        restore(config, backup.id, url=url, yes=True, progress=damage)
    failure = caught.value
    assert damaged
    assert failure.target_state == "partial"
    assert failure.safety_backup_id and failure.safety_backup_id in str(failure)
    assert "partly restored" in str(failure)
    # the safety backup named in the message puts the target back
    assert restore(config, failure.safety_backup_id, url=url, yes=True).ok
    assert mysql_state(url) == before


def test_truncated_archive_failure_says_the_target_is_unchanged(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    url = make_sqlite(path, rows=500)
    backup = create(config, url=url)
    archive = archive_of(backup_dir, backup.id)
    archive.write_bytes(archive.read_bytes()[:-41])
    before = path.read_bytes()
    with pytest.raises(RestoreFailed) as caught:
        restore(config, backup.id, url=url, yes=True)
    assert caught.value.target_state == "unchanged"
    assert "was not changed" in str(caught.value)
    assert caught.value.safety_backup_id and caught.value.safety_backup_id in str(caught.value)
    assert path.read_bytes() == before


# -- the manifest's database options against the server ---------------------------------------
@pytest.mark.mysql
def test_mariadb_knows_its_charsets_and_collations(mysql_admin_engine: sa.Engine) -> None:
    ops = get_dialect_ops("mysql")
    with mysql_admin_engine.connect() as conn:
        check = ops.unknown_database_options
        assert check(conn, charset="utf8mb4", collation="utf8mb4_general_ci") == []
        assert check(conn, charset="latin1", collation="latin1_swedish_ci") == []
        assert check(conn, charset=None, collation=None) == []
        assert check(conn, charset="klingon", collation=None) == [
            "character set 'klingon' is not one this server knows"
        ]
        assert (
            "belongs to character set 'latin1'"
            in check(conn, charset="utf8mb4", collation="latin1_swedish_ci")[0]
        )
        assert check(conn, charset="utf8mb4", collation="utf8mb4_nope_ci")
        injection = "utf8mb4' OR '1'='1"
        assert check(conn, charset=injection, collation=None)


@pytest.mark.mysql
def test_restore_refuses_options_the_server_does_not_know(
    config: Config, backup_dir: Path, databases: Callable[..., str], mysql_admin_engine: sa.Engine
) -> None:
    source = databases()
    run_sql(source, "CREATE TABLE t (id INT PRIMARY KEY)")
    backup = create(config, url=source)  # unencrypted: the manifest can be edited unnoticed
    edit_manifest(
        backup_dir,
        backup.id,
        lambda d: d["extra"]["database_options"].update(collation="latin1_swedish_ci"),
    )
    target = databases(create=False)
    with pytest.raises(UsageError, match="belongs to character set 'latin1'"):
        restore(config, backup.id, url=target)
    name = sa.make_url(target).database
    with mysql_admin_engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
            {"n": name},
        ).first()
    assert exists is None


@pytest.mark.postgresql
def test_postgresql_knows_its_encodings(postgres_admin_engine: sa.Engine) -> None:
    with postgres_admin_engine.connect() as conn:
        ops = get_dialect_ops("postgresql")
        assert ops.unknown_database_options(conn, charset="UTF8", collation=None) == []
        assert ops.unknown_database_options(conn, charset="klingon", collation=None)


def test_sqlite_edit_with_a_key_configured_needs_allow_unencrypted(
    config: Config, backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy follows the configuration at restore time: a key added later counts."""
    backup = create(config, url=make_sqlite(tmp_path / "app.db"))
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    with pytest.raises(UsageError, match="--allow-unencrypted"):
        restore(config, backup.id, url=f"sqlite:///{tmp_path / 'target.db'}")
    result = restore(
        config, backup.id, url=f"sqlite:///{tmp_path / 'target.db'}", allow_unencrypted=True
    )
    assert result.ok
    connection = sqlite3.connect(tmp_path / "target.db")
    assert connection.execute("SELECT COUNT(*) FROM accounts").fetchone() == (20,)
    connection.close()


@pytest.mark.mysql
@pytest.mark.parametrize(
    "name",
    ["x` ; DROP DATABASE mysql; -- " + "x" * 60, "accounts\x00", ""],
    ids=["overlong-injection", "nul", "empty"],
)
def test_manifest_table_names_are_validated_before_any_sql(
    config: Config,
    backup_dir: Path,
    databases: Callable[..., str],
    mysql_admin_engine: sa.Engine,
    name: str,
) -> None:
    source = databases()
    run_sql(source, "CREATE TABLE accounts (id INT PRIMARY KEY)")
    backup = create(config, url=source)  # unencrypted: nothing stops the edit but validation
    edit_manifest(
        backup_dir, backup.id, lambda d: d["tables"].update({name: d["tables"]["accounts"]})
    )
    target = databases(create=False)
    with pytest.raises(UsageError, match="names tables no mysql database can hold"):
        restore(config, backup.id, url=target)
    with mysql_admin_engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
            {"n": sa.make_url(target).database},
        ).first()
    assert exists is None


@pytest.mark.mysql
def test_swapped_unencrypted_mariadb_archive_is_refused(
    config: Config, backup_dir: Path, databases: Callable[..., str]
) -> None:
    a = databases()
    b = databases()
    run_sql(a, "CREATE TABLE accounts (id INT PRIMARY KEY)", "INSERT INTO accounts VALUES (1)")
    run_sql(b, "CREATE TABLE intruder (id INT PRIMARY KEY)", "INSERT INTO intruder VALUES (1)")
    backup_a = create(config, url=a)
    backup_b = create(config, url=b)
    assert not backup_a.encrypted
    shutil.copyfile(archive_of(backup_dir, backup_b.id), archive_of(backup_dir, backup_a.id))
    before = mysql_state(a)
    with pytest.raises(ArchiveError, match=f"holds backup {backup_b.id}"):
        restore(config, backup_a.id, url=a, yes=True)
    assert mysql_state(a) == before
