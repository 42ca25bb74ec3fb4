"""Backup backends against the real MariaDB and SQLite: dump, restore, compare."""

from __future__ import annotations

import io
import os
import re
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup.backends import default_backend, get_backend
from migration_guard.backup.backends.base import Backend
from migration_guard.backup.backends.dumpscan import DumpScanner
from migration_guard.backup.backends.mysql_client import client_defaults_file, run_dump
from migration_guard.backup.backends.mysqldump import MysqldumpBackend
from migration_guard.dialects import get_dialect_ops
from migration_guard.dialects.mysql import MySQLDialectOps
from migration_guard.errors import (
    DatabaseUnavailableError,
    ToolMissingError,
    UnknownNameError,
    UsageError,
)
from tests.conftest import MYSQL_ADMIN_URL, unique_name

MYSQL_BACKENDS = ["mysqldump", "native"]
STREAM_FORMATS = {"mysqldump": "mysql-sql", "native": "mysql-native"}
ADMIN_URL = sa.make_url(MYSQL_ADMIN_URL)


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def new_database(mysql_admin_engine: sa.Engine) -> Iterator[Callable[[], URL]]:
    """A factory of empty, uniquely named MariaDB databases, all dropped afterwards."""
    created: list[str] = []

    def make() -> URL:
        name = unique_name("mg_bk")
        with mysql_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        created.append(name)
        return ADMIN_URL.set(database=name, query={"charset": "utf8mb4"})

    yield make
    with mysql_admin_engine.connect() as conn:
        for name in created:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def run_client(sql: bytes, database: str | None = None, as_url: URL = ADMIN_URL) -> None:
    """Pipe ``sql`` into the mariadb client (as the admin user unless ``as_url``)."""
    with client_defaults_file(as_url) as defaults:
        command = ["mariadb", f"--defaults-extra-file={defaults}", "--binary-mode", "--batch"] + (
            [database] if database else []
        )
        result = subprocess.run(command, input=sql, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()


def load_sakila(sakila_dir: Path, url: URL, as_url: URL = ADMIN_URL) -> None:
    name = url.database
    assert name
    text = (sakila_dir / "sakila-schema.sql").read_text() + (
        sakila_dir / "sakila-data.sql"
    ).read_text()
    text = re.sub(r"(?m)^DROP SCHEMA IF EXISTS sakila;$", "", text)
    text = re.sub(r"(?m)^CREATE SCHEMA sakila;$", "", text)
    text = re.sub(r"(?m)^USE sakila;$", f"USE `{name}`;", text)
    text = text.replace("sakila.", f"`{name}`.")
    run_client(text.encode(), name, as_url)


def snapshot(url: URL) -> dict[str, Any]:
    """Everything a restore must give back, comparable across database names."""
    ops = get_dialect_ops("mysql")
    assert isinstance(ops, MySQLDialectOps)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = ops.list_tables(conn)
            stats = ops.table_stats(conn, tables)
            result: dict[str, Any] = {
                "tables": {
                    table: {
                        "ddl": ops.show_create_table(conn, table),
                        "rows": stats[table].rows,
                        "checksum": stats[table].checksum,
                    }
                    for table in tables
                },
                "objects": ops.object_definitions(conn),
                "auto_increment": dict(
                    conn.execute(
                        sa.text(
                            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = DATABASE()"
                        )
                    ).all()
                ),
            }
    finally:
        engine.dispose()
    return result


def round_trip(backend: Backend, source: URL, target: URL, **dump_options: Any) -> bytes:
    sink = io.BytesIO()
    result = backend.dump(source, sink, **dump_options)
    stream = sink.getvalue()
    backend.restore(
        target,
        io.BytesIO(stream),
        stream_format=result.stream_format,
        tables=dump_options.get("tables"),
    )
    return stream


def assert_same(source: URL, target: URL) -> None:
    before, after = snapshot(source), snapshot(target)
    assert sorted(after["tables"]) == sorted(before["tables"])
    for table, expected in before["tables"].items():
        assert after["tables"][table] == expected, table
    assert after["objects"] == before["objects"]
    assert after["auto_increment"] == before["auto_increment"]


AWKWARD_SCHEMA = [
    "SET FOREIGN_KEY_CHECKS = 0",
    """CREATE TABLE `select` (
        `from` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        `we``ird "name" 'x'` VARCHAR(50),
        `sp ace` TEXT
    ) ENGINE=InnoDB""",
    """CREATE TABLE `types` (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        b BIT(64), b1 BIT(1),
        ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT,
        d DECIMAL(65,30), f FLOAT, dbl DOUBLE,
        dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, da DATE, tm TIME(6), y YEAR,
        c CHAR(10), vc VARCHAR(255), tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
        bn BINARY(4), vb VARBINARY(300), bl BLOB, lb LONGBLOB,
        e ENUM('a','b','c d'), s SET('x','y','z'),
        j JSON,
        pt POINT, pg POLYGON, g GEOMETRY,
        gv BIGINT AS (i * 2) VIRTUAL,
        gs VARCHAR(300) AS (CONCAT(vc, '!')) STORED,
        u VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
        l1 VARCHAR(50) CHARACTER SET latin1
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "CREATE TABLE `no pk` (a INT, b VARCHAR(10)) ENGINE=InnoDB",
    "CREATE TABLE `my_isam` (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM",
    "CREATE TABLE `100% ``pct`` ;` (`%s` INT, `%(x)s` VARCHAR(5))",
    "INSERT INTO `100% ``pct`` ;` VALUES (1, '%s'), (2, '%%')",
    """CREATE TABLE `cycle_a` (id INT PRIMARY KEY, b_id INT, KEY (b_id),
        CONSTRAINT fk_a_b FOREIGN KEY (b_id) REFERENCES `cycle_b` (id)) ENGINE=InnoDB""",
    """CREATE TABLE `cycle_b` (id INT PRIMARY KEY, a_id INT, KEY (a_id),
        CONSTRAINT fk_b_a FOREIGN KEY (a_id) REFERENCES `cycle_a` (id)) ENGINE=InnoDB""",
    "CREATE VIEW `z view` AS SELECT `from`, `sp ace` FROM `select`",
    "CREATE VIEW `a_view_on_view` AS SELECT `from` FROM `z view` WHERE `from` > 1",
    """CREATE TRIGGER `trg ``one``` BEFORE INSERT ON `no pk` FOR EACH ROW
       BEGIN
         SET NEW.b = CONCAT(COALESCE(NEW.b, ''), ';');
         SET NEW.a = COALESCE(NEW.a, 0) + 1;
       END""",
    """CREATE PROCEDURE `proc; x`(IN n INT, OUT total INT)
       BEGIN
         DECLARE k INT DEFAULT 0;
         SELECT COUNT(*) INTO total FROM `select` WHERE `from` > n;
         SET k = k + 1;
       END""",
    """CREATE FUNCTION `twice`(x INT) RETURNS INT DETERMINISTIC
       BEGIN
         RETURN x * 2;
       END""",
    """CREATE EVENT `ev 1` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
       DO DELETE FROM `no pk` WHERE a < 0""",
]


def load_awkward(url: URL) -> None:
    all_bytes = bytes(range(256))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in AWKWARD_SCHEMA:
                conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
            conn.execute(
                sa.text(
                    "INSERT INTO `select` (`we``ird \"name\" 'x'`, `sp ace`) VALUES "
                    "('a', 'b'), (:q, :w), (NULL, '')"
                ),
                {"q": "O'Brien; DROP TABLE x; --", "w": "line1\nline2\ttab\\back\r\x00\x1a end"},
            )
            conn.exec_driver_sql("ALTER TABLE `select` AUTO_INCREMENT = 5000")
            conn.execute(
                sa.text(
                    "INSERT INTO types (b, b1, ti, si, mi, i, bi, d, f, dbl, dt, ts, da, tm, y, "
                    "c, vc, tx, mt, lt, bn, vb, bl, lb, e, s, j, pt, pg, g, u, l1) VALUES "
                    "(b'1111111111111111111111111111111111111111111111111111111111111111', b'1', "
                    "-128, 65535, -8388608, -2147483648, -9223372036854775808, "
                    "'-12345678901234567890123456789012345.123456789012345678901234567891', "
                    "1.5, 1.7976931348623157e308, '2024-02-29 23:59:59.999999', "
                    "'2038-01-19 03:14:07.999', '1000-01-01', '-838:59:59.000000', 2155, "
                    ":c, :vc, :tx, :mt, :lt, :bn, :vb, :bl, :lb, 'c d', 'x,z', :j, "
                    "ST_GeomFromText('POINT(1.5 -2.25)'), "
                    "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))'), "
                    "ST_GeomFromText('LINESTRING(0 0,1 1,2 3)'), :u, :l1)"
                ),
                {
                    "c": "ch'ar",
                    "vc": "emoji 😀🎉 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                    "tx": "nul\x00 ctrl\x1a quote' dq\" bs\\ nl\n",
                    "mt": "m" * 70000,
                    "lt": "🦄" * 1000,
                    "bn": b"\x00\xff\x00\x01",
                    "vb": all_bytes[::-1],
                    "bl": all_bytes,
                    "lb": all_bytes * 300,
                    "j": '{"k": [1, 2.5, "🦄"], "n": null, "q": "a\\"b"}',
                    "u": "𝔘 bin",
                    "l1": "café",
                },
            )
            conn.exec_driver_sql("INSERT INTO types (id) VALUES (100)")
            conn.exec_driver_sql(
                "INSERT INTO types (d, f, dbl, dt, i) VALUES "
                "(0, 0.1, 0.1, '2000-01-01 00:00:00.000001', 7), "
                "(0.000000000000000000000000000001, -3.4e38, -2.2250738585072014e-308, "
                "'1970-01-01 00:00:01', NULL)"
            )
            conn.exec_driver_sql("INSERT INTO `no pk` VALUES (1, 'x'), (1, 'x'), (NULL, NULL)")
            conn.exec_driver_sql("INSERT INTO my_isam VALUES (1, 'm'), (2, 'n')")
            conn.exec_driver_sql("INSERT INTO cycle_a VALUES (1, 1), (2, NULL)")
            conn.exec_driver_sql("INSERT INTO cycle_b VALUES (1, 1), (2, 2)")
    finally:
        engine.dispose()


# -- MariaDB fidelity -----------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_sakila_round_trip_is_faithful(
    backend_name: str, sakila_dir: Path, new_database: Callable[[], URL]
) -> None:
    source, target = new_database(), new_database()
    load_sakila(sakila_dir, source)
    backend = get_backend(backend_name)

    sink = io.BytesIO()
    result = backend.dump(source, sink)
    stream = sink.getvalue()
    backend.restore(target, io.BytesIO(stream), stream_format=result.stream_format)

    assert re.search(rb"(?im)^\s*(USE|CREATE DATABASE|CREATE SCHEMA)\b", stream) is None
    statements = b"\n".join(line for line in stream.splitlines() if not line.startswith(b"--"))
    assert source.database and source.database.encode() not in statements
    assert_same(source, target)
    assert result.tables["rental"].rows == 16044
    restored = snapshot_stats(target)
    assert {name: (s.rows, s.ddl_sha256) for name, s in result.tables.items()} == {
        name: (s.rows, s.ddl_sha256) for name, s in restored.items()
    }
    assert {name: s.rows for name, s in snapshot_stats(source).items()} == {
        name: s.rows for name, s in result.tables.items()
    }
    if backend_name == "mysqldump":
        # Rows and digests come from the stream; a new dump of the copy agrees.
        assert all(s.checksum is None and s.content_sha256 for s in result.tables.values())
        again = backend.content_digests(target, list(result.tables))
        assert again is not None
        assert {name: (c.rows, c.sha256) for name, c in again.items()} == {
            name: (s.rows, s.content_sha256) for name, s in result.tables.items()
        }
    else:
        assert {name: s.checksum for name, s in result.tables.items()} == {
            name: s.checksum for name, s in restored.items()
        }
    assert set(result.objects["views"]) >= {"actor_info", "customer_list", "staff_list"}
    assert result.objects["procedures"] == ["film_in_stock", "film_not_in_stock", "rewards_report"]
    assert result.binlog is None  # binary logging is off on the test server
    assert "MariaDB" in result.server_version
    with sa.create_engine(target, poolclass=sa.pool.NullPool).connect() as conn:
        assert result.extra["object_sha256"] == get_dialect_ops("mysql").objects(conn)


def snapshot_stats(url: URL) -> dict[str, Any]:
    ops = get_dialect_ops("mysql")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return ops.table_stats(conn, ops.list_tables(conn))  # type: ignore[return-value]
    finally:
        engine.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_awkward_fixture_round_trip_is_faithful(
    backend_name: str, new_database: Callable[[], URL]
) -> None:
    source, target = new_database(), new_database()
    load_awkward(source)
    round_trip(get_backend(backend_name), source, target)
    assert_same(source, target)
    after = snapshot(target)
    assert "AUTO_INCREMENT=5000" in after["tables"]["select"]["ddl"]
    assert after["tables"]["no pk"]["rows"] == 3


@pytest.mark.mysql
def test_mysqldump_counts_and_digests_rows_from_its_stream(
    new_database: Callable[[], URL],
) -> None:
    source, target = new_database(), new_database()
    load_awkward(source)
    backend = get_backend("mysqldump")
    sink = io.BytesIO()
    result = backend.dump(source, sink)
    assert {n: s.rows for n, s in result.tables.items()} == {
        n: s.rows for n, s in snapshot_stats(source).items()
    }
    assert all(s.checksum is None and s.content_sha256 for s in result.tables.values())
    expected = {n: (s.rows, s.content_sha256) for n, s in result.tables.items()}

    outcome = backend.restore(
        target, io.BytesIO(sink.getvalue()), stream_format=result.stream_format
    )
    assert {n: (c.rows, c.sha256) for n, c in outcome.content.items()} == expected
    again = backend.content_digests(target, list(result.tables))
    assert again is not None
    assert {n: (c.rows, c.sha256) for n, c in again.items()} == expected

    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE `no pk` SET b = 'changed' LIMIT 1")
    engine.dispose()
    changed = backend.content_digests(target, ["no pk", "my_isam"])
    assert changed is not None
    assert changed["no pk"].rows == 3
    assert changed["no pk"].sha256 != expected["no pk"][1]
    assert (changed["my_isam"].rows, changed["my_isam"].sha256) == expected["my_isam"]


@pytest.mark.mysql
def test_the_manual_digest_recipe_of_recovery_md_gives_content_sha256(
    new_database: Callable[[], URL],
) -> None:
    source = new_database()
    load_awkward(source)
    result = get_backend("mysqldump").dump(source, io.BytesIO())
    recipe = re.search(
        r"\$ (mariadb-dump .*?sha256sum)",
        (Path(__file__).parents[2] / "docs" / "recovery.md").read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert recipe is not None
    command = re.sub(r"\\\n\s*", "", recipe.group(1)).replace("shop_restored t", "DB types")
    with client_defaults_file(source) as defaults:
        command = command.replace(
            "mariadb-dump ", f"mariadb-dump --defaults-extra-file={defaults} ", 1
        ).replace("DB", str(source.database))
        printed = subprocess.run(
            command, shell=True, check=True, capture_output=True, text=True
        ).stdout
    assert printed.split()[0] == result.tables["types"].content_sha256


@pytest.mark.mysql
def test_restore_with_deferred_keys_gives_back_the_same_tables(
    new_database: Callable[[], URL],
) -> None:
    source, target = new_database(), new_database()
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in (
            "CREATE TABLE parent (id INT PRIMARY KEY, a INT, b VARCHAR(20), c TEXT, "
            "KEY by_b (b(5)) COMMENT 'x; y', UNIQUE KEY ua (a), KEY by_ab (a, b), "
            "FULLTEXT KEY ft (c)) ENGINE=InnoDB",
            "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, n INT, KEY by_n (n), "
            "CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB",
            "CREATE TABLE parts (id INT, n INT, PRIMARY KEY (id), KEY by_n (n)) ENGINE=InnoDB "
            "PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10), "
            "PARTITION p1 VALUES LESS THAN MAXVALUE)",
            "CREATE TABLE empty_keyed (id INT PRIMARY KEY, n INT, KEY by_n (n)) ENGINE=InnoDB",
            "INSERT INTO parent SELECT seq, seq, CONCAT('b', seq), REPEAT('word ', MOD(seq, 7)) "
            "FROM seq_1_to_300",
            "INSERT INTO child SELECT seq, 1 + MOD(seq, 300), MOD(seq, 11) FROM seq_1_to_500",
            "INSERT INTO parts SELECT seq, MOD(seq, 5) FROM seq_1_to_40",
        ):
            conn.exec_driver_sql(statement)
    engine.dispose()
    round_trip(get_backend("mysqldump"), source, target)
    assert_same(source, target)


@pytest.mark.mysql
def test_mysqldump_records_server_checksums_on_request(new_database: Callable[[], URL]) -> None:
    source = new_database()
    load_awkward(source)
    result = get_backend("mysqldump").dump(source, io.BytesIO(), server_checksums=True)
    assert {n: (s.rows, s.checksum) for n, s in result.tables.items()} == {
        n: (s.rows, s.checksum) for n, s in snapshot_stats(source).items()
    }
    assert all(s.checksum is not None for s in result.tables.values())


@pytest.mark.mysql
def test_single_precision_floats(new_database: Callable[[], URL]) -> None:
    source = new_database()
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE fl (id INT PRIMARY KEY, f FLOAT, d DOUBLE)")
        conn.exec_driver_sql(
            "INSERT INTO fl VALUES (1, 1.2345678, 1.2345678), (2, 3.4028234e38, 1e-300)"
        )
    engine.dispose()
    target = new_database()
    round_trip(get_backend("native"), source, target)
    assert_same(source, target)
    result = get_backend("mysqldump").dump(source, io.BytesIO())
    warnings = result.extra["warnings"]
    assert isinstance(warnings, list) and "fl.f" in warnings[0]


@pytest.mark.mysql
def test_native_stream_loads_through_the_mysql_client(new_database: Callable[[], URL]) -> None:
    source, target = new_database(), new_database()
    load_awkward(source)
    sink = io.BytesIO()
    result = get_backend("native").dump(source, sink)
    MysqldumpBackend().restore(
        target, io.BytesIO(sink.getvalue()), stream_format=result.stream_format
    )
    assert_same(source, target)


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_partial_dump_and_restore_touch_only_the_tables_asked_for(
    backend_name: str, new_database: Callable[[], URL]
) -> None:
    source, target = new_database(), new_database()
    load_awkward(source)
    backend = get_backend(backend_name)
    full = io.BytesIO()
    full_result = backend.dump(source, full)
    backend.restore(target, io.BytesIO(full.getvalue()), stream_format=full_result.stream_format)

    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM `no pk`")
        conn.exec_driver_sql("DELETE FROM `select` WHERE `from` = 1")
        conn.exec_driver_sql("INSERT INTO my_isam VALUES (3, 'kept')")
    engine.dispose()

    partial = io.BytesIO()
    result = backend.dump(source, partial, tables=["no pk", "select"])
    assert sorted(result.tables) == ["no pk", "select"]
    backend.restore(
        target,
        io.BytesIO(partial.getvalue()),
        stream_format=result.stream_format,
        tables=["no pk"],
    )
    after, before = snapshot(target), snapshot(source)
    assert after["tables"]["no pk"] == before["tables"]["no pk"]
    assert after["objects"]["triggers"] == before["objects"]["triggers"]
    assert after["tables"]["select"]["rows"] == before["tables"]["select"]["rows"] - 1
    assert after["tables"]["my_isam"]["rows"] == 3

    # A partial restore of a full stream works too.
    backend.restore(
        target,
        io.BytesIO(full.getvalue()),
        stream_format=full_result.stream_format,
        tables=["select"],
    )
    assert snapshot(target)["tables"]["select"] == before["tables"]["select"]


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_unknown_table_is_a_usage_error(backend_name: str, new_database: Callable[[], URL]) -> None:
    source = new_database()
    load_awkward(source)
    with pytest.raises(UsageError, match="nope"):
        get_backend(backend_name).dump(source, io.BytesIO(), tables=["nope"])


# -- credentials and faults ------------------------------------------------------


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat_text.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


@pytest.fixture
def password_user(
    mysql_admin_engine: sa.Engine, new_database: Callable[[], URL]
) -> Iterator[tuple[URL, str]]:
    """A user with an awkward password and all rights on one fresh database."""
    url = new_database()
    user = unique_name("mg_u")[:30]
    password = "S3cr3t p@ss\"w\\o#rd;x'" + unique_name("")
    try:
        with mysql_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%%'")
        yield url.set(username=user, password=password), password
    finally:
        with mysql_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")


@pytest.mark.mysql
def test_password_travels_only_in_a_private_defaults_file(
    password_user: tuple[URL, str], sakila_dir: Path, new_database: Callable[[], URL]
) -> None:
    url, password = password_user
    load_sakila(sakila_dir, url, url)  # the user defines the routines, so may dump them
    observed: list[tuple[list[bytes], bytes, Path]] = []

    def inspect_children(_: int) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if len(argv) < 2 or not argv[1].startswith(b"--defaults-extra-file="):
                continue
            defaults = Path(argv[1].split(b"=", 1)[1].decode())
            assert stat.S_IMODE(defaults.stat().st_mode) == 0o600
            assert stat.S_IMODE(defaults.parent.stat().st_mode) == 0o700
            observed.append((argv, environ, defaults))

    backend = MysqldumpBackend()
    sink = io.BytesIO()
    os.environ["MYSQL_PWD"] = password  # must not leak into the child's environment
    try:
        result = backend.dump(url, sink, progress=inspect_children)
    finally:
        del os.environ["MYSQL_PWD"]
    assert result.tables["payment"].rows == 16044
    assert observed, "the dump child was never seen running"

    target = new_database()
    with sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool).connect() as conn:
        conn.exec_driver_sql(f"GRANT ALL ON `{target.database}`.* TO '{url.username}'@'%%'")
    backend.restore(
        url.set(database=target.database),
        io.BytesIO(sink.getvalue()),
        stream_format=result.stream_format,
        progress=inspect_children,
    )
    assert len({tuple(argv) for argv, _, _ in observed}) == 2  # dump and restore children
    for argv, environ, defaults in observed:
        assert all(password.encode() not in arg for arg in argv)
        assert password.encode() not in environ
        assert not defaults.exists()
        assert not defaults.parent.exists()
    assert snapshot(target)["tables"] == snapshot(ADMIN_URL.set(database=url.database))["tables"]


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_wrong_password_is_database_unavailable(
    backend_name: str, password_user: tuple[URL, str]
) -> None:
    url, password = password_user
    wrong = url.set(password="not-the-password")
    with pytest.raises(DatabaseUnavailableError) as caught:
        get_backend(backend_name).dump(wrong, io.BytesIO())
    assert "not-the-password" not in str(caught.value)
    assert password not in str(caught.value)
    with pytest.raises(DatabaseUnavailableError):
        get_backend(backend_name).restore(
            wrong, io.BytesIO(b""), stream_format=STREAM_FORMATS[backend_name]
        )


@pytest.mark.mysql
def test_dump_tool_reports_wrong_password_as_database_unavailable(
    password_user: tuple[URL, str],
) -> None:
    url, _ = password_user
    wrong = url.set(password="wrong-one")
    with client_defaults_file(wrong) as defaults:
        command = MysqldumpBackend.dump_command("mariadb-dump", defaults, url.database or "", None)
        with pytest.raises(DatabaseUnavailableError, match="Access denied") as caught:
            run_dump(command, wrong, io.BytesIO(), None, DumpScanner())
    assert "wrong-one" not in str(caught.value)


@pytest.mark.mysql
@pytest.mark.parametrize("backend_name", MYSQL_BACKENDS)
def test_unreachable_server_is_database_unavailable(backend_name: str) -> None:
    url = ADMIN_URL.set(host="127.0.0.1", port=1, database="whatever")
    with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
        get_backend(backend_name).dump(url, io.BytesIO())


def test_missing_client_binary_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    backend = MysqldumpBackend()
    reason = backend.available()
    assert reason is not None and "mariadb-client" in reason
    url = ADMIN_URL.set(database="anything")
    with pytest.raises(ToolMissingError, match="mariadb-dump or mysqldump"):
        backend.dump(url, io.BytesIO())
    with pytest.raises(ToolMissingError, match="mariadb or mysql"):
        backend.restore(url, io.BytesIO(), stream_format="mysql-sql")
    assert default_backend("mariadb") == "native"


def test_registry_and_defaults() -> None:
    assert default_backend("sqlite") == "sqlite"
    assert default_backend("mysql+pymysql") == "mysqldump"
    assert default_backend("postgresql+psycopg") == "pgdump"
    with pytest.raises(UnknownNameError):
        get_backend("nope")
    with pytest.raises(UnknownNameError):
        get_dialect_ops("oracle")
    assert get_backend("native").name == "native"


# -- SQLite ----------------------------------------------------------------------

SQLITE_SCHEMA = r'''
CREATE TABLE "odd ""name""" (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, b BLOB, r REAL,
    g INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL);
CREATE TABLE plain (a, b);
CREATE TABLE wr (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE INDEX plain_a ON plain (a);
CREATE VIEW v AS SELECT t FROM "odd ""name""";
CREATE TRIGGER trg AFTER INSERT ON plain BEGIN UPDATE wr SET v = v + 1 WHERE k = 'n'; END;
'''


def make_sqlite(path: Path) -> URL:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_SCHEMA)
    conn.executemany(
        'INSERT INTO "odd ""name""" (t, b, r) VALUES (?, ?, ?)',
        [
            ("line\nbreak\r\x00nul 'q' 😀", bytes(range(256)), 0.1),
            (None, b"", float("inf")),
            ('-- mg:table "plain"', None, -1.5e-300),
        ],
    )
    conn.execute('DELETE FROM "odd ""name""" WHERE id = 2')
    conn.executemany("INSERT INTO plain VALUES (?, ?)", [(1, "x"), (1, "x"), (2.5, b"\x00")])
    conn.execute("DELETE FROM plain WHERE rowid = 1")
    conn.executemany("INSERT INTO wr VALUES (?, ?)", [("n", 0), ("m", "text")])
    conn.commit()
    conn.close()
    return sa.make_url(f"sqlite:///{path}")


def sqlite_state(url: URL) -> dict[str, Any]:
    ops = get_dialect_ops("sqlite")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = ops.list_tables(conn)
            return {
                "stats": ops.table_stats(conn, tables),
                "objects": ops.objects(conn),
                "rowids": conn.exec_driver_sql("SELECT rowid, * FROM plain").all(),
                "master": conn.exec_driver_sql(
                    "SELECT type, name, sql FROM sqlite_master ORDER BY name"
                ).all(),
                "sequence": conn.exec_driver_sql("SELECT * FROM sqlite_sequence").all(),
            }
    finally:
        engine.dispose()


def test_sqlite_full_round_trip(tmp_path: Path) -> None:
    source = make_sqlite(tmp_path / "source.db")
    target = sa.make_url(f"sqlite:///{tmp_path / 'target.db'}")
    sqlite3.connect(tmp_path / "target.db").execute("CREATE TABLE junk (x)").connection.close()
    backend = get_backend("sqlite")
    sink = io.BytesIO()
    progress: list[int] = []
    result = backend.dump(source, sink, progress=progress.append)
    assert result.stream_format == "sqlite-db"
    assert sum(progress) == len(sink.getvalue())
    assert result.objects == {"views": ["v"], "triggers": ["trg"]}
    backend.restore(target, io.BytesIO(sink.getvalue()), stream_format=result.stream_format)
    assert sqlite_state(target) == sqlite_state(source)
    assert result.tables == sqlite_state(source)["stats"]


def test_sqlite_tables_round_trip(tmp_path: Path) -> None:
    source = make_sqlite(tmp_path / "source.db")
    target_path = tmp_path / "target.db"
    make_sqlite(target_path)
    target = sa.make_url(f"sqlite:///{target_path}")
    conn = sqlite3.connect(target_path)
    conn.execute("DELETE FROM plain")
    conn.execute('INSERT INTO "odd ""name""" (t) VALUES (\'new\')')
    conn.execute("UPDATE wr SET v = 'changed'")
    conn.commit()
    conn.close()

    backend = get_backend("sqlite")
    sink = io.BytesIO()
    result = backend.dump(source, sink, tables=["plain", 'odd "name"'])
    assert result.stream_format == "sqlite-sql"
    backend.restore(
        target, io.BytesIO(sink.getvalue()), stream_format="sqlite-sql", tables=["plain"]
    )
    before, after = sqlite_state(source), sqlite_state(target)
    assert after["stats"]["plain"] == before["stats"]["plain"]
    assert after["rowids"] == before["rowids"]
    assert after["stats"]['odd "name"'] != before["stats"]['odd "name"']

    backend.restore(target, io.BytesIO(sink.getvalue()), stream_format="sqlite-sql")
    after = sqlite_state(target)
    assert after["stats"]['odd "name"'] == before["stats"]['odd "name"']
    assert after["sequence"] == before["sequence"]
    assert after["stats"]["wr"] != before["stats"]["wr"]  # not in the dump: untouched

    full = io.BytesIO()
    full_result = backend.dump(source, full)
    backend.restore(
        target,
        io.BytesIO(full.getvalue()),
        stream_format=full_result.stream_format,
        tables=["wr"],
    )
    assert sqlite_state(target)["stats"] == before["stats"]


def test_sqlite_errors(tmp_path: Path) -> None:
    backend = get_backend("sqlite")
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        backend.dump(sa.make_url(f"sqlite:///{tmp_path / 'missing.db'}"), io.BytesIO())
    with pytest.raises(UsageError, match="in-memory"):
        backend.dump(sa.make_url("sqlite://"), io.BytesIO())
    source = make_sqlite(tmp_path / "s.db")
    with pytest.raises(UsageError, match="nope"):
        backend.dump(source, io.BytesIO(), tables=["nope"])
