"""What PostgreSQL protection reads from the server: tables, owners, privileges, triggers.

Planning, status and probes read through these functions only; none changes
anything. Names of tables outside the session's current schema are shown
qualified (``app.customers``), those inside it bare (``customers``): see
:func:`~migration_guard.protect.postgresql.sql.shown`. What ``status`` reads for
every protected table comes from one query per fact over all of them (the
``*_of``/``*_all`` functions, keyed by oid or by ``(oid, role)``); the
one-table functions planning uses are those same queries for one table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.errors import UsageError
from migration_guard.protect.base import read_state
from migration_guard.protect.model import Account
from migration_guard.protect.postgresql import sql

_DIALECT = PostgreSQLDialectOps()
MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class Table:
    """One protectable table: the name shown to users and where it lives."""

    name: str
    schema: str
    table: str
    oid: int
    #: The partitioned table this one is a partition of (shown name), if any.
    parent: str | None = None


@dataclass(frozen=True)
class Session:
    """Who the admin URL logged in as, and what it may do."""

    database: str
    user: str
    superuser: bool
    createrole: bool
    can_create_schema: bool


@dataclass(frozen=True)
class Trigger:
    """A guard trigger as pg_trigger shows it."""

    name: str
    tgtype: int
    enabled: str
    ours: bool
    #: A clone of the partitioned parent's trigger (dropped with it, never alone).
    inherited: bool = False

    @property
    def fires(self) -> bool:
        """``O`` and ``A`` fire in normal sessions; ``D`` never, ``R`` only on replicas."""
        return self.enabled in ("O", "A")


def role_name(account: Account) -> str:
    """The PostgreSQL role of ``--app-user``: roles have no host, so ``USER@HOST`` is
    read back as the whole text unless the host is the default ``%``."""
    return account.user if account.host == "%" else account.key


def session(conn: Connection) -> Session:
    row = conn.exec_driver_sql(sql.SETTINGS_SQL).one()
    return Session(str(row[0]), str(row[1]), bool(row[2]), bool(row[3]), bool(row[4]))


def default_guard_role(database: str) -> str:
    """``migration_guard_owner_<database>``, shortened with a hash to fit 63 bytes."""
    name = f"{sql.DEFAULT_GUARD_ROLE}_{database}"
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:10]
    return f"{sql.DEFAULT_GUARD_ROLE}_{digest}"


def current_schema(conn: Connection) -> str:
    """The session's current schema: its tables are shown by their bare name."""
    return str(conn.exec_driver_sql("SELECT current_schema()").scalar() or "public")


def list_tables(conn: Connection) -> list[Table]:
    """Every protectable table (the guard's own schema left out)."""
    current = current_schema(conn)
    return [
        Table(sql.shown(schema, table, current), schema, table, oid)
        for schema, table, oid in _DIALECT.list_schema_tables(conn)
        if schema != sql.GUARD_SCHEMA
    ]


def partitions_of(conn: Connection, tables: Sequence[Table]) -> dict[int, list[Table]]:
    """Table oid -> every partition below it, at any depth, parents first (one query
    for all ``tables``; a plain table has none)."""
    if not tables:
        return {}
    current = current_schema(conn)
    rows = conn.execute(sa.text(sql.PARTITIONS_SQL), {"oids": [t.oid for t in tables]})
    names = {table.oid: table.name for table in tables}
    found: dict[int, list[Table]] = {}
    for root, oid, schema, name, parent in rows:
        shown = sql.shown(str(schema), str(name), current)
        names[int(oid)] = shown
        found.setdefault(int(root), []).append(
            Table(shown, str(schema), str(name), int(oid), names.get(int(parent)))
        )
    return found


def tables_by_oid(conn: Connection, oids: list[int]) -> dict[int, Table]:
    """The live tables among ``oids`` (renamed or moved tables keep their oid)."""
    current = current_schema(conn)
    rows = conn.execute(sa.text(sql.TABLES_SQL), {"oids": oids}).fetchall()
    return {
        int(oid): Table(
            sql.shown(str(schema), str(table), current), str(schema), str(table), int(oid)
        )
        for oid, schema, table, _owner, _super in rows
    }


def owners(conn: Connection, oids: Sequence[int]) -> dict[int, tuple[str, bool]]:
    """Relation oid -> ``(owner, owner is a superuser)``."""
    rows = conn.execute(sa.text(sql.TABLES_SQL), {"oids": list(oids)})
    return {int(row[0]): (str(row[3]), bool(row[4])) for row in rows}


def owner(conn: Connection, oid: int) -> tuple[str, bool]:
    """``(owner, owner is a superuser)`` of the relation."""
    return owners(conn, [oid])[oid]


def roles(conn: Connection, names: Sequence[str]) -> dict[str, bool]:
    """The existing roles among ``names`` -> whether each is a superuser."""
    rows = conn.execute(sa.text(sql.ROLES_SQL), {"roles": list(names)})
    return {str(row[0]): bool(row[1]) for row in rows}


def role(conn: Connection, name: str) -> tuple[bool, bool]:
    """``(exists, is superuser)`` of a role."""
    found = roles(conn, [name])
    return (name in found, found.get(name, False))


def require_role(conn: Connection, name: str) -> None:
    """An application role that does not exist, or is a superuser, is a usage error."""
    exists, superuser = role(conn, name)
    if not exists:
        raise UsageError(
            f"role {name!r} does not exist; check --app-user against SELECT rolname FROM pg_roles"
        )
    if superuser:
        raise UsageError(
            f"role {name!r} is a superuser: no trigger, owner or privilege can stop it. "
            "Give the application a role without SUPERUSER (ALTER ROLE ... NOSUPERUSER) "
            "and run install again"
        )


#: ``(relation oid, role)``: the key of what one role may do on one relation.
OnTable = tuple[int, str]


def _per_role(
    conn: Connection, statement: str, oids: Sequence[int], names: Sequence[str]
) -> Iterator[tuple[OnTable, Any]]:
    """The rows of a catalog query over every pair of ``oids`` and ``names``, keyed."""
    if not oids or not names:
        return
    rows = conn.execute(sa.text(statement), {"oids": list(oids), "roles": list(names)})
    for row in rows:
        yield (int(row[0]), str(row[1])), row[2:]


def privileges_of(
    conn: Connection, oids: Sequence[int], names: Sequence[str]
) -> dict[OnTable, list[str]]:
    """The privileges each role itself holds on each relation (an owner's implicit
    ones too), sorted; a pair without any is absent."""
    found: dict[OnTable, list[str]] = {}
    for key, (privilege,) in _per_role(conn, sql.ROLE_PRIVILEGES_SQL, oids, names):
        found.setdefault(key, []).append(str(privilege))
    return found


def privileges(conn: Connection, oid: int, name: str) -> list[str]:
    """The privileges ``name`` itself holds on the relation (an owner's implicit ones too)."""
    return privileges_of(conn, [oid], [name]).get((oid, name), [])


def owned_sequences(conn: Connection, table: Table) -> list[Table]:
    """The sequences of the table's serial and identity columns (they follow the
    table's owner)."""
    current = current_schema(conn)
    rows = conn.execute(sa.text(sql.OWNED_SEQUENCES_SQL), {"oid": table.oid})
    return [
        Table(sql.shown(str(schema), str(name), current), str(schema), str(name), int(seq))
        for schema, name, seq in rows
    ]


def acl(conn: Connection, oid: int) -> list[list[Any]]:
    """Every grant on the relation: ``[grantee, grantor, privilege, grantable]``."""
    rows = conn.execute(sa.text(sql.ACL_SQL), {"oid": oid})
    return [[str(r[0]), str(r[1]), str(r[2]), bool(r[3])] for r in rows]


def can_own_all(
    conn: Connection, oids: Sequence[int], names: Sequence[str]
) -> dict[OnTable, tuple[bool, bool]]:
    """``(role is the owner or a member of it, role is a superuser)`` per pair."""
    return {
        key: (bool(member), bool(superuser))
        for key, (member, superuser) in _per_role(conn, sql.CAN_OWN_SQL, oids, names)
    }


def can_own(conn: Connection, oid: int, name: str) -> tuple[bool, bool]:
    """``(name is the owner or a member of it, name is a superuser)``."""
    return can_own_all(conn, [oid], [name]).get((oid, name), (False, False))


def owned_schemas(
    conn: Connection, oids: Sequence[int], names: Sequence[str]
) -> dict[OnTable, str]:
    """The relation's schema per pair whose role owns it (and so can DROP SCHEMA ...
    CASCADE); other pairs are absent."""
    return {
        key: str(schema)
        for key, (schema, member) in _per_role(conn, sql.SCHEMA_OWNER_SQL, oids, names)
        if member
    }


def triggers_of(conn: Connection, oids: Sequence[int]) -> dict[int, dict[str, Trigger]]:
    """Relation oid -> its guard triggers by name (a relation without any is absent)."""
    rows = conn.execute(
        sa.text(sql.TRIGGERS_SQL),
        {
            "oids": list(oids),
            "names": list(sql.GUARD_TRIGGERS),
            "function": sql.function(sql.ROW_FUNCTION),
        },
    )
    found: dict[int, dict[str, Trigger]] = {}
    for r in rows:
        found.setdefault(int(r[0]), {})[str(r[1])] = Trigger(
            str(r[1]), int(r[2]), str(r[3]), bool(r[4]), bool(r[5])
        )
    return found


def triggers(conn: Connection, oid: int) -> dict[str, Trigger]:
    return triggers_of(conn, [oid]).get(oid, {})


def function_source(conn: Connection, name: str) -> str | None:
    """The body of a guard function; ``None`` when it does not exist."""
    value = conn.execute(
        sa.text(sql.FUNCTION_SOURCE_SQL),
        {"function": sql.function(name)},
    ).scalar()
    return None if value is None else str(value)


def event_triggers(conn: Connection) -> dict[str, tuple[str, str, bool]]:
    """Guard event trigger name -> ``(event, evtenabled, runs the guard's function)``."""
    rows = conn.execute(
        sa.text(sql.EVENT_TRIGGERS_SQL),
        {
            "names": list(sql.EVENT_TRIGGERS),
            "function": sql.function(sql.DDL_FUNCTION),
        },
    )
    return {str(r[0]): (str(r[1]), str(r[2]), bool(r[3])) for r in rows}


def schema_oid(conn: Connection, schema: str) -> int | None:
    found = conn.execute(sa.text(sql.SCHEMA_EXISTS_SQL), {"schema": schema}).first()
    return None if found is None else int(found[0])


def schema_exists(conn: Connection) -> bool:
    """Whether the guard's own schema exists."""
    return schema_oid(conn, sql.GUARD_SCHEMA) is not None


def has_schema_usage(conn: Connection, role_: str, schema: str) -> bool:
    return bool(
        conn.execute(
            sa.text("SELECT has_schema_privilege(:role, :schema, 'USAGE')"),
            {"role": role_, "schema": schema},
        ).scalar()
    )


def meta_exists(conn: Connection) -> bool:
    return bool(conn.execute(sa.text(sql.META_EXISTS_SQL), {"name": sql.meta_table()}).scalar())


def read_install_state(conn: Connection) -> dict[str, Any] | None:
    """The record of the last install; ``None`` when protection was never installed."""
    if not meta_exists(conn):
        return None
    return read_state(conn, sql.meta_table())
