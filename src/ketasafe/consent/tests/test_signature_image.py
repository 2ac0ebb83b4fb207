"""The drawn-signature check refuses anything but a small, non-blank RGBA PNG."""

from __future__ import annotations

import base64

import pytest

from ketasafe.consent.signature_image import SignatureImageInvalid, decode_signature
from ketasafe.screening.tests.helpers import data_url, png


def test_inked_canvas_png_is_accepted():
    assert decode_signature(data_url()) == png()


@pytest.mark.parametrize(("value", "text"), [
    ("", "not drawn"),
    ("data:image/jpeg;base64,AAAA", "not a PNG"),
    ("data:image/png;base64," + base64.b64encode(b"GIF89a....").decode(), "not a PNG"),
    (data_url(ink=False), "blank"),
    (data_url(width=5000, height=10), "unexpected size"),
    ("data:image/png;base64," + base64.b64encode(png()[:40]).decode(), "truncated"),
])
def test_bad_signature_images_are_refused(value, text):
    with pytest.raises(SignatureImageInvalid, match=text):
        decode_signature(value)
