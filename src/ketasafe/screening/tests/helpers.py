"""Small builders for screening and consent tests (plain functions over the services)."""

from __future__ import annotations

import base64
import datetime as dt
import struct
import zlib
from typing import Any

from ketasafe.consent import services as consent_services
from ketasafe.consent.models import ConsentSignature, ConsentVersion, Kind
from ketasafe.screening import services
from ketasafe.screening.models import Screening

PROTOCOL = "iv-ketamine-depression"
JUSTIFICATION = "Reviewed with the patient; benefit outweighs the risk."


def completed(patient: Any, nurse: Any, protocol: str = PROTOCOL, **fields: Any) -> Screening:
    screening = services.do_start_intake(actor=nurse, patient=patient, protocol=protocol,
                                         indication="treatment-resistant depression")
    return services.do_complete_screening(actor=nurse, screening=screening, **fields)


def signed(patient: Any, nurse: Any, prescriber: Any, protocol: str = PROTOCOL, **fields: Any) -> Screening:
    screening = completed(patient, nurse, protocol, **fields)
    return services.do_sign_screening(actor=prescriber, screening=screening,
                                      justifications={f["rule"]: JUSTIFICATION for f in screening.warnings})


def png(width: int = 40, height: int = 20, ink: bool = True) -> bytes:
    """A tiny RGBA PNG like a canvas export; with `ink`, one black opaque pixel."""
    rows = []
    for y in range(height):
        row = bytearray(width * 4)
        if ink and y == height // 2:
            row[4 * 3:4 * 4] = b"\x00\x00\x00\xff"
        rows.append(b"\x00" + bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def data_url(**kw: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(png(**kw)).decode()


def published(admin: Any, protocol: str = PROTOCOL, kind: str = Kind.TREATMENT,
              effective: dt.date | None = None, title: str = "Consent to IV ketamine") -> ConsentVersion:
    version = consent_services.do_create_version(
        actor=admin, protocol=protocol, kind=kind, title=title, body="Risks: dissociation, raised BP...",
        effective_date=effective or dt.date(2020, 1, 1))
    return consent_services.do_publish_version(actor=admin, version=version)


def consented(patient: Any, version: ConsentVersion, witness: Any, prescriber: Any = None,
              at: dt.datetime | None = None) -> ConsentSignature:
    return consent_services.do_sign_consent(
        actor=witness, version=version, patient=patient, typed_name=patient.full_name,
        signature_png=png(), witness=witness, prescriber=prescriber, at=at)
