"""The booking number as a QR code, drawn on the server (no third-party request, no script)."""

from __future__ import annotations

import segno


def qr_data_uri(text: str) -> str:
    """A PNG ``data:`` URI (the CSP allows ``img-src data:``), sized to scan from paper."""
    return str(segno.make(text, error="m", micro=False).png_data_uri(scale=8, border=4))
