"""What a guarded upgrade imports to ask whether protection is installed.

Every guarded run asks (to warn about drift); on MySQL/MariaDB the answer is whether
the protection's metadata table is among the database's tables, which needs none of
the planner, grants, status or probe modules. Each check runs a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

ASK = """
import json, sys
from migration_guard.protect import META_TABLE, PROTECTORS
protector = PROTECTORS.get("mysql")
print(json.dumps([protector.installed(None, ["t", META_TABLE]), sorted(sys.modules)]))
"""


def test_asking_whether_mysql_protection_is_installed_loads_no_protection_work() -> None:
    output = subprocess.run(
        [sys.executable, "-c", ASK], check=True, capture_output=True, text=True
    ).stdout
    installed, loaded = json.loads(output)
    assert installed is True
    heavy = ("planner", "grants", "status", "probes", "server", "sql")
    assert [m for m in loaded if m.rsplit(".", 1)[-1] in heavy and ".protect.mysql." in m] == []
