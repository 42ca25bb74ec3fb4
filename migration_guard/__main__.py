"""The process entry point: the ``migration-guard`` script and ``python -m migration_guard``."""

from __future__ import annotations

import gc
import os
import sys

#: Young objects between two passes of the cyclic garbage collector over the youngest
#: generation (CPython's default: 700).
GC_GEN0_THRESHOLD = 50_000


def run() -> None:
    """Run the command line as this process's one command.

    Tunes the cyclic garbage collector first, for a process that ends with its
    command: importing click and the analysis and building a check's statements,
    operations and findings allocate hundreds of thousands of objects that live
    until the end and form few reference cycles, so CPython's default thresholds
    run dozens of passes that find nothing. A larger first threshold makes them
    rare, and what exists once the command line is loaded is frozen out of the
    later full passes (and what exists at the end, out of the one at shutdown).
    Cycles are still collected while the command runs, only less often. A command
    that ends with :class:`~migration_guard.cli.QuickExit` (``check`` of files) ends
    the process at once, without the interpreter's teardown of everything it made.
    A library or test calling :func:`migration_guard.cli.main` in its own process
    keeps its settings and gets an ordinary :class:`SystemExit`.
    """
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    from migration_guard.cli import QuickExit, main

    gc.freeze()
    try:
        main()
    except QuickExit as done:
        _end_now(done)
        raise
    finally:
        # What the command made lives until the process ends: the collection at
        # interpreter shutdown need not walk it either.
        gc.freeze()


def _end_now(done: SystemExit) -> None:
    """End the process with ``done``'s code without the interpreter's shutdown, when
    nothing else runs: stdout and stderr are flushed first. Returns when it cannot
    (another thread, a failing flush): the caller then exits the ordinary way."""
    import threading

    if threading.active_count() != 1 or not isinstance(done.code, int):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed pipe: the ordinary exit reports it
    os._exit(done.code)


if __name__ == "__main__":
    run()
