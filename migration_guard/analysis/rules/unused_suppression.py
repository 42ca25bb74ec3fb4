"""A suppression comment that suppresses nothing is stale, misplaced or misspelt.

Reported as a warning when a ``migration-guard: allow <rule-id>`` comment does
not match any finding of that rule on the statement directly below it, or
names a rule id that does not exist (the message lists the known ids). A stale
suppression is dangerous: if the statement below it changes later, it may
silently hide a new, real finding.

Instead, put the comment directly above the statement or ``op.`` call it is
meant for (only blank lines or other comments in between), fix the rule id, or
delete the comment.
"""

from __future__ import annotations

from migration_guard.analysis.rules import Rule

RULE = Rule(
    id="unused-suppression",
    summary="A migration-guard suppression comment matches no finding.",
    description=__doc__ or "",
    hint="Move the comment directly above the statement it is for, fix the rule id, or delete it.",
)
