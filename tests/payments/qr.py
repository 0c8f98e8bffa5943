"""Reading QR codes back with zbar (pyzbar over Debian's libzbar0), as a phone's scanner would."""

from __future__ import annotations

import io

import pytest


def decode_qr(png: bytes) -> list[str]:
    """The texts of every QR code in a PNG image."""
    try:
        from pyzbar import pyzbar
    except ImportError as exc:  # libzbar0 missing: .ci/run installs it
        pytest.fail(f"zbar is not available: {exc}")
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return [symbol.data.decode("utf-8") for symbol in pyzbar.decode(image)]
