"""The database URL a command works on: from the argument, the config or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from migration_guard.config import URL_ENV, Config
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["PlainURL", "parse_plain_url", "resolve_plain_url", "resolve_url", "sqlalchemy_url"]

#: A PyMySQL URL with nothing SQLAlchemy would quote or translate: user, optional
#: password, host, optional port and database, no query but ``charset``. The same text
#: parses to the same parts under SQLAlchemy's own ``make_url`` (tests compare them).
_PLAIN = (
    r"(?P<drivername>(?:mysql|mariadb)\+pymysql)://"
    r"(?:(?P<username>[A-Za-z0-9_.-]+)(?::(?P<password>[^@/?#\s]*))?@)?"
    r"(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"/(?P<database>[A-Za-z0-9_-]+)"
    r"(?:\?charset=(?P<charset>[A-Za-z0-9_]+))?"
)


class PlainURL:
    """A database URL parsed without SQLAlchemy (:func:`parse_plain_url`).

    It has the parts and methods of SQLAlchemy's ``URL`` that a short command needs
    (an incremental backup: one login and a client tool), so that such a command need
    not import SQLAlchemy at all; :func:`sqlalchemy_url` turns it into the real thing.
    """

    __slots__ = ("database", "drivername", "host", "password", "port", "query", "username")

    def __init__(
        self,
        drivername: str,
        username: str | None,
        password: str | None,
        host: str,
        port: int | None,
        database: str,
        query: Mapping[str, str | tuple[str, ...]] | None = None,
    ) -> None:
        self.drivername = drivername
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.query: Mapping[str, str | tuple[str, ...]] = dict(query or {})

    def without_password(self) -> PlainURL:
        return PlainURL(
            self.drivername, self.username, None, self.host, self.port, self.database, self.query
        )

    def get_backend_name(self) -> str:
        return self.drivername.split("+", 1)[0]

    def get_driver_name(self) -> str:
        return self.drivername.split("+", 1)[1]

    def render_as_string(self, hide_password: bool = True) -> str:
        """As SQLAlchemy renders the same URL (its parts need no quoting)."""
        text = self.drivername + "://"
        if self.username is not None:
            text += self.username
            if self.password is not None:
                text += ":" + ("***" if hide_password else _quote_password(self.password))
            text += "@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        text += f"/{self.database}"
        if self.query:
            text += "?" + "&".join(f"{key}={self.query[key]}" for key in sorted(self.query))
        return text

    def __repr__(self) -> str:
        return self.render_as_string()


def _quote_password(password: str) -> str:
    from urllib.parse import quote

    return quote(password, safe=" +")


def parse_plain_url(text: str) -> PlainURL | None:
    """``text`` as a :class:`PlainURL`, or None when it is not that simple (then
    SQLAlchemy parses it)."""
    import re

    found = re.fullmatch(_PLAIN, text)
    if found is None:
        return None
    from urllib.parse import unquote

    password = found.group("password")
    port = found.group("port")
    charset = found.group("charset")
    return PlainURL(
        drivername=found.group("drivername"),
        username=found.group("username"),
        password=None if password is None else unquote(password),
        host=found.group("host"),
        port=None if port is None else int(port),
        database=found.group("database"),
        query={} if charset is None else {"charset": charset},
    )


def resolve_plain_url(config: Config, url: str | URL | None) -> URL | PlainURL:
    """Like :func:`resolve_url`, but a plain URL (:func:`parse_plain_url`) is parsed
    without importing SQLAlchemy, unless it is loaded already (a library caller)."""
    import sys

    if url is None or isinstance(url, str):
        text = _url_text(config, url)
        if text and "sqlalchemy" not in sys.modules:
            plain = parse_plain_url(str(text))
            if plain is not None:
                return plain
    return resolve_url(config, url)


def sqlalchemy_url(url: URL | PlainURL) -> URL:
    """SQLAlchemy's ``URL`` of ``url``."""
    from sqlalchemy.engine import make_url

    if isinstance(url, PlainURL):
        return make_url(url.render_as_string(hide_password=False))
    return url


def resolve_url(config: Config, url: str | URL | None) -> URL:
    """The database URL from the argument, config ``url`` or ``MIGRATION_GUARD_URL``.

    :class:`UsageError` when there is none or it does not parse; the message never
    repeats the text, which may hold a password.
    """
    from sqlalchemy.engine import URL as SaURL
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, SaURL):
        return url
    text = _url_text(config, url)
    if not text:
        raise UsageError(
            f"no database URL: pass --url, set url in [tool.migration_guard] or set {URL_ENV}"
        )
    try:
        return make_url(str(text))
    except ArgumentError:
        raise UsageError(
            "the database URL is not a SQLAlchemy URL; expected e.g. "
            "mysql+pymysql://user@host/db or sqlite:///app.db"
        ) from None


def _url_text(config: Config, url: str | None) -> str | None:
    """The URL given, else the configured one, else ``MIGRATION_GUARD_URL``."""
    return url or config.url or os.environ.get(URL_ENV)
