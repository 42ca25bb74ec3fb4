"""The shape of a MariaDB/MySQL SQL dump, shared by the ``mysqldump`` and ``native`` backends.

What a restore sends before and after a dump, how a dump is cut to selected
tables, and which tables a request names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from migration_guard.backup.backends.base import (
    select_tables,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migration_guard.dialects.mysql import MySQLDialectOps

RESTORE_PROLOGUE = (
    b"SET FOREIGN_KEY_CHECKS=0;\nSET UNIQUE_CHECKS=0;\nSET @migration_guard_allow_delete=1;\n"
)
RESTORE_EPILOGUE = b"\nSET FOREIGN_KEY_CHECKS=1;\nSET UNIQUE_CHECKS=1;\n"


_SECTION = re.compile(
    rb"^-- (Table structure for table|Dumping data for table|Temporary table structure for view|"
    rb"Final view structure for view|Dumping events for database|Dumping routines for database)"
    rb" (?:`((?:[^`]|``)*)`|'.*')\s*$"
)
_POSTAMBLE = re.compile(rb"^/\*!\d+ SET \S+\s*=\s*@OLD_")


def filter_tables(lines: Iterable[bytes], tables: Sequence[str]) -> Iterator[bytes]:
    """Only the preamble, postamble and the sections of ``tables`` of a mysqldump stream.

    mysqldump introduces each part with a comment line such as
    ``-- Table structure for table `t``` or ``-- Dumping data for table `t```;
    a table's triggers follow its data inside its section. Views, routines
    and events are dropped: a partial restore brings back table contents.
    """
    wanted = {name.encode("utf-8") for name in tables}
    keeping = True
    for line in lines:
        if line.startswith(b"-- "):
            match = _SECTION.match(line)
            if match:
                kind, quoted = match.group(1), match.group(2)
                name = quoted.replace(b"``", b"`") if quoted is not None else None
                keeping = kind in (b"Table structure for table", b"Dumping data for table") and (
                    name in wanted
                )
        elif not keeping and _POSTAMBLE.match(line):
            keeping = True
        if keeping:
            yield line


def resolve_tables(
    ops: MySQLDialectOps, conn: Connection, tables: Sequence[str] | None
) -> list[str]:
    """``tables`` checked against the database's base tables (all of them when ``None``)."""
    existing = ops.list_tables(conn)
    if tables is None:
        return existing
    return select_tables(existing, tables)


#: The table options line of ``SHOW CREATE TABLE``; the counter, when shown, follows the engine.
_TABLE_OPTIONS = re.compile(r"\n\) ENGINE=[^ \n]+( AUTO_INCREMENT=\d+)?")


def with_auto_increment(definition: str, counter: int | None) -> str:
    """``definition`` (``SHOW CREATE TABLE``) with the ``AUTO_INCREMENT`` table option
    set to ``counter`` (left out for None, as the server prints a counter at its start).

    A definition without table options (printed under ``NO_TABLE_OPTIONS``) shows no
    counter and is returned as it is.
    """
    options = _TABLE_OPTIONS.search(definition)
    if options is None:
        return definition
    start, end = options.span(1) if options.group(1) else (options.end(), options.end())
    option = "" if counter is None else f" AUTO_INCREMENT={counter}"
    return definition[:start] + option + definition[end:]
