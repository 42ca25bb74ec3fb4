"""The shape of the code stays as docs/architecture.md describes it.

The import direction itself is checked by import-linter in `make lint`; these
tests keep the contract complete (no part escapes it), the modules small, the
repository self-contained and the documentation's links whole.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "migration_guard"
MAX_MODULE_LINES = 500


def _layer_contract() -> dict[str, object]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert len(layers) == 1, "exactly one layers contract"
    return dict(layers[0])


def test_every_part_of_the_package_has_a_layer() -> None:
    contract = _layer_contract()
    named = {
        name.strip()
        for layer in contract["layers"]  # type: ignore[attr-defined]
        for name in re.split(r"[:|]", layer)
    }
    parts = {
        f"migration_guard.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").is_file())
        or (path.suffix == ".py" and path.stem not in {"__init__", "__main__"})
    }
    assert parts - named == set(), "add the new part to [tool.importlinter] and the docs"
    assert named - parts == set(), "the layers contract names parts that do not exist"


def test_architecture_page_names_every_part() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    contract = _layer_contract()
    for layer in contract["layers"]:  # type: ignore[attr-defined]
        for name in re.split(r"[:|]", layer):
            short = name.strip().removeprefix("migration_guard.")
            assert f"`{short}`" in page, f"docs/architecture.md does not mention {short}"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines; split it by responsibility"
    )


_OUTSIDE = re.compile("\\.\\./" + "shared|parent\\s*/\\s*[\"']" + "shared[\"']")


def test_nothing_reads_outside_the_repository() -> None:
    """A fresh clone must pass: no file may reach for ../shared or other checkouts."""
    offenders = []
    for folder in ("migration_guard", "tests", "bench", "examples", "docs", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".sh", ".md", ".toml", ".ini", ""} or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if path != Path(__file__).resolve() and _OUTSIDE.search(text):
                offenders.append(str(path.relative_to(ROOT)))
    for name in ("Makefile", "tox.ini", "pyproject.toml"):
        if "../shared" in (ROOT / name).read_text(encoding="utf-8"):
            offenders.append(name)
    assert offenders == []


def test_vendored_sakila_keeps_its_licence() -> None:
    sakila = ROOT / "tests" / "fixtures" / "sakila"
    assert (sakila / "sakila-schema.sql").is_file()
    assert (sakila / "sakila-data.sql").is_file()
    assert "Redistribution and use" in (sakila / "LICENSE").read_text(encoding="utf-8")


_LINK = re.compile(r"\[[^\]]*\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = [target for target in _LINK.findall(text) if not (page.parent / target).exists()]
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files"
