"""The statement text of PostgreSQL protection.

The guard's own names (its schema, functions, triggers, event triggers and the
bypass setting) and the text of every statement it plans. Every identifier goes
through :func:`~migration_guard.dialects.postgresql.quote_postgresql_identifier`
and every literal through :func:`~migration_guard.dialects.postgresql.quote_postgresql_string`,
so a table, schema or role called ``a"; DROP TABLE x; --`` stays a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from migration_guard.dialects.postgresql import (
    quote_postgresql_identifier as ident,
)
from migration_guard.dialects.postgresql import (
    quote_postgresql_string as string,
)
from migration_guard.protect.model import META_TABLE, TRIGGER_PREFIX

__all__ = ["ident", "string"]

#: Custom setting that lets a deliberate delete, TRUNCATE or DDL through.
BYPASS_SETTING = "migration_guard.allow_delete"
#: The schema holding the guard's functions and its metadata table; the
#: application roles get no privilege on it.
GUARD_SCHEMA = "migration_guard"
#: The role that owns protected tables after install, unless configured otherwise.
DEFAULT_GUARD_ROLE = "migration_guard_owner"
DELETE_TRIGGER = f"{TRIGGER_PREFIX}delete"
TRUNCATE_TRIGGER = f"{TRIGGER_PREFIX}truncate"
GUARD_TRIGGERS = (DELETE_TRIGGER, TRUNCATE_TRIGGER)
ROW_FUNCTION = "refuse_delete"
DDL_FUNCTION = "refuse_ddl"
#: Event trigger name -> (event, tags it fires on).
EVENT_TRIGGERS: dict[str, tuple[str, tuple[str, ...]]] = {
    # A trigger of someone else's on a protected table could switch the bypass on
    # for every session that deletes; only the guard role may add one.
    "migration_guard_alter": ("ddl_command_end", ("ALTER TABLE", "CREATE TRIGGER")),
    "migration_guard_drop": ("sql_drop", ()),
}
#: Privileges an owner keeps on its former table (TRUNCATE stays the owner's).
KEPT_TABLE_PRIVILEGES = ("DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "UPDATE")
KEPT_SEQUENCE_PRIVILEGES = ("SELECT", "UPDATE", "USAGE")
#: pg_trigger.tgtype of the two guard triggers: ROW|BEFORE|DELETE and BEFORE|TRUNCATE.
TRIGGER_TYPES = {DELETE_TRIGGER: 1 | 2 | 8, TRUNCATE_TRIGGER: 2 | 32}
#: How long one step may wait for a table lock before the whole plan is rolled back.
LOCK_TIMEOUT = "5s"
#: The prefix of every message the guard raises (probes recognise it).
MESSAGE_PREFIX = "migration-guard:"


def qualified(schema: str, name: str) -> str:
    """``schema.name`` quoted, for statements."""
    return f"{ident(schema)}.{ident(name)}"


def shown(schema: str, name: str, current: str | None = None) -> str:
    """``schema.name`` as messages and ``status`` show it, unquoted: bare when
    ``schema`` is the session's ``current`` schema (``customers``), else qualified
    (``app.customers``). The guard's own objects are always shown qualified."""
    return name if schema == current else f"{schema}.{name}"


def guard_object(name: str) -> str:
    """A function or table of the guard's schema, as messages show it."""
    return shown(GUARD_SCHEMA, name)


def meta_table() -> str:
    return qualified(GUARD_SCHEMA, META_TABLE)


def function(name: str) -> str:
    return qualified(GUARD_SCHEMA, name) + "()"


_ALLOWED = (
    f"lower(coalesce(current_setting({string(BYPASS_SETTING)}, true), '')) IN ('on', 'true', '1')"
)


def row_function_body() -> str:
    """The trigger function of both guard triggers: refuse unless the bypass is on."""
    return (
        "\nBEGIN\n"
        f"  IF {_ALLOWED} THEN\n"
        "    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
        "    RETURN NULL;\n"
        "  END IF;\n"
        f"  RAISE EXCEPTION '{MESSAGE_PREFIX} % on %.% is blocked', TG_OP,\n"
        "    quote_ident(TG_TABLE_SCHEMA), quote_ident(TG_TABLE_NAME)\n"
        f"    USING HINT = 'SET {BYPASS_SETTING} = on for a deliberate change';\n"
        "END\n"
    )


def ddl_function_body(guard_role: str, oids: Iterable[int]) -> str:
    """The event-trigger function: refuse DROP/ALTER of the protected tables (by oid)
    and the drop of a guard trigger, unless run as the guard role or with the bypass."""
    listed = ",".join(str(oid) for oid in sorted(set(oids)))
    triggers = ", ".join(string(name) for name in GUARD_TRIGGERS)
    refuse = (
        f"RAISE EXCEPTION '{MESSAGE_PREFIX} % of % is refused: the table is protected', "
        "TG_TAG, obj.object_identity "
        f"USING HINT = 'SET {BYPASS_SETTING} = on (or SET ROLE to the guard role) "
        "for a deliberate change'"
    )
    return (
        "\nDECLARE\n"
        f"  protected oid[] := '{{{listed}}}';\n"
        "  obj record;\n"
        "BEGIN\n"
        f"  IF current_user = {string(guard_role)} OR {_ALLOWED} THEN RETURN; END IF;\n"
        "  IF TG_EVENT = 'sql_drop' THEN\n"
        "    FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP\n"
        "      IF (obj.classid = 'pg_class'::regclass AND obj.objid = ANY (protected))\n"
        "         OR (obj.classid = 'pg_trigger'::regclass\n"
        f"             AND split_part(obj.object_identity, ' on ', 1) IN ({triggers})) THEN\n"
        f"        {refuse};\n"
        "      END IF;\n"
        "    END LOOP;\n"
        "  ELSE\n"
        "    FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP\n"
        "      IF (obj.classid = 'pg_class'::regclass AND obj.objid = ANY (protected))\n"
        "         OR (obj.classid = 'pg_trigger'::regclass AND (SELECT t.tgrelid FROM\n"
        "             pg_trigger t WHERE t.oid = obj.objid) = ANY (protected)) THEN\n"
        f"        {refuse};\n"
        "      END IF;\n"
        "    END LOOP;\n"
        "  END IF;\n"
        "END\n"
    )


def create_function(name: str, returns: str, body: str) -> str:
    """CREATE OR REPLACE FUNCTION in the guard schema, with a fixed search_path."""
    return (
        f"CREATE OR REPLACE FUNCTION {function(name)} RETURNS {returns} "
        "LANGUAGE plpgsql SET search_path = pg_catalog "
        f"AS {string(body)}"
    )


def create_trigger(trigger: str, schema: str, table: str) -> str:
    kind = (
        "BEFORE DELETE ON {table} FOR EACH ROW"
        if trigger == DELETE_TRIGGER
        else "BEFORE TRUNCATE ON {table} FOR EACH STATEMENT"
    )
    return (
        f"CREATE TRIGGER {ident(trigger)} {kind.format(table=qualified(schema, table))} "
        f"EXECUTE FUNCTION {function(ROW_FUNCTION)}"
    )


def drop_trigger(trigger: str, schema: str, table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {ident(trigger)} ON {qualified(schema, table)}"


def enable_trigger(trigger: str, schema: str, table: str, *, enable: bool = True) -> str:
    verb = "ENABLE" if enable else "DISABLE"
    return f"ALTER TABLE {qualified(schema, table)} {verb} TRIGGER {ident(trigger)}"


def create_event_trigger(name: str) -> str:
    event, tags = EVENT_TRIGGERS[name]
    when = f" WHEN TAG IN ({', '.join(string(tag) for tag in tags)})" if tags else ""
    return f"CREATE EVENT TRIGGER {ident(name)} ON {event}{when} EXECUTE FUNCTION " + function(
        DDL_FUNCTION
    )


def owner_to(kind: str, schema: str, name: str, role: str) -> str:
    return f"ALTER {kind} {qualified(schema, name)} OWNER TO {ident(role)}"


def privileges(names: Sequence[str]) -> str:
    return ", ".join(sorted(names))


def grant(privilege_list: Sequence[str], kind: str, schema: str, name: str, role: str) -> str:
    return (
        f"GRANT {privileges(privilege_list)} ON {kind} {qualified(schema, name)} TO {ident(role)}"
    )


def revoke(privilege_list: Sequence[str], kind: str, schema: str, name: str, role: str) -> str:
    return (
        f"REVOKE {privileges(privilege_list)} ON {kind} {qualified(schema, name)} "
        f"FROM {ident(role)}"
    )


def create_meta_table() -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {meta_table()} (name text PRIMARY KEY, "
        "value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
    )


def upsert_state(key: str, value: str) -> str:
    return (
        f"INSERT INTO {meta_table()} (name, value) VALUES ({string(key)}, {string(value)}) "
        "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
    )


def create_role(role: str) -> str:
    """Create the guard role unless it exists (another install may race this one)."""
    return (
        "DO $mg$ BEGIN "
        f"CREATE ROLE {ident(role)} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $mg$"
    )


def drop_role_if_unused(role: str) -> str:
    """Drop the guard role, unless it still owns or holds something anywhere."""
    return (
        "DO $mg$ BEGIN "
        f"DROP ROLE IF EXISTS {ident(role)}; "
        "EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $mg$"
    )


# Catalog queries.
SETTINGS_SQL = (
    "SELECT current_database(), current_user, r.rolsuper, r.rolcreaterole, "
    "has_database_privilege(current_database(), 'CREATE') "
    "FROM pg_roles r WHERE r.rolname = current_user"
)
ROLES_SQL = "SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY (CAST(:roles AS name[]))"
SCHEMA_EXISTS_SQL = "SELECT oid FROM pg_namespace WHERE nspname = :schema"
META_EXISTS_SQL = "SELECT to_regclass(:name) IS NOT NULL"
TABLES_SQL = (
    "SELECT c.oid, n.nspname, c.relname, pg_get_userbyid(c.relowner), "
    "r.rolsuper FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = ANY (CAST(:oids AS oid[]))"
)
OWNED_SEQUENCES_SQL = (
    "SELECT n.nspname, s.relname, s.oid FROM pg_depend d "
    "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
    "JOIN pg_namespace n ON n.oid = s.relnamespace "
    "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
    "AND d.refobjid = :oid AND d.deptype IN ('a', 'i') ORDER BY 1, 2"
)
#: The privileges each of ``roles`` itself holds on each relation (an owner's implicit
#: ones included): ``(relation oid, role, privilege)``.
ROLE_PRIVILEGES_SQL = (
    "SELECT DISTINCT c.oid, r.rolname, a.privilege_type FROM pg_class c, "
    "aclexplode(coalesce(c.relacl, acldefault(CAST(CASE WHEN c.relkind = 'S' THEN 's' "
    "ELSE 'r' END AS \"char\"), c.relowner))) a, pg_roles r "
    "WHERE c.oid = ANY (CAST(:oids AS oid[])) AND r.rolname = ANY (CAST(:roles AS name[])) "
    "AND a.grantee = r.oid ORDER BY 1, 2, 3"
)
#: The guard triggers of many relations: ``(relation oid, name, tgtype, tgenabled,
#: runs the guard's function, cloned from a partitioned parent)``.
TRIGGERS_SQL = (
    "SELECT t.tgrelid, t.tgname, t.tgtype, t.tgenabled, "
    "t.tgfoid = to_regprocedure(:function), t.tgparentid <> 0 "
    "FROM pg_trigger t WHERE t.tgrelid = ANY (CAST(:oids AS oid[])) AND NOT t.tgisinternal "
    "AND t.tgname = ANY (CAST(:names AS name[]))"
)
FUNCTION_SOURCE_SQL = "SELECT p.prosrc FROM pg_proc p WHERE p.oid = to_regprocedure(:function)"
EVENT_TRIGGERS_SQL = (
    "SELECT e.evtname, e.evtevent, e.evtenabled, e.evtfoid = to_regprocedure(:function) "
    "FROM pg_event_trigger e WHERE e.evtname = ANY (CAST(:names AS name[]))"
)
#: Whether each of ``roles`` can act as each relation's owner (is it, or a member of
#: it), and is a superuser: ``(relation oid, role, member of owner, superuser)``.
CAN_OWN_SQL = (
    "SELECT c.oid, r.rolname, pg_has_role(r.oid, c.relowner, 'MEMBER'), r.rolsuper "
    "FROM pg_class c, pg_roles r "
    "WHERE c.oid = ANY (CAST(:oids AS oid[])) AND r.rolname = ANY (CAST(:roles AS name[]))"
)
#: ``(relation oid, role, the relation's schema, role is a member of the schema's owner)``.
SCHEMA_OWNER_SQL = (
    "SELECT c.oid, r.rolname, n.nspname, pg_has_role(r.oid, n.nspowner, 'MEMBER') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles r "
    "WHERE c.oid = ANY (CAST(:oids AS oid[])) AND r.rolname = ANY (CAST(:roles AS name[]))"
)
#: The whole ACL of a relation as rows, for comparing before and after.
ACL_SQL = (
    "SELECT pg_get_userbyid(a.grantee), pg_get_userbyid(a.grantor), a.privilege_type, "
    "a.is_grantable FROM pg_class c, "
    "aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a "
    "WHERE c.oid = :oid ORDER BY 1, 2, 3"
)
#: Partitions below each of many tables, parents first:
#: ``(table oid, oid, schema, name, parent oid)``.
PARTITIONS_SQL = (
    "WITH RECURSIVE tree(root, oid, parent, depth) AS ("
    "SELECT inhparent, inhrelid, inhparent, 1 FROM pg_inherits "
    "WHERE inhparent = ANY (CAST(:oids AS oid[])) "
    "UNION ALL SELECT t.root, i.inhrelid, i.inhparent, t.depth + 1 FROM pg_inherits i "
    "JOIN tree t ON i.inhparent = t.oid) "
    "SELECT t.root, c.oid, n.nspname, c.relname, t.parent FROM tree t "
    "JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relispartition ORDER BY t.root, t.depth, n.nspname, c.relname"
)
#: Defaults of the bypass that would switch protection off for whole sessions:
#: ``(role or NULL for every role, database-wide?, setting)`` from ALTER ROLE/DATABASE ... SET.
BYPASS_DEFAULTS_SQL = (
    "SELECT r.rolname, s.setdatabase <> 0, c.setting FROM pg_db_role_setting s "
    "LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) AS c(setting) "
    "WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) "
    "AND c.setting ILIKE :prefix"
)
#: The bypass's value in a fresh session, when the server's configuration sets it.
BYPASS_CONFIG_SQL = (
    "SELECT reset_val, source FROM pg_settings WHERE name = :name "
    "AND source NOT IN ('default', 'session', 'client')"
)
