"""Cron expressions: validation and their systemd ``OnCalendar`` equivalent.

Five fields (``minute hour day-of-month month day-of-week``) with lists, ranges,
steps and month/day names, or one of the ``@daily``-style :data:`ALIASES`.
"""

from __future__ import annotations

from migration_guard.errors import ConfigError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
#: (name, lowest, highest) of the five cron fields.
CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
#: Each job takes a cron expression or false; the other keys are strings.


def _value(token: str, index: int) -> int:
    names = _MONTHS if index == 3 else _DAYS if index == 4 else None
    lowered = token.lower()
    if names and lowered in names:
        return names.index(lowered) + (1 if index == 3 else 0)
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a number")
    return int(token)


def expand_field(text: str, index: int) -> set[int]:
    """The values one cron field stands for; ValueError says what is wrong."""
    name, low, high = CRON_FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, index), _value(last, index)
        else:
            start = _value(base, index)
            end = high if step_text else start
        for bound in (start, end):
            if not low <= bound <= high:
                raise ValueError(f"{name}: {bound} is outside {low}-{high}")
        if start > end:
            raise ValueError(f"{name}: range {base} runs backwards")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return values


def parse_cron(expression: str, *, key: str) -> list[str]:
    """The five fields of a cron expression (aliases expanded); ConfigError when invalid."""
    text = ALIASES.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{key}: {expression!r} is not a cron expression; expected five fields "
            '"minute hour day-of-month month day-of-week" (e.g. "0 2 * * *") or '
            f"one of {', '.join(ALIASES)}",
            key=key,
        )
    for index, part in enumerate(fields):
        try:
            expand_field(part, index)
        except ValueError as exc:
            raise ConfigError(f"{key}: {expression!r}: {exc}", key=key) from None
    return fields


def _systemd_values(values: set[int], low: int, high: int, width: int) -> str:
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) > 2:
        step = ordered[1] - ordered[0]
        if ordered == list(range(ordered[0], ordered[-1] + 1, step)) and ordered[-1] + step > high:
            return f"{ordered[0]:0{width}d}/{step}"
    return ",".join(f"{v:0{width}d}" for v in ordered)


def to_on_calendar(expression: str, *, key: str = "schedule") -> str:
    """The systemd ``OnCalendar`` value equal to a cron expression."""
    fields = parse_cron(expression, key=key)
    minute, hour, day, month, weekday = (expand_field(f, i) for i, f in enumerate(fields))
    if fields[2] != "*" and fields[4] != "*":
        raise ConfigError(
            f"{key}: {expression!r} restricts both day of month and day of week; cron runs on "
            "either, systemd only on both: restrict one of them",
            key=key,
        )
    weekdays = ""
    if fields[4] != "*" and len(weekday) < 7:
        weekdays = ",".join(_SYSTEMD_DAYS[d] for d in sorted(weekday)) + " "
    date = f"*-{_systemd_values(month, 1, 12, 2)}-{_systemd_values(day, 1, 31, 2)}"
    time_part = f"{_systemd_values(hour, 0, 23, 2)}:{_systemd_values(minute, 0, 59, 2)}:00"
    return f"{weekdays}{date} {time_part}"
