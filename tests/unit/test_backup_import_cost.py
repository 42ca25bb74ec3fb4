"""The backup command path imports only what a backup needs.

An hourly incremental backup is mostly process start-up: every module it
imports is paid on every run. Each check runs a fresh interpreter (this test
process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Modules the backup path must not load: the migration analysis, Alembic,
#: the terminal renderer and the S3 client (offsite copies import it when
#: configured).
STAY_OUT = (
    "sqlglot",
    "alembic",
    "rich",
    "boto3",
    "botocore",
    "migration_guard.analysis",
    "migration_guard.alembic",
)

BACKUP_PATH = """
import json, sys
import importlib.metadata
scans = []
def counting(*args, **kwargs):
    scans.append(kwargs.get("group"))
    return real(*args, **kwargs)
real, importlib.metadata.entry_points = importlib.metadata.entry_points, counting
import migration_guard.cli
import migration_guard.cli.backup
import migration_guard.commands.backup
import migration_guard.backup.creation
import migration_guard.backup.archive.writer
from migration_guard.backup.backends import get_backend
get_backend("binlog")
get_backend("mysqldump")
print(json.dumps(sorted(sys.modules) + [f"entry-point-scan:{g}" for g in scans]))
"""


def loaded_modules(code: str) -> set[str]:
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(output))


def test_the_backup_path_leaves_analysis_alembic_rich_and_s3_out() -> None:
    loaded = loaded_modules(BACKUP_PATH)
    unwanted = sorted(
        name for name in loaded if any(name == m or name.startswith(m + ".") for m in STAY_OUT)
    )
    assert unwanted == []


def test_built_in_backends_are_found_without_scanning_the_installed_distributions() -> None:
    scans = sorted(m for m in loaded_modules(BACKUP_PATH) if m.startswith("entry-point-scan:"))
    assert scans == []


def test_a_built_in_member_is_found_without_importing_importlib_metadata() -> None:
    loaded = loaded_modules(
        "import json, sys\n"
        "from migration_guard.registry import Registry\n"
        "r = Registry('migration_guard.test_nothing', 'widget', {'a': 'os:sep'})\n"
        "r.get('a')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert "importlib.metadata" not in loaded
