"""Status, monitor, notifications and drills against real local servers.

The webhook receiver is an ``http.server`` on 127.0.0.1, the mail server an
aiosmtpd controller on 127.0.0.1; both record what they received and the
tests assert on the content.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.backup import create as create_unreported
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import Manifest
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.errors import ConfigError, UsageError
from migration_guard.events import Event
from migration_guard.monitoring.drill import drill
from migration_guard.monitoring.eventlog import read_events
from migration_guard.monitoring.health import monitor_settings, run_checks
from migration_guard.monitoring.monitor import monitor
from migration_guard.monitoring.notify import notify
from migration_guard.monitoring.status import status

ENV_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
    "MIGRATION_GUARD_SCRATCH_URL",
    "MIGRATION_GUARD_WEBHOOK",
    "MIGRATION_GUARD_SMTP_PASSWORD",
)


# -- servers ----------------------------------------------------------------------------------
class WebhookServer:
    """Records every JSON POST; answers ``fail_first`` requests with HTTP 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                assert self.headers.get("Content-Type") == "application/json"
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/B000/secretpath"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class MailServer:
    """aiosmtpd on loopback; accepts login ``mg`` / ``right-password`` when auth is on."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[Message] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == b"mg"
                and auth_data.password == b"right-password"
            )
            return AuthResult(success=ok, handled=False)

        # Controller.start() connects to its own port to check readiness: no port 0.
        self.port = closed_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN"],
        )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    yield server
    server.close()


# -- projects ---------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MIGRATION_GUARD_BACKUP_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_db(path: Path, rows: int = 300) -> str:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, note TEXT)")
    connection.execute("DELETE FROM customers")
    connection.executemany(
        "INSERT INTO customers VALUES (?, ?)",
        [(i, f"customer {i} " + "x" * 200) for i in range(rows)],
    )
    connection.commit()
    connection.execute("VACUUM")
    connection.close()
    return f"sqlite:///{path}"


def write_config(project: Path, body: str) -> Path:
    path = project / "pyproject.toml"
    path.write_text(
        '[tool.migration_guard]\nurl = "sqlite:///app.db"\nbackup_dir = "backups"\n' + body,
        encoding="utf-8",
    )
    return path


def create(config: Config, **options: Any) -> Manifest:
    """A backup whose events are recorded and notified, as the ``backup`` command does."""
    from migration_guard.monitoring.emit import sink

    return create_unreported(config, on_event=sink(config), **options)


def load(project: Path) -> Config:
    from migration_guard.config import load_config

    return load_config(project / "pyproject.toml")


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output + result.stderr
    return result


# -- webhook ----------------------------------------------------------------------------------
def test_failed_backup_posts_the_event_to_the_webhook(
    project: Path, webhook: WebhookServer
) -> None:
    make_db(project / "app.db")
    write_config(project, f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n')
    result = invoke("backup", "--type", "tables", "--tables", "no_such_table")
    assert result.exit_code == 2
    assert len(webhook.received) == 1
    body = webhook.received[0]
    assert body["event"] == "backup.failure"
    assert body["severity"] == "error"
    assert "tables backup failed" in body["summary"] and "no_such_table" in body["summary"]
    assert body["backup_id"] is None
    assert body["host"] == socket.gethostname()
    assert body["timestamp"].endswith("Z")
    assert body["data"]["type"] == "tables"
    assert body["text"].startswith(":x: *migration-guard*") and "no_such_table" in body["text"]
    assert isinstance(body["details"], list)
    # ...and it is in the event log, so status lists it among the last failures.
    report = status(load(project))
    assert report.failures[0]["event"] == "backup.failure"
    assert "no_such_table" in report.failures[0]["summary"]


def test_success_is_only_notified_when_asked(project: Path, webhook: WebhookServer) -> None:
    make_db(project / "app.db")
    write_config(project, f'[tool.migration_guard.notify]\nwebhook = ["{webhook.url}"]\n')
    manifest = create(load(project))
    assert webhook.received == []
    write_config(
        project, f'[tool.migration_guard.notify]\nwebhook = ["{webhook.url}"]\non = ["success"]\n'
    )
    manifest = create(load(project))
    assert [b["event"] for b in webhook.received] == ["backup.success"]
    assert webhook.received[0]["backup_id"] == manifest.id
    assert webhook.received[0]["severity"] == "info"


def test_webhook_retries_with_backoff_until_it_succeeds(project: Path) -> None:
    server = WebhookServer(fail_first=2)
    try:
        write_config(
            project,
            f'[tool.migration_guard.notify]\nwebhook = "{server.url}"\nwebhook_backoff = 0.01\n',
        )
        (project / "backups").mkdir()
        results = notify(
            load(project),
            Event(
                "drill",
                "failure",
                "drill failed: checksum",
                details=["table customers: checksum 1"],
                backup_id="20260101T000000Z-full-abcdef",
            ),
        )
    finally:
        server.close()
    assert server.requests == 3
    assert len(results) == 1 and results[0].ok and results[0].attempts == 3
    assert server.received[0]["event"] == "drill.failure"
    assert server.received[0]["details"] == ["table customers: checksum 1"]
    assert server.received[0]["backup_id"] == "20260101T000000Z-full-abcdef"


def test_unreachable_webhook_never_fails_the_backup(project: Path) -> None:
    make_db(project / "app.db")
    url = f"http://127.0.0.1:{closed_port()}/hook/secret-token"
    write_config(
        project,
        f'[tool.migration_guard.notify]\nwebhook = "{url}"\n'
        'webhook_retries = 2\nwebhook_backoff = 0.01\non = ["success", "failure"]\n',
    )
    result = invoke("backup")
    assert result.exit_code == 0, result.stderr
    assert "created" in result.stdout
    failures = read_events(load(project), outcomes=["failure"])
    assert len(failures) == 1
    assert failures[0].name == "notify.failure"
    assert "cannot connect" in failures[0].summary and "after 2 attempts" in failures[0].summary
    assert "secret-token" not in failures[0].summary  # webhook paths are secrets
    status_result = invoke("status")
    assert status_result.exit_code == 0
    assert "notify.failure" in status_result.stdout


def test_notify_config_errors(project: Path) -> None:
    write_config(project, '[tool.migration_guard.notify]\nwebhook = "ftp://x"\n')
    with pytest.raises(ConfigError, match="not an http"):
        from migration_guard.monitoring.notify import notify_settings

        notify_settings(load(project))
    write_config(project, '[tool.migration_guard.notify]\nwebhooks = "http://x"\n')
    result = invoke("monitor")
    assert result.exit_code == 2
    assert "unknown key 'webhooks'" in result.stderr and "webhook_retries" in result.stderr
    write_config(project, '[tool.migration_guard.notify]\non = ["always"]\n')
    assert invoke("monitor").exit_code == 2


# -- e-mail -----------------------------------------------------------------------------------
def smtp_config(project: Path, port: int, user: str | None = None) -> None:
    lines = [
        "[tool.migration_guard.notify]",
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {port}",
        "smtp_starttls = false",
        'email_from = "guard@example.com"',
        'email_to = ["ops@example.com", "dba@example.com"]',
        'on = ["failure", "success"]',
    ]
    if user:
        lines.append(f'smtp_user = "{user}"')
    write_config(project, "\n".join(lines) + "\n")


def test_email_notification_content(
    project: Path, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db(project / "app.db")
    smtp_config(project, mail_server.port, user="mg")
    monkeypatch.setenv("MIGRATION_GUARD_SMTP_PASSWORD", "right-password")
    manifest = create(load(project))
    assert len(mail_server.messages) == 1
    message = mail_server.messages[0]
    assert message["From"] == "guard@example.com"
    assert message["To"] == "ops@example.com, dba@example.com"
    assert message["Subject"].startswith("[migration-guard] INFO: full backup")
    body = message.get_payload(decode=True).decode()
    assert f"backup id: {manifest.id}" in body
    assert "event:     backup.success" in body
    assert "right-password" not in body


def test_bad_smtp_login_is_clear_and_the_backup_still_succeeds(
    project: Path, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db(project / "app.db")
    smtp_config(project, mail_server.port, user="mg")
    monkeypatch.setenv("MIGRATION_GUARD_SMTP_PASSWORD", "wrong-password")
    result = invoke("backup")
    assert result.exit_code == 0
    assert mail_server.messages == []
    failures = read_events(load(project), outcomes=["failure"])
    assert [f.name for f in failures] == ["notify.failure"]
    assert "login as 'mg' refused (535)" in failures[0].summary
    assert "MIGRATION_GUARD_SMTP_PASSWORD" in failures[0].summary
    assert "wrong-password" not in failures[0].summary
    # The password never comes from the file: a user without the variable is reported.
    monkeypatch.delenv("MIGRATION_GUARD_SMTP_PASSWORD")
    results = notify(load(project), Event("backup", "failure", "x"))
    assert not results[0].ok and "environment variable MIGRATION_GUARD_SMTP_PASSWORD" in str(
        results[0].error
    )


# -- monitor ----------------------------------------------------------------------------------
def test_unhealthy_then_recovered_notifies_exactly_twice(
    project: Path, webhook: WebhookServer
) -> None:
    make_db(project / "app.db")
    write_config(
        project,
        f'[tool.migration_guard.monitor]\nchecks = ["max_age", "min_size"]\n'
        f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n',
    )
    (project / "backups").mkdir()
    first = invoke("monitor", "--format", "json")
    assert first.exit_code == 1
    assert json.loads(first.stdout)["transition"] == "unhealthy"
    assert invoke("monitor").exit_code == 1  # still unhealthy: no second notification
    assert len(webhook.received) == 1
    assert webhook.received[0]["event"] == "monitor.unhealthy"
    assert "no full backup at all" in webhook.received[0]["summary"]
    assert invoke("backup").exit_code == 0
    recovered = invoke("monitor", "--format", "json")
    assert recovered.exit_code == 0, recovered.stdout
    assert json.loads(recovered.stdout)["transition"] == "recovered"
    assert invoke("monitor").exit_code == 0
    assert [b["event"] for b in webhook.received] == ["monitor.unhealthy", "monitor.recovered"]
    assert webhook.received[1]["severity"] == "info"
    state = json.loads((project / "backups" / "monitor-state.json").read_text())
    assert state["healthy"] is True


def test_empty_and_shrunken_backups_are_flagged(project: Path) -> None:
    make_db(project / "app.db", rows=2000)
    write_config(
        project, '[tool.migration_guard.monitor]\nchecks = ["min_size"]\nmax_shrink = 0.5\n'
    )
    config = load(project)
    create(config)
    make_db(project / "app.db", rows=100)  # a dump that lost most of its data
    create(config)
    _, results = run_checks(config)
    flagged = [r for r in results if r.check == "min_size"]
    assert flagged[0].failed and "shrank to" in flagged[0].summary

    make_db(project / "app.db", rows=0)  # the classic silent failure: an empty dump
    create(config)
    _, results = run_checks(config)
    assert any(r.failed and "0 rows" in r.summary for r in results)

    catalog = Catalog(project / "backups")
    newest = catalog.list()[0]
    newest.artifact.size = 0
    catalog.update(newest)
    result = invoke("monitor", "--format", "json")
    assert result.exit_code == 1
    summaries = " ".join(f["summary"] for f in json.loads(result.stdout)["failures"])
    assert "0-byte backup" in summaries


def test_growth_and_min_size(project: Path) -> None:
    make_db(project / "app.db", rows=10)
    write_config(
        project,
        '[tool.migration_guard.monitor]\nchecks = ["min_size"]\nmax_growth = 3\nmin_size = "1MB"\n',
    )
    config = load(project)
    create(config)
    make_db(project / "app.db", rows=3000)
    create(config)
    _, results = run_checks(config)
    problems = [d for r in results for d in r.details]
    assert any("grew" in p for p in problems)
    assert any("below min_size" in p for p in problems)


def test_failed_backups_and_consecutive_failures(project: Path) -> None:
    make_db(project / "app.db")
    write_config(
        project,
        "[tool.migration_guard.monitor]\n"
        'checks = ["last_backup_failed", "consecutive_failures"]\n'
        "max_consecutive_failures = 2\n",
    )
    config = load(project)
    create(config)
    _, results = run_checks(config)
    assert not any(r.failed for r in results)
    for _ in range(2):
        with pytest.raises(UsageError):
            create(config, type="tables", tables=["missing"])
            # "tables" failures count against the tables type, not full:
    _, results = run_checks(config)
    failed = {r.key for r in results if r.failed}
    assert failed == {"last_backup_failed:tables", "consecutive_failures:tables"}
    (project / "app.db").unlink()
    (project / "app.db").mkdir()  # the full backup now fails too
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        create(config)
    _, results = run_checks(config)
    assert "last_backup_failed:full" in {r.key for r in results if r.failed}


def test_unknown_check_name_is_a_usage_error(project: Path) -> None:
    write_config(project, '[tool.migration_guard.monitor]\nchecks = ["max_age", "max_agee"]\n')
    result = invoke("monitor")
    assert result.exit_code == 2
    assert "unknown health check 'max_agee'" in result.stderr
    assert "known health checks:" in result.stderr and "drill_within" in result.stderr
    with pytest.raises(ConfigError) as caught:
        monitor_settings(load(project))
    assert caught.value.key == "monitor.checks"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_unreadable_backup_location_is_unhealthy(project: Path, kind: str) -> None:
    write_config(project, "")
    if kind == "file":
        (project / "backups").write_text("not a directory")
    result = invoke("monitor", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["healthy"] is False
    assert data["failures"][0]["check"] == "backup_location"
    assert str(project / "backups") in data["failures"][0]["summary"]
    assert invoke("status").exit_code == 1


def test_custom_check_from_the_registry(project: Path) -> None:
    from migration_guard.monitoring.health import HEALTH_CHECKS, CheckResult, HealthContext

    def always_sad(context: HealthContext) -> list[CheckResult]:
        limit = context.settings.plugins["always_sad"]["limit"]
        return [CheckResult("always_sad", "failed", f"sad at {limit}")]

    HEALTH_CHECKS.register("always_sad", always_sad)
    write_config(
        project,
        '[tool.migration_guard.monitor]\nchecks = ["always_sad"]\n'
        "[tool.migration_guard.monitor.always_sad]\nlimit = 3\n",
    )
    (project / "backups").mkdir()
    report = monitor(load(project))
    assert not report.healthy
    assert [r.summary for r in report.failures] == ["sad at 3"]


# -- drills -----------------------------------------------------------------------------------
def flip_a_byte(archive: Path) -> None:
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))


def test_sqlite_drill_passes_and_a_tampered_backup_fails_and_notifies(
    project: Path, webhook: WebhookServer
) -> None:
    make_db(project / "app.db")
    write_config(project, f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n')
    config = load(project)
    manifest = create(config)
    result = drill(config, url="sqlite://")
    assert result.ok and result.backup_id == manifest.id
    assert result.rows == 300 and result.seconds > 0
    stored = Catalog(project / "backups").get(manifest.id)
    assert stored.verification.restore_test_ok is True
    assert stored.extra["last_drill"]["ok"] is True
    assert webhook.received == []  # success is not in the default `on`
    _, results = run_checks(config, names=["drill_within", "verify_within"])
    assert not any(r.failed for r in results)

    flip_a_byte(project / "backups" / f"{manifest.id}.mgb")
    cli = invoke("drill", "--url", "sqlite://", "--format", "json")
    assert cli.exit_code == 1
    data = json.loads(cli.stdout)
    assert data["ok"] is False and data["id"] == manifest.id
    assert [b["event"] for b in webhook.received] == ["drill.failure"]
    assert webhook.received[0]["backup_id"] == manifest.id
    assert "FAILED" in webhook.received[0]["summary"]
    stored = Catalog(project / "backups").get(manifest.id)
    assert stored.verification.restore_test_ok is False
    assert stored.extra["last_drill"]["ok"] is False
    _, results = run_checks(config, names=["drill_within"])
    assert results[-1].failed
    leftovers = [
        p
        for p in Path(__import__("tempfile").gettempdir()).glob("mg_verify_*.db")
        if p.stat().st_mtime > (project / "app.db").stat().st_mtime
    ]
    assert leftovers == []


def test_missing_scratch_url_is_a_usage_error(project: Path) -> None:
    make_db(project / "app.db")
    write_config(project, "")
    result = invoke("drill")
    assert result.exit_code == 2
    assert "--url SCRATCH_URL" in result.stderr and "MIGRATION_GUARD_SCRATCH_URL" in result.stderr
    with pytest.raises(UsageError):
        drill(load(project), url=None)


@pytest.mark.mysql
def test_mysql_drill_passes_and_tampered_fails(
    project: Path,
    mysql_url: str,
    webhook: WebhookServer,
    mysql_admin_engine: sa.Engine,
) -> None:
    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50))")
            conn.exec_driver_sql(
                "INSERT INTO customers VALUES "
                + ",".join(f"({i}, 'kunde {i}')" for i in range(120))
            )
    finally:
        engine.dispose()
    (project / "pyproject.toml").write_text(
        '[tool.migration_guard]\nbackup_dir = "backups"\n'
        f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n',
        encoding="utf-8",
    )
    config = load(project)
    manifest = create(config, url=mysql_url)

    def scratch_databases() -> set[str]:
        with mysql_admin_engine.connect() as conn:
            return {row[0] for row in conn.exec_driver_sql("SHOW DATABASES LIKE 'mg_verify_%%'")}

    before = scratch_databases()
    result = drill(config, url=mysql_url)
    assert result.ok, result.details
    assert result.rows == 120
    assert scratch_databases() - before == set()  # dropped again
    flip_a_byte(project / "backups" / f"{manifest.id}.mgb")
    result = drill(config, url=mysql_url, backup_id=manifest.id)
    assert not result.ok
    assert [b["event"] for b in webhook.received] == ["drill.failure"]


# -- status -----------------------------------------------------------------------------------
def test_status_shows_backups_failures_and_upgrades(project: Path) -> None:
    make_db(project / "app.db")
    write_config(project, "")
    config = load(project)
    manifest = create(config)
    with pytest.raises(UsageError):
        create(config, type="tables", tables=["nope"])
    (project / "backups" / "audit.jsonl").write_text(
        json.dumps(
            {
                "who": "alice@host",
                "when": "2026-01-02T03:04:05Z",
                "from": ["a1"],
                "to": ["b2"],
                "outcome": "restored",
                "duration_seconds": 3.2,
                "backup_id": manifest.id,
            }
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    report = status(config)
    assert report.location_error is None
    assert [t.type for t in report.types] == ["full"]
    full = report.types[0]
    assert full.last_id == manifest.id and full.rows == 300 and full.size > 0
    assert not full.restore_tested
    assert report.storage_bytes and report.storage_bytes > full.size
    assert report.failures[0]["event"] == "backup.failure"
    assert report.upgrades[0]["outcome"] == "restored"
    text = invoke("status")
    assert text.exit_code == 0
    for expected in (
        manifest.id,
        "Retention",
        "Storage used",
        "Last failures",
        "backup.failure",
        "Last upgrades",
        "alice@host",
        "restored",
        "3.2 s",
    ):
        assert expected in text.stdout
    as_json = json.loads(invoke("status", "--format", "json").stdout)
    assert as_json["types"][0]["last_id"] == manifest.id


def test_a_restored_upgrade_is_notified(project: Path, webhook: WebhookServer) -> None:
    from migration_guard.alembic.events import upgrade_event
    from migration_guard.monitoring.emit import emit

    def report_upgrade(config: Config, entry: dict[str, object]) -> None:
        emit(config, upgrade_event(entry))

    write_config(project, f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n')
    (project / "backups").mkdir()
    report_upgrade(
        load(project),
        {
            "who": "bob@ci",
            "from": ["a1"],
            "to": ["b2"],
            "outcome": "restored",
            "error": "DROP TABLE blocked",
            "backup_id": "20260101T000000Z-safety-abcdef",
        },
    )
    report_upgrade(
        load(project), {"who": "bob@ci", "from": ["a1"], "to": ["b2"], "outcome": "applied"}
    )
    assert [b["event"] for b in webhook.received] == ["upgrade.failure"]
    body = webhook.received[0]
    assert "upgrade a1 -> b2 by bob@ci FAILED; the database was restored" in body["summary"]
    assert body["details"] == ["DROP TABLE blocked"]
    assert body["backup_id"] == "20260101T000000Z-safety-abcdef"
