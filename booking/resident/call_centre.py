"""The call centre's number as every resident page shows it."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html


def call_centre_context(phone: str, hours: str = "") -> dict[str, Any]:
    """The number as written, as dialled (``tel:``), and as the footer's link to tap; and
    when someone answers it, as the municipality wrote it."""
    tel = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    return {
        "call_centre_phone": phone,
        "call_centre_hours": hours,
        "call_centre_tel": tel,
        "call_centre_link": format_html('<a class="tel" href="tel:{}">{}</a>', tel, phone),
    }
