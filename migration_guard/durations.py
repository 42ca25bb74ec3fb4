"""Durations (``"26h"``, ``"1d12h"``) and sizes (``"10MB"``) as written in the config."""

from __future__ import annotations

import re
from datetime import timedelta

from migration_guard.errors import ConfigError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
DURATION_FORMS = (
    "a number followed by a unit, s (seconds), m (minutes), h (hours), d (days) or "
    'w (weeks), optionally combined: "3s", "90m", "26h", "7d", "1w", "1d12h"'
)

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}
SIZE_FORMS = 'a number of bytes or a number with a unit: 1048576, "500KB", "10MB", "2GiB"'


def parse_duration(value: object, *, key: str) -> timedelta:
    """``"1d12h"`` -> ``timedelta(days=1, hours=12)``.

    ``key`` is the dotted config key (``monitor.max_age.full``) named in the
    :class:`ConfigError` raised for anything else, together with the accepted forms.
    """
    text = value.strip().lower().replace(" ", "") if isinstance(value, str) else None
    if not text or not _DURATION.match(text):
        raise ConfigError(f"{key}: {value!r} is not a duration; expected {DURATION_FORMS}", key=key)
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
    if seconds <= 0:
        raise ConfigError(f"{key}: {value!r} must be longer than zero", key=key)
    return timedelta(seconds=seconds)


def parse_size(value: object, *, key: str) -> int:
    """``"10MB"`` -> ``10_000_000``; ``"2GiB"`` -> ``2 * 1024**3``; an int is bytes."""
    if isinstance(value, bool):
        match = None
    elif isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key}: {value!r} must not be negative", key=key)
        return value
    else:
        match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"{key}: {value!r} is not a size; expected {SIZE_FORMS}", key=key)
    number, unit = match.groups()
    return int(float(number) * _SIZE_FACTORS[(unit or "").lower()])


def format_duration(delta: timedelta) -> str:
    """A short human form: ``"3d 4h"``, ``"5h 12m"``, ``"42s"``; negative means in the future."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts: list[str] = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


def format_size(size: int | None) -> str:
    """Bytes in binary units: ``"1.5 MiB"``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover
