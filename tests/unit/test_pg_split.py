"""The pure parts of the split load (pg_script, pg_split): which table, the entry lists, the
script's head, and rows cut at line ends without losing, doubling or tearing one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.backup.backends.pg_script import (
    END_OF_ROWS,
    MIN_BLOCK,
    RowsCut,
    Script,
    parse_script,
    row_blocks,
    toc_codec,
    toc_lists,
)
from migration_guard.backup.backends.pg_split import SPLIT_MIN_BYTES, split_table

#: COPY text format's escapes (what pg_dump writes for these bytes in a value).
_ESCAPES = {ord("\\"): b"\\\\", ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t"}


def copy_line(values: list[bytes | None]) -> bytes:
    """One row as pg_dump's COPY text format writes it."""
    fields = [
        b"\\N" if value is None else b"".join(_ESCAPES.get(b, bytes([b])) for b in value)
        for value in values
    ]
    return b"\t".join(fields) + b"\n"


values = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.sampled_from([b"\\.", b".", b"\\", b"\n\\.\n", b"\\.\n", b"\r\n", b"\t"]),
)
rows = st.lists(st.lists(values, min_size=1, max_size=4).map(copy_line), max_size=40)


#: What pg_restore writes after the rows of a table.
TRAILER = b"\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"


def pieces_of(stream: bytes, cuts: list[int]) -> tuple[bytes, list[bytes]]:
    points = sorted({min(cut, len(stream)) for cut in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    return pieces[0], [piece for piece in pieces[1:] if piece]


@given(
    rows=rows,
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    held_back=st.integers(min_value=len(END_OF_ROWS + TRAILER), max_value=300),
    min_block=st.integers(min_value=0, max_value=300),
)
def test_rows_are_cut_at_line_ends_and_end_at_the_end_of_rows_line(
    rows: list[bytes], cuts: list[int], held_back: int, min_block: int
) -> None:
    data = b"".join(rows)
    first, reads = pieces_of(data + END_OF_ROWS + TRAILER, cuts)
    blocks = list(row_blocks(first, reads, held_back, min_block))
    assert b"".join(blocks) == data  # nothing lost, doubled, or after the end
    assert all(block.endswith(b"\n") for block in blocks)  # whole rows only
    lines = [line for block in blocks for line in block.splitlines(keepends=True)]
    assert lines == rows


@given(rows=rows, cut=st.integers(min_value=0, max_value=4000))
def test_rows_without_their_end_are_refused(rows: list[bytes], cut: int) -> None:
    data = b"".join(rows) + END_OF_ROWS
    truncated = data[: min(cut, len(data) - 1)]
    with pytest.raises(RowsCut):
        list(row_blocks(b"", [truncated] if truncated else [], 8, 0))


@given(rows=rows, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_more_after_the_end_of_rows_than_is_held_back_never_passes_as_rows(
    rows: list[bytes], cuts: list[int]
) -> None:
    """Had the end line gone out among the rows, the end finds it missing: the load fails."""
    data = b"".join(rows)
    first, reads = pieces_of(data + END_OF_ROWS + b"x" * 200 + b"\n", cuts)
    try:
        blocks = list(row_blocks(first, reads, held_back=100, min_block=0))
    except RowsCut:
        return
    assert b"".join(blocks) == data


def test_a_row_longer_than_a_read_stays_whole() -> None:
    long_row = b"x" * 3_000_000 + b"\n"
    reads = [long_row[i : i + 1_000_000] for i in range(0, len(long_row), 1_000_000)]
    blocks = list(row_blocks(b"a\n", [*reads, END_OF_ROWS + b"junk"], 8, 0))
    assert b"".join(blocks) == b"a\n" + long_row and long_row[-1:] == blocks[-1][-1:]
    assert long_row in blocks or blocks[-1] == b"a\n" + long_row
    assert list(row_blocks(END_OF_ROWS, [])) == []
    assert list(row_blocks(b"\\", [b".", b"\n"])) == []  # the end line cut twice
    data = b"\\\\.\n"  # a value "\." is data
    assert list(row_blocks(data, [END_OF_ROWS])) == [data]
    big = b"r\n" * 600_000  # the real sizes: blocks of at least MIN_BLOCK
    blocks = list(
        row_blocks(
            b"", [big[i : i + 2**20] for i in range(0, len(big), 2**20)] + [END_OF_ROWS + TRAILER]
        )
    )
    assert b"".join(blocks) == big and all(len(b) >= MIN_BLOCK for b in blocks[:-1])


SCRIPT = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n"
    b"SET statement_timeout = 0;\nSET client_encoding = 'LATIN1';\n"
    b"SELECT pg_catalog.set_config('search_path', '', false);\n\n"
    b"--\n-- Data for Name: Mixed Case; Type: TABLE DATA; Schema: Odd s; Owner: -\n--\n\n"
    b'COPY "Odd s"."Mixed\nCase" (id, "a;b") FROM stdin;\n'
)


def test_the_script_head_gives_the_settings_and_the_copy_statement() -> None:
    script = parse_script(SCRIPT + b"1\tx\n")
    assert script == Script(
        settings=(
            b"SET statement_timeout = 0;",
            b"SET client_encoding = 'LATIN1';",
            b"SELECT pg_catalog.set_config('search_path', '', false);",
        ),
        copy=b'COPY "Odd s"."Mixed\nCase" (id, "a;b") FROM stdin',
        rows_at=len(SCRIPT),
    )
    for end in range(len(SCRIPT)):  # not before the statement's line is whole
        assert parse_script(SCRIPT[:end]) is None


TOC = """;
; Archive created at 2026-12-07 03:55:26 UTC
;     TOC Entries: 16
;
6; 2615 17223 SCHEMA - Odd s postgres
216; 1259 17225 TABLE Odd s Mixed Case postgres
217; 1259 17250 TABLE public small postgres
3351; 0 17225 TABLE DATA Odd s Mixed Case postgres
3352; 0 17250 TABLE DATA public small postgres
3353; 0 17251 TABLE DATA public small x postgres
3360; 0 0 SEQUENCE SET Odd s Mixed Case_id_seq postgres
3204; 2606 17232 CONSTRAINT Odd s Mixed Case Mixed Case_pkey postgres
"""


def test_the_entry_lists_put_the_tables_rows_alone_in_the_second() -> None:
    lists = toc_lists(TOC, "Odd s.Mixed Case")
    assert lists is not None
    rest, table = lists
    assert table == "3351; 0 17225 TABLE DATA Odd s Mixed Case postgres\n"
    assert rest == TOC.replace(table, "")
    small = toc_lists(TOC, "small")
    assert small is not None and small[1].startswith("3352;")
    assert toc_lists(TOC, "public.small") == small


def test_no_split_unless_exactly_one_entry_matches() -> None:
    assert toc_lists(TOC, "missing") is None
    assert toc_lists(TOC, "Mixed") is None
    ambiguous = TOC + "3354; 0 17252 TABLE DATA other small x postgres\n"
    assert toc_lists(ambiguous, "small x") is None  # public's or other's?
    assert toc_lists(ambiguous, "public.small x") is not None


def test_only_a_big_enough_largest_table_is_split_and_only_with_two_cpus() -> None:
    big = SPLIT_MIN_BYTES
    assert split_table({"a": big, "b": big - 1, "c": None}, jobs=2) == "a"
    assert split_table({"a": big - 1, "b": 10}, jobs=4) is None
    assert split_table({"a": big * 10}, jobs=1) is None
    assert split_table({"a": None}, jobs=2) is None
    assert split_table({}, jobs=2) is None


def test_every_cut_of_a_short_script_gives_the_same_rows() -> None:
    rows = copy_line([b"\\.", None]) + copy_line([b"\n\\.\n", b"x"]) + b"\\\\.\n"
    stream = rows + END_OF_ROWS + b"\n\\.\n"
    for first in range(len(stream)):
        for second in range(first, len(stream)):
            reads = [stream[first:second], stream[second:]]
            blocks = list(row_blocks(stream[:first], [read for read in reads if read], 8, 0))
            assert b"".join(blocks) == rows, (first, second)


def test_an_entry_list_not_in_utf8_is_read_as_latin1_and_written_back_unchanged() -> None:
    latin = "3351; 0 1 TABLE DATA public Ünïcode postgres\n".encode("latin-1")
    assert toc_codec(latin) == "latin-1"
    assert toc_codec("Ünïcode".encode()) == "utf-8"
    lists = toc_lists(latin.decode(toc_codec(latin)), "Ünïcode")
    assert lists is not None and lists[1].encode("latin-1") == latin
