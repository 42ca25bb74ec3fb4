"""PostgreSQL database-level facts for backups: encoding, locale, extensions.

A backup records how its database was created (``pg_database``: encoding,
``LC_COLLATE``, ``LC_CTYPE``, the locale provider and ICU locale) and which
extensions it uses; a restore creates a missing target the same way. The
values come back from a manifest, which may have been edited, so every one is
checked twice before it reaches SQL: it must look like a name (no quote can
pass the pattern), and the target server must list it (``pg_char_to_encoding``,
``pg_collation``, ``pg_database``, ``pg_available_extensions``). It is then
written as a quoted literal anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: What an encoding, locale or ICU locale name looks like (``en_US.UTF-8``, ``und-u-ks-level2``).
LOCALE_NAME = re.compile(r"^[A-Za-z0-9_.@=-]{1,128}$")
#: What an extension name looks like (``pg_trgm``, ``uuid-ossp``).
EXTENSION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
#: The locale providers ``CREATE DATABASE ... LOCALE_PROVIDER`` accepts.
PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}
#: Locales every server knows without listing them.
_ALWAYS_KNOWN = {"C", "POSIX"}


def database_locale(conn: Connection) -> dict[str, str]:
    """``charset``, ``lc_collate``, ``lc_ctype``, ``locale_provider`` and ``icu_locale``
    of the connected database (the last two only when not the defaults).

    Read through ``to_jsonb`` so that the column names of every server version
    work (``daticulocale`` in 15 and 16, ``datlocale`` from 17).
    """
    row = conn.execute(
        sa.text(
            "SELECT pg_encoding_to_char(d.encoding), to_jsonb(d) FROM pg_database d "
            "WHERE d.datname = current_database()"
        )
    ).one()
    facts: dict[str, Any] = dict(row[1])
    options = {
        "charset": str(row[0]),
        "lc_collate": str(facts.get("datcollate") or ""),
        "lc_ctype": str(facts.get("datctype") or ""),
    }
    provider = PROVIDERS.get(str(facts.get("datlocprovider") or "c"), "libc")
    if provider != "libc":
        options["locale_provider"] = provider
        icu = facts.get("daticulocale") or facts.get("datlocale")
        if icu:
            options["icu_locale"] = str(icu)
    return {key: value for key, value in options.items() if value}


def database_extensions(conn: Connection) -> list[dict[str, str]]:
    """The extensions installed in the connected database (``plpgsql`` included)."""
    rows = conn.execute(
        sa.text(
            "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname"
        )
    )
    return [
        {"name": str(name), "version": str(version), "schema": str(schema)}
        for name, version, schema in rows
    ]


def _locale_known(admin: Connection, value: str) -> bool:
    if value in _ALWAYS_KNOWN:
        return True
    # Debian spells a locale C.UTF-8 in the environment and C.utf8 in pg_collation.
    found = admin.execute(
        sa.text(
            "SELECT 1 FROM pg_collation c WHERE lower(replace(CAST(:v AS text), '-', '')) IN "
            "(lower(replace(c.collname, '-', '')), "
            "lower(replace(coalesce(to_jsonb(c) ->> 'collcollate', ''), '-', ''))) "
            "UNION ALL SELECT 1 FROM pg_database d "
            "WHERE CAST(:v AS text) IN (d.datcollate::text, d.datctype::text) "
            "LIMIT 1"
        ),
        {"v": value},
    ).first()
    return found is not None


def _icu_known(admin: Connection, value: str) -> bool:
    found = admin.execute(
        sa.text(
            "SELECT 1 FROM pg_collation c WHERE c.collprovider = 'i' AND CAST(:v AS text) IN "
            "(c.collname::text, coalesce(to_jsonb(c) ->> 'colliculocale', ''), "
            "coalesce(to_jsonb(c) ->> 'colllocale', '')) LIMIT 1"
        ),
        {"v": value},
    ).first()
    return found is not None


def extension_problems(admin: Connection, extensions: object) -> list[str]:
    """Why the manifest's ``extensions`` cannot be created on ``admin``'s server."""
    if extensions is None:
        return []
    if not isinstance(extensions, Sequence) or isinstance(extensions, str):
        return ["extensions is not a list"]
    problems: list[str] = []
    names: list[str] = []
    for entry in extensions:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not EXTENSION_NAME.match(name):
            problems.append(f"extension {str(name)[:80]!r} is not an extension name")
        else:
            names.append(name)
    if names:
        available = {
            str(row[0])
            for row in admin.execute(
                sa.text("SELECT name FROM pg_available_extensions WHERE name = ANY(:n)"),
                {"n": names},
            )
        }
        missing = [name for name in names if name not in available]
        if missing:
            problems.append(
                f"extension(s) {', '.join(missing)} of the backup are not installed on the "
                "target server (pg_available_extensions); install the package that provides "
                "them (Debian/Ubuntu: postgresql-contrib or postgresql-NN-<extension>)"
            )
    return problems


def option_problems(admin: Connection, options: Mapping[str, Any]) -> list[str]:
    """What of a manifest's ``database_options`` the server of ``admin`` does not know."""
    problems: list[str] = []
    checks: dict[str, Callable[[str], bool]] = {
        "charset": lambda v: (
            int(admin.execute(sa.text("SELECT pg_char_to_encoding(:v)"), {"v": v}).scalar_one())
            >= 0
        ),
        "lc_collate": lambda v: _locale_known(admin, v),
        "lc_ctype": lambda v: _locale_known(admin, v),
        "locale_provider": lambda v: v in PROVIDERS.values(),
        "icu_locale": lambda v: _icu_known(admin, v),
    }
    for key, known in checks.items():
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not LOCALE_NAME.match(value):
            problems.append(f"{key} {str(value)[:80]!r} is not a name")
        elif not known(value):
            problems.append(f"{key} {value!r} is not one this server knows (pg_collation)")
    if options.get("locale_provider", "libc") != "libc":
        server_num = int(admin.execute(sa.text("SHOW server_version_num")).scalar_one())
        if server_num < 150000:
            problems.append(
                f"the backup's database uses the {options['locale_provider']} locale provider, "
                "which this server (before PostgreSQL 15) cannot create"
            )
    problems += extension_problems(admin, options.get("extensions"))
    return problems


def create_database_sql(name_sql: str, options: Mapping[str, Any], server_num: int) -> str:
    """``CREATE DATABASE`` with the (checked) ``options``, from ``template0``.

    ``template0``: template1 may hold objects, and only template0 takes any
    encoding and locale. Values are literals; :func:`option_problems` has
    already refused any that is not a plain name.
    """
    clauses = [f"CREATE DATABASE {name_sql} TEMPLATE template0"]
    words = {"charset": "ENCODING", "lc_collate": "LC_COLLATE", "lc_ctype": "LC_CTYPE"}
    for key, word in words.items():
        value = options.get(key)
        if isinstance(value, str) and LOCALE_NAME.match(value):
            clauses.append(f"{word} '{value}'")
    provider = options.get("locale_provider")
    if provider in ("icu", "builtin") and server_num >= 150000:
        clauses.append(f"LOCALE_PROVIDER {provider}")
        icu = options.get("icu_locale")
        if isinstance(icu, str) and LOCALE_NAME.match(icu):
            clauses.append(f"{'ICU_LOCALE' if provider == 'icu' else 'BUILTIN_LOCALE'} '{icu}'")
    return " ".join(clauses)
