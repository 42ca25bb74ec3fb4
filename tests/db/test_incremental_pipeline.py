"""Incremental backups as one more kind of backup, and point-in-time restore by position.

On the binlog-enabled MariaDB (port 3307): every step after a backup (offsite copy,
verification, auto prune, events, the refusal of unencrypted backups) applies to an
incremental as to a full backup; ``--until-position`` and ``--until-gtid`` stop the
replay before one statement; ``backups list`` and ``backups verify`` see chains.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, keygen, restore, verify
from migration_guard.backup.catalog import Catalog
from migration_guard.config import Config
from migration_guard.errors import EncryptionKeyError, MigrationGuardError
from migration_guard.events import Event
from migration_guard.monitoring.health import monitor_settings, run_checks
from migration_guard.monitoring.status import status
from tests.conftest import MYSQL_BINLOG_ADMIN_URL
from tests.db import test_incremental as base

# The fixtures and helpers of the incremental tests.
chain = base.chain
new_binlog_database = base.new_binlog_database
cli, run, state = base.cli, base.run, base.state


def _with(config: Config, **backup: object) -> Config:
    return Config(sections={"backup": dict(backup)}, offsite=config.offsite)


def _base(url: str) -> None:
    run(
        url,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(50), balance INT)",
        "CREATE TABLE orders (id INT PRIMARY KEY, account INT, note TEXT)",
        "INSERT INTO accounts VALUES (1, 'ann', 10), (2, 'bob', 20)",
        "INSERT INTO orders VALUES (1, 1, 'a')",
    )


# -- every step after a backup applies to incrementals -------------------------------------------
def test_an_incremental_is_copied_offsite_like_a_full_backup(
    mysql_binlog_url: str, tmp_path: Path, config: Config
) -> None:
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    copied = Config(offsite=(str(offsite),))
    _base(mysql_binlog_url)
    create(copied, url=mysql_binlog_url, encrypt=False)
    run(mysql_binlog_url, "INSERT INTO accounts VALUES (3, 'cy', 30)")
    incremental = create(copied, url=mysql_binlog_url, type="incremental", encrypt=False)
    names = [p.name for p in offsite.rglob("*")]
    assert any(incremental.id in name and name.endswith(".manifest.json") for name in names), names
    assert any(incremental.id in name and name.endswith(".mgb") for name in names), names


def test_verify_after_backup_full_verifies_an_incremental_and_its_chain(
    mysql_binlog_url: str, config: Config
) -> None:
    verifying = _with(config, verify_after_backup="full")
    _base(mysql_binlog_url)
    create(verifying, url=mysql_binlog_url, encrypt=False)
    run(mysql_binlog_url, "UPDATE accounts SET balance = 0")
    incremental = create(verifying, url=mysql_binlog_url, type="incremental", encrypt=False)
    assert incremental.verification.ok is True and incremental.verification.level == 1
    assert any("chain of 2 backup(s)" in d for d in incremental.verification.details)


def test_auto_prune_and_events_follow_an_incremental(mysql_binlog_url: str, config: Config) -> None:
    pruning = _with(config, auto_prune=True, keep_days=30)
    _base(mysql_binlog_url)
    create(pruning, url=mysql_binlog_url, encrypt=False)
    run(mysql_binlog_url, "DELETE FROM orders")
    events: list[Event] = []
    incremental = create(
        pruning, url=mysql_binlog_url, type="incremental", encrypt=False, on_event=events.append
    )
    names = [f"{e.subject}.{e.outcome}" for e in events]
    assert "backup.success" in names and "prune.success" in names, names
    (done,) = [e for e in events if e.subject == "backup"]
    assert done.data["type"] == "incremental" and incremental.id in done.summary


def test_a_job_that_lost_its_key_writes_no_plaintext_incremental(
    mysql_binlog_url: str,
    mysql_binlog_admin_engine: sa.Engine,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalog holds encrypted backups (of another database); this chain is not
    encrypted. An incremental without a key must still be refused, as a full one is."""
    _base(mysql_binlog_url)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    other = sa.make_url(mysql_binlog_url).set(
        database=sa.make_url(mysql_binlog_url).database + "_o"
    )
    with mysql_binlog_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{other.database}`")
    try:
        run(str(other), "CREATE TABLE t (id INT PRIMARY KEY)")
        assert create(config, url=other).encrypted
        create(config, url=mysql_binlog_url, encrypt=False)
        monkeypatch.delenv("MIGRATION_GUARD_KEY")
        run(mysql_binlog_url, "INSERT INTO accounts VALUES (9, 'x', 9)")
        with pytest.raises(EncryptionKeyError) as caught:
            create(config, url=mysql_binlog_url, type="incremental")
        assert "refusing to write an unencrypted backup" in caught.value.message
        required = _with(config, require_encryption=True)
        with pytest.raises(EncryptionKeyError):
            create(required, url=mysql_binlog_url, type="incremental", encrypt=False)
        outcome = cli("backup", "--url", mysql_binlog_url, "--type", "incremental")
        assert outcome.exit_code == 2, outcome.output
    finally:
        with mysql_binlog_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{other.database}`")


def test_purged_binlog_through_the_cli_exits_1_naming_the_gap(
    mysql_binlog_url: str, config: Config
) -> None:
    _base(mysql_binlog_url)
    full = create(config, url=mysql_binlog_url, encrypt=False)
    path = Catalog.for_config(config).manifest_path(full.id)
    data = json.loads(path.read_text())
    data["binlog"]["file"] = "binlog.000000"
    path.write_text(json.dumps(data))
    outcome = cli("backup", "--url", mysql_binlog_url, "--type", "incremental", "--no-encrypt")
    assert outcome.exit_code == 1, outcome.output
    assert "binlog.000000" in outcome.output and "new full backup" in outcome.output
    assert "Traceback" not in outcome.output


def test_incremental_on_sqlite_exits_2_saying_to_take_full_backups(
    sqlite_url: str, config: Config
) -> None:
    outcome = cli("backup", "--url", sqlite_url, "--type", "incremental", "--no-encrypt")
    assert outcome.exit_code == 2, outcome.output
    assert "not supported for sqlite" in outcome.output
    assert "--type full" in outcome.output and "Traceback" not in outcome.output


# -- point-in-time restore by position and by GTID -----------------------------------------------
def _point(url: str, query: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(query).one()
    finally:
        engine.dispose()


@pytest.fixture
def mistake(config: Config, mysql_binlog_url: str) -> dict[str, Any]:
    """Full, changes, a binlog rotation, more changes, then the bad statement, then more;
    two incrementals. The binlog position and the GTID right before the bad statement."""
    _base(mysql_binlog_url)
    full = create(config, url=mysql_binlog_url, encrypt=False)
    run(mysql_binlog_url, "INSERT INTO accounts VALUES (3, 'cy', 30)")
    first = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    run(mysql_binlog_url, "FLUSH BINARY LOGS")
    run(
        mysql_binlog_url,
        "UPDATE accounts SET balance = balance + 1",
        "INSERT INTO orders VALUES (2, 3, 'b')",
    )
    before = state(mysql_binlog_url)
    file, position = _point(mysql_binlog_url, "SHOW MASTER STATUS")[:2]
    gtid = _point(mysql_binlog_url, "SELECT @@gtid_binlog_pos")[0]
    run(mysql_binlog_url, "DELETE FROM accounts")  # the mistake
    run(mysql_binlog_url, "INSERT INTO accounts VALUES (7, 'late', 70)")
    second = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    return {
        "full": full,
        "first": first,
        "second": second,
        "before": before,
        "position": f"{file}:{position}",
        "gtid": gtid,
    }


def test_until_position_stops_right_before_the_bad_statement(
    mistake: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    target = new_binlog_database()
    # Any backup of the chain may be named: it is followed as far as the position.
    outcome = cli(
        "restore", mistake["first"].id, "--url", target, "--until-position", mistake["position"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert state(target) == mistake["before"]


def test_until_gtid_leaves_out_the_bad_transaction(
    mistake: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    domain, server, seq = next(
        part for part in mistake["gtid"].split(",") if part.startswith("0-")
    ).split("-")
    target = new_binlog_database()
    result = restore(
        Config(), mistake["second"].id, url=target, until_gtid=f"{domain}-{server}-{int(seq) + 1}"
    )
    assert result.ok
    assert state(target) == mistake["before"]


def test_until_position_and_gtid_refuse_bad_input_and_points_outside_the_chain(
    mistake: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    target = new_binlog_database()
    second = mistake["second"].id
    cases = [
        (("--until-position", "binlog:12"), "FILE:POS"),
        (("--until-position", "binlog.000001:4"), "not inside the chain"),
        (("--until-position", "binlog.999999:4"), "not inside the chain"),
        (("--until-gtid", "0-1"), "DOMAIN-SERVER-SEQUENCE"),
        (("--until-gtid", "0-1-999999999"), "not inside the chain"),
        (("--until-gtid", "0-1-5", "--until", "2026-12-06T20:00:00Z"), "exclude each other"),
        (("--until", "2099-01-01T00:00:00Z"), "no backup yet"),
    ]
    for args, expected in cases:
        outcome = cli("restore", second, "--url", target, *args)
        assert outcome.exit_code == 2, (args, outcome.output)
        assert expected in outcome.output, (args, outcome.output)
        assert "Traceback" not in outcome.output
    engine = sa.create_engine(MYSQL_BINLOG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            name = sa.make_url(target).database
            assert conn.exec_driver_sql(f"SHOW DATABASES LIKE '{name}'").first() is None
    finally:
        engine.dispose()


# -- chains in the listing, in verification and in status/monitor ---------------------------------
def test_backups_list_shows_chains(chain: dict[str, Any]) -> None:
    full, first, second = chain["full"], chain["first"], chain["second"]
    listed = {
        item["id"]: item for item in json.loads(cli("backups", "list", "--format", "json").output)
    }
    assert listed[second.id]["parent"] == first.id
    assert listed[second.id]["chain_root"] == full.id
    assert listed[first.id]["chain_root"] == full.id and listed[full.id]["chain_root"] == full.id
    assert listed[second.id]["binlog_start"]["position"] == first.binlog["position"]
    assert listed[second.id]["binlog_end"]["position"] == second.binlog["position"]
    assert listed[full.id]["binlog_start"] is None and listed[full.id]["parent"] is None
    text = cli("backups", "list").output
    lines = text.splitlines()
    at = {
        backup_id: next(i for i, line in enumerate(lines) if backup_id in line)
        for backup_id in listed
    }
    assert at[full.id] < at[second.id] < at[first.id]  # the chain under its root, newest first
    assert f"incremental of {first.id}" in text.replace("\n", "") or "└" in lines[at[second.id]]


def _edit(config: Config, backup_id: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = Catalog.for_config(config).manifest_path(backup_id)
    data = json.loads(path.read_text())
    change(data["binlog"])
    path.write_text(json.dumps(data))


def test_verify_catches_an_edited_coordinate_of_an_unencrypted_chain(
    config: Config, chain: dict[str, Any]
) -> None:
    second = chain["second"].id
    assert verify(config, second).ok

    def shift_end(binlog: dict[str, Any]) -> None:
        binlog["position"] = str(int(binlog["position"]) + 1)

    _edit(config, second, shift_end)
    result = verify(config, second)
    assert not result.ok and result.reason == "coordinates", result.details
    _edit(config, second, lambda b: b.update(position=chain["second"].binlog["position"]))
    assert verify(config, second).ok
    # The parent's end and the child's start edited together: the parent's archive says no.
    _edit(config, chain["first"].id, shift_end)
    _edit(
        config, second, lambda b: b["start"].update(position=str(int(b["start"]["position"]) + 1))
    )
    result = verify(config, second)
    assert not result.ok and result.reason == "chain", result.details
    assert any(chain["first"].id in d for d in result.details)
    # The child's start alone: it no longer starts where its parent ends.
    _edit(config, chain["first"].id, lambda b: b.update(position=chain["first"].binlog["position"]))
    result = verify(config, second)
    assert not result.ok and "starts at" in " ".join(result.details)


def test_verify_catches_an_edited_coordinate_of_an_encrypted_incremental(
    config: Config,
    mysql_binlog_url: str,
    monkeypatch: pytest.MonkeyPatch,
    new_binlog_database: Callable[[], str],
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    _base(mysql_binlog_url)
    create(config, url=mysql_binlog_url)
    run(mysql_binlog_url, "DELETE FROM orders")
    incremental = create(config, url=mysql_binlog_url, type="incremental")
    _edit(config, incremental.id, lambda b: b["start"].update(position="4"))
    assert not verify(config, incremental.id).ok
    with pytest.raises(MigrationGuardError):
        restore(config, incremental.id, url=new_binlog_database(), yes=True)


def test_status_and_monitor_report_the_newest_recovery_point(
    config: Config, chain: dict[str, Any]
) -> None:
    report = status(config)
    (point,) = report.recovery
    assert point["backup_id"] == chain["second"].id and point["type"] == "incremental"
    later = chain["second"].finished + timedelta(hours=3)
    strict = Config(sections={"monitor": {"max_recovery_gap": "2h"}})
    _, results = run_checks(strict, settings=monitor_settings(strict), now=later)
    (gap,) = [r for r in results if r.check == "max_recovery_gap"]
    assert gap.failed and chain["second"].id in gap.summary and "3h" in gap.summary
    loose = Config(sections={"monitor": {"max_recovery_gap": "4h"}})
    _, results = run_checks(loose, settings=monitor_settings(loose), now=later)
    assert [r.status for r in results if r.check == "max_recovery_gap"] == ["ok"]
    text = cli("status").output
    assert "Newest recovery point" in text and chain["second"].id in text


def test_prune_dry_run_shows_the_chain_kept_whole(chain: dict[str, Any]) -> None:
    outcome = cli("backups", "prune", "--dry-run")
    assert outcome.exit_code == 0, outcome.output
    assert f"chain {chain['full'].id}: 3 backup(s), kept whole" in outcome.output
    data = json.loads(cli("backups", "prune", "--dry-run", "--format", "json").output)
    (listed,) = data["chains"]
    assert listed["root"] == chain["full"].id and listed["kept"] is True
    assert listed["members"] == [chain["full"].id, chain["first"].id, chain["second"].id]


def test_verify_fails_when_a_backup_of_the_chain_is_gone(
    config: Config, chain: dict[str, Any]
) -> None:
    catalog = Catalog.for_config(config)
    catalog.manifest_path(chain["first"].id).unlink()
    result = verify(config, chain["second"].id)
    assert not result.ok and result.reason == "chain"
    assert any("is missing" in detail for detail in result.details), result.details


def test_until_from_the_full_backup_follows_the_chain(
    config: Config, chain: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    """ID may be the chain's full backup: the chain is followed as far as the time needs."""
    target = new_binlog_database()
    stamp = chain["second"].finished_at
    result = restore(config, chain["full"].id, url=target, until=stamp)
    assert result.ok
    assert state(target) == chain["state2"]
    assert any(chain["second"].id in note for note in result.notes), result.notes
