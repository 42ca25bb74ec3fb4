"""A full MariaDB backup taken while a writer inserts into AUTO_INCREMENT tables.

``SHOW CREATE TABLE`` prints the live ``AUTO_INCREMENT`` counter, not the
snapshot's. When the definition recorded in the manifest was read at another
moment than the one the dump printed (and a restore sets), the restore proof
failed with "definition (DDL) differs" although nothing was wrong. These tests
attack that with a real writer thread and require the proof to pass, the rows to
be exactly the dumped snapshot and the restored counter never to hand out an id
again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, restore, verify
from migration_guard.config import Config
from tests.conftest import unique_name

TABLES = ("orders", "events", "audit")
#: Rows each table holds before the backup: enough for the dump to take a while.
PRELOADED = 3000


@pytest.fixture
def target_url(mysql_url: str, mysql_admin_engine: sa.Engine) -> Iterator[str]:
    """A database name for the restore to create, dropped afterwards."""
    name = unique_name("mg_restored")
    yield str(sa.make_url(mysql_url).set(database=name))
    with mysql_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


class Writer:
    """Inserts one row at a time (autocommit) into every table until stopped."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.stop = threading.Event()
        self.inserted = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                while not self.stop.is_set():
                    for table in TABLES:
                        conn.exec_driver_sql(f"INSERT INTO `{table}` (payload) VALUES ('late')")
                    self.inserted += 1
        except BaseException as exc:  # re-raised by the test
            self.error = exc

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.engine.dispose()


def load(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table in TABLES:
                conn.exec_driver_sql(
                    f"CREATE TABLE `{table}` (id INT AUTO_INCREMENT PRIMARY KEY, "
                    "payload VARCHAR(100) NOT NULL) ENGINE=InnoDB"
                )
                conn.exec_driver_sql(
                    f"INSERT INTO `{table}` (payload) VALUES " + ",".join(["('early')"] * PRELOADED)
                )
    finally:
        engine.dispose()


def restored_facts(url: str, table: str) -> tuple[list[int], int]:
    """The ids of ``table`` (ascending) and its AUTO_INCREMENT counter."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ids = [
                int(i)
                for i in conn.exec_driver_sql(f"SELECT id FROM `{table}` ORDER BY id").scalars()
            ]
            ddl = str(conn.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1])
    finally:
        engine.dispose()
    counter = re.search(r"\) ENGINE=\S+ AUTO_INCREMENT=(\d+)", ddl)
    return ids, int(counter.group(1)) if counter else 1


@pytest.mark.parametrize("backend", ["mysqldump", "native"])
def test_full_backup_under_concurrent_inserts_restores_with_a_passing_proof(
    backend: str, mysql_url: str, target_url: str, config: Config
) -> None:
    load(mysql_url)
    manifests = []
    with Writer(mysql_url) as writer:
        # Several backups raise the odds that the counter moves between two reads.
        for _ in range(3):
            manifests.append(create(config, url=mysql_url, backend=backend))
    assert writer.error is None, writer.error
    assert writer.inserted > 0, "the writer never ran during the backups"
    manifest = manifests[-1]

    result = restore(config, manifest.id, url=target_url)

    assert result.mismatches == []
    for table in TABLES:
        ids, counter = restored_facts(target_url, table)
        expected_rows = manifest.tables[table].rows
        assert expected_rows is not None and expected_rows >= PRELOADED
        # The snapshot: one writer, so every committed id up to the snapshot and none after.
        assert ids == list(range(1, expected_rows + 1)), table
        # An id handed out after the restore is never one that was already used.
        assert counter > ids[-1], table
    for earlier in manifests[:-1]:
        checked = verify(config, earlier.id, restore_test=True)
        assert checked.ok and checked.restore_test_ok, checked.details
