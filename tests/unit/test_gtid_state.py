"""The GTID position after copied binlog events, read from the events themselves."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.backup.backends.binlogpos import GTID_EVENT, GTID_LIST_EVENT, GtidState
from migration_guard.errors import BackupError

MAGIC = b"\xfebin"


def event(kind: int, server: int, body: bytes) -> bytes:
    return struct.pack("<IBIIIH", 0, kind, server, 19 + len(body), 0, 0) + body


def gtid(domain: int, server: int, seq: int) -> bytes:
    return event(GTID_EVENT, server, struct.pack("<QIB", seq, domain, 0) + bytes(6))


def gtid_list(*entries: tuple[int, int, int]) -> bytes:
    body = struct.pack("<I", len(entries)) + b"".join(struct.pack("<IIQ", *e) for e in entries)
    return event(GTID_LIST_EVENT, 1, body)


def after(start: str, *files: bytes) -> str:
    state = GtidState(start)
    for data in files:
        state.feed(io.BytesIO(data), len(data))
    return state.position


def test_each_transaction_moves_its_own_domain() -> None:
    data = MAGIC + gtid(0, 1, 101) + event(2, 1, b"UPDATE") + gtid(7, 3, 5) + gtid(0, 1, 102)
    assert after("0-1-100", data) == "0-1-102,7-3-5"


def test_a_gtid_list_adds_domains_and_never_moves_one_back() -> None:
    first = MAGIC + gtid_list((0, 1, 90), (5, 2, 40)) + gtid(0, 1, 101)
    second = MAGIC + gtid_list((0, 1, 101), (5, 2, 40))
    assert after("0-1-100", first, second) == "0-1-101,5-2-40"


def test_no_events_keep_the_start() -> None:
    assert after("1-2-3,0-1-9", MAGIC) == "0-1-9,1-2-3"


def test_a_cut_event_is_refused() -> None:
    with pytest.raises(BackupError, match="malformed event"):
        after("0-1-1", MAGIC + gtid(0, 1, 2)[:-3])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 9), st.integers(1, 2**40))))
def test_the_last_transaction_of_each_domain_is_the_position(
    transactions: list[tuple[int, int, int]],
) -> None:
    data = MAGIC + b"".join(gtid(d, s, q) for d, s, q in transactions)
    last = {d: (s, q) for d, s, q in transactions}
    expected = ",".join(f"{d}-{s}-{q}" for d, (s, q) in sorted(last.items()))
    assert after("", data) == expected
