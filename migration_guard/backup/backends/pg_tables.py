"""Selected tables of a pg_dump archive back into a live PostgreSQL database, in one
transaction.

A failed upgrade reloads only the tables it changed, in the database the application
keeps using. From the archive's table of contents (``pg_restore --list``) this picks
every entry of those tables: the table, its rows, defaults, constraints, indexes,
triggers, policies, owned sequences (at their values), comments and grants. The
owners of indexes and sequences are read from their definitions in the archive, so
an index the run created is not restored and one it dropped comes back.

``pg_restore`` prints these entries as SQL; ``psql --single-transaction`` runs them
behind a prologue that drops the live tables (and, for the time of the transaction,
the foreign keys of other tables that point at them) and before an epilogue that
puts those foreign keys back. Any error rolls the whole transaction back: the tables
stay as they were. The guard's bypass (``migration_guard.allow_delete``) is on in that
session, so the protection's triggers let the reload through.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.backup.backends.mysql_client import tool_process
from migration_guard.backup.backends.pg_client import RESTORE_TOOL, conninfo, find_pg_tool
from migration_guard.backup.scratch import scratch_directory
from migration_guard.dialects.base import connect_engine
from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.errors import BackupError

PSQL = "psql"
#: The entry kinds of ``pg_restore --list``, longest first (a kind may hold a space).
_KINDS = (
    "SEQUENCE OWNED BY",
    "FK CONSTRAINT",
    "SEQUENCE SET",
    "ROW SECURITY",
    "TABLE DATA",
    "CONSTRAINT",
    "SEQUENCE",
    "TRIGGER",
    "DEFAULT",
    "COMMENT",
    "POLICY",
    "INDEX",
    "TABLE",
    "RULE",
    "ACL",
)
_ENTRY = re.compile(
    r"^\d+;\s+\d+\s+\d+\s+(?P<kind>" + "|".join(_KINDS) + r") (?P<schema>\S+) (?P<tag>.+) \S+$"
)
_BLOCK = re.compile(r"^-- Name: (?P<name>.*?); Type: (?P<kind>[^;]*); Schema: (?P<schema>[^;]*);")
_OWNER_PATTERNS = {
    "INDEX": re.compile(r"CREATE (?:UNIQUE )?INDEX \S+ ON (?:ONLY )?(?P<table>\S+) USING"),
    "SEQUENCE OWNED BY": re.compile(r"OWNED BY (?P<table>\S+)\.[^.\s]+;"),
    "SEQUENCE": re.compile(r"ALTER TABLE (?:ONLY )?(?P<table>\S+) ALTER COLUMN \S+ ADD GENERATED"),
}
#: Foreign keys of other tables that point at the reloaded ones.
_REFERENCING_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(x.conname),
       pg_get_constraintdef(x.oid)
  FROM pg_constraint x JOIN pg_class c ON c.oid = x.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE x.contype = 'f' AND x.confrelid = ANY (CAST(:oids AS oid[]))
   AND NOT x.conrelid = ANY (CAST(:oids AS oid[]))
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Target:
    """One table to reload: its schema and name, and both quoted as pg_dump prints them."""

    schema: str
    name: str
    qualified: str


@dataclass(frozen=True)
class Entry:
    """One line of ``pg_restore --list``."""

    line: str
    kind: str
    schema: str
    tag: str


def parse_list(text: str) -> list[Entry]:
    """The entries of a ``pg_restore --list`` output (comment lines skipped)."""
    entries = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match is not None:
            entries.append(Entry(line, match["kind"], match["schema"], match["tag"]))
    return entries


def owners_of(sql: str) -> dict[tuple[str, str, str], str]:
    """``(kind, schema, name) -> table`` (as pg_dump qualifies it) for the index and
    sequence definitions in ``sql`` (``pg_restore --file=-`` output)."""
    found: dict[tuple[str, str, str], str] = {}
    blocks = re.split(r"(?m)^(?=-- Name: )", sql)
    for block in blocks:
        header = _BLOCK.match(block)
        if header is None:
            continue
        pattern = _OWNER_PATTERNS.get(header["kind"])
        match = pattern.search(block) if pattern is not None else None
        if match is not None:
            found[(header["kind"], header["schema"], header["name"])] = match["table"]
    return found


def select_entries(
    entries: Sequence[Entry], targets: Sequence[Target], owners: Mapping[tuple[str, str, str], str]
) -> list[Entry]:
    """The entries that belong to ``targets``."""
    chosen: list[Entry] = []
    for target in targets:
        mine = {
            (kind, name)
            for (kind, schema, name), table in owners.items()
            if schema == target.schema and table == target.qualified
        }
        indexes = {name for kind, name in mine if kind == "INDEX"}
        sequences = {name for kind, name in mine if kind.startswith("SEQUENCE")}
        table = target.name
        for entry in entries:
            if entry.schema != target.schema or entry in chosen:
                continue
            kind, tag = entry.kind, entry.tag
            if (
                (kind in ("TABLE", "TABLE DATA", "ROW SECURITY") and tag == table)
                or (
                    kind in ("DEFAULT", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "RULE")
                    and tag.startswith(table + " ")
                )
                or (kind == "INDEX" and tag in indexes)
                or (kind.startswith("SEQUENCE") and tag in sequences)
                or (kind in ("COMMENT", "ACL") and _describes(tag, table, indexes, sequences))
            ):
                chosen.append(entry)
    return chosen


def _describes(tag: str, table: str, indexes: set[str], sequences: set[str]) -> bool:
    """Whether a COMMENT/ACL tag (``TABLE t``, ``COLUMN t.c``, ``INDEX i``, ``TRIGGER x
    ON t``...) is about ``table`` or one of its indexes and sequences."""
    return (
        tag == f"TABLE {table}"
        or tag.startswith(f"COLUMN {table}.")
        or tag.endswith(f" ON {table}")
        or any(tag == f"INDEX {name}" for name in indexes)
        or any(tag == f"SEQUENCE {name}" for name in sequences)
    )


def _targets(conn: Connection, tables: Sequence[str]) -> list[Target]:
    """The tables resolved and quoted by the server, in three queries for all of them."""
    resolved = PostgreSQLDialectOps().resolve_tables(conn, tables)
    if not resolved:
        return []
    quoted = conn.execute(
        sa.text(
            "SELECT quote_ident(s) || '.' || quote_ident(t) "
            "FROM unnest(CAST(:s AS text[]), CAST(:t AS text[])) WITH ORDINALITY AS u(s, t, i) "
            "ORDER BY i"
        ),
        {"s": [schema for schema, _ in resolved], "t": [name for _, name in resolved]},
    ).scalars()
    return [
        Target(schema, name, str(qualified))
        for (schema, name), qualified in zip(resolved, quoted, strict=True)
    ]


def _frame(conn: Connection, targets: Sequence[Target]) -> tuple[str, str]:
    """The prologue (bypass on, referencing foreign keys and the tables dropped) and the
    epilogue (those foreign keys back), fully qualified: pg_restore's script empties
    ``search_path``."""
    conn.execute(sa.text("SELECT set_config('search_path', '', true)"))
    found = [
        conn.execute(
            sa.text("SELECT oid, relkind FROM pg_class WHERE oid = to_regclass(:n)"),
            {"n": t.qualified},
        ).first()
        for t in targets
    ]
    partitioned = [
        t.qualified for t, row in zip(targets, found, strict=True) if row and row[1] == "p"
    ]
    if partitioned:
        # DROP TABLE takes the partitions along, and they are tables of their own here.
        raise BackupError(
            f"{', '.join(partitioned)} is partitioned: its partitions cannot be reloaded into "
            "the live database with it; nothing was changed. Restore the backup into a new "
            "database and copy the rows from there"
        )
    oids = [int(row[0]) for row in found if row is not None]
    referencing = conn.execute(sa.text(_REFERENCING_SQL), {"oids": oids}).all() if oids else []
    prologue = ["SET migration_guard.allow_delete = on;"]
    prologue += [f"ALTER TABLE {table} DROP CONSTRAINT {name};" for table, name, _ in referencing]
    prologue += [f"DROP TABLE IF EXISTS {t.qualified};" for t in targets]
    epilogue = [
        f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition};"
        for table, name, definition in referencing
    ]
    epilogue.append("RESET migration_guard.allow_delete;")
    return "\n".join(prologue) + "\n", "\n".join(epilogue) + "\n"


def _output(command: list[str], url: URL, extra_env: Mapping[str, str]) -> str:
    with tool_process(
        command,
        url,
        "restore into",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        extra_env=extra_env,
    ) as process:
        assert process.stdout is not None
        with process.stdout:
            out = process.stdout.read()
    return out.decode("utf-8", "replace")


def restore_tables(
    url: URL, archive: Path, tables: Sequence[str], extra_env: Mapping[str, str]
) -> None:
    """Replace ``tables`` of the live database at ``url`` by their copies in ``archive``
    (a custom-format file), all in one transaction."""
    restore_tool = find_pg_tool(RESTORE_TOOL, "restore backups")
    psql = find_pg_tool(PSQL, "restore tables into a live database")
    entries = parse_list(_output([restore_tool, "--list", "--", str(archive)], url, extra_env))
    engine = connect_engine(url)
    try:
        with engine.connect() as conn:
            targets = _targets(conn, tables)
            prologue, epilogue = _frame(conn, targets)
            conn.rollback()
    finally:
        engine.dispose()
    with scratch_directory("restore") as lists:
        definitions = [e for e in entries if e.kind in ("INDEX", "SEQUENCE", "SEQUENCE OWNED BY")]
        (lists / "owners.list").write_text("".join(e.line + "\n" for e in definitions))
        owners = owners_of(
            _output(
                [
                    restore_tool,
                    "--file=-",
                    f"--use-list={lists / 'owners.list'}",
                    "--",
                    str(archive),
                ],
                url,
                extra_env,
            )
        )
        chosen = select_entries(entries, targets, owners)
        if not any(e.kind == "TABLE" for e in chosen):
            raise BackupError(
                f"the archive holds no definition of {', '.join(tables)}; nothing was restored"
            )
        (lists / "tables.list").write_text("".join(e.line + "\n" for e in chosen))
        _pipe(
            restore_tool, psql, url, archive, lists / "tables.list", prologue, epilogue, extra_env
        )


def _pipe(
    restore_tool: str,
    psql: str,
    url: URL,
    archive: Path,
    listing: Path,
    prologue: str,
    epilogue: str,
    extra_env: Mapping[str, str],
) -> None:
    """``pg_restore --file=- --use-list`` into ``psql --single-transaction`` between
    ``prologue`` and ``epilogue``."""
    script = [
        psql,
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
        "--single-transaction",
        "--file=-",
        f"--dbname={conninfo(url)}",
    ]
    with tool_process(
        script,
        url,
        "restore into",
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        extra_env=extra_env,
    ) as target:
        assert target.stdin is not None
        sink = target.stdin
        try:
            sink.write(prologue.encode("utf-8"))
            with tool_process(
                [restore_tool, "--file=-", f"--use-list={listing}", "--", str(archive)],
                url,
                "restore into",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                extra_env=extra_env,
            ) as source:
                stdout = source.stdout
                assert stdout is not None
                for chunk in iter(lambda: stdout.read(1 << 20), b""):
                    sink.write(chunk)
            sink.write(b"\n" + epilogue.encode("utf-8"))
        except BrokenPipeError:
            pass  # psql stopped at an error (and rolled back): its exit status says why
        finally:
            with contextlib.suppress(BrokenPipeError):
                sink.close()
