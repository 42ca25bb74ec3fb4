"""Which method a table's ``checksum`` is measured with, to compare it with a recorded one.

A dialect may know several methods (:attr:`~.base.DialectOps.digest_methods`;
PostgreSQL: ``record-v2``, ``text-v1``). A recorded measurement (a backup's
manifest, an upgrade's run record) names the method it was taken with, or none
when written before methods were named; the live side is measured by the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from migration_guard.dialects.base import DialectOps


def digest_method(ops: DialectOps, recorded: object) -> str | None:
    """The method to measure with, to compare with a measurement that recorded
    ``recorded`` (None: it named none, so the dialect's unnamed method). A method
    this version does not know cannot be compared with: :class:`UsageError`
    (nothing is measured, nothing passes)."""
    if recorded is None:
        return ops.unnamed_digest
    if not isinstance(recorded, str) or recorded not in ops.digest_methods:
        known = ", ".join(ops.digest_methods) or "none"
        raise UsageError(
            f"the recorded row digest method {recorded!r} is unknown to this "
            f"migration-guard for {ops.name} (it knows: {known}), so the rows cannot be "
            "compared with it; upgrade migration-guard to the version that wrote it or later"
        )
    return recorded
