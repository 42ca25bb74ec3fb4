"""``Approvals.allows`` answers by lookup, not by scanning every approval, and answers
exactly as the approval rules say (revision, rule and qualified table)."""

from __future__ import annotations

import itertools
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.alembic.approvals import Approval, Approvals

RULES = ("drop-column", "drop-table", "truncate", "unanalyzable")
TABLES = ("customers", "app.orders", "other.orders", "Audit", None)
REVISIONS = (None, "/proj/versions/r1.py", "/proj/versions/r2.py", "versions/../versions/r3.py")


class NoScan(set[Approval]):
    """The approvals, refusing to be walked one by one."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("Approvals.allows scanned every approval")


def reference(approvals: Approvals, rule: str, table: str | None, revision: str | None) -> bool:
    """The rule as documented: same rule and qualified table, and either an approval of
    every revision or one of this very revision."""
    key = approvals.key(table)
    where = os.path.abspath(revision) if revision else None
    return any(
        a.rule == rule and a.table == key and (a.revision is None or a.revision == where)
        for a in approvals.items
    )


def many(default_schema: str | None) -> Approvals:
    approvals = Approvals(default_schema=default_schema)
    for number in range(5000):
        approvals.add("drop-column", f"app.table_{number}", f"/proj/versions/r{number}.py")
    for rule, table, revision in itertools.product(RULES[:2], TABLES[:3], REVISIONS[:2]):
        approvals.add(rule, table, revision)
    approvals.add("truncate", "Audit", "versions/../versions/r3.py")
    return approvals


def test_many_approvals_are_looked_up_not_scanned() -> None:
    approvals = many("app")
    expected = {
        (rule, table, revision): reference(approvals, rule, table, revision)
        for rule, table, revision in itertools.product(RULES, TABLES, REVISIONS)
    }
    approvals.items = NoScan(approvals.items)
    for (rule, table, revision), allowed in expected.items():
        assert approvals.allows(rule, table, revision) is allowed, (rule, table, revision)
    assert approvals.allows("drop-column", "table_4999", "/proj/versions/r4999.py")
    assert not approvals.allows("drop-column", "table_4999", "/proj/versions/r4998.py")
    assert approvals.allows("truncate", "app.audit", "versions/r3.py")
    assert not approvals.allows("truncate", "audit", None)


@settings(max_examples=200, deadline=None)
@given(
    schema=st.sampled_from([None, "app"]),
    added=st.lists(
        st.tuples(st.sampled_from(RULES), st.sampled_from(TABLES), st.sampled_from(REVISIONS)),
        max_size=12,
    ),
    asked=st.tuples(st.sampled_from(RULES), st.sampled_from(TABLES), st.sampled_from(REVISIONS)),
)
def test_allows_answers_as_the_approval_rules_say(
    schema: str | None,
    added: list[tuple[str, str | None, str | None]],
    asked: tuple[str, str | None, str | None],
) -> None:
    approvals = Approvals(default_schema=schema)
    for rule, table, revision in added:
        approvals.add(rule, table, revision)
    assert approvals.allows(*asked) is reference(approvals, *asked)
