"""The database URL a command works on: from the argument, the config or the environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from migration_guard.config import URL_ENV, Config
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["resolve_url"]


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
    text = url or config.url or os.environ.get(URL_ENV)
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
