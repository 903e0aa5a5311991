"""Text a municipality writes (venue names, addresses, access notes, vaccine and phase names,
the call centre's hours) is in Japanese whatever language the page is in: on a page in
another language it is marked as Japanese (WCAG 3.1.2, language of parts), so a screen
reader reads it with a Japanese voice instead of spelling it out in an English one.

    {% load municipal_text %} … {{ venue.name|ja }}

Only for text content, never inside an attribute.

The printed confirmation is read by the venue's staff, in Japanese: on a page in another
language, its labels carry the Japanese beside them (``sheet_ja``), in the page's context
``sheet`` only.

    {% translate "会場" %}{% sheet_ja "会場" %}"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.translation import get_language

register = template.Library()


@register.filter
def ja(value: Any) -> Any:
    if value in (None, "") or (get_language() or "ja").startswith("ja"):
        return value  # escaped as any value is
    return format_html('<span lang="ja">{}</span>', value)


@register.simple_tag(takes_context=True)
def sheet_ja(context: template.Context, text: str) -> str:
    """`` ／ 会場`` (marked as Japanese) after a label of the printed sheet on a page in
    another language; nothing elsewhere."""
    if not context.get("sheet") or (get_language() or "ja").startswith("ja"):
        return ""
    return format_html('<span lang="ja" class="sheet-ja"> ／ {}</span>', text)
