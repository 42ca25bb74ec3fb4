"""How the client tools' failures are classified, without a server."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from migration_guard.backup.backends.mysql_client import tool_error
from migration_guard.errors import BackupError, DatabaseUnavailableError

URL = make_url("mysql+pymysql://app:s3cret@127.0.0.1/db")


@pytest.mark.parametrize(
    "stderr",
    [
        "ERROR 1045 (28000): Access denied for user 'app'@'localhost' (using password: YES)",
        "mariadb-dump: Got error: 2002: \"Can't connect to server on '127.0.0.1' (115)\"",
        "ERROR 1049 (42000): Unknown database 'db'",
    ],
)
def test_connection_problems_are_database_unavailable(stderr: str) -> None:
    error = tool_error("/usr/bin/mariadb", "restore into", URL, 1, stderr)
    assert isinstance(error, DatabaseUnavailableError)
    assert "s3cret" not in str(error)


def test_row_data_echoed_after_a_syntax_error_is_not_read_as_an_error_code() -> None:
    stderr = (
        "ERROR 1064 (42000) at line 12: You have an error in your SQL syntax near 'x'\n"
        + "(1,2002,'a'),(2,2003,'b')," * 5000
    )
    error = tool_error("/usr/bin/mariadb", "restore into", URL, 1, stderr)
    assert type(error) is BackupError
    assert "ERROR 1064" in str(error)
    assert len(str(error)) < 1000  # the echoed rows are not repeated to the user


def test_the_dump_tool_gets_a_large_output_buffer_where_stdbuf_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from migration_guard.backup.backends import mysql_client

    monkeypatch.setattr(mysql_client.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert mysql_client.with_output_buffer(["/usr/bin/mariadb-dump", "db"]) == [
        "/usr/bin/stdbuf",
        "--output=1M",
        "/usr/bin/mariadb-dump",
        "db",
    ]
    monkeypatch.setattr(mysql_client.shutil, "which", lambda name: None)
    assert mysql_client.with_output_buffer(["/usr/bin/mariadb-dump", "db"]) == [
        "/usr/bin/mariadb-dump",
        "db",
    ]


def test_a_missing_tool_is_named_even_when_it_would_run_under_stdbuf() -> None:
    import subprocess

    from migration_guard.backup.backends.mysql_client import tool_process
    from migration_guard.errors import ToolMissingError

    process = tool_process(
        ["/nonexistent/mariadb-dump", "db"],
        URL,
        "back up",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        output_buffer=True,
    )
    with pytest.raises(ToolMissingError, match=r"/nonexistent/mariadb-dump.*apt-get install"):
        process.__enter__()


def test_the_dump_is_read_on_a_thread_of_lower_priority_and_errors_come_back() -> None:
    import os
    import subprocess
    import threading

    from migration_guard.backup.backends.mysql_client import CONSUMER_NICENESS, yielding_to

    def own_priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = own_priority()
    seen: list[int] = []
    process = subprocess.Popen(["true"])
    try:
        yielding_to(process, lambda: seen.append(own_priority()))
        assert seen == [min(19, before + CONSUMER_NICENESS)]
        assert own_priority() == before

        def fail() -> None:
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space left"):
            yielding_to(process, fail)
    finally:
        process.wait()


def test_plain_secondary_keys_are_deferred_until_the_rows_are_in() -> None:
    from migration_guard.backup.backends.parallel_restore import defer_secondary_keys

    lines = [
        b"CREATE TABLE `ev``ents` (\n",
        b"  `id` bigint(20) NOT NULL,\n",
        b"  `account_id` int(11) NOT NULL,\n",
        b"  PRIMARY KEY (`id`),\n",
        b"  UNIQUE KEY `one` (`account_id`,`id`),\n",
        b"  KEY `by_account` (`account_id`),\n",
        b"  KEY `prefix` (`account_id`) USING BTREE COMMENT 'a, b'\n",
        b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n",
    ]
    statement, table, keys = defer_secondary_keys(lines)
    assert table == b"ev``ents"
    assert keys == [
        b"KEY `by_account` (`account_id`)",
        b"KEY `prefix` (`account_id`) USING BTREE COMMENT 'a, b'",
    ]
    assert statement == (
        b"CREATE TABLE `ev``ents` (\n"
        b"  `id` bigint(20) NOT NULL,\n"
        b"  `account_id` int(11) NOT NULL,\n"
        b"  PRIMARY KEY (`id`),\n"
        b"  UNIQUE KEY `one` (`account_id`,`id`)\n"
        b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n"
    )


@pytest.mark.parametrize(
    ("extra", "footer"),
    [
        (b"  CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `t` (`id`)\n", b") ENGINE=InnoDB;\n"),
        (b"  `b` int(11)\n", b") ENGINE=MyISAM;\n"),
        (b"  `b` int(11)\n", b") ENGINE=InnoDB\n PARTITION BY HASH (`a`)\nPARTITIONS 2;\n"),
    ],
)
def test_keys_stay_in_tables_with_foreign_keys_other_engines_or_partitions(
    extra: bytes, footer: bytes
) -> None:
    from migration_guard.backup.backends.parallel_restore import defer_secondary_keys

    lines = [b"CREATE TABLE `t2` (\n", b"  `a` int(11),\n", b"  KEY `k` (`a`),\n", extra, footer]
    assert defer_secondary_keys(lines) == (b"".join(lines), None, [])
