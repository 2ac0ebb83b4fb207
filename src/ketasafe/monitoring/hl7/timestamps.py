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
# The usual full form, YYYYMMDDHHMMSS[+/-ZZZZ]: where it matches, _DTM matches with the same
# groups (every part is fixed-width) and no fraction; it is about twice as fast to match.
_DTM_SECONDS = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([+-]\d{4})?", re.ASCII)


def parse_dtm(text: str, *, default_tz: tzinfo) -> datetime:
    """Parse an HL7 DTM/TS value into an aware datetime.

    Missing month/day default to 1 and missing time parts to 0 (reduced precision is legal HL7).
    Raises ``ValueError`` for anything that is not a valid DTM (including impossible dates such
    as the 9-digit birth date in the normative lab sample, or an offset of 24 hours or more).
    """
    tz: tzinfo
    stripped = text.strip()
    seconds = _DTM_SECONDS.fullmatch(stripped)
    if seconds is not None:
        year, month, day, hour, minute, second, offset = seconds.groups()
        if offset is None:
            tz = default_tz
        else:
            found = _OFFSETS.get(offset)
            tz = found if found is not None else _offset(offset, text)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), 0, tz
        )
    match = _DTM.fullmatch(stripped)
    if match is None:
        raise ValueError(f"not an HL7 DTM value: {text!r}")
    year, month, day, hour, minute, second, frac, sign, _off_h, _off_m = match.groups()
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    if sign is None:
        tz = default_tz
    else:
        # The offset is the last 5 characters ("+0100"); most messages carry one of a few.
        found = _OFFSETS.get(stripped[-5:])
        tz = found if found is not None else _offset(stripped[-5:], text)
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


# UTC offsets already read, "+0100" -> timezone (~2 µs each to build and check). Only valid
# offsets are kept, so there are at most 2 * 24 * 60 of them.
_OFFSETS: dict[str, timezone] = {}


def _offset(offset: str, text: str) -> timezone:
    """``offset`` is ``[+-]HHMM``; ``text`` the whole value, for the error message."""
    sign, off_h, off_m = offset[0], offset[1:3], offset[3:5]
    if int(off_m) >= 60:
        raise ValueError(f"bad UTC offset in {text!r}")
    delta = timedelta(hours=int(off_h), minutes=int(off_m))
    # datetime.timezone requires |offset| < 24 h; real zones span -12:00..+14:00.
    if delta >= timedelta(hours=24):
        raise ValueError(f"bad UTC offset in {text!r}")
    tz = _OFFSETS[offset] = timezone(-delta if sign == "-" else delta)
    return tz


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
    if moment.year < 1000:  # strftime's %Y does not pad these to 4 digits
        return f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{mins:02d}"
    # What %Y%m%d%H%M%S gives, without strftime (~2 µs of an ACK's ~4).
    return (
        f"{moment.year}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}"
        f"{moment.second:02d}{sign}{hours:02d}{mins:02d}"
    )
