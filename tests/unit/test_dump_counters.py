"""The AUTO_INCREMENT counter a dump's CREATE TABLE carries, and the definition a
backup records with it: pure logic, no database."""

from __future__ import annotations

import pytest

from migration_guard.backup.backends.dumpscan import DumpScanner
from migration_guard.backup.backends.mysql_stream import with_auto_increment

DEFINITION = (
    "CREATE TABLE `orders` (\n"
    "  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
    "  `note` varchar(50) DEFAULT NULL COMMENT 'x) ENGINE=Aria AUTO_INCREMENT=9',\n"
    "  PRIMARY KEY (`id`)\n"
    ") ENGINE=InnoDB{counter} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
)


def structure(name: str, counter: int | None) -> bytes:
    shown = "" if counter is None else f" AUTO_INCREMENT={counter}"
    q = "`" + name.replace("`", "``") + "`"
    ddl = DEFINITION.replace("`orders`", q, 1).format(counter=shown)
    return (
        f"--\n-- Table structure for table {q}\n--\n\n"
        f"DROP TABLE IF EXISTS {q};\n"
        "/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
        "/*!40101 SET character_set_client = utf8mb4 */;\n"
        f"{ddl};\n"
        "/*!40101 SET character_set_client = @saved_cs_client */;\n\n"
        f"--\n-- Dumping data for table {q}\n--\n\n"
        f"LOCK TABLES {q} WRITE;\n"
        f"INSERT INTO {q} VALUES\n(1,'a'),\n(2,'b');\n"
        "UNLOCK TABLES;\n"
    ).encode()


ROUTINE = (
    b"--\n-- Dumping routines for database 'shop'\n--\n"
    b"DELIMITER ;;\nCREATE PROCEDURE `p`()\nBEGIN\n"
    b"CREATE TABLE `orders` (\n  `id` int\n) ENGINE=InnoDB AUTO_INCREMENT=1;\nEND ;;\n"
    b"DELIMITER ;\n"
)


@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
def test_the_scanner_notes_each_tables_counter_as_the_dump_printed_it(piece: int) -> None:
    stream = structure("orders", 42) + structure("empty", None) + structure("a`b", 7) + ROUTINE
    scanner = DumpScanner()
    for start in range(0, len(stream), piece):
        scanner.feed(stream[start : start + piece])

    # A routine body that creates a table of the same name is no table structure.
    assert scanner.auto_increments() == {"orders": 42, "empty": None, "a`b": 7}
    assert {name: content.rows for name, content in scanner.result().items()} == {
        "orders": 2,
        "empty": 2,
        "a`b": 2,
    }


def test_a_data_only_dump_has_no_counters() -> None:
    scanner = DumpScanner()
    scanner.feed(b"--\n-- Dumping data for table `t`\n--\n\nINSERT INTO `t` VALUES\n(1);\n")
    assert scanner.auto_increments() == {}


@pytest.mark.parametrize(
    ("shown", "counter", "expected"),
    [
        (" AUTO_INCREMENT=5", 9, " AUTO_INCREMENT=9"),  # moved on between the two reads
        (" AUTO_INCREMENT=9", 5, " AUTO_INCREMENT=5"),
        ("", 3, " AUTO_INCREMENT=3"),  # empty when read, rows inserted before the dump
        (" AUTO_INCREMENT=3", None, ""),  # the dump's read came first
        ("", None, ""),
    ],
)
def test_the_recorded_definition_carries_the_dumps_counter(
    shown: str, counter: int | None, expected: str
) -> None:
    definition = DEFINITION.format(counter=shown)
    assert with_auto_increment(definition, counter) == DEFINITION.format(counter=expected)


def test_a_definition_without_table_options_is_left_alone() -> None:
    bare = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT\n)"
    assert with_auto_increment(bare, 12) == bare
