"""Time as the service writes it: UTC, millisecond ISO-8601 text that sorts like the instants it names."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """Millisecond ISO-8601 in UTC: sorts as text, which the list indexes rely on."""
    return (moment or utcnow()).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """The inverse of `iso` (accepts any ISO-8601 with a zone)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
