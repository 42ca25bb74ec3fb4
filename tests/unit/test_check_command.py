"""``migration-guard check`` end to end through the CLI: inputs, exit codes, bad input."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from migration_guard.cli import main
from migration_guard.commands import check
from migration_guard.config import Config

ALEMBIC_PROJECT = Path(__file__).resolve().parent.parent / "alembic_project"
EXAMPLE_SHOP = Path(__file__).resolve().parent.parent.parent / "examples" / "shop"


def run(args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, args, input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATION_GUARD_CONFIG", raising=False)
    monkeypatch.delenv("MIGRATION_GUARD_URL", raising=False)
    return tmp_path


def test_sql_file_with_destructive_statement_exits_1(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("CREATE TABLE a (id int);\n\nDROP TABLE customers;\n")
    code, out, err = run(["check", "m.sql", "--format", "json"])
    assert code == 1, err
    payload = json.loads(out)
    [finding] = payload["findings"]
    assert finding["rule"] == "drop-table"
    assert finding["table"] == "customers"
    assert finding["file"] == "m.sql"
    assert finding["line"] == 3
    assert finding["severity"] == "error"
    assert payload["summary"]["errors"] == 1


def test_clean_file_exits_0(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n")
    code, out, _ = run(["check", "m.sql"])
    assert code == 0
    assert "no findings" in out


def test_protect_turns_other_tables_into_warnings(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE scratch;\nTRUNCATE customers;\n")
    code, out, _ = run(["check", "m.sql", "--protect", "cust*", "--format", "json"])
    assert code == 1
    severities = {f["table"]: f["severity"] for f in json.loads(out)["findings"]}
    assert severities == {"scratch": "warning", "customers": "error"}
    code, _, _ = run(["check", "m.sql", "--protect", "nothing_matches"])
    assert code == 0


def test_config_file_protected_tables(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE scratch;\n")
    (tmp_path / "pyproject.toml").write_text('[tool.migration_guard]\nprotected_tables = ["x"]\n')
    code, out, _ = run(["check", "m.sql", "--format", "json"])
    assert code == 0
    assert json.loads(out)["findings"][0]["severity"] == "warning"


def test_stdin(tmp_path: Path) -> None:
    code, out, _ = run(
        ["check", "-", "--dialect", "postgresql", "--format", "json"],
        stdin="SELECT 1;\nDELETE FROM orders;\n",
    )
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert (finding["file"], finding["line"], finding["rule"]) == (
        "<stdin>",
        2,
        "delete-without-where",
    )


def test_directory_finds_sql_and_revision_files(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_SHOP / "migrations", tmp_path / "migrations")
    (tmp_path / "migrations" / "extra.sql").write_text("TRUNCATE TABLE orders;\n")
    code, out, _ = run(["check", "migrations", "--dialect", "sqlite", "--format", "json"])
    assert code == 1
    rules = {(Path(f["file"]).name, f["rule"]) for f in json.loads(out)["findings"]}
    assert ("extra.sql", "truncate-table") in rules
    assert any(name.endswith("audit_log.py") and rule == "drop-table" for name, rule in rules)
    assert all(not name.startswith("env") for name, _ in rules)


def test_suppression_with_reason_is_reported_as_suppressed(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text(
        "-- migration-guard: allow drop-table because: replaced by orders_v2\n"
        "DROP TABLE orders_old;\n"
    )
    code, out, _ = run(["check", "m.sql", "--format", "json"])
    assert code == 0
    [finding] = json.loads(out)["findings"]
    assert finding["suppressed"] is True
    assert finding["reason"] == "replaced by orders_v2"


def test_alembic_project_points_at_op_calls(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_SHOP, tmp_path / "shop")
    code, out, _ = run(
        ["check", "-c", "shop/alembic.ini", "--protect", "customers", "--format", "json"]
    )
    assert code == 1
    payload = json.loads(out)
    drop_column = next(f for f in payload["findings"] if f["rule"] == "drop-column")
    source = Path(drop_column["file"]).read_text().splitlines()
    assert "drop_column" in source[drop_column["line"] - 1]
    assert any("base:head" in note for note in payload["notes"])


def test_sarif_and_github_formats(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    code, out, _ = run(["check", "m.sql", "--format", "sarif"])
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "drop-table"
    code, out, _ = run(["check", "m.sql", "--format", "github"])
    assert code == 1
    assert out.startswith("::error file=m.sql,line=1")


@pytest.mark.parametrize(
    ("args", "files", "expected"),
    [
        (["check", "missing.sql"], {}, "path not found: missing.sql"),
        (["check", "m.sql", "--dialect", "oracle"], {"m.sql": "SELECT 1;"}, "unknown dialect"),
        (
            ["check", "m.sql"],
            {"m.sql": "SELECT 1;", "pyproject.toml": "[tool.migration_guard\n"},
            "not valid TOML",
        ),
        (
            ["check", "m.sql"],
            {"m.sql": "SELECT 1;", "pyproject.toml": "[tool.migration_guard]\nprotected = []\n"},
            "unknown key 'protected'",
        ),
        (["check", "-c", "nope.ini"], {}, "nope.ini"),
        (["check", "-c", "bad.ini"], {"bad.ini": "[other]\nx = 1\n"}, "bad.ini"),
        (["check", "m.sql", "--range", "base:head"], {"m.sql": "SELECT 1;"}, "--range"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_output(
    tmp_path: Path, args: list[str], files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, out, err = run(args)
    assert code == 2, (out, err)
    assert out == ""
    assert expected in err
    assert "Traceback" not in err


def test_nonexistent_revision_range_exits_2(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_SHOP, tmp_path / "shop")
    code, out, err = run(["check", "-c", "shop/alembic.ini", "--range", "base:deadbeef"])
    assert code == 2
    assert out == ""
    assert "deadbeef" in err


def test_python_api_is_the_same_command(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("ALTER TABLE customers DROP COLUMN email;\n")
    report = check(Config(), ["m.sql"], dialect="mysql")
    assert [f.rule for f in report.findings] == ["drop-column"]
    assert report.has_errors


def test_sakila_schema_is_analysed_without_crash(sakila_dir: Path) -> None:
    schema = sakila_dir / "sakila-schema.sql"
    report = check(Config(), [str(schema)], dialect="mysql")
    assert report.statements > 40
    lines = schema.read_text().splitlines()
    for finding in report.findings:
        assert finding.rule in {"drop-database", "unanalyzable", "drop-table"}
        # the finding's line is where its statement starts
        first_word = finding.statement.split()[0].upper()
        assert lines[finding.line - 1].strip().upper().startswith(first_word)
    assert any(f.rule == "drop-database" for f in report.findings)


def test_console_script_has_no_traceback_on_bad_input(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "migration_guard", "check", "missing.sql"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "Traceback" not in completed.stderr
    assert "path not found" in completed.stderr


_COUNT_COLLECTIONS = """
import gc, sys
# Written at once: the entry point may end the process without the interpreter's shutdown.
gc.callbacks.append(lambda phase, info: phase == "stop" and sys.stderr.write("collected\\n"))
sys.argv = ["migration-guard", *sys.argv[1:]]
{entry}
main()
"""


def _collections(tmp_path: Path, entry: str) -> int:
    completed = subprocess.run(
        [sys.executable, "-c", _COUNT_COLLECTIONS.format(entry=entry), "check", "m.sql"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 1, completed.stderr
    return completed.stderr.count("collected")


def test_the_console_entry_point_collects_garbage_rarely_from_the_start(tmp_path: Path) -> None:
    """A process that runs one command skips the collector's passes over what it imports
    (click, the analysis): dozens with CPython's defaults, a handful at most here."""
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    default_count = _collections(tmp_path, "from migration_guard.cli import main")
    count = _collections(tmp_path, "from migration_guard.__main__ import run as main")
    assert default_count > 10  # the library's own entry changes nothing
    assert count <= 2
    # The console script and ``python -m migration_guard`` both go through that entry.
    scripts = metadata.distribution("migration-guard").entry_points.select(
        group="console_scripts", name="migration-guard"
    )
    assert [script.value for script in scripts] == ["migration_guard.__main__:run"]


def test_in_process_commands_leave_the_callers_collector_alone(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    code, _, _ = run(["check", "m.sql", "--format", "json"])
    assert code == 1
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)


def test_json_is_compact_unless_pretty_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    code, compact, _ = run(["check", "m.sql", "--format", "json"])
    assert code == 1 and compact.count("\n") == 1 and compact.startswith('{"findings":[')
    code, pretty, _ = run(["check", "m.sql", "--format", "json", "--pretty"])
    assert code == 1 and pretty.startswith('{\n  "findings": [\n')
    assert json.loads(pretty) == json.loads(compact)


_ENTRY_WITH_EXIT_HANDLER = """
import atexit, sys, threading
atexit.register(lambda: sys.stderr.write("exit handlers ran\\n"))
if sys.argv[1] == "--with-thread":
    del sys.argv[1]
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(2,)).start()
sys.argv = ["migration-guard", *(arg for arg in sys.argv[1:] if arg)]
from migration_guard.__main__ import run
run()
"""


def _entry(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY_WITH_EXIT_HANDLER, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )


def test_a_file_check_ends_its_process_at_once_with_its_whole_report(tmp_path: Path) -> None:
    """The check of files ends without the interpreter's teardown (QuickExit), and loses
    nothing of its report on the way: a large JSON report arrives whole, the exit
    status is the check's."""
    statements = "".join(f"DROP TABLE customers_{n};\n" for n in range(3000))
    (tmp_path / "m.sql").write_text(statements)
    (tmp_path / "fine.sql").write_text("CREATE TABLE t (id int);\n")

    ended = _entry(tmp_path, "", "check", "m.sql", "--format", "json", "--protect", "customers_*")
    fine = _entry(tmp_path, "", "check", "fine.sql", "--format", "json")

    assert ended.returncode == 1 and fine.returncode == 0
    assert len(json.loads(ended.stdout)["findings"]) == 3000
    assert json.loads(fine.stdout)["findings"] == []
    assert "exit handlers ran" not in ended.stderr + fine.stderr  # no teardown at all


def test_the_quick_end_waits_for_the_ordinary_exit_when_another_thread_runs(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    completed = _entry(tmp_path, "--with-thread", "check", "m.sql", "--format", "json")
    assert completed.returncode == 1
    assert len(json.loads(completed.stdout)["findings"]) == 1
    assert "exit handlers ran" in completed.stderr


def test_other_commands_end_the_ordinary_way(tmp_path: Path) -> None:
    completed = _entry(tmp_path, "", "--version")
    assert completed.returncode == 0 and "migration-guard" in completed.stdout
    assert "exit handlers ran" in completed.stderr
