"""Notifications: a registry of notifiers (entry point group ``migration_guard.notifiers``).

Built-ins: ``webhook`` (JSON POST, Slack-compatible ``text``) and ``email`` (SMTP).
A notifier is a callable ``(settings, event) -> list[DeliveryResult]``. It reports
failures in its results instead of raising; :func:`notify` also catches what a
plugin lets escape, so a failing notifier never fails the operation it reports on.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migration_guard.config import SMTP_PASSWORD_ENV, WEBHOOK_ENV, Config
from migration_guard.errors import ConfigError, MigrationGuardError, describe
from migration_guard.events import OUTCOMES, Event
from migration_guard.monitoring import sections
from migration_guard.monitoring.eventlog import record
from migration_guard.registry import Registry

log = logging.getLogger("migration_guard.monitoring")

DEFAULT_ON = ("failure", "unhealthy", "recovered")
DEFAULT_PASSWORD_ENV = SMTP_PASSWORD_ENV


@dataclass
class DeliveryResult:
    """One delivery attempt of one notifier to one target (URL host or mail server)."""

    notifier: str
    target: str
    ok: bool
    attempts: int = 1
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "notifier": self.notifier,
            "target": self.target,
            "ok": self.ok,
            "attempts": self.attempts,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class NotifySettings:
    """``[tool.migration_guard.notify]``; see docs/operations.md."""

    webhook: tuple[str, ...] = ()
    webhook_retries: int = 3
    webhook_timeout: float = 10.0
    webhook_backoff: float = 0.5
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_user: str | None = None
    smtp_password_env: str = DEFAULT_PASSWORD_ENV
    smtp_timeout: float = 10.0
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    on: tuple[str, ...] = DEFAULT_ON
    #: Notifiers to use; empty means every built-in that is configured.
    notifiers: tuple[str, ...] = ()
    #: Sub-tables of plugin notifiers, by notifier name.
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def active(self) -> list[str]:
        if self.notifiers:
            return list(self.notifiers)
        names = []
        if self.webhook:
            names.append("webhook")
        if self.smtp_host and self.email_to:
            names.append("email")
        return names


Notifier = Callable[[NotifySettings, Event], "list[DeliveryResult]"]

NOTIFIERS: Registry[Notifier] = Registry(
    "migration_guard.notifiers",
    "notifier",
    {
        "webhook": "migration_guard.monitoring.notify:webhook_notifier",
        "email": "migration_guard.monitoring.notify:email_notifier",
    },
)

_TYPES: dict[str, tuple[type, ...]] = {
    "webhook": (str, list),
    "webhook_retries": (int,),
    "webhook_timeout": (int, float),
    "webhook_backoff": (int, float),
    "smtp_host": (str,),
    "smtp_port": (int,),
    "smtp_starttls": (bool,),
    "smtp_ssl": (bool,),
    "smtp_user": (str,),
    "smtp_password_env": (str,),
    "smtp_timeout": (int, float),
    "email_from": (str,),
    "email_to": (str, list),
    "on": (str, list),
    "notifiers": (list,),
}


def _strings(value: Any, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"notify.{key} must be a string or a list of strings", key=key)
    return tuple(items)


def notify_settings(config: Config) -> NotifySettings:
    """Validated ``[tool.migration_guard.notify]``; an unknown key is a :class:`ConfigError`.

    A sub-table named after a notifier listed in ``notifiers`` holds that plugin's settings.
    """
    raw: Mapping[str, Any] = config.sections.get("notify", {}) or {}
    where = sections.where(config, "notify")
    notifier_names = raw.get("notifiers", [])
    plugins: dict[str, Mapping[str, Any]] = {
        key: value
        for key, value in raw.items()
        if isinstance(value, Mapping) and isinstance(notifier_names, list) and key in notifier_names
    }
    own = {key: value for key, value in raw.items() if key not in plugins}
    values = sections.read(config, "notify", own, _TYPES)
    for key in ("webhook", "email_to", "on", "notifiers"):
        if key in values:
            values[key] = _strings(values[key], key)
    for outcome in values.get("on", ()):
        if outcome not in OUTCOMES:
            raise ConfigError(
                f"{where}: notify.on: unknown event {outcome!r}; known: {', '.join(OUTCOMES)}",
                key="notify.on",
            )
    for name in values.get("notifiers", ()):
        if name not in NOTIFIERS:
            raise ConfigError(
                f"{where}: notify.notifiers: unknown notifier {name!r}; known notifiers: "
                f"{', '.join(NOTIFIERS.names())}",
                key="notify.notifiers",
            )
    for key in ("webhook_retries", "smtp_port"):
        if key in values and values[key] < 1:
            raise ConfigError(f"{where}: notify.{key} must be at least 1", key=f"notify.{key}")
    for key in ("webhook_timeout", "webhook_backoff", "smtp_timeout"):
        if key in values and values[key] < 0:
            raise ConfigError(f"{where}: notify.{key} must not be negative", key=f"notify.{key}")
    for url in values.get("webhook", ()):
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(
                f"{where}: notify.webhook: {redact_webhook(url)} is not an http(s) URL",
                key="notify.webhook",
            )
    from_env = os.environ.get(WEBHOOK_ENV, "").replace(",", " ").split()
    if from_env:
        values["webhook"] = tuple(values.get("webhook", ())) + tuple(from_env)
    if "smtp_host" in values and "email_to" in values and "email_from" not in values:
        raise ConfigError(f"{where}: email_to needs email_from", key="notify.email_from")
    if "smtp_port" not in values and values.get("smtp_ssl"):
        values["smtp_port"] = 465
    values["plugins"] = plugins
    return NotifySettings(**values)


def redact_webhook(url: str) -> str:
    """Only scheme, host and port: webhook paths and queries are often the secret (Slack)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}{port}/…"


def slack_text(event: Event) -> str:
    icon = {
        "failure": ":x:",
        "unhealthy": ":warning:",
        "recovered": ":white_check_mark:",
        "success": ":white_check_mark:",
    }.get(event.outcome, "")
    lines = [f"{icon} *migration-guard* on `{event.host}`: {event.summary}".strip()]
    lines += [f"• {detail}" for detail in event.details[:10]]
    if event.backup_id:
        lines.append(f"backup: `{event.backup_id}`")
    return "\n".join(lines)


def payload(event: Event) -> dict[str, Any]:
    """The JSON body a webhook receives (see docs/operations.md)."""
    return {
        "event": event.name,
        "severity": event.severity,
        "summary": event.summary,
        "details": list(event.details),
        "backup_id": event.backup_id,
        "timestamp": event.timestamp,
        "host": event.host,
        "data": dict(event.data),
        "text": slack_text(event),
    }


def _post_once(url: str, body: bytes, timeout: float) -> tuple[bool, bool, str | None]:
    """(delivered, worth retrying, error message)."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "migration-guard"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return True, False, None
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code in (408, 429)
        return False, retry, f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = describe(reason) if isinstance(reason, OSError) else str(reason)
        return False, True, f"cannot connect: {text}"
    except TimeoutError:
        return False, True, f"no answer within {timeout:g} s"
    except OSError as exc:
        return False, True, f"connection failed: {describe(exc)}"


def webhook_notifier(settings: NotifySettings, event: Event) -> list[DeliveryResult]:
    """POST the event to every configured URL, with retries and exponential backoff."""
    body = json.dumps(payload(event), ensure_ascii=False).encode("utf-8")
    results = []
    for url in settings.webhook:
        started = time.monotonic()
        error: str | None = None
        attempt = 0
        delivered = False
        for attempt in range(1, settings.webhook_retries + 1):
            delivered, retry, error = _post_once(url, body, settings.webhook_timeout)
            if delivered or not retry or attempt == settings.webhook_retries:
                break
            time.sleep(settings.webhook_backoff * 2 ** (attempt - 1))
        results.append(
            DeliveryResult(
                notifier="webhook",
                target=redact_webhook(url),
                ok=delivered,
                attempts=attempt,
                error=None
                if delivered
                else f"webhook {redact_webhook(url)}: {error} "
                f"(after {attempt} attempt{'s' if attempt != 1 else ''})",
                seconds=time.monotonic() - started,
            )
        )
    return results


def _email_message(settings: NotifySettings, event: Event) -> Any:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = f"[migration-guard] {event.severity.upper()}: {event.summary}"
    message["From"] = settings.email_from or ""
    message["To"] = ", ".join(settings.email_to)
    lines = [
        event.summary,
        "",
        *(f"- {detail}" for detail in event.details),
        "",
        f"event:     {event.name}",
        f"severity:  {event.severity}",
        f"host:      {event.host}",
        f"time:      {event.timestamp}",
    ]
    if event.backup_id:
        lines.append(f"backup id: {event.backup_id}")
    message.set_content("\n".join(lines) + "\n")
    return message


def email_notifier(settings: NotifySettings, event: Event) -> list[DeliveryResult]:
    """Send the event by e-mail; the password comes only from an environment variable."""
    host = settings.smtp_host or ""
    target = f"{host}:{settings.smtp_port}"
    started = time.monotonic()

    def failed(message: str) -> list[DeliveryResult]:
        return [
            DeliveryResult(
                "email",
                target,
                False,
                error=f"e-mail via {target}: {message}",
                seconds=time.monotonic() - started,
            )
        ]

    if not host or not settings.email_to or not settings.email_from:
        return failed("smtp_host, email_from and email_to must all be set")
    password = None
    if settings.smtp_user:
        password = os.environ.get(settings.smtp_password_env)
        if not password:
            return failed(
                f"smtp_user is set but the environment variable {settings.smtp_password_env} "
                "holding the password is empty"
            )
    try:
        client: smtplib.SMTP
        if settings.smtp_ssl:
            client = smtplib.SMTP_SSL(
                host,
                settings.smtp_port,
                timeout=settings.smtp_timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(host, settings.smtp_port, timeout=settings.smtp_timeout)
        with client:
            if settings.smtp_starttls and not settings.smtp_ssl:
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user and password:
                client.login(settings.smtp_user, password)
            client.send_message(_email_message(settings, event))
    except smtplib.SMTPAuthenticationError as exc:
        return failed(
            f"login as {settings.smtp_user!r} refused ({exc.smtp_code}); check smtp_user and "
            f"the password in {settings.smtp_password_env}"
        )
    except smtplib.SMTPNotSupportedError as exc:
        return failed(
            f"the server does not support what was asked ({exc}); check smtp_starttls / smtp_ssl"
        )
    except smtplib.SMTPException as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    except ssl.SSLError as exc:
        return failed(f"TLS failed ({exc.reason}); check smtp_starttls / smtp_ssl and the port")
    except TimeoutError:
        return failed(f"no answer within {settings.smtp_timeout:g} s")
    except OSError as exc:
        return failed(f"cannot connect: {describe(exc)}")
    return [DeliveryResult("email", target, True, seconds=time.monotonic() - started)]


def notify(config: Config, event: Event) -> list[DeliveryResult]:
    """Deliver ``event`` through every configured notifier whose ``on`` list wants it.

    Never raises. A failed delivery is logged and recorded as a ``notify.failure``
    event (which is not itself notified), so that ``status`` shows it.
    """
    try:
        settings = notify_settings(config)
    except MigrationGuardError as exc:
        result = DeliveryResult("config", "notify", False, error=str(exc))
        _report_failures(config, event, [result])
        return [result]
    if event.outcome not in settings.on:
        return []
    results: list[DeliveryResult] = []
    for name in settings.active():
        try:
            notifier = NOTIFIERS.get(name)
            results.extend(notifier(settings, event))
        except Exception as exc:  # a plugin's bug must not break a backup
            results.append(
                DeliveryResult(name, name, False, error=f"notifier {name} failed: {exc}")
            )
    _report_failures(config, event, [r for r in results if not r.ok])
    return results


def _report_failures(config: Config, event: Event, failures: list[DeliveryResult]) -> None:
    for failure in failures:
        log.warning("notification failed: %s", failure.error)
        record(
            config,
            Event(
                subject="notify",
                outcome="failure",
                summary=f"could not send the {event.name} notification: {failure.error}",
                details=[f"notified event: {event.summary}"],
                backup_id=event.backup_id,
                data={
                    "notifier": failure.notifier,
                    "target": failure.target,
                    "attempts": failure.attempts,
                },
            ),
        )
