"""Restore with proof: undo what a failed run did, keep what the application wrote.

Used when a migration fails part-way and when a later run finds the record of an
earlier run that died mid-migration. The scope is what the interceptor recorded
(:mod:`migration_guard.alembic.changes`): the tables the run altered or wrote come
back from the run's backups, the tables it created are dropped once that worked, the
version table gets its old heads; every other table is left alone. Before a table is
reloaded its current rows go to a rescue backup; rows written during the run are then
re-applied where the run changed only the table's definition, and otherwise stay in
the rescue backup, reported. The proof compares row counts, checksums and DDL with
what was recorded before the run, so "restored" is a checked fact rather than a hope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.changes import RunChanges
from migration_guard.alembic.records import measured_as_recorded
from migration_guard.alembic.results import RestoreReport, describe_failure
from migration_guard.config import Config
from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.alembic.rows import TableRows
    from migration_guard.dialects.base import DialectOps, TableStats


@dataclass
class _Scope:
    """The tables one restore deals with, as the database spells them."""

    #: Tables from before the run to reload, each with whether the run wrote its rows.
    reload: dict[str, bool] = field(default_factory=dict)
    #: Tables the run created that exist now.
    created: list[str] = field(default_factory=list)
    #: Tables the run changed that the database rolled back (proven, not reloaded).
    rolled_back: list[str] = field(default_factory=list)
    #: Tables to reload that the run renamed -> the live table their rows are in now.
    renamed: dict[str, str] = field(default_factory=dict)


def restore_pre_run_state(config: Config, url: URL, record: Mapping[str, Any]) -> RestoreReport:
    """Undo the run described by ``record``, keep the application's rows, prove it.

    Never raises for a failed restore: the report says what failed and gives the
    command to finish by hand.
    """
    from migration_guard.backup.manifest import redact_url
    from migration_guard.dialects import get_dialect_ops

    report = RestoreReport()
    ops = get_dialect_ops(url.get_backend_name())
    backups: list[dict[str, Any]] = list(record.get("backups") or [])
    report.backup_ids = [backup["id"] for backup in backups]
    pending: list[tuple[dict[str, Any], list[str]]] = []
    try:
        _restore(config, url, record, ops, report, backups, pending)
    except Exception as exc:
        report.ok = False
        report.error = describe_failure(exc)
        failed, tables = pending[-1] if pending else (backups[0] if backups else None, [])
        if failed is not None:
            tables = tables or list(failed["tables"])
            report.manual_command = (
                f"migration-guard restore {failed['id']} --url '{redact_url(url)}' "
                + " ".join(f"--tables {t}" for t in tables)
                + " --yes"
            )
        return report
    report.ok = not report.mismatches
    return report


def _restore(
    config: Config,
    url: URL,
    record: Mapping[str, Any],
    ops: DialectOps,
    report: RestoreReport,
    backups: Sequence[dict[str, Any]],
    pending: list[tuple[dict[str, Any], list[str]]],
) -> None:
    from migration_guard.alembic.rows import snapshot
    from migration_guard.backup import restore
    from migration_guard.dialects.base import transaction

    pre_stats: dict[str, dict[str, Any]] = dict(record.get("pre_stats") or {})
    version_table: str = record.get("version_table") or config.version_table
    pre_heads: list[str] = list(record.get("pre_heads") or [])
    with transaction(url) as conn:
        live = ops.list_tables(conn)
        scope = _scope(ops, conn, url, record, live, version_table, report)
        live_lower = {name.lower() for name in live}
        if ops.transactional_ddl:
            _rolled_back(report, ops, conn, scope, live_lower, pre_stats)
        present = [t for t in scope.reload if t.lower() in live_lower]
        # The rows of a table the run renamed are under its new name.
        before = {
            table: snapshot(conn, scope.renamed.get(table, table))
            for table in scope.reload
            if table in scope.renamed or table.lower() in live_lower
        }
    rescue = [*present, *scope.created]
    if rescue:
        report.rescue_backup_id = _rescue_backup(config, url, rescue, record)
        report.backup_ids.append(report.rescue_backup_id)
    done: set[str] = set()
    for backup in backups:
        wanted = [t for t in backup["tables"] if t in scope.reload and t not in done]
        if not wanted:
            continue
        pending.append((backup, wanted))
        result = restore(
            config, backup["id"], url=url, tables=wanted, yes=True, safety_backup=False
        )
        if not result.ok:
            raise BackupError(
                f"backup {backup['id']} restored with mismatches: " + "; ".join(result.mismatches)
            )
        done.update(wanted)
    pending.clear()
    _check_unbacked(report, ops, url, [t for t in scope.reload if t not in done], pre_stats)
    restored = [t for t in scope.reload if t in done]
    report.restored_tables = restored
    _prove_reloaded(report, ops, url, restored, pre_stats)
    if report.mismatches:
        return  # the created tables stay until the restore is known to work
    _keep_rows(url, report, restored, scope.reload, before)
    _reset_heads(report, ops, url, version_table, pre_heads)
    if scope.created:
        with transaction(url) as conn:
            ops.drop_tables(conn, scope.created)
        report.dropped_tables = list(scope.created)
        for table in scope.created:
            report.tables.append(
                {"table": table, "status": "dropped", "detail": "created by the run"}
            )
    with transaction(url) as conn:
        left = {t.lower() for t in ops.list_tables(conn)}
    for table in scope.created:
        if table.lower() in left:
            report.mismatches.append(f"table {table} was created by the run and still exists")
    changed = [*scope.reload, *scope.created, *scope.rolled_back, version_table]
    others = len(live_lower - {t.lower() for t in changed})
    if others:
        report.proof.append(f"{others} other table(s) left alone: the run did not change them")


def _scope(
    ops: DialectOps,
    conn: Connection,
    url: URL,
    record: Mapping[str, Any],
    live: Sequence[str],
    version_table: str,
    report: RestoreReport,
) -> _Scope:
    """The tables to reload and to drop: the recorded changes of the run.

    A record without them (written by an older version) or with a statement whose
    targets were unknown falls back to the tables whose measurements changed, all
    treated as written by the run (their rows written meanwhile are rescued, not
    re-applied).
    """
    pre_tables: list[str] = list(record.get("pre_tables") or [])
    by_lower = {name.lower(): name for name in pre_tables}
    live_by_lower = {name.lower(): name for name in live}
    # A qualified name of the connected database (MySQL) or of its default schema
    # (PostgreSQL's ``public.orders``) is a listed table.
    database = {ops.database_name(url).lower(), (ops.default_schema(conn) or "").lower()}
    scope = _Scope()
    raw = record.get("changes")
    changes = RunChanges.from_dict(raw) if isinstance(raw, Mapping) else None
    died = record.get("status") == "migrating" or bool(record.get("recovered_by"))
    if changes is not None and died:
        changes = changes.merged()  # the run died: it may have done all it planned
    if changes is not None:
        for entry in changes.changed():
            name = _resolve(entry.name, by_lower, database)
            if name is None:
                report.notes.append(
                    f"table {entry.name} is outside this database; the restore cannot reach it"
                )
            elif name.lower() != version_table.lower() or entry.ddl:
                renames = changes.renames(entry)
                wrote = entry.wrote or any(later.wrote for later in renames)
                scope.reload[name] = scope.reload.get(name, False) or wrote
                live_names = [_resolve(later.name, live_by_lower, database) for later in renames]
                now = next((n for n in reversed(live_names) if n is not None), None)
                if now is not None:
                    scope.renamed[name] = now
        for table in changes.created():
            name = _resolve(table, live_by_lower, database)
            if name is not None and name.lower() not in by_lower:
                scope.created.append(name)
    if changes is None or changes.unknown:
        pre_stats: dict[str, dict[str, Any]] = dict(record.get("pre_stats") or {})
        present = [t for t in pre_stats if t.lower() in live_by_lower]
        current = measured_as_recorded(ops, conn, present, pre_stats)
        for table, before in pre_stats.items():
            if table.lower() == version_table.lower():
                continue
            if table not in current or same_stats(before, current[table]):
                scope.reload[table] = True
        new = [name for low, name in live_by_lower.items() if low not in by_lower]
        if changes is None:
            scope.created = new  # an older record: it dropped every new table
        for table in new:
            if table not in scope.created:
                report.notes.append(
                    f"table {table} is new since the run started but no statement the guard "
                    "could read created it; it was left alone (drop it if the run made it)"
                )
    return scope


def _rolled_back(
    report: RestoreReport,
    ops: DialectOps,
    conn: Connection,
    scope: _Scope,
    live: set[str],
    pre_stats: Mapping[str, Mapping[str, Any]],
) -> None:
    """Where the database rolled the run back (DDL inside its transaction), the tables
    it changed are as before the run: proven by their measurements, they need no
    reload. A table that still differs (changed outside the transaction, in an
    ``autocommit_block()``, or by a commit) stays in ``scope`` for the reload."""
    tables = [t for t in scope.reload if t in pre_stats and t.lower() in live]
    if not tables:
        return
    now = measured_as_recorded(ops, conn, tables, pre_stats)
    definitions = ops.table_definitions(conn, tables)
    for table in tables:
        before = pre_stats[table]
        if table not in now or same_stats(before, now[table], definitions.get(table)):
            continue
        del scope.reload[table]
        scope.rolled_back.append(table)
        stats = now[table]
        report.proof.append(
            f"{table}: rolled back by the database, proven: {stats.rows} rows, checksum "
            f"{str(stats.checksum or '')[:12]}, rows and definition identical to before the run"
        )
        report.tables.append(
            {
                "table": table,
                "status": "restored",
                "detail": "rolled back with the migration's transaction; rows and "
                "definition identical to before the run",
            }
        )


def _resolve(name: str, by_lower: Mapping[str, str], database: set[str]) -> str | None:
    """``name`` (maybe ``schema.table``) as a table of the connected database, or None."""
    lowered = name.lower()
    if lowered in by_lower:
        return by_lower[lowered]
    schema, _, bare = lowered.rpartition(".")
    if schema and schema in database and bare in by_lower:
        return by_lower[bare]
    return None


def _rescue_backup(
    config: Config, url: URL, tables: Sequence[str], record: Mapping[str, Any]
) -> str:
    """Back up ``tables`` as the run left them; the restore never goes on without it."""
    from migration_guard.backup import create
    from migration_guard.errors import MigrationGuardError

    try:
        manifest = create(
            config,
            url=url,
            type="tables",
            tables=list(tables),
            labels={
                "purpose": f"{record.get('command') or 'upgrade'}-rescue",
                "run_id": record.get("run_id"),
                "note": "the rows of the tables a failed run changed, as it left them",
            },
        )
    except MigrationGuardError as exc:
        raise BackupError(
            f"the rescue backup of {', '.join(tables)} failed, so nothing was reloaded "
            f"(rows written during the run would be lost): {exc}"
        ) from exc
    return manifest.id


def _keep_rows(
    url: URL,
    report: RestoreReport,
    restored: Sequence[str],
    wrote: Mapping[str, bool],
    before: Mapping[str, TableRows],
) -> None:
    """Per reloaded table: re-apply the application's rows, or report them rescued."""
    from migration_guard.alembic.rows import compare, reapply, snapshot
    from migration_guard.dialects.base import transaction

    for table in restored:
        if table not in before:
            report.tables.append(
                {"table": table, "status": "restored", "detail": "dropped by the run, back"}
            )
            continue
        with transaction(url) as conn:
            diff = compare(before[table], snapshot(conn, table))
        if not diff.count:
            report.tables.append({"table": table, "status": "restored", "detail": "as before"})
            continue
        why = ""
        if wrote[table]:
            why = "the run also wrote rows of this table"
        elif diff.retyped:
            why = f"the run changed the type of {', '.join(diff.retyped)}"
        else:
            try:
                with transaction(url) as conn:
                    reapply(conn, table, diff)
            except Exception as exc:
                why = f"writing them back failed: {describe_failure(exc)}"
        if not why:
            report.tables.append(
                {
                    "table": table,
                    "status": "kept",
                    "detail": f"{diff.describe()} by the application during the run, "
                    "re-applied on the definition from before the run",
                }
            )
            continue
        command = (
            f"migration-guard restore {report.rescue_backup_id} --url SCRATCH_URL --tables {table}"
        )
        report.tables.append(
            {
                "table": table,
                "status": "rescued",
                "detail": f"{diff.describe()} during the run ({why}); kept in rescue backup "
                f"{report.rescue_backup_id}, not in the table. See them with: {command}",
            }
        )


def _check_unbacked(
    report: RestoreReport,
    ops: DialectOps,
    url: URL,
    tables: Sequence[str],
    pre_stats: Mapping[str, Mapping[str, Any]],
) -> None:
    """Tables the run changed that no backup holds: fine only if they are unchanged
    (the database rolled the run's writes back)."""
    from migration_guard.dialects.base import transaction

    if not tables:
        return
    with transaction(url) as conn:
        live = {t.lower() for t in ops.list_tables(conn)}
        now = measured_as_recorded(ops, conn, [t for t in tables if t.lower() in live], pre_stats)
    for table in tables:
        before = pre_stats.get(table)
        if before is not None and table in now and not same_stats(before, now[table]):
            report.proof.append(f"{table}: unchanged (the run's writes were rolled back)")
            continue
        report.mismatches.append(
            f"table {table}: no backup of the run holds it, so it was left as the run left it"
        )


def _reset_heads(
    report: RestoreReport, ops: DialectOps, url: URL, version_table: str, pre_heads: list[str]
) -> None:
    import sqlalchemy as sa

    from migration_guard.dialects.base import transaction

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    with transaction(url) as conn:
        if version_table.lower() not in {t.lower() for t in ops.list_tables(conn)}:
            return
        if _read_heads(conn, version_table) != sorted(pre_heads):
            conn.execute(table.delete())
            for head in pre_heads:
                conn.execute(table.insert().values(version_num=head))
        heads = _read_heads(conn, version_table)
    report.version_reset_to = list(pre_heads)
    if heads != sorted(pre_heads):
        report.mismatches.append(
            f"{version_table}: at {', '.join(heads) or 'base'}, expected "
            f"{', '.join(pre_heads) or 'base'}"
        )
    else:
        report.proof.append(f"{version_table}: back at {', '.join(pre_heads) or 'base'}")


def _read_heads(conn: Connection, version_table: str) -> list[str]:
    import sqlalchemy as sa

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    return sorted(str(row[0]) for row in conn.execute(sa.select(table.c.version_num)))


def _prove_reloaded(
    report: RestoreReport,
    ops: DialectOps,
    url: URL,
    tables: Sequence[str],
    pre_stats: Mapping[str, Mapping[str, Any]],
) -> None:
    """Each reloaded table against its measurement from before the run."""
    from migration_guard.dialects.base import transaction

    with transaction(url) as conn:
        after = measured_as_recorded(ops, conn, list(tables), pre_stats)
        definitions = ops.table_definitions(conn, list(tables))
    for table in tables:
        now, before = after.get(table), pre_stats.get(table)
        if now is None:
            report.mismatches.append(f"table {table} existed before the run and is missing")
            continue
        problems = same_stats(before, now, definitions.get(table)) if before is not None else []
        if problems:
            report.mismatches.append(f"table {table}: {'; '.join(problems)}")
        else:
            checksum = str(now.checksum or "")[:12]
            report.proof.append(
                f"{table}: reloaded, {now.rows} rows, checksum {checksum}, "
                "rows and DDL identical to before the run"
            )


def same_stats(
    before: Mapping[str, Any], after: TableStats, definition: str | None = None
) -> list[str]:
    """What differs between a recorded measurement and the live one (empty: the same);
    ``definition`` is the live :meth:`~migration_guard.dialects.base.DialectOps.table_definitions`
    hash, compared where one was recorded."""
    problems: list[str] = []
    recorded = before.get("definition_sha256")
    if recorded and definition and recorded != definition:
        problems.append("definition (constraints, indexes, triggers) differs")
    if before.get("rows") is not None and before["rows"] != after.rows:
        problems.append(f"{after.rows} rows, expected {before['rows']}")
    if before.get("checksum") is not None and str(before["checksum"]) != str(after.checksum):
        problems.append(f"checksum {after.checksum}, expected {before['checksum']}")
    if before.get("ddl_sha256") and after.ddl_sha256 and before["ddl_sha256"] != after.ddl_sha256:
        problems.append("definition (DDL) differs")
    return problems
