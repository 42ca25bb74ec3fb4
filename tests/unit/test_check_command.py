"""``migration-guard check`` end to end through the CLI: inputs, exit codes, bad input."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
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


def test_check_tunes_the_garbage_collector_of_its_own_process_only(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    script = (
        "import gc, sys\n"
        "from migration_guard.cli import main\n"
        "from migration_guard.cli.check import GC_GEN0_THRESHOLD\n"
        "sys.argv = ['migration-guard', 'check', 'm.sql', '--format', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold()[0] == GC_GEN0_THRESHOLD, gc.get_freeze_count() > 0)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert completed.stdout.splitlines()[-1] == "True True"
    # Called in-process (click's test runner, a library), it leaves the caller's settings.
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
