"""Filters of the dashboard's templates."""

from __future__ import annotations

import json
from datetime import datetime

from django import template

from ..examples import readable

register = template.Library()


@register.filter
def moment(value: str | datetime | None) -> str:
    """An ISO 8601 time of the jobs API (or a datetime) as `2025-05-01 12:03:04 UTC`."""
    if value in (None, ""):
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def seconds(value: float | None) -> str:
    """A duration in seconds, readable: `42 s`, `3 min`, `5 h`."""
    if value is None:
        return "never"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.0f} h"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


@register.filter
def pretty_json(value: object) -> str:
    """A job as JSON, one instruction a line (auto-escaped by the template)."""
    if isinstance(value, dict) and all(isinstance(e, dict) for e in value.values()):
        return readable(value)
    return json.dumps(value, indent=2)
