"""URLs parsed without SQLAlchemy (``urls.PlainURL``) mean what SQLAlchemy makes of them.

An incremental backup run as its own process parses a plain ``mysql+pymysql`` URL
itself, so that it never imports SQLAlchemy; the manifest's ``source_url`` links a
chain, so it must be the very text SQLAlchemy renders for the same URL.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from migration_guard.backup.manifest import redact_url
from migration_guard.dialects.mysql_server import pymysql_connect_args
from migration_guard.urls import parse_plain_url, sqlalchemy_url

PLAIN = [
    "mysql+pymysql://root@127.0.0.1:3307/shop",
    "mariadb+pymysql://app:s3cr%40t:x@db.example.com/shop_2",
    "mysql+pymysql://app:@db:1/x",
    "mysql+pymysql://db.internal/shop",
    "mysql+pymysql://a.b-c:p+q~r@h/d-b",
    "mysql+pymysql://u:p@h:0/db",
    "mysql+pymysql://root@127.0.0.1:3307/shop?charset=utf8mb4",
]
NOT_PLAIN = [
    "mysql+pymysql://app:pw@db/shop?charset=utf8mb4&local_infile=1",
    "mysql+pymysql://app:pw@db/shop?charset=utf-8",
    "mysql+pymysql://app:pw@db/shop?ssl_ca=/ca.pem",
    "mysql+pymysql://app:p w@db/shop",
    "mysql+pymysql://app@[::1]:3306/shop",
    "mysql+pymysql://app@db/",
    "mysql+mysqldb://app@db/shop",
    "mysql://app@db/shop",
    "sqlite:///app.db",
    "postgresql+psycopg://app@db/shop",
    "mysql+pymysql://us%20er@db/shop",
    "mysql+pymysql://app@db/sh$op",
    "mysql+pymysql://app@db/sh%6fp",
]


@pytest.mark.parametrize("text", PLAIN)
def test_a_plain_url_has_the_parts_and_renderings_sqlalchemy_gives_it(text: str) -> None:
    plain = parse_plain_url(text)
    assert plain is not None
    real = sa.make_url(text)
    for part in ("drivername", "username", "password", "host", "port", "database"):
        assert getattr(plain, part) == getattr(real, part), part
    assert dict(real.query) == dict(plain.query)
    assert plain.get_backend_name() == real.get_backend_name()
    assert plain.get_driver_name() == real.get_driver_name()
    for hide in (True, False):
        assert plain.render_as_string(hide_password=hide) == real.render_as_string(hide)
    assert redact_url(plain) == redact_url(real)
    assert sqlalchemy_url(plain) == real


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_is_left_to_sqlalchemy(text: str) -> None:
    assert parse_plain_url(text) is None


@pytest.mark.parametrize("text", PLAIN)
def test_pymysql_gets_the_arguments_sqlalchemys_dialect_would_pass(text: str) -> None:
    plain = parse_plain_url(text)
    assert plain is not None
    engine = sa.create_engine(text)
    try:
        _args, expected = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    assert pymysql_connect_args(plain) == expected


INCREMENTAL_PATH = """
import json, sys
from migration_guard.config import Config
from migration_guard.urls import resolve_plain_url
import migration_guard.cli.backup
import migration_guard.commands.backup
import migration_guard.backup.creation
from migration_guard.backup.backends import get_backend
from migration_guard.backup.manifest import redact_url
url = resolve_plain_url(Config(), "mysql+pymysql://root:pw@127.0.0.1:3307/shop")
get_backend("binlog")
print(json.dumps([type(url).__name__, redact_url(url), "sqlalchemy" in sys.modules]))
"""


def test_the_incremental_backup_path_does_not_import_sqlalchemy() -> None:
    output = subprocess.run(
        [sys.executable, "-c", INCREMENTAL_PATH], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(output) == ["PlainURL", "mysql+pymysql://root@127.0.0.1:3307/shop", False]
