# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""pgdump restores on the real server: over a live database, locale, extensions, owners.

Attacks first: a damaged stream and a server-side failure half-way must leave a
live target exactly as it was (rows and DDL); manifest values must not reach
``CREATE DATABASE`` unchecked; owners and grants come back exactly when asked.
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup import create, keygen, restore, verify
from migration_guard.backup.backends.base import RestoreOptions
from migration_guard.backup.backends.pgdump import PgdumpBackend
from migration_guard.backup.catalog import Catalog
from migration_guard.config import Config
from migration_guard.dialects.postgresql_database import create_database_sql, option_problems
from migration_guard.errors import LoadRolledBack, RestoreFailed, UsageError
from migration_guard.monitoring.drill import drill
from tests.conftest import unique_name
from tests.db.test_backup_postgresql import (  # noqa: F401  (fixtures)
    ADMIN_URL,
    load_varied,
    new_database,
    picture,
)

pytestmark = pytest.mark.postgresql


def schema_text(url: URL | str) -> str:
    """The whole DDL of a database as pg_dump prints it (owners and grants included)."""
    url = sa.make_url(url)
    done = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            str(url.database),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    # \restrict and \unrestrict carry a random key per run.
    return "".join(
        line
        for line in done.stdout.splitlines(keepends=True)
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def state(url: URL | str) -> tuple[dict[str, object], str]:
    return picture(url), schema_text(url)


def change_after_backup(url: str) -> None:
    """Rows and a table the backup does not hold: a restore that ran would change them."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'DELETE FROM "odd schema"."orders ""x""" '
            "WHERE mod(customer_id, 2) = 0 AND customer_id > 3"
        )
        conn.exec_driver_sql("DELETE FROM customers WHERE mod(id, 2) = 0 AND id > 3")
        conn.exec_driver_sql("UPDATE customers SET name = 'changed' WHERE id = 1")
        conn.exec_driver_sql("CREATE TABLE later (id int PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO later VALUES (1), (2)")
    engine.dispose()


def test_a_truncated_stream_into_a_live_database_changes_nothing(postgres_url: str) -> None:
    load_varied(postgres_url, rows=30)
    backend = PgdumpBackend()
    sink = io.BytesIO()
    result = backend.dump(sa.make_url(postgres_url), sink)
    change_after_backup(postgres_url)
    before = state(postgres_url)
    data = sink.getvalue()
    for cut in (len(data) * 3 // 4, len(data) - 10):
        with pytest.raises(LoadRolledBack, match="rolled back"):
            backend.restore(
                sa.make_url(postgres_url),
                io.BytesIO(data[:cut]),
                stream_format=result.stream_format,
            )
        assert state(postgres_url) == before


def test_a_truncated_archive_into_a_live_database_changes_nothing(
    config: Config, postgres_url: str
) -> None:
    load_varied(postgres_url, rows=10)
    manifest = create(config, url=postgres_url, encrypt=False)
    change_after_backup(postgres_url)
    before = state(postgres_url)
    path = Catalog.for_config(config).archive_path(manifest.id)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RestoreFailed) as caught:
        restore(config, manifest.id, url=postgres_url, yes=True)
    assert caught.value.target_state == "unchanged"
    assert caught.value.safety_backup_id and caught.value.safety_backup_id in str(caught.value)
    assert state(postgres_url) == before


def test_a_server_side_failure_half_way_is_rolled_back_and_proven(
    config: Config, postgres_url: str, postgres_admin_engine: sa.Engine
) -> None:
    load_varied(postgres_url, rows=10)
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
            "FROM generate_series(1, 300000) AS g"
        )
    engine.dispose()
    manifest = create(config, url=postgres_url, encrypt=False)
    change_after_backup(postgres_url)
    before = state(postgres_url)
    database = sa.make_url(postgres_url).database
    stop = threading.Event()
    killed: list[int] = []

    def kill_pg_restore() -> None:
        while not stop.is_set():
            with postgres_admin_engine.connect() as conn:
                found = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :d AND application_name = 'pg_restore' "
                        # active: an idle session still shows its last COPY (it may
                        # be about to commit, and the kill would then fail nothing)
                        "AND state = 'active' AND query ILIKE 'COPY%'"
                    ),
                    {"d": database},
                ).all()
            if found:
                killed.append(len(found))
                return
            time.sleep(0.002)

    thread = threading.Thread(target=kill_pg_restore)
    thread.start()
    try:
        with pytest.raises(RestoreFailed) as caught:
            restore(config, manifest.id, url=postgres_url, yes=True)
    finally:
        stop.set()
        thread.join()
    assert killed, "pg_restore was never seen copying"
    message = str(caught.value)
    assert caught.value.target_state == "unchanged", message
    assert "equal those of the safety backup" in message
    assert caught.value.safety_backup_id and caught.value.safety_backup_id in message
    assert state(postgres_url) == before


def test_restore_over_a_live_database_replaces_what_the_backup_holds(
    config: Config, postgres_url: str
) -> None:
    load_varied(postgres_url, rows=12)
    at_backup = picture(postgres_url)
    manifest = create(config, url=postgres_url, encrypt=False)
    change_after_backup(postgres_url)
    with pytest.raises(UsageError, match="not empty"):
        restore(config, manifest.id, url=postgres_url)
    result = restore(config, manifest.id, url=postgres_url, yes=True)
    assert result.ok, result.mismatches
    assert result.safety_backup_id and not result.target_was_empty
    after = picture(postgres_url)
    assert after.pop("public.later") == ["(1)", "(2)"]  # not in the backup: left alone
    assert after == at_backup
    assert any("later" in note for note in result.notes)
    # The safety backup puts the changed state back.
    undone = restore(config, result.safety_backup_id, url=postgres_url, yes=True)
    assert undone.ok, undone.mismatches


def test_a_database_with_tables_only_outside_public_is_not_empty(
    config: Config, postgres_url: str, new_database: Callable[[], URL]
) -> None:
    load_varied(postgres_url, rows=3)
    manifest = create(config, url=postgres_url, encrypt=False)
    target = new_database()
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA keep; CREATE TABLE keep.precious (id int)")
    engine.dispose()
    with pytest.raises(UsageError, match="not empty"):
        restore(config, manifest.id, url=target)


# -- locale and extensions --------------------------------------------------------------
def _server_locales(admin: sa.Engine) -> tuple[str, str]:
    """The server's default LC_COLLATE, and another libc locale it knows."""
    with admin.connect() as conn:
        default = str(
            conn.exec_driver_sql(
                "SELECT datcollate FROM pg_database WHERE datname = 'template1'"
            ).scalar_one()
        )
    return default, "POSIX" if default == "C" else "C"


def test_a_created_database_gets_the_sources_locale_and_extensions(
    config: Config,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
) -> None:
    _, other = _server_locales(postgres_admin_engine)
    source = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE \"{source.database}\" TEMPLATE template0 ENCODING 'UTF8' "
            f"LC_COLLATE '{other}' LC_CTYPE '{other}'"
        )
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION citext")
        conn.exec_driver_sql("CREATE TABLE people (email citext PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO people VALUES ('A@x.org'), ('b@x.org')")
    engine.dispose()
    manifest = create(config, url=source, encrypt=False)
    options = manifest.extra["database_options"]
    assert isinstance(options, dict)
    assert options["lc_collate"] == other and options["lc_ctype"] == other
    assert "citext" in [e["name"] for e in options["extensions"]]

    target = new_database()
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches
    with postgres_admin_engine.connect() as conn:
        locale = conn.execute(
            sa.text(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
                "WHERE datname = :n"
            ),
            {"n": target.database},
        ).one()
    assert tuple(locale) == ("UTF8", other, other)
    restored = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with restored.connect() as conn:
        assert (
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_extension WHERE extname = 'citext'"
            ).scalar()
            == 1
        )
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM people WHERE email = 'a@X.ORG'").scalar()
            == 1
        )
    restored.dispose()
    assert verify(config, manifest.id, restore_test=True).restore_test_ok is True


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"lc_collate": "C' TEMPLATE template1 --"}, "is not a name"),
        ({"lc_ctype": "xx_NOWHERE.utf8"}, "not one this server knows"),
        ({"charset": "NOT_AN_ENCODING"}, "not one this server knows"),
        ({"icu_locale": "zz-nowhere", "locale_provider": "icu"}, "icu_locale"),
        ({"extensions": [{"name": "no_such_extension_mg"}]}, "postgresql-contrib"),
        ({"extensions": [{"name": 'x"; DROP DATABASE postgres; --'}]}, "not an extension"),
        ({"extensions": "citext"}, "not a list"),
    ],
)
def test_manifest_database_options_are_checked_before_sql(
    postgres_admin_engine: sa.Engine, options: dict[str, object], problem: str
) -> None:
    with postgres_admin_engine.connect() as conn:
        problems = option_problems(conn, options)
    assert any(problem in p for p in problems), problems


def test_an_edited_manifest_creates_no_database(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
) -> None:
    load_varied(postgres_url, rows=2)
    manifest = create(config, url=postgres_url, encrypt=False)
    path = Catalog.for_config(config).path / f"{manifest.id}.manifest.json"
    data = json.loads(path.read_text())
    data["extra"]["database_options"]["lc_collate"] = "C' OWNER postgres --"
    path.write_text(json.dumps(data))
    target = new_database()
    with pytest.raises(UsageError, match="database_options"):
        restore(config, manifest.id, url=target, allow_unencrypted=True)
    with postgres_admin_engine.connect() as conn:
        assert not conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first()


def test_create_database_sql_quotes_and_uses_template0() -> None:
    sql = create_database_sql(
        '"a""b"',
        {
            "charset": "UTF8",
            "lc_collate": "C",
            "lc_ctype": "C.UTF-8",
            "locale_provider": "icu",
            "icu_locale": "und",
        },
        150000,
    )
    assert sql == (
        "CREATE DATABASE \"a\"\"b\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' "
        "LC_CTYPE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und'"
    )
    assert "'" not in create_database_sql('"x"', {"lc_collate": "C'--"}, 150000)


# -- owners and grants ------------------------------------------------------------------
@pytest.fixture
def owned(postgres_admin_engine: sa.Engine) -> Iterator[tuple[str, str, list[URL]]]:
    """A role owning a source database's tables, a reader role, and target names."""
    owner, reader = unique_name("mg_own"), unique_name("mg_read")
    names = [unique_name("mg_pgo") for _ in range(4)]
    urls = [ADMIN_URL.set(database=name) for name in names]
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{owner}"; CREATE ROLE "{reader}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{names[0]}"')
    engine = sa.create_engine(urls[0], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE SCHEMA sales AUTHORIZATION "{owner}";'
            "CREATE TABLE sales.orders (id int PRIMARY KEY, total numeric);"
            "CREATE TABLE notes (id int, body text);"
            "CREATE VIEW sales.big AS SELECT * FROM sales.orders WHERE total > 10;"
            "INSERT INTO sales.orders VALUES (1, 5), (2, 50);"
            f'ALTER TABLE sales.orders OWNER TO "{owner}";'
            f'ALTER VIEW sales.big OWNER TO "{owner}";'
            f'GRANT SELECT, INSERT ON sales.orders TO "{reader}";'
            f'GRANT SELECT ON sales.big TO "{reader}";'
            f'GRANT UPDATE (body) ON notes TO "{reader}";'
        )
    engine.dispose()
    try:
        yield owner, reader, urls
    finally:
        with postgres_admin_engine.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{owner}"; DROP ROLE IF EXISTS "{reader}"')


def rights(url: URL) -> dict[str, object]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {
                "owners": conn.exec_driver_sql(
                    "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), "
                    "c.relacl::text FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'sales') "
                    "AND c.relkind IN ('r', 'v') ORDER BY 1, 2"
                ).all(),
                "grants": conn.exec_driver_sql(
                    "SELECT grantor, grantee, table_schema, table_name, privilege_type "
                    "FROM information_schema.role_table_grants "
                    "WHERE table_schema IN ('public', 'sales') ORDER BY 1, 2, 3, 4, 5"
                ).all(),
                "column grants": conn.exec_driver_sql(
                    "SELECT attname, attacl::text FROM pg_attribute "
                    "WHERE attrelid = 'public.notes'::regclass AND attacl IS NOT NULL"
                ).all(),
                "schema owner": conn.exec_driver_sql(
                    "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'sales'"
                ).scalar(),
            }
    finally:
        engine.dispose()


def test_keep_owners_restores_owners_and_grants_exactly(
    config: Config, owned: tuple[str, str, list[URL]]
) -> None:
    owner, reader, (source, kept, plain, bare) = owned
    manifest = create(config, url=source, encrypt=False)
    expected = rights(source)
    assert any(row[2] == owner for row in expected["owners"])  # type: ignore[union-attr]

    result = restore(config, manifest.id, url=kept, options=RestoreOptions(owners=True))
    assert result.ok, result.mismatches
    assert rights(kept) == expected

    # Default: the restoring role owns everything; the grants to the reader stay.
    assert restore(config, manifest.id, url=plain).ok
    default = rights(plain)
    assert {row[2] for row in default["owners"]} == {"postgres"}  # type: ignore[union-attr]
    assert default["schema owner"] == "postgres"
    assert {row[1] for row in default["grants"]} >= {reader}  # type: ignore[union-attr]

    assert restore(config, manifest.id, url=bare, options=RestoreOptions(grants=False)).ok
    without = rights(bare)
    assert reader not in {row[1] for row in without["grants"]}  # type: ignore[union-attr]
    assert without["column grants"] == []


def test_owner_options_are_refused_for_a_mysql_style_backend(config: Config) -> None:
    from migration_guard.backup.backends import get_backend

    with pytest.raises(UsageError, match="no object owners"):
        get_backend("sqlite").configured(RestoreOptions(owners=True))
    assert get_backend("sqlite").configured(RestoreOptions()) is not None


# -- drill --------------------------------------------------------------------------------
def test_drill_restores_into_a_scratch_database_and_drops_it(
    config: Config,
    postgres_url: str,
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_varied(postgres_url, rows=8)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    monkeypatch.setenv("MIGRATION_GUARD_SCRATCH_URL", str(ADMIN_URL))

    def scratch() -> set[str]:
        with postgres_admin_engine.connect() as conn:
            return {
                str(r[0])
                for r in conn.exec_driver_sql(
                    "SELECT datname FROM pg_database WHERE left(datname, 10) = 'mg_verify_'"
                )
            }

    before = scratch()
    result = drill(config, url=None)
    assert result.ok, result.details
    assert result.backup_id == manifest.id
    assert result.rows == sum(entry.rows or 0 for entry in manifest.tables.values()) > 8
    assert scratch() == before
    path = Catalog.for_config(config).archive_path(manifest.id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    assert not drill(config, url=None).ok
    assert scratch() == before
