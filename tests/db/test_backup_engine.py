"""The backup engine end to end on real databases: SQLite always, MariaDB when marked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.backup import catalog as catalog_module
from migration_guard.backup import (
    create,
    decrypt,
    keygen,
    list_backups,
    prune,
    restore,
    show,
    verify,
)
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.engine import backup_settings
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.dialects import get_dialect_ops
from migration_guard.errors import (
    BackupError,
    ConfigError,
    DatabaseUnavailableError,
    EncryptionKeyError,
    UnknownBackupError,
    UsageError,
)
from tests.conftest import MYSQL_ADMIN_URL, unavailable, unique_name
from tests.db.conftest import KEY_VARIABLES


def make_sqlite(path: Path, *, rows: int = 50) -> str:
    connection = sqlite3.connect(path)
    connection.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, avatar BLOB);
        CREATE TABLE "order items" (sku TEXT, qty INTEGER);
        CREATE VIEW user_names AS SELECT name FROM users;
        CREATE TRIGGER users_touch AFTER INSERT ON users BEGIN SELECT 1; END;
        """
    )
    connection.executemany(
        "INSERT INTO users (name, avatar) VALUES (?, ?)",
        [(f"user 😀 {i}", bytes(range(256))) for i in range(rows)],
    )
    connection.executemany(
        'INSERT INTO "order items" VALUES (?, ?)', [(f"sku-{i}", i) for i in range(rows)]
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def stats_of(url: str) -> dict[str, tuple[int, str | None]]:
    parsed = sa.make_url(url)
    ops = get_dialect_ops(parsed.get_backend_name())
    engine = sa.create_engine(parsed)
    try:
        with engine.connect() as conn:
            tables = ops.list_tables(conn)
            return {
                name: (stat.rows, stat.checksum)
                for name, stat in ops.table_stats(conn, tables).items()
            }
    finally:
        engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> str:
    return make_sqlite(tmp_path / "app.db")


# -- the round trip ---------------------------------------------------------------------------
def test_sqlite_create_list_show_verify_restore(
    config: Config, source: str, tmp_path: Path, backup_dir: Path
) -> None:
    manifest = create(config, url=source)
    assert manifest.type == "full" and manifest.dialect == "sqlite"
    assert set(manifest.tables) == {"users", "order items"}
    assert manifest.tables["users"].rows == 50
    assert manifest.verification.ok is True
    assert (backup_dir / f"{manifest.id}.mgb").is_file()
    assert not list(backup_dir.glob("*.partial")) and not list(backup_dir.glob("*.tmp"))
    assert [m.id for m in list_backups(config)] == [manifest.id]
    assert show(config, manifest.id[:22]).id == manifest.id

    level1 = verify(config, manifest.id)
    assert level1.ok and level1.level == 1, level1.details
    tested = verify(config, manifest.id, restore_test=True)
    assert tested.ok and tested.restore_test_ok, tested.details
    recorded = show(config, manifest.id).verification
    assert recorded.level == 2 and recorded.restore_test_ok is True
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("mg_verify_*.db-journal"))

    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches
    assert result.safety_backup_id is None
    assert stats_of(target) == stats_of(source)


def test_restore_selected_tables_only(config: Config, source: str, tmp_path: Path) -> None:
    manifest = create(config, url=source, type="tables", tables=["users"])
    assert set(manifest.tables) == {"users"}
    target = f"sqlite:///{tmp_path / 'only_users.db'}"
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches
    assert set(stats_of(target)) == {"users"}
    with pytest.raises(UsageError, match="no table"):
        restore(config, manifest.id, url=target, tables=["order items"], yes=True)


def test_usage_errors(config: Config, source: str) -> None:
    with pytest.raises(UsageError, match="MIGRATION_GUARD_URL"):
        create(config)
    with pytest.raises(UsageError, match="--tables"):
        create(config, url=source, type="tables")
    with pytest.raises(UsageError, match="protected_tables"):
        create(config, url=source, type="critical")
    with pytest.raises(UsageError, match="no such table"):
        create(config, url=source, type="tables", tables=["nope"])
    with pytest.raises(UsageError, match="compression"):
        create(config, url=source, compress="lzma")
    critical = create(config.replace(protected_tables=("us*",)), url=source, type="critical")
    assert set(critical.tables) == {"users"}


def test_unknown_backup_id(config: Config, source: str) -> None:
    manifest = create(config, url=source)
    with pytest.raises(UnknownBackupError, match=manifest.id):
        show(config, "20000101T000000Z-full-000000")
    with pytest.raises(UnknownBackupError):
        verify(config, "nope")


def test_settings_validation(backup_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'keep_yearly'.*keep_days"):
        backup_settings(Config(sections={"backup": {"keep_yearly": 3}}))
    with pytest.raises(ConfigError, match="auto_prune"):
        backup_settings(Config(sections={"backup": {"auto_prune": "yes"}}))
    assert backup_settings(Config(sections={"backup": {"keep_daily": 7}})).keep_daily == 7


# -- encryption and damage --------------------------------------------------------------------
def test_encrypted_backup_wrong_and_missing_key(
    config: Config, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EncryptionKeyError, match="MIGRATION_GUARD_KEY"):
        create(config, url=source, encrypt=True)
    key = keygen()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", key)
    manifest = create(config, url=source)
    assert manifest.encrypted
    archive_bytes = Catalog.for_config(config).archive_path(manifest.id).read_bytes()
    assert b"SQLite format 3" not in archive_bytes
    manifest_text = Catalog.for_config(config).manifest_path(manifest.id).read_text()
    assert key not in manifest_text and key.split(":", 1)[1] not in manifest_text
    assert verify(config, manifest.id).ok

    plain = create(config, url=source, encrypt=False)
    assert not plain.encrypted

    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    with pytest.raises(EncryptionKeyError, match="wrong key"):
        verify(config, manifest.id)
    with pytest.raises(EncryptionKeyError, match="wrong key"):
        restore(config, manifest.id, url=f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("MIGRATION_GUARD_KEY")
    with pytest.raises(EncryptionKeyError, match="no key is configured"):
        verify(config, manifest.id)
    assert show(config, manifest.id).verification.ok is True  # a key problem is not damage


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_archive_fails_verification_with_reason(
    config: Config, source: str, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=source)
    path = Catalog.for_config(config).archive_path(manifest.id)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        expected = {"corrupted"}
    else:
        del data[len(data) * 2 // 3 :]
        expected = {"truncated"}
    path.write_bytes(bytes(data))
    result = verify(config, manifest.id)
    assert not result.ok
    assert result.reason in expected, (result.reason, result.details)
    recorded = show(config, manifest.id).verification
    assert recorded.ok is False and recorded.details


def test_corrupted_unencrypted_archive_is_detected(config: Config, source: str) -> None:
    manifest = create(config, url=source, encrypt=False, compress="none")
    path = Catalog.for_config(config).archive_path(manifest.id)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    result = verify(config, manifest.id)
    assert not result.ok and result.reason == "corrupted"


def test_decrypt_writes_plain_stream_atomically(
    config: Config, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=source)
    out = tmp_path / "plain.db"
    written = decrypt(config, manifest.id, out)
    assert written == out.stat().st_size > 0
    assert out.read_bytes().startswith(b"SQLite format 3\x00")
    assert out.stat().st_mode & 0o777 == 0o600
    assert stats_of(f"sqlite:///{out}") == stats_of(source)
    with pytest.raises(UsageError, match="--force"):
        decrypt(config, manifest.id, out)
    decrypt(config, str(Catalog.for_config(config).archive_path(manifest.id)), out, force=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plain")] == []


# -- restore safety ---------------------------------------------------------------------------
def test_restore_into_non_empty_target(config: Config, source: str, tmp_path: Path) -> None:
    manifest = create(config, url=source)
    target_path = tmp_path / "target.db"
    target = make_sqlite(target_path, rows=3)
    before = stats_of(target)
    with pytest.raises(UsageError, match="--yes"):
        restore(config, manifest.id, url=target)
    with pytest.raises(UsageError, match="cancelled"):
        restore(config, manifest.id, url=target, confirm=lambda name: False)
    assert stats_of(target) == before

    dry = restore(config, manifest.id, url=target, dry_run=True)
    assert dry.dry_run and any("safety backup" in note for note in dry.notes)
    assert stats_of(target) == before
    assert len(list_backups(config)) == 1

    asked: list[str] = []
    result = restore(
        config, manifest.id, url=target, confirm=lambda name: asked.append(name) or True
    )
    assert asked == [str(target_path)]
    assert result.ok, result.mismatches
    assert result.safety_backup_id is not None
    safety = show(config, result.safety_backup_id)
    assert safety.type == "safety" and safety.tables["users"].rows == 3
    assert stats_of(target) == stats_of(source)


# -- retention --------------------------------------------------------------------------------
def test_prune_dry_run_then_prune(config: Config, source: str, backup_dir: Path) -> None:
    with pytest.raises(BackupError, match="refusing"):
        prune(config, dry_run=True)
    first = create(config, url=source)
    second = create(config, url=source)
    settings = {"backup": {"keep_days": 0}}
    pruning = config.replace(sections=settings)
    plan = prune(pruning, dry_run=True)
    assert plan.delete_ids == [first.id] and plan.keep_ids == [second.id]
    assert {m.id for m in list_backups(config)} == {first.id, second.id}
    applied = prune(pruning)
    assert applied.delete_ids == [first.id]
    assert [m.id for m in list_backups(config)] == [second.id]
    assert not (backup_dir / f"{first.id}.mgb").exists()

    (backup_dir / "20000101T000000Z-full-abcdef.manifest.json").write_text("{")
    with pytest.raises(BackupError, match="refusing"):
        prune(pruning)
    assert [m.id for m in list_backups(config)] == [second.id]


def test_auto_prune_runs_after_backup(config: Config, source: str) -> None:
    auto = config.replace(sections={"backup": {"keep_days": 0, "auto_prune": True}})
    create(auto, url=source)
    latest = create(auto, url=source)
    assert [m.id for m in list_backups(auto)] == [latest.id]


def test_catalog_table_mirror(config: Config, source: str, tmp_path: Path) -> None:
    mirrored = config.replace(sections={"backup": {"catalog_table": "backup_log"}})
    first = create(mirrored, url=source)
    second = create(mirrored, url=source)
    connection = sqlite3.connect(tmp_path / "app.db")
    rows = {
        row[0]: row[1:] for row in connection.execute("SELECT id, type, size, ok FROM backup_log")
    }
    connection.close()
    assert set(rows) == {first.id, second.id}
    assert rows[first.id] == ("full", first.artifact.size, 1)
    assert "backup_log" in second.tables  # the mirror is ordinary data of later backups


# -- atomicity and faults ---------------------------------------------------------------------
def test_leftovers_of_a_killed_run_are_removed_by_the_next(
    config: Config, source: str, backup_dir: Path
) -> None:
    backup_dir.mkdir(parents=True)
    killed = backup_dir / "20000101T000000Z-full-abcdef.mgb.partial"
    killed.write_bytes(b"half")
    past = catalog_module.PROCESS_START - 600
    os.utime(killed, (past, past))
    manifest = create(config, url=source)
    assert not killed.exists()
    assert [m.id for m in list_backups(config)] == [manifest.id]


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    completed = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        # a skip proves nothing about full disks: locally skipped, a failure in CI
        unavailable(f"cannot mount a 1 MiB tmpfs to simulate a full disk: {completed.stderr}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_leaves_nothing_behind(
    tiny_filesystem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tiny_filesystem / "backups"))
    path = tmp_path / "big.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE blobs (data BLOB)")
    connection.executemany(
        "INSERT INTO blobs VALUES (?)", [(os.urandom(4096),) for _ in range(800)]
    )
    connection.commit()
    connection.close()
    with pytest.raises(BackupError, match="no space left on device") as caught:
        create(Config(), url=f"sqlite:///{path}", compress="none")
    assert str(tiny_filesystem / "backups") in str(caught.value)
    # only the failure record may remain: no archive, manifest or temporary file
    left = sorted(p.name for p in (tiny_filesystem / "backups").iterdir())
    assert left in ([], ["events.jsonl"])


def test_unreachable_server_is_a_clear_error(config: Config) -> None:
    with pytest.raises(DatabaseUnavailableError, match="cannot connect") as caught:
        create(config, url="mysql+pymysql://nobody:secret@127.0.0.1:1/none", backend="native")
    assert "secret" not in str(caught.value)


# -- the command line -------------------------------------------------------------------------
def run_cli(*args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_exit_codes_and_json(
    backup_dir: Path, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli("keygen")
    assert code == 0 and out.startswith("mgk1:")
    key = out.strip()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", key)

    code, out, err = run_cli("backup", "--url", source, "--format", "json")
    assert code == 0, err
    created = json.loads(out)
    backup_id = created["id"]
    assert created["artifact"]["encryption"]["key_fingerprint"]

    code, out, _ = run_cli("backups", "list", "--format", "json")
    assert code == 0 and [entry["id"] for entry in json.loads(out)] == [backup_id]
    code, out, _ = run_cli("backups", "list")
    assert code == 0 and backup_id in out
    code, out, _ = run_cli("backups", "show", backup_id, "--format", "json")
    assert code == 0 and json.loads(out)["id"] == backup_id
    code, out, _ = run_cli("backups", "show", backup_id)
    assert code == 0 and "users" in out
    code, out, _ = run_cli("backups", "verify", backup_id, "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, _, err = run_cli("backups", "show", "nope")
    assert code == 2 and "unknown backup id" in err

    target = make_sqlite(tmp_path / "busy.db", rows=2)
    code, _, err = run_cli("restore", backup_id, "--url", target)
    assert code == 2 and "not empty" in err
    code, out, err = run_cli("restore", backup_id, "--url", target, "--yes", "--format", "json")
    assert code == 0, err
    restored = json.loads(out)
    assert restored["id"] == backup_id and restored["ok"] and restored["safety_backup_id"]

    code, out, _ = run_cli("backups", "prune", "--dry-run", "--format", "json")
    assert code == 0 and json.loads(out)["dry_run"] is True

    code, _, err = run_cli("decrypt", backup_id, "-o", str(tmp_path / "plain.db"))
    assert code == 0, err
    code, _, err = run_cli("decrypt", backup_id, "-o", str(tmp_path / "plain.db"))
    assert code == 2

    archive = Catalog(backup_dir).archive_path(backup_id)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x10
    archive.write_bytes(bytes(data))
    code, out, _ = run_cli("backups", "verify", backup_id)
    assert code == 1 and "FAILED" in out

    monkeypatch.delenv("MIGRATION_GUARD_KEY")
    code, _, err = run_cli("backups", "verify", backup_id)
    assert code == 2 and "MIGRATION_GUARD_KEY" in err
    code, _, err = run_cli("backup", "--url", source, "--encrypt")
    assert code == 2 and "keygen" in err

    for path in backup_dir.iterdir():
        assert key not in path.read_text(errors="replace")


def test_cli_usage_errors(backup_dir: Path) -> None:
    code, _, err = run_cli("backup")
    assert code == 2 and "MIGRATION_GUARD_URL" in err
    code, _, err = run_cli("backup", "--url", "not a url")
    assert code == 2


# -- MariaDB ----------------------------------------------------------------------------------
MYSQL_FIXTURE = """
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
  balance DECIMAL(65,30),
  photo BLOB
) ENGINE=InnoDB;
CREATE TABLE `select` (`we ird` INT) ENGINE=MyISAM;
CREATE VIEW rich AS SELECT name FROM customers WHERE balance > 10;
"""


def _fill_mysql(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in MYSQL_FIXTURE.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
            conn.execute(
                sa.text("INSERT INTO customers (name, balance, photo) VALUES (:n, :b, :p)"),
                [{"n": f"kunde 🐬 {i}", "b": i * 3.5, "p": bytes(range(256))} for i in range(40)],
            )
            conn.exec_driver_sql("INSERT INTO `select` VALUES (1), (2), (NULL)")
    finally:
        engine.dispose()


@pytest.fixture
def other_mysql_database(mysql_admin_engine: sa.Engine) -> Iterator[str]:
    name = unique_name("mg_restore")
    try:
        yield f"{MYSQL_ADMIN_URL.rstrip('/')}/{name}?charset=utf8mb4"
    finally:
        with mysql_admin_engine.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysqldump", "native"])
def test_mariadb_round_trip(
    config: Config,
    mysql_url: str,
    other_mysql_database: str,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from migration_guard.backup.backends import get_backend

    reason = get_backend(backend).available()
    if reason is not None:
        unavailable(f"backend {backend} cannot run here: {reason}")
    _fill_mysql(mysql_url)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=mysql_url, backend=backend)
    assert manifest.tables["customers"].rows == 40
    assert manifest.server_version
    assert "views" in manifest.objects

    result = verify(config, manifest.id, restore_test=True, scratch_url=mysql_url)
    assert result.ok and result.restore_test_ok, result.details

    restored = restore(config, manifest.id, url=other_mysql_database)
    assert restored.ok, restored.mismatches
    assert stats_of(other_mysql_database) == stats_of(mysql_url)

    again = restore(config, manifest.id, url=other_mysql_database, yes=True)
    assert again.ok and again.safety_backup_id


@pytest.mark.mysql
def test_mariadb_wrong_credentials_are_reported_without_password(
    config: Config, mysql_admin_engine: sa.Engine
) -> None:
    url = MYSQL_ADMIN_URL.replace("root@", "nobody_mg:hunter2secret@")
    with pytest.raises(DatabaseUnavailableError, match=r"cannot connect|denied") as caught:
        create(config, url=url.rstrip("/") + "/mysql", backend="native")
    assert "hunter2secret" not in str(caught.value)


@pytest.mark.mysql
def test_mariadb_row_digests_catch_rows_that_differ(
    config: Config, mysql_url: str, other_mysql_database: str
) -> None:
    _fill_mysql(mysql_url)
    manifest = create(config, url=mysql_url, backend="mysqldump")
    entry = manifest.tables["customers"]
    assert entry.rows == 40 and entry.checksum is None and entry.content_sha256
    assert manifest.extra["content_digest"]["tool"]  # type: ignore[index]

    manifest.tables["customers"].content_sha256 = "0" * 64
    Catalog.for_config(config).update(manifest)
    result = verify(config, manifest.id, restore_test=True, scratch_url=mysql_url)
    assert not result.ok and result.reason == "restore-test"
    assert any(
        d.startswith("table customers: the rows in a new dump of the restored database differ")
        for d in result.details
    ), result.details
    restored = restore(config, manifest.id, url=other_mysql_database)
    assert not restored.ok
    assert any("the rows in the restored stream differ" in m for m in restored.mismatches)


@pytest.mark.mysql
def test_mariadb_server_checksums_setting(
    mysql_url: str, other_mysql_database: str, backup_dir: Path
) -> None:
    config = Config(sections={"backup": {"server_checksums": True}})
    _fill_mysql(mysql_url)
    manifest = create(config, url=mysql_url, backend="mysqldump")
    assert {name: (e.rows, str(e.checksum)) for name, e in manifest.tables.items()} == {
        name: (rows, str(checksum)) for name, (rows, checksum) in stats_of(mysql_url).items()
    }
    restored = restore(config, manifest.id, url=other_mysql_database)
    assert restored.ok, restored.mismatches
    assert stats_of(other_mysql_database) == stats_of(mysql_url)
