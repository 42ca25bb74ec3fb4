"""The manifest: one JSON document per backup that says what the archive holds.

A backup exists only when its manifest exists (see :mod:`migration_guard.backup.catalog`).
The manifest never contains key material or a password: the source URL is stored
without its password and the encryption is described by the key's fingerprint.

Table entries are either measured (``rows``, ``checksum``, ``size``, ``ddl_sha256``,
``content_sha256``) or, for a later incremental type, a reference ``{"ref": "<parent id>"}`` to the
backup that holds the unchanged table.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from migration_guard.errors import BackupError, translate

#: Bumped when a field changes meaning; readers refuse newer major versions.
SCHEMA_VERSION = 1
MANIFEST_KIND = "migration-guard-manifest"
BACKUP_TYPES = ("full", "critical", "tables", "incremental", "safety")
ENCRYPTION_ALGORITHM = "AES-256-GCM-STREAM"
ID_PATTERN = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<type>[a-z]+)-(?P<suffix>[0-9a-f]{6})$")
_ID_STAMP = "%Y%m%dT%H%M%SZ"


#: The ``extra`` key naming the method of the tables' ``checksum`` (PostgreSQL:
#: ``record-v2``); a manifest without it was measured with the dialect's unnamed
#: method (:attr:`~migration_guard.dialects.base.DialectOps.unnamed_digest`).
ROW_DIGEST_METHOD = "row_digest_method"


class ManifestError(BackupError):
    """A manifest file cannot be read or does not describe a backup."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix and second precision or better."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    text = moment.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; naive values are taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def new_backup_id(backup_type: str, moment: datetime | None = None) -> str:
    """A sortable, unique id: ``YYYYMMDDTHHMMSSZ-<type>-<6 hex>``."""
    if backup_type not in BACKUP_TYPES:
        raise BackupError(
            f"unknown backup type {backup_type!r}; known types: {', '.join(BACKUP_TYPES)}"
        )
    moment = (moment or utc_now()).astimezone(timezone.utc)
    return f"{moment.strftime(_ID_STAMP)}-{backup_type}-{secrets.token_hex(3)}"


def is_backup_id(text: str) -> bool:
    return ID_PATTERN.match(text) is not None


def created_by() -> str:
    """``user@host`` of the process creating a backup."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def redact_url(url: object) -> str:
    """The URL as text without any password (not even ``***``)."""
    from migration_guard.urls import PlainURL

    if isinstance(url, PlainURL):  # parsed without SQLAlchemy: rendered the same way
        return url.without_password().render_as_string()
    from sqlalchemy.engine import URL, make_url

    if isinstance(url, URL):
        parsed = url
    else:
        try:
            parsed = make_url(str(url))
        except Exception:  # an unparsable URL must not leak through an error message
            return "<unparsable URL>"
    if parsed.password is not None:
        parsed = parsed.set(password=None)
    return parsed.render_as_string(hide_password=True).replace(":***@", "@")


@dataclass
class TableEntry:
    """What the backup knows about one table, or a reference to a parent backup."""

    rows: int | None = None
    checksum: int | str | None = None
    size: int | None = None
    ddl_sha256: str | None = None
    #: Digest of the rows as the dump printed them (mysqldump backend; see dumpscan).
    content_sha256: str | None = None
    #: Id of the backup that holds this table unchanged (incremental backups).
    ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.ref is not None:
            return {"ref": self.ref}
        return {
            "rows": self.rows,
            "checksum": self.checksum,
            "size": self.size,
            "ddl_sha256": self.ddl_sha256,
            **({"content_sha256": self.content_sha256} if self.content_sha256 else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableEntry:
        if "ref" in data:
            return cls(ref=str(data["ref"]))
        return cls(
            rows=_opt_int(data.get("rows")),
            checksum=data.get("checksum"),
            size=_opt_int(data.get("size")),
            ddl_sha256=data.get("ddl_sha256"),
            content_sha256=data.get("content_sha256"),
        )


@dataclass
class Encryption:
    key_fingerprint: str
    algorithm: str = ENCRYPTION_ALGORITHM


@dataclass
class Artifact:
    """The archive file on disk."""

    file: str
    size: int
    sha256: str
    compression: str
    encryption: Encryption | None
    stream_format: str
    #: Size of the plain (decrypted, decompressed) stream.
    plain_size: int | None = None


@dataclass
class Verification:
    """The most recent verification of a backup."""

    last_verified_at: str | None = None
    level: int | None = None
    ok: bool | None = None
    restore_test_at: str | None = None
    restore_test_ok: bool | None = None
    details: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    """Everything recorded about one backup. Serialised with :meth:`to_json`."""

    id: str
    type: str
    source_url: str
    dialect: str
    started_at: str
    finished_at: str
    artifact: Artifact
    backend: str
    tool_version: str
    created_by: str
    parent: str | None = None
    server_version: str | None = None
    #: Binary log file/position and GTID set at the snapshot, when known.
    binlog: dict[str, Any] | None = None
    tables: dict[str, TableEntry] = field(default_factory=dict)
    #: Views, triggers, routines, events... as counted by the backend.
    objects: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    verification: Verification = field(default_factory=Verification)
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``{"scheme": "hmac-sha256", "mac": hex}`` (encrypted backups), ``{"scheme": "none"}``
    #: (unencrypted ones), or None for a manifest written before manifests were authenticated.
    authentication: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def started(self) -> datetime:
        return parse_time(self.started_at)

    @property
    def finished(self) -> datetime:
        return parse_time(self.finished_at)

    @property
    def encrypted(self) -> bool:
        return self.artifact.encryption is not None

    @property
    def verified(self) -> bool:
        """Whether a verification of level 1 or higher passed: the one meaning of
        "verified" for retention, ``status`` and ``monitor``. The re-read right after
        writing (level 0) does not count."""
        return self.verification.ok is True and (self.verification.level or 0) >= 1

    def referenced_ids(self) -> set[str]:
        """Backups this one needs to be restored (its parent and table references)."""
        needed = {entry.ref for entry in self.tables.values() if entry.ref}
        if self.parent:
            needed.add(self.parent)
        return needed

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": MANIFEST_KIND, "schema_version": self.schema_version}
        plain = dataclasses.asdict(self)
        for item in dataclasses.fields(self):
            if item.name in ("schema_version", "tables"):
                continue
            data[item.name] = plain[item.name]
        data["tables"] = {name: entry.to_dict() for name, entry in self.tables.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "manifest") -> Manifest:
        """Parse a manifest; :class:`ManifestError` names what is wrong."""
        if not isinstance(data, Mapping) or data.get("kind") != MANIFEST_KIND:
            raise ManifestError(f"{source} is not a migration-guard manifest")
        version = data.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise ManifestError(f"{source} has no valid schema_version")
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"{source} has schema_version {version}, newer than this migration-guard "
                f"understands ({SCHEMA_VERSION}); upgrade migration-guard"
            )
        try:
            artifact_data = dict(data["artifact"])
            encryption_data = artifact_data.pop("encryption", None)
            artifact = Artifact(
                encryption=Encryption(**encryption_data) if encryption_data else None,
                **artifact_data,
            )
            verification = Verification(**dict(data.get("verification") or {}))
            tables = {
                str(name): TableEntry.from_dict(entry)
                for name, entry in dict(data.get("tables") or {}).items()
            }
            manifest = cls(
                id=str(data["id"]),
                type=str(data["type"]),
                source_url=str(data["source_url"]),
                dialect=str(data["dialect"]),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                artifact=artifact,
                backend=str(data["backend"]),
                tool_version=str(data["tool_version"]),
                created_by=str(data.get("created_by", "")),
                parent=data.get("parent"),
                server_version=data.get("server_version"),
                binlog=data.get("binlog"),
                tables=tables,
                objects=dict(data.get("objects") or {}),
                labels=dict(data.get("labels") or {}),
                plan=dict(data.get("plan") or {}),
                verification=verification,
                extra=dict(data.get("extra") or {}),
                authentication=_opt_dict(data.get("authentication")),
                schema_version=version,
            )
            manifest.started  # noqa: B018 - validates the timestamps
            manifest.finished  # noqa: B018
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{source} is malformed: {type(exc).__name__}: {exc}") from None
        if manifest.type not in BACKUP_TYPES:
            raise ManifestError(f"{source} has unknown backup type {manifest.type!r}")
        return manifest

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest") -> Manifest:
        with translate({ValueError: ManifestError}, doing=f"{source} is not valid JSON"):
            data = json.loads(text)  # UnicodeDecodeError is a ValueError
        return cls.from_dict(data, source=source)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("field 'authentication' is not an object")
    return dict(value)


# -- authentication ----------------------------------------------------------------------------
#: The scheme of an authenticated manifest (see docs/format.md, "The manifest MAC").
MAC_SCHEME = "hmac-sha256"
#: The scheme recorded by unencrypted backups: nothing to derive a MAC key from.
NO_MAC_SCHEME = "none"
#: State that changes after the backup was written, left out of the MAC: the
#: ``verification`` record and, inside ``extra``, these keys.
MUTABLE_EXTRA = ("last_drill",)


def authenticated_content(manifest: Manifest) -> bytes:
    """The bytes the manifest MAC covers: canonical JSON without the mutable state.

    Canonical: sorted keys, no whitespace, UTF-8 (``ensure_ascii=False``). Left
    out: ``verification`` and ``authentication`` at the top, and
    :data:`MUTABLE_EXTRA` inside ``extra``.
    """
    data = manifest.to_dict()
    data.pop("verification", None)
    data.pop("authentication", None)
    data["extra"] = {k: v for k, v in data["extra"].items() if k not in MUTABLE_EXTRA}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def manifest_mac(manifest: Manifest, key: bytes) -> str:
    """HMAC-SHA256 of :func:`authenticated_content` under the archive's manifest key, in hex."""
    return hmac.new(key, authenticated_content(manifest), hashlib.sha256).hexdigest()


def seal_manifest(manifest: Manifest, key: bytes | None) -> None:
    """Record the manifest's MAC (``key`` from the archive writer), or mark it unauthenticated."""
    if key is None:
        manifest.authentication = {"scheme": NO_MAC_SCHEME}
    else:
        manifest.authentication = {"scheme": MAC_SCHEME, "mac": manifest_mac(manifest, key)}


def mac_matches(manifest: Manifest, key: bytes) -> bool:
    """Whether the manifest carries a MAC and it is the one ``key`` gives for its content."""
    recorded = (manifest.authentication or {}).get("mac")
    if (manifest.authentication or {}).get("scheme") != MAC_SCHEME or not isinstance(recorded, str):
        return False
    return hmac.compare_digest(manifest_mac(manifest, key), recorded)
