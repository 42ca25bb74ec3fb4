"""A suppression comment without a reason does not apply: the finding it meant to silence stays.

A suppression must say why the destructive change is safe, so that reviewers
and auditors can judge it later::

    -- migration-guard: allow drop-column because: column unused since v2.3, archived

Without ``because: <reason>`` (or with an empty reason) the suppression is
ignored and this error is reported at the comment's line, in addition to the
finding it was meant to suppress.

Instead, add the reason after ``because:`` on the same line.
"""

from __future__ import annotations

from migration_guard.analysis.rules import Rule

RULE = Rule(
    id="suppression-without-reason",
    summary="A migration-guard suppression comment has no 'because: <reason>'.",
    description=__doc__ or "",
    hint="Add 'because: <why this is safe>' to the suppression comment.",
)
