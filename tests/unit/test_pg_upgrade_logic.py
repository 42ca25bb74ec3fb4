"""PostgreSQL upgrade logic that needs no server: statements that refuse a transaction
block, and picking a table's entries out of a pg_dump archive's table of contents."""

from __future__ import annotations

import pytest

from migration_guard.backup.backends.pg_tables import (
    Target,
    owners_of,
    parse_list,
    select_entries,
)
from migration_guard.dialects import get_dialect_ops

OPS = get_dialect_ops("postgresql")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("CREATE INDEX CONCURRENTLY ix ON orders (total)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently ix on orders (total)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY IF EXISTS ix", "DROP INDEX CONCURRENTLY"),
        ("REINDEX TABLE CONCURRENTLY orders", "REINDEX ... CONCURRENTLY"),
        ("REINDEX (VERBOSE) INDEX CONCURRENTLY ix", "REINDEX ... CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) TABLE orders", "REINDEX ... CONCURRENTLY"),
        ("REINDEX DATABASE app", "REINDEX SCHEMA/DATABASE/SYSTEM"),
        ("VACUUM (ANALYZE) orders", "VACUUM"),
        ("-- tidy up\nVACUUM orders", "VACUUM"),
        ("/* x */ vacuum full", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ("CREATE DATABASE other", "CREATE DATABASE"),
        ("SELECT 1; CREATE INDEX CONCURRENTLY ix ON t (a)", "CREATE INDEX CONCURRENTLY"),
        (
            "ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY",
            "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
        ),
    ],
)
def test_statements_that_refuse_a_transaction_block_are_named(sql: str, kind: str) -> None:
    assert OPS.outside_transaction_only(sql, (15, 4)) == kind


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX ix ON orders (total)",
        "DROP INDEX ix",
        "REINDEX TABLE orders",
        "ALTER TABLE orders ADD COLUMN note text",
        "INSERT INTO log (msg) VALUES ('VACUUM later')",
        "UPDATE t SET note = 'create index concurrently'",
        "ALTER TYPE mood ADD VALUE 'soso'",
    ],
)
def test_transactional_statements_pass(sql: str) -> None:
    assert OPS.outside_transaction_only(sql, (15, 4)) is None


def test_adding_an_enum_value_refuses_a_transaction_only_before_12() -> None:
    sql = "ALTER TYPE mood ADD VALUE 'soso'"
    assert OPS.outside_transaction_only(sql, (11, 9)) is not None
    assert OPS.outside_transaction_only(sql, (12, 0)) is None
    assert OPS.outside_transaction_only("ALTER TYPE \"My Mood\" ADD VALUE 'x'", (10, 1))


def test_other_dialects_refuse_nothing() -> None:
    for name in ("mysql", "sqlite"):
        ops = get_dialect_ops(name)
        assert ops.outside_transaction_only("VACUUM", None) is None
        assert not ops.transactional_ddl
    assert OPS.transactional_ddl


TOC = """\
;
; Archive created at 2026-12-06 23:00:00 UTC
;
215; 1259 16390 TABLE public customers postgres
216; 1259 16395 SEQUENCE public customers_id_seq postgres
3380; 0 0 SEQUENCE OWNED BY public customers_id_seq postgres
217; 1259 16396 TABLE public orders postgres
218; 1259 16400 TABLE public orders_archive postgres
219; 1259 16401 SEQUENCE public orders_id_seq postgres
3210; 2604 16402 DEFAULT public customers id postgres
3390; 0 16390 TABLE DATA public customers postgres
3391; 0 16396 TABLE DATA public orders postgres
3392; 0 16400 TABLE DATA public orders_archive postgres
3393; 0 0 SEQUENCE SET public customers_id_seq postgres
3394; 0 0 SEQUENCE SET public orders_id_seq postgres
3220; 2606 16410 CONSTRAINT public customers customers_pkey postgres
3222; 2606 16412 CONSTRAINT public orders orders_pkey postgres
3224; 1259 16414 INDEX public ix_orders_total postgres
3226; 1259 16416 INDEX public ix_archive postgres
3230; 2620 16420 TRIGGER public orders trg_orders postgres
3232; 2606 16422 FK CONSTRAINT public orders orders_customer_id_fkey postgres
3400; 0 0 COMMENT public TABLE orders postgres
3401; 0 0 COMMENT public COLUMN orders.total postgres
3402; 0 0 ACL public TABLE orders postgres
3403; 0 0 ACL public TABLE orders_archive postgres
"""

DEFINITIONS = """\
--
-- Name: customers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;


--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

ALTER TABLE public.orders ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.orders_id_seq
);


--
-- Name: ix_orders_total; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX ix_orders_total ON public.orders USING btree (total);


--
-- Name: ix_archive; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX ix_archive ON public.orders_archive USING btree (id);
"""


def _tags(entries: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(entry.kind, entry.tag) for entry in entries]


def test_a_tables_entries_are_picked_from_the_archive_and_no_others() -> None:
    entries = parse_list(TOC)
    assert len(entries) == 22
    owners = owners_of(DEFINITIONS)
    assert owners[("INDEX", "public", "ix_orders_total")] == "public.orders"
    assert owners[("SEQUENCE OWNED BY", "public", "customers_id_seq")] == "public.customers"
    assert owners[("SEQUENCE", "public", "orders_id_seq")] == "public.orders"
    chosen = select_entries(entries, [Target("public", "orders", "public.orders")], owners)
    assert _tags(chosen) == [
        ("TABLE", "orders"),
        ("SEQUENCE", "orders_id_seq"),
        ("TABLE DATA", "orders"),
        ("SEQUENCE SET", "orders_id_seq"),
        ("CONSTRAINT", "orders orders_pkey"),
        ("INDEX", "ix_orders_total"),
        ("TRIGGER", "orders trg_orders"),
        ("FK CONSTRAINT", "orders orders_customer_id_fkey"),
        ("COMMENT", "TABLE orders"),
        ("COMMENT", "COLUMN orders.total"),
        ("ACL", "TABLE orders"),
    ]
    customers = select_entries(entries, [Target("public", "customers", "public.customers")], owners)
    assert _tags(customers) == [
        ("TABLE", "customers"),
        ("SEQUENCE", "customers_id_seq"),
        ("SEQUENCE OWNED BY", "customers_id_seq"),
        ("DEFAULT", "customers id"),
        ("TABLE DATA", "customers"),
        ("SEQUENCE SET", "customers_id_seq"),
        ("CONSTRAINT", "customers customers_pkey"),
    ]
