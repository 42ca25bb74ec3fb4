"""Shared fixtures: real databases, never mocks.

Database tests are marked ``mysql`` or ``postgresql``. They create their own
uniquely named databases (and users) and drop them afterwards. When
``CI=true`` a database that cannot be reached fails the test instead of
skipping it, because a skipped database test proves nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MYSQL_ADMIN_URL = os.environ.get("MG_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
#: The second MariaDB, with the binary log on (row-based, server_id=1), from .ci/services.
MYSQL_BINLOG_ADMIN_URL = os.environ.get(
    "MG_TEST_MYSQL_BINLOG_URL", "mysql+pymysql://root@127.0.0.1:3307/"
)
POSTGRES_ADMIN_URL = os.environ.get(
    "MG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a skipped database test counts as a failure there."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def unique_name(prefix: str = "mg_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mysql_admin_engine():  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    engine = sa.create_engine(MYSQL_ADMIN_URL, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        unavailable(f"MariaDB/MySQL is not reachable at {MYSQL_ADMIN_URL}: {exc}")
    yield engine
    engine.dispose()


def _mysql_database(admin_engine, admin_url: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A uniquely named database on the server of ``admin_engine``, dropped afterwards."""
    import sqlalchemy as sa

    name = unique_name()
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{admin_url.rstrip('/')}/{name}?charset=utf8mb4"
    finally:
        with admin_engine.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def mysql_url(mysql_admin_engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty MariaDB database; its SQLAlchemy URL (root, no password)."""
    yield from _mysql_database(mysql_admin_engine, MYSQL_ADMIN_URL)


@pytest.fixture(scope="session")
def mysql_binlog_admin_engine():  # type: ignore[no-untyped-def]
    """The binlog-enabled MariaDB of .ci/services (needed by incremental backups)."""
    import sqlalchemy as sa

    engine = sa.create_engine(MYSQL_BINLOG_ADMIN_URL, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            log_bin = connection.execute(sa.text("SELECT @@log_bin")).scalar()
    except Exception as exc:
        engine.dispose()
        unavailable(
            f"the binlog MariaDB is not reachable at {MYSQL_BINLOG_ADMIN_URL} "
            f"(start it with `bash .ci/services`): {exc}"
        )
    if not log_bin:
        engine.dispose()
        unavailable(f"the MariaDB at {MYSQL_BINLOG_ADMIN_URL} runs without a binary log")
    yield engine
    engine.dispose()


@pytest.fixture
def mysql_binlog_url(mysql_binlog_admin_engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database on the binlog-enabled MariaDB; its URL (root, no password)."""
    yield from _mysql_database(mysql_binlog_admin_engine, MYSQL_BINLOG_ADMIN_URL)


@pytest.fixture(scope="session")
def postgres_admin_engine():  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin_engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    name = unique_name()
    with postgres_admin_engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with postgres_admin_engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test over every real backend supported today."""
    fixture = "sqlite_url" if request.param == "sqlite" else "mysql_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="session")
def sakila_dir() -> Path:
    path = FIXTURES / "sakila"
    if not (path / "sakila-schema.sql").is_file():
        pytest.fail(f"the Sakila fixture is missing at {path}")
    return path


DATABASE_MARKERS = ("mysql", "postgresql")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skipped database test is a failure: it proved nothing."""
    outcome = yield
    report = outcome.get_result()
    expected_failure = hasattr(report, "wasxfail")  # an xfail is reported as "skipped"
    if (
        IN_CI
        and report.skipped
        and not expected_failure
        and any(item.get_closest_marker(m) for m in DATABASE_MARKERS)
    ):
        report.outcome = "failed"
        report.longrepr = f"CI=true: database test skipped ({report.longrepr})"


# -- S3: moto's standalone server on loopback ----------------------------------------------------
#: Credentials of the test S3 server: distinctive, so that tests can prove no output carries them.
S3_ACCESS_KEY = "AKIAMGTESTACCESSKEY7"
S3_SECRET_KEY = "mgTestSecret/NeverPrinted+9f3c1e7a2b"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_s3_server(environment: dict[str, str] | None = None) -> tuple[object, str]:
    """Start ``python -m moto.server`` on a free loopback port; (process, endpoint URL).

    ``environment`` is added to the server's (``INITIAL_NO_AUTH_ACTION_COUNT=0``: it
    checks credentials)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    try:
        import moto.server  # noqa: F401 - the test extra pins it; a missing one must fail in CI
    except ImportError as exc:
        unavailable(f"moto[server] is not installed ({exc}); run `make install`")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        env={**os.environ, **(environment or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto's server exited at once (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("moto's server did not start within 30 s")


def stop_s3_server(process: object) -> None:
    import subprocess

    assert isinstance(process, subprocess.Popen)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The endpoint of one moto S3 server for the whole session (per xdist worker)."""
    process, endpoint = start_s3_server()
    try:
        yield endpoint
    finally:
        stop_s3_server(process)


def use_s3_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point boto3 at ``endpoint`` through the standard AWS variables, as a user would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/mg-test-credentials")


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the test S3 server; its name. The AWS variables point at it."""
    import boto3

    use_s3_endpoint(monkeypatch, s3_endpoint)
    name = unique_name("mg-test").replace("_", "-")
    boto3.client("s3").create_bucket(Bucket=name)
    return name
