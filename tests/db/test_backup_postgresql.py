"""The pgdump backend on the real PostgreSQL server: fidelity, snapshots, secrets, damage."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from migration_guard.backup import create, keygen, restore, verify
from migration_guard.backup.backends import default_backend, get_backend
from migration_guard.backup.backends.pg_client import (
    conninfo,
    parse_major,
    pgpass_text,
    version_problem,
)
from migration_guard.backup.backends.pgdump import PgdumpBackend
from migration_guard.backup.catalog import Catalog
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.errors import (
    BackupError,
    EncryptionKeyError,
    RestoreFailed,
    ToolMissingError,
    UsageError,
)
from tests.conftest import POSTGRES_ADMIN_URL, unique_name

pytestmark = pytest.mark.postgresql

ADMIN_URL = sa.make_url(POSTGRES_ADMIN_URL)

#: Every character a text column may hold that tends to break quoting (no NUL in PostgreSQL).
AWKWARD = "".join(chr(c) for c in range(1, 128)) + "\\'\"%_ é 😀 \u2028 \ufeff $$ -- /* */"

#: A table in another schema, with a quote in its name.
ORDERS = '"odd schema"."orders ""x"""'

SCHEMA = r"""
CREATE SCHEMA "odd schema";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy ''quoted''');
CREATE SEQUENCE invoice_no START 1000;
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    balance numeric(30, 10),
    tags text[],
    meta jsonb,
    uid uuid,
    feeling mood,
    seen timestamptz,
    raw bytea
);
CREATE TABLE {ORDERS} (
    id serial PRIMARY KEY,
    customer_id bigint REFERENCES customers (id),
    amount numeric,
    note text
);
CREATE VIEW rich AS SELECT name, balance FROM customers WHERE balance > 100;
CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER customers_keep BEFORE INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION keep_row();
CREATE EXTENSION IF NOT EXISTS citext;
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE TABLE "odd schema".labels (id int PRIMARY KEY, code citext UNIQUE, weight positive);
CREATE MATERIALIZED VIEW "odd schema".totals AS
    SELECT feeling, count(*) AS n FROM customers GROUP BY feeling;
COMMENT ON TABLE customers IS 'who pays; it''s \ awkward ☃';
COMMENT ON COLUMN customers.name IS 'the name';
COMMENT ON SCHEMA "odd schema" IS 'not public';
""".replace("{ORDERS}", ORDERS)


@pytest.fixture
def new_database(postgres_admin_engine: sa.Engine) -> Iterator[Callable[[], URL]]:
    """Names of new databases (not created), all dropped afterwards."""
    names: list[str] = []

    def make() -> URL:
        name = unique_name("mg_pgd")
        names.append(name)
        return ADMIN_URL.set(database=name)

    yield make
    with postgres_admin_engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_varied(url: URL | str, rows: int = 40) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(SCHEMA)
            for i in range(rows):
                conn.execute(
                    sa.text(
                        "INSERT INTO customers "
                        "(name, balance, tags, meta, uid, feeling, seen, raw) "
                        "VALUES (:name, :balance, :tags, CAST(:meta AS jsonb), "
                        "CAST(:uid AS uuid), CAST(:feeling AS mood), "
                        "CAST(:seen AS timestamptz), :raw)"
                    ),
                    {
                        "name": f"{AWKWARD} {i}",
                        "balance": None if i % 7 == 0 else f"{i * 37}.0123456789",
                        "tags": None if i % 5 == 0 else [f"t{i}", AWKWARD, ""],
                        "meta": '{"k": [1, 2.5, null, "\\u00e9\\n"], "n": {"deep": true}}',
                        "uid": f"00000000-0000-4000-8000-{i:012d}",
                        "feeling": ["sad", "ok", "happy 'quoted'"][i % 3],
                        "seen": None if i % 4 == 0 else f"2024-0{1 + i % 9}-15 12:34:56.789+05:30",
                        "raw": None if i % 6 == 0 else bytes(range(256)) + bytes([i % 256]),
                    },
                )
            conn.exec_driver_sql(
                'INSERT INTO "odd schema"."orders ""x""" (customer_id, amount, note) '
                "SELECT id, id * 1.5, NULL FROM customers"
            )
            conn.exec_driver_sql("SELECT setval('invoice_no', 1234)")
            conn.exec_driver_sql(
                "INSERT INTO \"odd schema\".labels VALUES (1, 'Ab', 2.5), (2, 'cD', NULL)"
            )
            conn.exec_driver_sql('REFRESH MATERIALIZED VIEW "odd schema".totals')
    finally:
        engine.dispose()


def picture(url: URL | str) -> dict[str, Any]:
    """Every table's rows in order, every sequence's value, and the other objects."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ).all()
            result: dict[str, Any] = {}
            for schema, table in tables:
                quoted = '"{}"."{}"'.format(schema, table.replace('"', '""'))
                result[f"{schema}.{table}"] = [
                    row[0]
                    for row in conn.exec_driver_sql(f"SELECT t::text FROM {quoted} t ORDER BY 1")
                ]
            result["sequences"] = conn.exec_driver_sql(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
            ).all()
            result["enum"] = conn.exec_driver_sql(
                "SELECT enumlabel FROM pg_enum ORDER BY enumsortorder"
            ).all()
            result["view"] = conn.exec_driver_sql("SELECT * FROM rich ORDER BY 1").all()
            result["triggers"] = conn.exec_driver_sql(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
            ).all()
            result["functions"] = conn.exec_driver_sql(
                "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' "
                "AND p.prokind IN ('f', 'p') ORDER BY 1"
            ).all()
            result["foreign keys"] = conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' ORDER BY 1"
            ).all()
            result["matview"] = conn.exec_driver_sql(
                'SELECT * FROM "odd schema".totals ORDER BY 1'
            ).all()
            result["matview definition"] = conn.exec_driver_sql(
                "SELECT schemaname, matviewname, definition FROM pg_matviews"
            ).all()
            result["domains"] = conn.exec_driver_sql(
                "SELECT t.typname, pg_get_constraintdef(c.oid) FROM pg_type t "
                "JOIN pg_constraint c ON c.contypid = t.oid ORDER BY 1"
            ).all()
            result["comments"] = conn.exec_driver_sql(
                "SELECT d.classoid::regclass::text, d.objsubid, d.description "
                "FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
                "WHERE d.classoid = 'pg_class'::regclass UNION ALL "
                "SELECT 'schema', 0, obj_description(oid, 'pg_namespace') FROM pg_namespace "
                "WHERE nspname = 'odd schema' ORDER BY 1, 2, 3"
            ).all()
            result["extensions"] = conn.exec_driver_sql(
                "SELECT extname FROM pg_extension ORDER BY 1"
            ).all()
            result["identity"] = conn.exec_driver_sql(
                "SELECT table_name, column_name, is_identity, identity_generation "
                "FROM information_schema.columns WHERE is_identity = 'YES'"
            ).all()
            return result
    finally:
        engine.dispose()


def test_registry_offers_pgdump_for_postgresql() -> None:
    assert default_backend("postgresql+psycopg") == "pgdump"
    assert isinstance(get_backend("pgdump"), PgdumpBackend)
    assert get_backend("pgdump").available() is None


def test_full_round_trip_keeps_everything(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_varied(postgres_url)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    before = picture(postgres_url)
    manifest = create(config, url=postgres_url)
    assert manifest.backend == "pgdump" and manifest.encrypted
    assert manifest.tables["customers"].rows == 40
    assert manifest.tables['odd schema.orders "x"'].rows == 40
    assert manifest.tables["customers"].checksum
    options = manifest.extra["database_options"]
    assert isinstance(options, dict) and options["charset"] == "UTF8"
    assert {"citext", "plpgsql"} <= {e["name"] for e in options["extensions"]}

    target = new_database()  # does not exist yet: the restore creates it
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches
    after = picture(target)
    assert after == before
    assert after["sequences"]  # identity, serial and the free sequence, at their values
    assert ("public", "invoice_no", 1234) in after["sequences"]
    assert verify(config, manifest.id, restore_test=True).restore_test_ok is True


def test_counts_come_from_the_dumps_own_snapshot(
    config: Config, postgres_url: str, new_database: Callable[[], URL]
) -> None:
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE busy (id bigserial PRIMARY KEY, pad text)")
        conn.exec_driver_sql(
            "INSERT INTO busy (pad) SELECT repeat('x', 200) FROM generate_series(1, 100000)"
        )
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                conn.exec_driver_sql("INSERT INTO busy (pad) VALUES ('late')")
                conn.commit()
                written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        manifest = create(config, url=postgres_url, encrypt=False)
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    assert written[0] > 0
    target = new_database()
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches  # counts and checksums equal the dumped rows
    restored = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with restored.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM busy").scalar_one()
    restored.dispose()
    assert rows == manifest.tables["busy"].rows


def test_tables_and_critical_backups_are_schema_qualified(
    config: Config, postgres_url: str, new_database: Callable[[], URL]
) -> None:
    load_varied(postgres_url, rows=5)
    manifest = create(
        config, url=postgres_url, type="tables", tables=['odd schema.orders "x"'], encrypt=False
    )
    assert list(manifest.tables) == ['odd schema.orders "x"']
    with pytest.raises(UsageError, match="nope"):
        create(config, url=postgres_url, type="tables", tables=["nope"], encrypt=False)

    critical = create(
        Config(protected_tables=["customers"]), url=postgres_url, type="critical", encrypt=False
    )
    assert list(critical.tables) == ["customers"]
    target = new_database()
    result = restore(config, critical.id, url=target)
    assert result.ok, result.mismatches
    after = picture(target)
    assert after["public.customers"] == picture(postgres_url)["public.customers"]
    # The rest of the schema comes along (the enum, the sequences), without rows.
    assert after['odd schema.orders "x"'] == []
    assert after["enum"] == picture(postgres_url)["enum"]

    # Never over a database that holds tables: the archive would recreate the other
    # tables empty. Refused before anything happens (no safety backup either).
    before = picture(postgres_url)
    with pytest.raises(UsageError, match="rows of only some tables") as caught:
        restore(config, critical.id, url=postgres_url, yes=True)
    assert "new database" in str(caught.value)
    assert picture(postgres_url) == before
    assert [m.id for m in Catalog.for_config(config).list() if m.type == "safety"] == []


@pytest.mark.parametrize("damage", ["flip", "wrong key"])
def test_damage_or_wrong_key_is_refused(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    load_varied(postgres_url, rows=5)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    target = new_database()
    if damage == "flip":
        path = Catalog.for_config(config).archive_path(manifest.id)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        assert not verify(config, manifest.id).ok
        with pytest.raises(RestoreFailed, match="not created"):
            restore(config, manifest.id, url=target)
    else:
        monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
        with pytest.raises(EncryptionKeyError, match="wrong key"):
            restore(config, manifest.id, url=target)
    admin = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first()
    admin.dispose()
    assert exists is None  # nothing was created, let alone loaded


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat_text.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


@pytest.fixture
def password_role(
    postgres_admin_engine: sa.Engine, new_database: Callable[[], URL]
) -> Iterator[tuple[URL, URL, str]]:
    """A login role with an awkward password owning a source and a target database."""
    role = unique_name("mg_r")
    password = "S3cr3t p@ss:w\\o#rd;x'" + unique_name("")
    source, target = new_database(), new_database()
    with postgres_admin_engine.connect() as conn:
        conn.execute(
            sa.text(
                f'CREATE ROLE "{role}" LOGIN PASSWORD ' + "'" + password.replace("'", "''") + "'"
            )
        )
        for url in (source, target):
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}" OWNER "{role}"')
    try:
        yield (
            source.set(username=role, password=password, host="127.0.0.1"),
            target.set(username=role, password=password, host="127.0.0.1"),
            password,
        )
    finally:
        with postgres_admin_engine.connect() as conn:
            for url in (source, target):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def test_password_never_in_argv_or_environment(
    password_role: tuple[URL, URL, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target, password = password_role
    load_varied(source, rows=5)
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # enough data for pg_dump to be seen running
        conn.exec_driver_sql(
            "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 20) AS pad "
            "FROM generate_series(1, 20000) AS g"
        )
    engine.dispose()
    observed: list[tuple[list[bytes], dict[bytes, bytes]]] = []

    def inspect_children(_: int) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if not argv or Path(argv[0].decode()).name not in ("pg_dump", "pg_restore"):
                continue
            variables = dict(line.split(b"=", 1) for line in environ.split(b"\0") if b"=" in line)
            # Every child that logs in reads the password from a private file; one that
            # only reads the archive (pg_restore --list) gets none.
            if any(arg.startswith(b"--dbname") for arg in argv):
                passfile = Path(variables[b"PGPASSFILE"].decode())
                assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
                assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
            observed.append((argv, variables))

    monkeypatch.setenv("PGPASSWORD", password)  # must not reach the children
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", password)
    backend = PgdumpBackend()
    sink = io.BytesIO()
    result = backend.dump(source, sink, progress=inspect_children)
    backend.restore(
        target,
        io.BytesIO(sink.getvalue()),
        stream_format=result.stream_format,
        progress=inspect_children,
    )
    tools = {Path(argv[0].decode()).name for argv, _ in observed}
    assert tools == {"pg_dump", "pg_restore"}
    for argv, variables in observed:
        assert all(password.encode() not in arg for arg in argv)
        assert all(password.encode() not in value for value in variables.values())
        assert b"PGPASSWORD" not in variables
        if b"PGPASSFILE" in variables:
            passfile = Path(variables[b"PGPASSFILE"].decode())
            assert not passfile.exists() and not passfile.parent.exists()
    assert any(b"PGPASSFILE" in variables for _, variables in observed)
    assert picture(target) == picture(source)


def test_version_skew_names_the_binary_to_install() -> None:
    assert parse_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == 15
    assert parse_major("pg_dump (PostgreSQL) 17devel") == 17
    assert version_problem("/usr/bin/pg_dump", 15, 150020) is None
    assert version_problem("/usr/bin/pg_dump", 16, 150020) is None
    problem = version_problem("/usr/bin/pg_dump", 14, 160004)
    assert problem is not None
    assert "pg_dump is version 14" in problem and "PostgreSQL 16" in problem
    assert "postgresql-client-16" in problem


def test_credentials_text_is_escaped() -> None:
    url = sa.make_url("postgresql+psycopg://u:se%3Acret%5C@db.example:6543/app")
    assert pgpass_text(url) == "*:*:*:u:se\\:cret\\\\\n"
    info = conninfo(url)
    assert "se:cret" not in info and "host='db.example'" in info and "port='6543'" in info


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_backup_verify_restore(
    backup_dir: Path,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_varied(postgres_url, rows=3)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    code, out, err = run_cli("backup", "--url", postgres_url, "--format", "json")
    assert code == 0, err
    backup_id = json.loads(out)["id"]
    assert json.loads(out)["backend"] == "pgdump"
    code, out, err = run_cli("backups", "verify", backup_id, "--restore-test", "--format", "json")
    assert code == 0 and json.loads(out)["restore_test_ok"] is True, (out, err)
    code, out, err = run_cli("restore", backup_id, "--url", str(new_database()))
    assert code == 0, err
    code, out, err = run_cli("restore", backup_id, "--url", postgres_url, "--yes")
    assert code == 0 and "safety backup of the target taken first" in out, (out, err)
    code, _, err = run_cli("restore", backup_id, "--url", postgres_url, "--keep-owners", "--yes")
    assert code == 0, err


RESTORE_SCRIPT = """
import sys
from migration_guard.backup import restore
from migration_guard.config import Config
restore(Config(), sys.argv[1], url=sys.argv[2])
"""


def test_plaintext_of_a_killed_restore_is_removed_by_the_next_run(
    config: Config,
    backup_dir: Path,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
            "FROM generate_series(1, 200000) AS g"
        )
    engine.dispose()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    child = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SCRIPT, manifest.id, str(new_database())],
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 60
        while not list(scratch.glob("migration-guard-restore-*/dump.pgc")):
            assert child.poll() is None and time.monotonic() < deadline, "no plaintext seen"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    leftovers = list(scratch.glob("migration-guard-restore-*"))
    assert leftovers  # SIGKILL leaves it: nothing in the process can run
    # The next backup (in a fresh process, as a later run is) removes it.
    subprocess.run(
        [sys.executable, "-m", "migration_guard", "backup", "--url", postgres_url],
        env={**os.environ},
        check=True,
        capture_output=True,
    )
    assert not any(path.exists() for path in leftovers)


def test_an_older_pg_dump_is_refused_before_it_runs(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pg_dump that reports major version 11 and records that it was run.
    ran = tmp_path / "ran"
    tool = tmp_path / "bin" / "pg_dump"
    tool.parent.mkdir()
    tool.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 11.22"; exit 0; fi\n'
        f"touch {ran}\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    with pytest.raises(ToolMissingError, match="postgresql-client-15") as caught:
        PgdumpBackend().dump(sa.make_url(postgres_url), io.BytesIO())
    assert "pg_dump is version 11" in str(caught.value)
    assert not ran.exists()


def test_a_dump_killed_on_the_server_publishes_nothing(
    config: Config, backup_dir: Path, postgres_url: str, postgres_admin_engine: sa.Engine
) -> None:
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad "
            "FROM generate_series(1, 200000) AS g"
        )
    engine.dispose()
    database = sa.make_url(postgres_url).database
    killed = threading.Event()

    def kill_pg_dump() -> None:
        deadline = time.monotonic() + 60
        while not killed.is_set() and time.monotonic() < deadline:
            with postgres_admin_engine.connect() as conn:
                found = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :d AND application_name = 'pg_dump'"
                    ),
                    {"d": database},
                ).all()
            if found:
                killed.set()
            time.sleep(0.005)

    thread = threading.Thread(target=kill_pg_dump)
    thread.start()
    try:
        with pytest.raises(BackupError, match="pg_dump"):
            create(config, url=postgres_url, encrypt=False)
    finally:
        killed.set()
        thread.join()
    catalog = Catalog.for_config(config)
    assert catalog.list() == []
    assert not [p for p in backup_dir.iterdir() if p.suffix in (".mgb", ".partial")]
