"""Pure logic of ``protect``: names, quoting, patterns, options. No database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.commands.protect import expand_patterns
from migration_guard.dialects.mysql import parse_server_version as parse_version
from migration_guard.errors import ConfigError, UsageError
from migration_guard.protect import Account, ProtectPlan, parse_table_options
from migration_guard.protect.mysql.grants import schema_pattern_is_literal, schema_pattern_matches
from migration_guard.protect.mysql.server import BINLOG_FIX, binlog_problem
from migration_guard.protect.mysql.sql import Quoting, delete_message, trigger_name

names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=64,
)


@given(names)
def test_trigger_names_fit_and_stay_distinct(table: str) -> None:
    name = trigger_name(table)
    assert len(name) <= 64
    assert name.startswith("mg_guard_") and name.endswith("_bd")
    if len(table) > 64 - len("mg_guard__bd"):
        assert trigger_name(table + "x") != name


@given(names)
def test_delete_message_fits_message_text(table: str) -> None:
    message = delete_message(table)
    assert len(message) <= 128
    assert "SET @migration_guard_allow_delete = 1" in message
    assert "\\" not in message


@given(names)
def test_identifier_quoting_round_trips(name: str) -> None:
    quoted = Quoting().ident(name)
    assert quoted.startswith("`") and quoted.endswith("`")
    inner = quoted[1:-1]
    assert inner.replace("``", "").count("`") == 0
    assert inner.replace("``", "`") == name


def test_string_quoting_depends_on_sql_mode() -> None:
    assert Quoting().string("it's \\") == "'it''s \\\\'"
    assert Quoting(no_backslash_escapes=True).string("it's \\") == "'it''s \\'"
    assert Quoting().account(Account("o'neil", "%")) == "'o''neil'@'%'"


def test_account_parse() -> None:
    assert Account.parse("app") == Account("app", "%")
    assert Account.parse("app@10.0.0.%") == Account("app", "10.0.0.%")
    assert Account.parse("we@ird@host") == Account("we@ird", "host")
    with pytest.raises(UsageError):
        Account.parse("@host")


def test_schema_patterns() -> None:
    assert schema_pattern_matches("app_db", "app_db")
    assert schema_pattern_matches("app\\_db", "app_db")
    assert schema_pattern_matches("app%", "app_db")
    assert not schema_pattern_matches("app\\_db", "appxdb")
    assert schema_pattern_is_literal("app\\_db", "app_db")
    assert schema_pattern_is_literal("app_db", "app_db")
    assert not schema_pattern_is_literal("app%", "app_db")


def test_binlog_problem_and_versions() -> None:
    assert (
        binlog_problem(log_bin=True, trust_function_creators=False, has_super=False) == BINLOG_FIX
    )
    assert binlog_problem(log_bin=True, trust_function_creators=True, has_super=False) is None
    assert binlog_problem(log_bin=True, trust_function_creators=False, has_super=True) is None
    assert binlog_problem(log_bin=False, trust_function_creators=False, has_super=False) is None
    assert parse_version("10.11.19-MariaDB-0+deb12u1") == ((10, 11, 19), True)
    assert parse_version("8.0.36") == ((8, 0, 36), False)


def test_table_options_are_validated() -> None:
    assert parse_table_options({"audit_log": {"deletes": "allow"}})["audit_log"].deletes == "allow"
    with pytest.raises(ConfigError, match=r"unknown key 'delete'.*known keys: deletes"):
        parse_table_options({"audit_log": {"delete": "allow"}})
    with pytest.raises(ConfigError, match="deletes must be one of"):
        parse_table_options({"audit_log": {"deletes": "maybe"}})


def test_expand_patterns() -> None:
    tables = ["Customers", "orders", "order_items"]
    assert expand_patterns(["customers", "order*"], tables) == [
        "Customers",
        "order_items",
        "orders",
    ]
    assert expand_patterns(["app.orders"], tables, "app") == ["orders"]
    with pytest.raises(UsageError, match="'nope'"):
        expand_patterns(["orders", "nope"], tables)


def test_expand_patterns_with_schema_qualified_names() -> None:
    """PostgreSQL lists tables outside the current schema as ``schema.table``."""
    tables = ["customers", "app.accounts", "app.audit", "billing.accounts"]
    assert expand_patterns(["app.*"], tables, "shop") == ["app.accounts", "app.audit"]
    assert expand_patterns(["*.accounts"], tables, "shop") == ["app.accounts", "billing.accounts"]
    assert expand_patterns(["customers"], tables, "shop") == ["customers"]
    assert expand_patterns(["shop.customers"], tables, "shop") == ["customers"]
    with pytest.raises(UsageError, match="'accounts'"):
        expand_patterns(["accounts"], tables, "shop")


def test_plan_render_is_exact_sql() -> None:
    plan = ProtectPlan("install", "mysql", "app")
    assert "nothing to do" in plan.render()
    plan.add("why", "GRANT X ON `a`.`b` TO 'u'@'%'", "REVOKE X ON `a`.`b` FROM 'u'@'%'")
    assert "GRANT X ON `a`.`b` TO 'u'@'%';" in plan.render()
