"""Times on agent pages, in the viewer's time zone and labelled with it.

The agent views activate the agent's zone (`AgentProfile.timezone`); `{{ value|when }}`
then reads "09:10 CET" today and "Tue 3 Mar 09:10 CET" on other days, and
`{{ value|when_tag }}` wraps that in a `<time>` carrying the ISO instant (for the
countdown script and screen readers).
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def _label(local: dt.datetime) -> str:
    name = local.tzname() or ""
    # zones without an abbreviation answer "+03" (tzdata); say it as a UTC offset
    if name[:1] in "+-":
        name = f"UTC{name}"
    return name


@register.filter
def when(value: dt.datetime | None, today: dt.date | None = None) -> str:
    """VALUE in the active time zone with the zone's name: the time alone on the day it is
    shown, else the weekday and date before it."""
    if not isinstance(value, dt.datetime):
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    today = today or timezone.localdate()
    label = _label(local)
    if local.date() == today:
        text = local.strftime("%H:%M")
    else:
        text = f"{local:%a} {local.day} {local:%b} {local:%H:%M}"
    return f"{text} {label}".strip()


@register.filter
def when_tag(value: dt.datetime | None) -> SafeString | str:
    """`<time datetime="ISO">09:10 CET</time>`, or a dash."""
    if not isinstance(value, dt.datetime):
        return "—"
    return format_html(
        '<time datetime="{}">{}</time>', value.astimezone(dt.UTC).isoformat(), when(value)
    )
