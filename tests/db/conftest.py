"""Fixtures shared by the database tests of the guarded upgrade."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.db.upgrade_project import Project, make_project, seed


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    """The example project on ``db_url`` (SQLite and MariaDB), seeded."""
    made = make_project(tmp_path / "proj", db_url)
    seed(made)
    return made


@pytest.fixture
def mysql_project(tmp_path: Path, mysql_url: str) -> Project:
    """The example project on a fresh MariaDB database, seeded."""
    made = make_project(tmp_path / "proj", mysql_url)
    seed(made)
    return made
