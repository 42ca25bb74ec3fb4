"""Durations and sizes from the config, and how invalid ones are rejected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.cli import main
from migration_guard.errors import ConfigError
from migration_guard.durations import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26h", timedelta(hours=26)),
        ("3s", timedelta(seconds=3)),
        ("7d", timedelta(days=7)),
        ("90m", timedelta(minutes=90)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 2H ", timedelta(hours=2)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, key="monitor.max_age") == expected


@pytest.mark.parametrize(
    "value", ["", "26", "h", "26x", "1.5h", "-3h", "0s", "3 hours", 26, None, True, "26h!"]
)
def test_invalid_durations_name_the_key_and_the_forms(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, key="monitor.max_age.full")
    assert caught.value.key == "monitor.max_age.full"
    assert "monitor.max_age.full" in str(caught.value)
    if value not in ("0s",):
        assert '"26h"' in str(caught.value)


@given(st.lists(st.tuples(st.integers(1, 500), st.sampled_from("smhdw")), min_size=1, max_size=4))
def test_combined_durations_add_up(parts: list[tuple[int, str]]) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{number}{unit}" for number, unit in parts)
    expected = sum(number * seconds[unit] for number, unit in parts)
    assert parse_duration(text, key="k").total_seconds() == expected


@given(st.text(max_size=12))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        assert parse_duration(text, key="k").total_seconds() > 0
    except ConfigError as exc:
        assert exc.key == "k"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("10MB", 10_000_000),
        ("2GiB", 2 * 1024**3),
        ("500 kb", 500_000),
        ("1.5M", 1_500_000),
        ("7", 7),
    ],
)
def test_sizes(value: object, expected: int) -> None:
    assert parse_size(value, key="monitor.min_size") == expected


@pytest.mark.parametrize("value", ["ten", "10 XB", -1, True, [1]])
def test_invalid_sizes(value: object) -> None:
    with pytest.raises(ConfigError, match=r"monitor\.min_size"):
        parse_size(value, key="monitor.min_size")


def test_format_duration() -> None:
    assert format_duration(timedelta(hours=26)) == "1d 2h"
    assert format_duration(timedelta(seconds=42)) == "42s"
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('max_age = "26 hours"', "monitor.max_age"),
        ('max_age = { full = "1d", critical = "7" }', "monitor.max_age.critical"),
        ('verify_within = "soon"', "monitor.verify_within"),
        ("drill_within = 30", "monitor.drill_within"),
        ('max_storage = "lots"', "monitor.max_storage"),
    ],
)
def test_cli_rejects_a_malformed_duration_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, key: str
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    config = tmp_path / "pyproject.toml"
    config.write_text(f"[tool.migration_guard.monitor]\n{table}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["monitor", "--config-file", str(config)])
    assert result.exit_code == 2, result.output
    assert key in result.stderr
    assert "Traceback" not in result.output + result.stderr
