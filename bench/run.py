"""Run every benchmark in this folder and print their JSON results.

``make bench`` calls this. Each benchmark compares migration-guard with the
anchors its issue names, side by side in one run; the figures go into
docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "bench_check.py",
    "bench_backup.py",
    "bench_backup_pg.py",
    "bench_incremental.py",
    "bench_upgrade.py",
    "bench_ciphers.py",
    "bench_offsite.py",
)


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        completed = subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=False)
        failed += completed.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
