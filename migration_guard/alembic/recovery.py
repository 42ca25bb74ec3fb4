"""Restore with proof: put the database back as it was before a run, then show it.

Used when a migration fails part-way and when a later run finds the record of an
earlier run that died mid-migration. The proof compares row counts, checksums, DDL,
the set of tables and the version table's heads with what was recorded before the
run, so "restored" is a checked fact rather than a hope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.results import RestoreReport, describe_failure
from migration_guard.config import Config
from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.dialects.base import DialectOps, TableStats


def restore_pre_run_state(config: Config, url: URL, record: Mapping[str, Any]) -> RestoreReport:
    """Put the database back as it was before the run described by ``record``, then prove it.

    Tables the run created are dropped, touched tables come back from the run's backups,
    the version table gets its old heads; then row counts, checksums and DDL are compared
    with the values recorded before the run. Never raises for a failed restore: the report
    says what failed and gives the command to finish by hand.
    """
    from migration_guard.backup import restore
    from migration_guard.backup.manifest import redact_url
    from migration_guard.dialects import get_dialect_ops
    from migration_guard.dialects.base import transaction

    report = RestoreReport()
    ops = get_dialect_ops(url.get_backend_name())
    pre_tables: list[str] = list(record.get("pre_tables") or [])
    pre_lower = {name.lower() for name in pre_tables}
    pre_stats: dict[str, dict[str, Any]] = dict(record.get("pre_stats") or {})
    backups: list[dict[str, Any]] = list(record.get("backups") or [])
    version_table: str = record.get("version_table") or config.version_table
    pre_heads: list[str] = list(record.get("pre_heads") or [])
    report.backup_ids = [backup["id"] for backup in backups]
    pending_backup: dict[str, Any] | None = None
    pending_tables: list[str] = []
    try:
        with transaction(url) as conn:
            live = ops.list_tables(conn)
            created = [name for name in live if name.lower() not in pre_lower]
            if created:
                ops.drop_tables(conn, created)
            report.dropped_tables = created
            live = [name for name in live if name.lower() in pre_lower]
            current = ops.table_stats(conn, [t for t in pre_stats if t in live])
        damaged = [
            table
            for table, before in pre_stats.items()
            if table not in current or same_stats(before, current[table])
        ]
        done: set[str] = set()
        for backup in backups:
            wanted = [t for t in backup["tables"] if t in damaged and t not in done]
            if not wanted:
                continue
            pending_backup, pending_tables = backup, wanted
            result = restore(
                config, backup["id"], url=url, tables=wanted, yes=True, safety_backup=False
            )
            if not result.ok:
                raise BackupError(
                    f"backup {backup['id']} restored with mismatches: "
                    + "; ".join(result.mismatches)
                )
            done.update(wanted)
            report.restored_tables.extend(wanted)
        pending_backup = None
        version_restored = version_table in done
        if version_table.lower() in pre_lower and not version_restored:
            _reset_version_table(url, version_table, pre_heads)
            report.version_reset_to = pre_heads
        elif version_restored:
            report.version_reset_to = pre_heads
        _prove(report, ops, url, pre_tables, pre_stats, version_table, pre_heads)
    except Exception as exc:
        report.ok = False
        report.error = describe_failure(exc)
        failed = pending_backup or (backups[0] if backups else None)
        if failed is not None:
            tables = pending_tables or list(failed["tables"])
            report.manual_command = (
                f"migration-guard restore {failed['id']} --url '{redact_url(url)}' "
                + " ".join(f"--tables {t}" for t in tables)
                + " --yes"
            )
        return report
    report.ok = not report.mismatches
    return report


def _reset_version_table(url: URL, version_table: str, heads: Sequence[str]) -> None:
    import sqlalchemy as sa

    from migration_guard.dialects.base import transaction

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    with transaction(url) as conn:
        conn.execute(table.delete())
        for head in heads:
            conn.execute(table.insert().values(version_num=head))


def _read_heads(conn: Connection, version_table: str) -> list[str]:
    import sqlalchemy as sa

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    return sorted(str(row[0]) for row in conn.execute(sa.select(table.c.version_num)))


def _prove(
    report: RestoreReport,
    ops: DialectOps,
    url: URL,
    pre_tables: Sequence[str],
    pre_stats: Mapping[str, Mapping[str, Any]],
    version_table: str,
    pre_heads: Sequence[str],
) -> None:
    from migration_guard.dialects.base import transaction

    with transaction(url) as conn:
        live = ops.list_tables(conn)
        after = ops.table_stats(conn, [t for t in pre_stats if t in live])
        heads = (
            _read_heads(conn, version_table)
            if version_table.lower() in {t.lower() for t in live}
            else []
        )
    before_set = {t.lower() for t in pre_tables}
    live_set = {t.lower() for t in live}
    for extra in sorted(live_set - before_set):
        report.mismatches.append(f"table {extra} exists now but did not before the run")
    for missing in sorted(before_set - live_set):
        report.mismatches.append(f"table {missing} existed before the run and is missing")
    for table, before in sorted(pre_stats.items()):
        now = after.get(table)
        if now is None:
            continue
        problems = same_stats(before, now)
        if problems:
            report.mismatches.append(f"table {table}: {'; '.join(problems)}")
        else:
            checksum = str(now.checksum or "")[:12]
            report.proof.append(
                f"{table}: {now.rows} rows, checksum {checksum}, DDL identical to before the run"
            )
    if version_table.lower() in before_set:
        if sorted(heads) != sorted(pre_heads):
            report.mismatches.append(
                f"{version_table}: at {', '.join(heads) or 'base'}, expected "
                f"{', '.join(pre_heads) or 'base'}"
            )
        else:
            report.proof.append(f"{version_table}: back at {', '.join(pre_heads) or 'base'}")
    report.proof.append(
        f"{len(live)} table(s), the same set as before the run"
        if live_set == before_set
        else f"{len(live)} table(s); the set differs from before the run"
    )


def same_stats(before: Mapping[str, Any], after: TableStats) -> list[str]:
    """What differs between a recorded measurement and the live one (empty: the same)."""
    problems: list[str] = []
    if before.get("rows") is not None and before["rows"] != after.rows:
        problems.append(f"{after.rows} rows, expected {before['rows']}")
    if before.get("checksum") is not None and str(before["checksum"]) != str(after.checksum):
        problems.append(f"checksum {after.checksum}, expected {before['checksum']}")
    if before.get("ddl_sha256") and after.ddl_sha256 and before["ddl_sha256"] != after.ddl_sha256:
        problems.append("definition (DDL) differs")
    return problems
