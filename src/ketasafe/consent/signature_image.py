"""Check a drawn signature sent by the browser: a PNG data URL from signature.js. Pure.

Refuses anything that is not a small RGBA PNG, and a blank canvas (no ink), without an image
library: the canvas is transparent until drawn on, so a blank one decodes to all-zero pixels.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib

PREFIX = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 300_000
MAX_WIDTH, MAX_HEIGHT = 2000, 1000


class SignatureImageInvalid(ValueError):
    pass


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = len(PNG_MAGIC), []
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + length]
        if len(data) != length:
            raise SignatureImageInvalid("the signature image is truncated")
        out.append((kind, data))
        pos += 12 + length
        if kind == b"IEND":
            break
    return out


def decode_signature(data_url: str) -> bytes:
    """PNG bytes from a data URL; raises SignatureImageInvalid with a message for staff."""
    if not data_url:
        raise SignatureImageInvalid("the patient has not drawn a signature")
    if not data_url.startswith(PREFIX):
        raise SignatureImageInvalid("the signature is not a PNG image")
    if len(data_url) > MAX_BYTES * 4 // 3 + len(PREFIX) + 4:
        raise SignatureImageInvalid("the signature image is too large")
    try:
        png = base64.b64decode(data_url[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureImageInvalid("the signature image is not valid base64") from None
    if not png.startswith(PNG_MAGIC):
        raise SignatureImageInvalid("the signature is not a PNG image")
    chunks = _chunks(png)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise SignatureImageInvalid("the signature image has no header")
    width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT):
        raise SignatureImageInvalid("the signature image has an unexpected size")
    if depth != 8 or color != 6 or interlace != 0:
        raise SignatureImageInvalid("the signature image is not an 8-bit RGBA canvas image")
    stride = 1 + width * 4
    try:
        raw = zlib.decompressobj().decompress(b"".join(d for k, d in chunks if k == b"IDAT"),
                                              stride * height + 1)
    except zlib.error:
        raise SignatureImageInvalid("the signature image is corrupt") from None
    if len(raw) < stride * height:
        raise SignatureImageInvalid("the signature image is truncated")
    # Filtered rows of an all-zero image are all zero whatever the filter; ink makes them non-zero.
    if not any(any(raw[row * stride + 1:(row + 1) * stride]) for row in range(height)):
        raise SignatureImageInvalid("the signature is blank: ask the patient to sign in the box")
    return png
