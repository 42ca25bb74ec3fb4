"""`schedule`: crontab lines and systemd units that a validator accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.errors import ConfigError
from migration_guard.monitoring.cron import parse_cron, to_on_calendar
from migration_guard.monitoring.schedule import (
    render_cron,
    render_systemd,
    schedule_settings,
    systemd_units,
)

# An independent checker, written from crontab(5), not from the module under test.
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = [
    None,
    None,
    None,
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
]


def _number(token: str, index: int) -> int:
    names = _NAMES[index]
    if names and token.lower() in names:
        return names.index(token.lower()) + (1 if index == 3 else 0)
    assert token.isdigit(), f"field {index}: {token!r} is not a number"
    return int(token)


def assert_valid_cron_line(line: str) -> str:
    """Five valid time fields followed by a command; returns the command."""
    fields = line.split(None, 5)
    assert len(fields) == 6, f"not five fields and a command: {line!r}"
    for index, field in enumerate(fields[:5]):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step:
                assert step.isdigit() and int(step) > 0
            low, high = _RANGES[index]
            if base == "*":
                continue
            bounds = base.split("-")
            assert 1 <= len(bounds) <= 2
            values = [_number(b, index) for b in bounds]
            assert all(low <= v <= high for v in values), line
            assert values[0] <= values[-1]
    command = fields[5]
    assert "%" not in command.replace("\\%", ""), "unescaped % in a crontab command"
    return command


def cron_entries(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)
    ]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MIGRATION_GUARD_BACKUP_DIR", raising=False)
    monkeypatch.delenv("MIGRATION_GUARD_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_with(project: Path, schedule: dict[str, object], **top: object) -> Config:
    return Config(source=str(project / "pyproject.toml"), sections={"schedule": schedule}, **top)  # type: ignore[arg-type]


def test_default_cron_is_the_original_plan(project: Path) -> None:
    settings = schedule_settings(config_with(project, {}, protected_tables=("customers",)))
    text = render_cron(settings)
    entries = cron_entries(text)
    schedules = {}
    for line in entries:
        command = assert_valid_cron_line(line)
        assert ">> " in command and "2>&1" in command, "output must go to the log file"
        assert str(project / ".migration-guard" / "migration-guard.log") in command
        assert f"--config-file {project / 'pyproject.toml'}" in command
        schedules[" ".join(line.split()[:5])] = command
    assert any("backup --type full" in c for s, c in schedules.items() if s == "0 2 * * *")
    assert any("backup --type critical" in c for s, c in schedules.items() if s == "0 */6 * * *")
    assert any(" monitor " in c for s, c in schedules.items() if s == "30 8 * * *")
    assert any(" drill " in c for s, c in schedules.items() if s == "0 4 1 * *")
    # The original plan: the hourly incremental next to the nightly full backup.
    assert any("backup --type incremental" in c for s, c in schedules.items() if s == "0 * * * *")


@pytest.mark.parametrize(
    ("url", "active"),
    [
        ("mysql+pymysql://app@db/shop", True),
        ("mariadb+pymysql://app@db/shop", True),
        ("sqlite:///app.db", False),
        ("postgresql+psycopg://app@db/shop", False),
    ],
)
def test_the_hourly_incremental_follows_the_configured_database(
    project: Path, url: str, active: bool
) -> None:
    settings = schedule_settings(config_with(project, {}, url=url))
    text = render_cron(settings)
    incremental = [line for line in cron_entries(text) if "--type incremental" in line]
    assert bool(incremental) is active, text
    units = render_systemd(settings)
    assert ("# file: migration-guard-incremental.timer" in units) is active
    if not active:
        commented = [line for line in text.splitlines() if line.startswith("# 0 * * * *")]
        assert len(commented) == 1 and "--type incremental" in commented[0]
        assert_valid_cron_line(commented[0][2:])
        assert "binary log" in text and "schedule.incremental = false" in text
        assert "incremental" in units and "not emitted" in units


def test_critical_is_commented_out_without_protected_tables(project: Path) -> None:
    text = render_cron(schedule_settings(config_with(project, {})))
    assert not any("--type critical" in line for line in cron_entries(text))
    assert "no protected_tables" in text


def test_configured_schedule_and_disabled_jobs(project: Path) -> None:
    settings = schedule_settings(
        config_with(
            project,
            {
                "full": "15 1 * * mon-fri",
                "monitor": "@hourly",
                "drill": False,
                "incremental": "",
                "critical": False,
                "log_file": "/var/log/mg/%h.log",
                "command": "/opt/mg/bin/migration-guard",
                "environment_file": "/etc/migration-guard.env",
            },
        )
    )
    text = render_cron(settings)
    entries = cron_entries(text)
    assert len(entries) == 2
    for line in entries:
        command = assert_valid_cron_line(line)
        assert command.count("/opt/mg/bin/migration-guard") == 1
        assert ". /etc/migration-guard.env" in command
        assert "\\%h.log" in command
    assert entries[0].startswith("15 1 * * mon-fri ")
    assert entries[1].startswith("0 * * * * ")
    assert "drill" not in text


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 2 * *", "five fields"),
        ("60 2 * * *", "outside 0-59"),
        ("0 24 * * *", "outside"),
        ("0 2 0 * *", "outside 1-31"),
        ("0 2 * 13 *", "outside 1-12"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("0 2 * * funday", "not a number"),
        ("@often", "five"),
    ],
)
def test_invalid_cron_expressions_name_the_key(
    project: Path, expression: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        schedule_settings(config_with(project, {"full": expression}))
    assert caught.value.key == "schedule.full"
    assert problem in str(caught.value)


def test_unknown_schedule_key(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'weekly'.*known keys"):
        schedule_settings(config_with(project, {"weekly": "0 0 * * 0"}))


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 2 * * *", "*-*-* 02:00:00"),
        ("0 */6 * * *", "*-*-* 00/6:00:00"),
        ("30 8 * * *", "*-*-* 08:30:00"),
        ("0 4 1 * *", "*-*-01 04:00:00"),
        ("0 * * * *", "*-*-* *:00:00"),
        ("15 1 * * mon-fri", "Mon,Tue,Wed,Thu,Fri *-*-* 01:15:00"),
        ("0,30 9-17 * 1,7 *", "*-01,07-* 09,10,11,12,13,14,15,16,17:00,30:00"),
        ("@weekly", "Sun *-*-* 00:00:00"),
        ("0 3 * * 7", "Sun *-*-* 03:00:00"),
    ],
)
def test_on_calendar_conversion(cron: str, calendar: str) -> None:
    assert to_on_calendar(cron) == calendar


def test_day_of_month_and_week_together_cannot_be_converted() -> None:
    with pytest.raises(ConfigError, match="both day of month and day of week"):
        to_on_calendar("0 2 1 * mon", key="schedule.full")


def _systemd_accepts(calendar: str) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        # Fallback parser: weekday list, date, time with two-digit fields or steps.
        pattern = (
            r"^((Mon|Tue|Wed|Thu|Fri|Sat|Sun)(,(Mon|Tue|Wed|Thu|Fri|Sat|Sun))* )?"
            r"\*-[\d,/*]+-[\d,/*]+ [\d,/*]+:[\d,/*]+:00$"
        )
        assert re.match(pattern, calendar), calendar
        return
    completed = subprocess.run(
        [tool, "calendar", calendar], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "Next elapse" in completed.stdout


def test_systemd_units_are_accepted(project: Path) -> None:
    settings = schedule_settings(
        config_with(project, {"monitor": "15 1 * * mon-fri"}, protected_tables=("customers",))
    )
    units = systemd_units(settings)
    assert sorted(units) == sorted(
        f"migration-guard-{job}.{kind}"
        for job in ("full", "incremental", "critical", "monitor", "drill")
        for kind in ("service", "timer")
    )
    for name, content in units.items():
        if name.endswith(".timer"):
            calendar = re.search(r"^OnCalendar=(.+)$", content, re.M)
            assert calendar is not None
            _systemd_accepts(calendar.group(1))
            assert f"Unit={name[:-6]}.service" in content
            assert "WantedBy=timers.target" in content
        else:
            assert "Type=oneshot" in content
            assert re.search(r"^ExecStart=/\S+", content, re.M), "ExecStart must be absolute"
            assert (
                f"StandardOutput=append:{project}/.migration-guard/migration-guard.log" in content
            )
    text = render_systemd(settings)
    assert "# file: migration-guard-full.timer" in text
    assert "# file: migration-guard-incremental.timer" in text


def test_systemd_analyze_verifies_written_units(project: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    result = CliRunner().invoke(
        main, ["schedule", "--systemd", "--output-dir", str(project / "units")]
    )
    assert result.exit_code == 0, result.output
    files = sorted(str(p) for p in (project / "units").iterdir())
    assert len(files) == 8  # full, incremental, monitor, drill (no protected tables: no critical)
    completed = subprocess.run(
        [tool, "verify", *files], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_cli_schedule_cron_and_bad_config(project: Path) -> None:
    result = CliRunner().invoke(main, ["schedule", "--cron"])
    assert result.exit_code == 0
    for line in cron_entries(result.stdout):
        assert_valid_cron_line(line)
    (project / "pyproject.toml").write_text(
        '[tool.migration_guard.schedule]\nfull = "0 25 * * *"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["schedule"])
    assert result.exit_code == 2
    assert "schedule.full" in result.stderr and "Traceback" not in result.stderr


@given(
    st.tuples(*(st.integers(low, high) for low, high in _RANGES)),
    st.tuples(*(st.integers(1, 5) for _ in _RANGES)),
)
def test_generated_expressions_agree_with_the_independent_checker(
    values: tuple[int, ...], steps: tuple[int, ...]
) -> None:
    fields = [
        f"{value}-{high}/{step}" if value < high else str(value)
        for value, step, (_, high) in zip(values, steps, _RANGES, strict=True)
    ]
    expression = " ".join(fields)
    assert_valid_cron_line(expression + " true")
    assert " ".join(parse_cron(expression, key="schedule.full")) == expression
    calendar = to_on_calendar(" ".join([*fields[:4], "*"]))
    assert re.match(r"^\*-[\d,/*]+-[\d,/*]+ [\d,/*]+:[\d,/*]+:00$", calendar), calendar


@given(st.integers(0, 4), st.integers(60, 500))
def test_out_of_range_values_are_rejected(index: int, value: int) -> None:
    fields = ["*"] * 5
    fields[index] = str(value)
    with pytest.raises(ConfigError, match="outside"):
        parse_cron(" ".join(fields), key="schedule.monitor")
