"""HL7 v2 date/time values (DTM, and the first component of TS) to aware datetimes.

Grammar (HL7 v2.6 ch. 2A, DTM; v2.3-2.5 TS component 1 is the same):
``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. A value without an offset is local time of the
sender, which for a clinic's monitors is the clinic's zone, so the caller passes ``default_tz``.
Pure: never reads the clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

# Each later part is optional only if the earlier ones are present (nested groups), and a
# fraction may only follow seconds. More than 4 fraction digits is outside the standard but some
# gateways send microseconds; we accept them and keep microsecond precision.
_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d+))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?",
    re.ASCII,
)


def parse_dtm(text: str, *, default_tz: tzinfo) -> datetime:
    """Parse an HL7 DTM/TS value into an aware datetime.

    Missing month/day default to 1 and missing time parts to 0 (reduced precision is legal HL7).
    Raises ``ValueError`` for anything that is not a valid DTM (including impossible dates such
    as the 9-digit birth date in the normative lab sample, or an offset of 24 hours or more).
    """
    match = _DTM.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an HL7 DTM value: {text!r}")
    year, month, day, hour, minute, second, frac, sign, off_h, off_m = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz: tzinfo
    if sign is None:
        tz = default_tz
    else:
        if int(off_m) >= 60:
            raise ValueError(f"bad UTC offset in {text!r}")
        delta = timedelta(hours=int(off_h), minutes=int(off_m))
        # datetime.timezone requires |offset| < 24 h; real zones span -12:00..+14:00.
        if delta >= timedelta(hours=24):
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(-delta if sign == "-" else delta)
    # datetime() validates ranges (month 13, Feb 30, second 60 ...) and raises ValueError.
    return datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=tz,
    )


def format_dtm(moment: datetime) -> str:
    """Render an aware datetime as an HL7 DTM with seconds and a UTC offset (for MSH-7 of an ACK).

    Raises ``ValueError`` for a naive datetime: the offset is part of the contract (STYLE.md 11).
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("format_dtm needs an aware datetime")
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{mins:02d}"
