"""Setting errors of the monitoring sections name the key dotted, right where they are made."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_guard.config import Config, read_section
from migration_guard.errors import ConfigError
from migration_guard.monitoring.health import monitor_settings
from migration_guard.monitoring.notify import notify_settings
from migration_guard.monitoring.schedule import schedule_settings

TYPES: dict[str, type | tuple[type, ...]] = {"webhook": (str, list), "retries": int}


def test_read_section_puts_the_prefix_before_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        read_section({"retries": True}, where="p: [x]", types=TYPES, key_prefix="notify.")
    assert caught.value.message == "p: [x]: notify.retries must be a whole number"
    assert caught.value.key == "notify.retries"

    with pytest.raises(ConfigError) as caught:
        read_section({"hook": "x"}, where="p: [x]", types=TYPES, key_prefix="notify.")
    assert caught.value.message == "p: [x]: unknown key 'hook'; known keys: retries, webhook"
    assert caught.value.key == "notify.hook"


def test_read_section_without_a_prefix_is_unchanged() -> None:
    with pytest.raises(ConfigError) as caught:
        read_section({"retries": "3"}, where="p: [x]", types=TYPES)
    assert caught.value.message == "p: [x]: retries must be a whole number"
    assert caught.value.key == "retries"


@pytest.mark.parametrize(
    ("section", "read", "table", "message", "key"),
    [
        (
            "notify",
            notify_settings,
            {"webhook_retries": "3"},
            "webhook_retries must be a whole number",
            "notify.webhook_retries",
        ),
        ("notify", notify_settings, {"webhooks": "http://x"}, "unknown key 'webhooks'", None),
        ("monitor", monitor_settings, {"verify_within": [3]}, "verify_within must be a", None),
        ("schedule", schedule_settings, {"full": 5}, "full must be a string or", "schedule.full"),
        ("schedule", schedule_settings, {"weekly": "0 0 * * 0"}, "unknown key 'weekly'", None),
    ],
)
def test_monitoring_sections_name_the_bad_key_dotted(
    tmp_path: Path,
    section: str,
    read: object,
    table: dict[str, object],
    message: str,
    key: str | None,
) -> None:
    source = str(tmp_path / "pyproject.toml")
    config = Config(source=source, sections={section: table})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        read(config)  # type: ignore[operator]
    bad = next(iter(table))
    where = f"{source}: [tool.migration_guard.{section}]"
    assert caught.value.key == (key or f"{section}.{bad}")
    text = caught.value.message
    assert text.startswith(f"{where}: "), text
    assert message in text
    if "unknown key" not in message:
        assert f"{where}: {section}.{bad} " in text, text
