"""Every rule is documented, discoverable and named consistently."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from migration_guard.analysis import rules as rules_package
from migration_guard.analysis.model import OpKind
from migration_guard.analysis.rules import (
    RULE_ID_PATTERN,
    Rule,
    all_rules,
    get_rule,
    rules_for_kind,
)
from migration_guard.errors import UnknownNameError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"
RULE_MODULES = [
    info.name
    for info in pkgutil.iter_modules(rules_package.__path__)
    if not info.name.startswith("_")
]
ISSUE_RULE_IDS = {
    "drop-table",
    "drop-database",
    "truncate-table",
    "drop-column",
    "rename-table",
    "rename-column",
    "alter-column-type",
    "drop-partition",
    "change-engine",
    "convert-charset",
    "delete-without-where",
    "update-without-where",
    "unanalyzable",
    "suppression-without-reason",
}


def test_every_rule_of_the_specification_exists() -> None:
    assert {rule.id for rule in all_rules()} >= ISSUE_RULE_IDS


def test_ids_are_kebab_case_and_unique() -> None:
    ids = [rule.id for rule in all_rules()]
    assert len(ids) == len(set(ids))
    assert all(RULE_ID_PATTERN.match(rule_id) for rule_id in ids)


@pytest.mark.parametrize("module_name", RULE_MODULES)
def test_every_rule_module_has_a_docstring_and_a_matching_rule(module_name: str) -> None:
    module = importlib.import_module(f"{rules_package.__name__}.{module_name}")
    assert module.__doc__ and module.__doc__.strip(), f"{module_name}.py has no docstring"
    rule = module.RULE
    assert isinstance(rule, Rule)
    assert rule.id == module_name.replace("_", "-")
    assert rule.description == inspect.cleandoc(module.__doc__)
    assert rule.summary.strip() and "\n" not in rule.summary
    assert rule.hint.strip() and "\n" not in rule.hint


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.id)
def test_every_rule_has_a_docs_page(rule: Rule) -> None:
    page = DOCS / f"{rule.id}.md"
    assert page.is_file(), f"docs/rules/{rule.id}.md is missing"
    text = page.read_text(encoding="utf-8")
    assert text.startswith(f"# `{rule.id}`")
    for section in ("## What it flags", "## Why it matters", "## What to do instead"):
        assert section in text, f"{page.name} lacks {section!r}"
    assert "```sql" in text and "```python" in text


def test_docs_index_lists_every_rule() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for rule in all_rules():
        assert f"({rule.id}.md)" in index, f"docs/rules/README.md does not list {rule.id}"


def test_get_rule_names_the_known_ids() -> None:
    assert get_rule("drop-table").id == "drop-table"
    with pytest.raises(UnknownNameError) as caught:
        get_rule("drop-everything")
    assert "drop-table" in str(caught.value)


def test_the_kinds_table_lists_every_rule_module_with_its_kinds() -> None:
    # rules_for_kind imports only the modules this table lists for a kind.
    assert {
        rule.id.replace("-", "_"): rule.kinds for rule in all_rules()
    } == rules_package.RULE_MODULE_KINDS


@pytest.mark.parametrize("kind", list(OpKind))
def test_rules_for_kind_are_the_catalogue_rules_of_that_kind(kind: OpKind) -> None:
    assert rules_for_kind(kind) == tuple(rule for rule in all_rules() if kind in rule.kinds)


def test_a_check_imports_only_the_rules_its_operations_need() -> None:
    script = (
        "import sys\n"
        "from migration_guard.analysis.analyzer import analyze_sql\n"
        "report = analyze_sql('DROP TABLE t; UPDATE u SET a = 1 WHERE id = 2;',"
        " dialect='postgresql')\n"
        "assert [f.rule for f in report.findings] == ['drop-table'], report.findings\n"
        "prefix = 'migration_guard.analysis.rules.'\n"
        "print(sorted(m[len(prefix):] for m in sys.modules if m.startswith(prefix)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "['drop_table', 'update_without_where']"


def test_the_rule_modules_are_read_off_the_directory_as_the_import_system_lists_them() -> None:
    from migration_guard.analysis.rules import _rule_module_names

    assert _rule_module_names() == sorted(RULE_MODULES)
    assert len(RULE_MODULES) >= 12


def test_a_check_of_plain_sql_imports_neither_pathlib_nor_pkgutil(tmp_path: Path) -> None:
    """Both cost a short check (a pre-commit hook) more than its own work. (An editable
    install's import hook loads pathlib at start-up already: only the check's own
    imports count.)"""
    import subprocess
    import sys

    (tmp_path / "m.sql").write_text("DROP TABLE customers;\n")
    script = (
        "import sys\n"
        "started = set(sys.modules)\n"
        "from migration_guard.cli import main\n"
        "sys.argv = ['migration-guard', 'check', 'm.sql', '--format', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(*(name in sys.modules and name not in started for name in ('pathlib', 'pkgutil')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert completed.stdout.splitlines()[-1] == "False False"
