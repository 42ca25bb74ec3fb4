"""Row counts and digests read from a dump stream: pure logic, no database."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup.backends.dumpscan import DumpScanner, TableContent, scanned

HEADER = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: shop
/*!40101 SET NAMES utf8mb4 */;

"""

TRIGGER_AND_ROUTINE = b"""/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER `t_bi` BEFORE INSERT ON `orders`
FOR EACH ROW
INSERT INTO `audit` VALUES
(NEW.id, 'this line is no row of orders'),
(1, 2) */;;
DELIMITER ;

--
-- Dumping routines for database 'shop'
--
DELIMITER ;;
CREATE PROCEDURE `p`()
BEGIN
(SELECT 1);
END ;;
DELIMITER ;
"""

FOOTER = b"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n-- Dump completed on 2026-11-26  3:17:28\n"


def quoted(name: str) -> bytes:
    return b"`" + name.replace("`", "``").encode() + b"`"


def data_section(name: str, rows: list[bytes], per_statement: int, *, one_line: bool) -> bytes:
    """A table's section as mariadb-dump (row per line) or mysqldump (one line) prints it."""
    q = quoted(name)
    out = [
        b"--\n-- Table structure for table " + q + b"\n--\n\n",
        b"DROP TABLE IF EXISTS " + q + b";\nCREATE TABLE " + q + b" (\n  `id` int(11)\n);\n\n",
        b"--\n-- Dumping data for table " + q + b"\n--\n\n",
        b"LOCK TABLES " + q + b" WRITE;\n",
        b"/*!40000 ALTER TABLE " + q + b" DISABLE KEYS */;\n",
    ]
    for start in range(0, len(rows), per_statement):
        batch = rows[start : start + per_statement]
        if one_line:
            out.append(b"INSERT INTO " + q + b" VALUES " + b",".join(batch) + b";\n")
        else:
            out.append(b"INSERT INTO " + q + b" VALUES\n" + b",\n".join(batch) + b";\n")
    out += [
        b"/*!40000 ALTER TABLE " + q + b" ENABLE KEYS */;\n",
        b"UNLOCK TABLES;\n",
    ]
    return b"".join(out)


def dump(
    tables: dict[str, list[bytes]], per_statement: int = 3, *, one_line: bool = False
) -> bytes:
    sections = [
        data_section(name, rows, per_statement, one_line=one_line) for name, rows in tables.items()
    ]
    return HEADER + b"".join(sections) + TRIGGER_AND_ROUTINE + FOOTER


def scan(stream: bytes, sizes: list[int] | None = None) -> dict[str, TableContent]:
    scanner = DumpScanner()
    position = 0
    for size in sizes or [len(stream)]:
        scanner.feed(stream[position : position + size])
        position += size
    scanner.feed(stream[position:])
    return scanner.result()


def row_digest(rows: list[bytes], separator: bytes) -> str:
    return hashlib.sha256(b"".join(row + separator for row in rows)).hexdigest()


ROWS = [b"(1,'a')", b"(2,'semi;colon\\n(not a row)')", b"(3,0x00FF)", b"(4,NULL)", b"(5,'),(')"]


def test_rows_and_digest_of_each_table() -> None:
    result = scan(dump({"orders": ROWS, "empty": [], "we`ird name": ROWS[:2]}))
    assert result == {
        "orders": TableContent(rows=5, sha256=row_digest(ROWS, b",\n")),
        "empty": TableContent(rows=0, sha256=hashlib.sha256(b"").hexdigest()),
        "we`ird name": TableContent(rows=2, sha256=row_digest(ROWS[:2], b",\n")),
    }


def test_trigger_and_routine_lines_are_never_rows() -> None:
    result = scan(dump({"orders": ROWS}))
    assert set(result) == {"orders"}  # `audit` only appears inside the trigger body
    assert result["orders"].rows == 5


def test_digest_does_not_depend_on_how_rows_are_split_into_statements() -> None:
    assert scan(dump({"t": ROWS}, per_statement=1)) == scan(dump({"t": ROWS}, per_statement=4))


def test_a_changed_row_changes_the_digest_but_not_the_count() -> None:
    changed = [*ROWS[:-1], b"(5,'),(!')"]
    before, after = scan(dump({"t": ROWS})), scan(dump({"t": changed}))
    assert before["t"].rows == after["t"].rows == 5
    assert before["t"].sha256 != after["t"].sha256


def test_one_line_format_leaves_the_count_to_the_caller() -> None:
    one = scan(dump({"t": ROWS}, per_statement=2, one_line=True))
    assert one["t"] == TableContent(rows=None, sha256=row_digest(ROWS, b","))
    assert one == scan(dump({"t": ROWS}, per_statement=5, one_line=True))


def test_a_stream_without_a_final_newline() -> None:
    stream = dump({"t": ROWS}).rstrip(b"\n")
    assert scan(stream)["t"].rows == 5


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.binary(max_size=40).map(
            lambda b: b"(" + b.replace(b"\n", b"\\n").replace(b"\r", b"\\r") + b")"
        ),
        max_size=30,
    ),
    per_statement=st.integers(min_value=1, max_value=7),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=40),
)
def test_any_split_of_the_stream_gives_the_same_result(
    rows: list[bytes], per_statement: int, cuts: list[int]
) -> None:
    stream = dump({"t": rows, "u": rows[::-1]}, per_statement)
    whole = scan(stream)
    assert whole["t"] == TableContent(rows=len(rows), sha256=row_digest(rows, b",\n"))
    assert whole["u"].rows == len(rows)
    assert scan(stream, cuts) == whole


def test_scanned_passes_pieces_through_unchanged_and_feeds_them_all() -> None:
    stream = dump({"t": ROWS})
    lines = stream.splitlines(keepends=True)
    scanner = DumpScanner()
    assert list(scanned(iter(lines), scanner)) == lines
    assert scanner.result() == scan(stream)
