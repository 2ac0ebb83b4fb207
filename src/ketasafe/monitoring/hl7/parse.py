"""ORU^R01 (IHE PCD-01 "Communicate PCD Data") to plain values. Pure: no Django, no clock.

Contract (issue 5):

- ``parse_oru`` returns a ``ParsedMessage`` or raises ``MessageRejected``; nothing else, on any
  input (fuzzed in ``tests/test_hl7_fuzz.py``).
- Untidy but storable content is kept as received and flagged per observation, never rejected:
  duplicate OBX set ids, codes without a coding system, numbers without units, a value that does
  not read as its declared type, unknown value types, unreadable timestamps.
- ``AR``: not HL7 / no usable MSH / not ORU^R01 / HL7 version outside 2.3-2.6.
  ``AE``: an ORU^R01 that cannot be stored as it is: MSH-10 empty; an OBX whose OBX-5 is valued
  while OBX-2 is empty (HL7 v2 ch. 7: OBX-2 is required when OBX-5 is valued; the invalid
  Continua glucose sample); a segment without a valid segment id; a second MSH (batches are not
  accepted); observations for more than one patient or bed in one message (storing them under
  one chair would put data on the wrong patient).
- An ORU^R01 without any OBX is accepted (HL7 v2.6 ORU^R01 makes OBX optional in the
  ORDER_OBSERVATION group; gateways send such messages as keep-alives). It carries the message
  flag ``no_observations`` and stores nothing but the message itself.

Parsing is python-hl7's ``hl7.parse`` after normalising segment separators (CR, LF, CRLF -> CR);
escape sequences are decoded per leaf value with python-hl7's ``unescape`` *after* splitting (so a
decoded ``\\F\\`` cannot break the structure). ``benchmarks/hl7_parse.py`` measures the cost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Literal, cast

import hl7

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7.timestamps import parse_dtm

ObservationFlag = Literal[
    "value_not_numeric",  # OBX-2 is NM/SN but OBX-5 does not read as one (e.g. 2.73x10^-7)
    "duplicate_set_id",  # another OBX in the same OBR group has the same OBX-1
    "no_coding_system",  # OBX-3 has no coding system (component 3): a local code
    "no_units",  # a numeric value with OBX-6 empty
    "bad_timestamp",  # a timestamp that applied was unreadable, or no time was found at all
    "unsupported_value_type",  # OBX-2 is not an HL7 value type (table 0125), e.g. FN
]
MessageFlag = Literal["bad_timestamp", "no_observations"]

# One field: repetitions -> components -> subcomponents, escape sequences decoded.
Field = tuple[tuple[tuple[str, ...], ...], ...]
_EMPTY_FIELD: Field = ((("",),),)

# HL7 table 0125 (value type), union of v2.3-v2.6. Anything else is flagged, stored as received.
VALUE_TYPES = frozenset(
    "AD CE CF CK CN CNE CP CWE CX DR DT DTM ED FT ID IS MA MO NA NM NR PN RP SN ST TM TN TS TX "
    "XAD XCN XON XPN XTN".split()
)

# MSH-12 versions in scope for issue 5 (2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6).
_SUPPORTED_VERSION = re.compile(r"2\.[3-6](?:\.\d+)*", re.ASCII)
# HL7 NM: optional sign, digits, optional decimal point. Decimal() alone would also accept
# "NaN", "Infinity" and "1e5", none of which is an HL7 number.
_NM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)", re.ASCII)
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}", re.ASCII)
_SN_COMPARATORS = frozenset({"", ">", "<", ">=", "<=", "=", "<>"})
_SN_SEPARATORS = frozenset({"", "-", "+", "/", ".", ":"})


@dataclass(frozen=True, slots=True)
class ParsedObservation:
    """One OBX, as received plus what could be read from it. Strings are stripped, ``""`` if
    absent. ``position`` is the 0-based index among the message's OBX segments."""

    position: int
    set_id: str  # OBX-1
    value_type: str  # OBX-2, upper-cased
    code: str  # OBX-3.1
    code_text: str  # OBX-3.2
    code_system: str  # OBX-3.3
    sub_id: str  # OBX-4 (PCD-01: containment path MDS.VMD.CHAN.METRIC, e.g. 1.0.1.1)
    raw_value: str  # OBX-5 as received (escapes decoded, message's own separators)
    numeric_value: Decimal | None  # NM, or SN with no comparator and no range
    units_code: str  # OBX-6.1
    units_text: str  # OBX-6.2
    units_system: str  # OBX-6.3
    result_status: str  # OBX-11, upper-cased
    observed_at: datetime | None  # OBX-14, else OBR-7 of its group, else MSH-7; aware
    device_id: str | None  # OBX-18.1, else that of the containing OBX (see _device_ids)
    flags: tuple[ObservationFlag, ...]


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A parsed ORU^R01. ``dedup_key`` identifies a repeat (issue 5: same sender and MSH-10).

    HD fields (MSH-3..6) keep their components joined with ``^`` (e.g.
    ``AcmeInc^ACDE48234567ABCD^EUI-64``) so the EUI-64 of a gateway stays part of its identity.
    ``bed`` is PV1-3 components point of care, room, bed joined with ``^`` with trailing empty
    parts dropped (``ICU^12^A``, ``^^Chair3``), ``None`` if PV1-3 is empty or there is no PV1.
    """

    sending_app: str  # MSH-3
    sending_facility: str  # MSH-4
    receiving_app: str  # MSH-5
    receiving_facility: str  # MSH-6
    sent_at: datetime | None  # MSH-7, None if absent or unreadable (then flag bad_timestamp)
    control_id: str  # MSH-10
    message_type: str  # always "ORU^R01"
    version: str  # MSH-12.1
    processing_id: str  # MSH-11.1 (P, D, T)
    patient_id: str | None  # PID-3, first repetition, first component, stripped
    bed: str | None  # PV1-3
    observations: tuple[ParsedObservation, ...]
    flags: tuple[MessageFlag, ...]

    @property
    def dedup_key(self) -> tuple[str, str, str]:
        return (self.sending_app, self.sending_facility, self.control_id)


class _Segment:
    """A python-hl7 segment read through typed accessors (python-hl7 is untyped)."""

    __slots__ = ("id", "_node", "_unescape", "_rep", "_comp", "_sub", "_fields")

    def __init__(self, node: Sequence[object], unescape: Callable[[str], str], seps: str) -> None:
        self._node = node
        self._unescape = unescape
        # python-hl7 separators string: segment, field, repetition, component, subcomponent.
        self._rep, self._comp, self._sub = seps[2], seps[3], seps[4]
        self.id = str(node[0]) if node else ""
        self._fields: dict[int, Field] = {}  # each field is converted once (benchmark)

    def field(self, n: int) -> Field:
        """Field ``n`` (MSH-n for MSH: python-hl7 keeps MSH-1 at index 1)."""
        if n >= len(self._node):
            return _EMPTY_FIELD
        field = self._fields.get(n)
        if field is None:
            field = self._fields[n] = _to_field(self._node[n], self._unescape)
        return field

    def comp(self, n: int, c: int = 1) -> str:
        """Component ``c`` of the first repetition of field ``n``, stripped."""
        rep = self.field(n)[0]
        return self._sub.join(rep[c - 1]).strip() if c <= len(rep) else ""

    def text(self, n: int) -> str:
        """The whole field, rejoined with the message's own separators (not stripped)."""
        return self._rep.join(
            self._comp.join(self._sub.join(sub) for sub in rep) for rep in self.field(n)
        )


def _to_field(node: object, unescape: Callable[[str], str]) -> Field:
    # python-hl7 stops splitting when a part has no further separators and stores the plain
    # string instead of a one-element container; a string at any level stands for that.
    if isinstance(node, str):
        return (((unescape(node),),),)
    reps: list[tuple[tuple[str, ...], ...]] = []
    for rep in cast(Sequence[object], node):
        if isinstance(rep, str):
            reps.append(((unescape(rep),),))
            continue
        comps: list[tuple[str, ...]] = []
        for comp in cast(Sequence[object], rep):
            if isinstance(comp, str):
                comps.append((unescape(comp),))
            else:
                comps.append(tuple(unescape(str(s)) for s in cast(Sequence[object], comp)))
        reps.append(tuple(comps))
    return tuple(reps) if reps else _EMPTY_FIELD


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Older monitors send ISO 8859-1 (MSH-18 "8859/1"); latin-1 decodes any byte string, so
        # a wrong guess shows up as odd characters in free text, never as a lost message.
        return raw.decode("latin-1")


def _split_segments(raw: bytes | str) -> list[str]:
    """CR, LF and CRLF all end a segment in the wild (conformance README); blank lines and MLLP
    residue around the message are dropped."""
    text = _decode(raw).strip("\x0b\x1c\ufeff \t\r\n")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [seg for seg in text.split("\r") if seg.strip()]


def _check_delimiters(msh: str) -> None:
    """MSH-1 and MSH-2 must give distinct, non-alphanumeric separators, or nothing is readable."""
    fs = msh[3] if len(msh) > 3 else ""
    end = msh.find(fs, 4) if fs else -1
    enc = msh[4:end]
    seps = fs + enc
    # 4 encoding characters in v2.3-2.6; v2.7 adds a 5th (truncation), which is harmless here.
    if (
        end == -1
        or len(enc) not in (4, 5)
        or len(set(seps)) != len(seps)
        or any(ch.isalnum() or ch.isspace() for ch in seps)
    ):
        raise MessageRejected(
            "AR",
            "not a readable HL7 message: MSH-1/MSH-2 do not give valid separators",
            None,
            error_code="100",
            location=("MSH", 1, 2),
        )


def _hl7_message(segments: list[str]) -> list[_Segment]:
    if not segments or not segments[0].startswith("MSH"):
        raise MessageRejected(
            "AR",
            "not an HL7 v2 message: it does not start with an MSH segment",
            None,
            error_code="100",
        )
    _check_delimiters(segments[0])
    try:
        msg = hl7.parse("\r".join(segments))
        esc = str(msg.esc)
        seps = str(msg.separators)
        nodes = [cast(Sequence[object], seg) for seg in msg]
    except Exception as exc:  # noqa: BLE001 - python-hl7 raises assorted types on bad input
        raise MessageRejected(
            "AR", f"not a readable HL7 message ({type(exc).__name__})", None, error_code="100"
        ) from exc

    def unescape(value: str) -> str:
        # python-hl7 silently drops an unterminated sequence ("120\5" -> "120"); keep the
        # value as sent instead, the raw text is what an auditor needs to see.
        if esc not in value or value.count(esc) % 2 or repeats_too_many(value, esc):
            return value
        try:
            return str(msg.unescape(value))
        except Exception:  # noqa: BLE001 - e.g. int() of a malformed \.sp<n>\; keep as sent
            return value

    return [_Segment(node, unescape, seps) for node in nodes]


# A formatting escape such as \.sp<n>\ repeats a character n times (HL7 v2 §2.7.6): a 200-byte
# frame asking for \.sp9999999999\ would make the listener allocate gigabytes. A value asking
# for more repetitions than this is kept as sent (as an unreadable escape is).
MAX_ESCAPE_REPEAT = 99


def repeats_too_many(value: str, esc: str) -> bool:
    """Whether a formatting escape in ``value`` (escape characters paired) asks for more than
    ``MAX_ESCAPE_REPEAT`` repetitions, as python-hl7 would read its count."""
    for sequence in value.split(esc)[1::2]:
        if sequence.startswith(".") and len(sequence) > 3:
            try:
                count = int(sequence[3:])
            except ValueError:
                continue
            if count > MAX_ESCAPE_REPEAT:
                return True
    return False


def _nm(field: Field) -> Decimal | None:
    if len(field) != 1 or len(field[0]) != 1 or len(field[0][0]) != 1:
        return None
    text = field[0][0][0].strip()
    return Decimal(text) if _NM.fullmatch(text) else None


def _sn(field: Field) -> tuple[Decimal | None, bool]:
    """SN = comparator ^ num1 ^ separator/suffix ^ num2. Returns (value, well_formed); the value
    is set only for a plain number (no comparator other than '=', no range or ratio)."""
    if len(field) != 1 or any(len(sub) != 1 for sub in field[0]) or len(field[0]) > 4:
        return None, False
    parts = [sub[0].strip() for sub in field[0]]
    if len(parts) == 1:  # "182" with no ^: untidy but unambiguous
        return (Decimal(parts[0]), True) if _NM.fullmatch(parts[0]) else (None, False)
    comparator, num1, sep, num2 = (parts + ["", "", ""])[:4]
    if (
        comparator not in _SN_COMPARATORS
        or sep not in _SN_SEPARATORS
        or (num1 and not _NM.fullmatch(num1))
        or (num2 and not _NM.fullmatch(num2))
        or not (num1 or num2)
    ):
        return None, False
    if comparator in ("", "=") and num1 and not sep and not num2:
        return Decimal(num1), True
    return None, True


def _device_ids(sub_ids: list[str], own: list[str]) -> list[str | None]:
    """OBX-18 inherited down the PCD-01 containment tree: IHE PCD TF-2 puts the equipment
    identifier (EUI-64) on the MDS-level OBX (OBX-4 ``1``) and not on each metric (``1.0.1.1``),
    as in the IPF samples. A metric without OBX-18 takes that of its nearest containing OBX."""
    by_path = {path: dev for path, dev in zip(sub_ids, own, strict=True) if path and dev}
    result: list[str | None] = []
    for path, dev in zip(sub_ids, own, strict=True):
        if dev:
            result.append(dev)
            continue
        parts = path.split(".")
        found: str | None = None
        for cut in range(len(parts) - 1, 0, -1):
            found = by_path.get(".".join(parts[:cut]))
            if found:
                break
        result.append(found)
    return result


def parse_oru(raw: bytes | str, *, default_tz: tzinfo) -> ParsedMessage:
    """Parse one HL7 v2.3-2.6 ORU^R01 (without MLLP framing). See the module docstring for the
    contract; ``default_tz`` is the clinic's zone, used for timestamps without an offset."""
    segs = _hl7_message(_split_segments(raw))
    msh = segs[0]
    head = _Header(
        control_id=msh.text(10).strip() or None,
        sending_app=msh.text(3).strip(),
        sending_facility=msh.text(4).strip(),
        version=msh.comp(12),
    )
    control_id = _check_header(msh, head)
    _check_structure(segs, head)

    msg_flags: list[MessageFlag] = []
    sent_at = _time(msh.comp(7), default_tz)
    if sent_at is None:
        msg_flags.append("bad_timestamp")
    observations = _observations(segs, sent_at, default_tz)
    if not observations:
        msg_flags.append("no_observations")
    pid = next((s for s in segs if s.id == "PID"), None)
    pv1 = next((s for s in segs if s.id == "PV1"), None)
    return ParsedMessage(
        sending_app=head.sending_app,
        sending_facility=head.sending_facility,
        receiving_app=msh.text(5).strip(),
        receiving_facility=msh.text(6).strip(),
        sent_at=sent_at,
        control_id=control_id,
        message_type="ORU^R01",
        version=head.version,
        processing_id=msh.comp(11).upper(),
        patient_id=(pid.comp(3) or None) if pid else None,
        bed=_bed(pv1) if pv1 else None,
        observations=tuple(observations),
        flags=tuple(msg_flags),
    )


@dataclass(frozen=True, slots=True)
class _Header:
    """What a rejection needs to be acknowledged to the sender."""

    control_id: str | None
    sending_app: str
    sending_facility: str
    version: str

    def reject(
        self,
        code: Literal["AE", "AR"],
        reason: str,
        error_code: str,
        location: tuple[str, int, int] | None = None,
    ) -> MessageRejected:
        return MessageRejected(
            code,
            reason,
            self.control_id,
            error_code=error_code,
            location=location,
            sending_app=self.sending_app,
            sending_facility=self.sending_facility,
            version=self.version or None,
        )


def _check_header(msh: _Segment, head: _Header) -> str:
    """Reject what is not an ORU^R01 of a supported version; return MSH-10."""
    msg_code, event = msh.comp(9, 1).upper(), msh.comp(9, 2).upper()
    if msg_code != "ORU":
        shown = "^".join(p for p in (msg_code, event) if p) or "(empty)"
        reason = f"unsupported message type {shown}: only ORU^R01 is accepted"
        raise head.reject("AR", reason, "200", ("MSH", 1, 9))
    if event != "R01":
        reason = f"unsupported event ORU^{event or '(empty)'}: only ORU^R01 is accepted"
        raise head.reject("AR", reason, "201", ("MSH", 1, 9))
    if not _SUPPORTED_VERSION.fullmatch(head.version):
        reason = f"unsupported HL7 version {head.version or '(empty)'!r}: 2.3 to 2.6 are accepted"
        raise head.reject("AR", reason, "203", ("MSH", 1, 12))
    if head.control_id is None:
        raise head.reject("AE", "MSH-10 (message control id) is empty", "101", ("MSH", 1, 10))
    return head.control_id


def _check_structure(segs: list[_Segment], head: _Header) -> None:
    for index, seg in enumerate(segs):
        if not _SEGMENT_ID.fullmatch(seg.id):
            reason = f"segment {index + 1} has no valid segment id ({seg.id[:12]!r})"
            raise head.reject("AE", reason, "100")
        if index and seg.id == "MSH":
            reason = (
                f"segment {index + 1} is a second MSH: send one message per frame "
                "(batches are not accepted)"
            )
            raise head.reject("AE", reason, "100")
    patients = {s.comp(3) for s in segs if s.id == "PID"}
    beds = {_bed(s) for s in segs if s.id == "PV1"}
    if len(patients) > 1 or len(beds) > 1:
        reason = (
            "observations for more than one patient or bed in one message: "
            "send one ORU^R01 per patient"
        )
        raise head.reject("AE", reason, "207")
    obx_segments = [s for s in segs if s.id == "OBX"]
    empty_type = [
        (occurrence, seg)
        for occurrence, seg in enumerate(obx_segments, start=1)
        if not seg.comp(2) and seg.text(5).strip()
    ]
    if empty_type:
        where = ", ".join(f"OBX #{n} (set id {s.comp(1) or '-'})" for n, s in empty_type)
        reason = (
            f"OBX-5 holds a value but OBX-2 (value type) is empty in {where}; "
            "HL7 requires OBX-2 whenever OBX-5 is valued"
        )
        raise head.reject("AE", reason, "101", ("OBX", empty_type[0][0], 2))


def _bed(pv1: _Segment) -> str | None:
    parts = [pv1.comp(3, c) for c in (1, 2, 3)]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts) or None


def _time(text: str, default_tz: tzinfo) -> datetime | None:
    if not text:
        return None
    try:
        return parse_dtm(text, default_tz=default_tz)
    except ValueError:
        return None


def _observations(
    segs: list[_Segment], sent_at: datetime | None, default_tz: tzinfo
) -> list[ParsedObservation]:
    observations: list[ParsedObservation] = []
    groups: list[int] = []  # OBR group of each observation (0 = OBX before any OBR)
    group = 0
    obr_time: datetime | None = None
    obr_bad = False
    for seg in segs:
        if seg.id == "OBR":
            group += 1
            obr_text = seg.comp(7)
            obr_time = _time(obr_text, default_tz)
            obr_bad = bool(obr_text) and obr_time is None
        elif seg.id == "OBX":
            obs = _observation(seg, len(observations), obr_time, obr_bad, sent_at, default_tz)
            observations.append(obs)
            groups.append(group)

    # OBX-1 numbers the OBX segments within their OBR group (HL7 v2 ch. 7), so duplicates are
    # counted per group; an empty set id (common in Philips exports) is not a duplicate.
    counts = Counter((grp, obs.set_id) for grp, obs in zip(groups, observations, strict=True))
    result: list[ParsedObservation] = []
    for grp in sorted(set(groups)):
        members = [obs for g, obs in zip(groups, observations, strict=True) if g == grp]
        devices = _device_ids([o.sub_id for o in members], [o.device_id or "" for o in members])
        for obs, device in zip(members, devices, strict=True):
            flags = obs.flags
            if obs.set_id and counts[(grp, obs.set_id)] > 1:
                flags += ("duplicate_set_id",)
            result.append(replace(obs, device_id=device, flags=flags))
    result.sort(key=lambda obs: obs.position)
    return result


def _observation(
    seg: _Segment,
    position: int,
    obr_time: datetime | None,
    obr_bad: bool,
    sent_at: datetime | None,
    default_tz: tzinfo,
) -> ParsedObservation:
    flags: list[ObservationFlag] = []
    value_type = seg.comp(2).upper()
    value = seg.field(5)
    raw_value = seg.text(5)
    has_value = bool(raw_value.strip())
    numeric: Decimal | None = None
    if value_type and value_type not in VALUE_TYPES:
        flags.append("unsupported_value_type")
    if has_value and value_type == "NM":
        numeric = _nm(value)
        if numeric is None:
            flags.append("value_not_numeric")
    elif has_value and value_type == "SN":
        numeric, well_formed = _sn(value)
        if not well_formed:
            flags.append("value_not_numeric")
    units_code, units_text, units_system = seg.comp(6, 1), seg.comp(6, 2), seg.comp(6, 3)
    if has_value and value_type in ("NM", "SN") and not (units_code or units_text):
        flags.append("no_units")
    if not seg.comp(3, 3):
        flags.append("no_coding_system")
    obx_text = seg.comp(14)
    observed_at = _time(obx_text, default_tz)
    if observed_at is None:
        # OBX-14 empty or unreadable: the group's OBR-7, then MSH-7 (issue 5). The flag says a
        # time that should have applied could not be read, or that no time was found at all.
        observed_at = obr_time or sent_at
        if obx_text or (obr_bad and obr_time is None) or observed_at is None:
            flags.append("bad_timestamp")
    return ParsedObservation(
        position=position,
        set_id=seg.comp(1),
        value_type=value_type,
        code=seg.comp(3, 1),
        code_text=seg.comp(3, 2),
        code_system=seg.comp(3, 3),
        sub_id=seg.text(4).strip(),
        raw_value=raw_value,
        numeric_value=numeric,
        units_code=units_code,
        units_text=units_text,
        units_system=units_system,
        result_status=seg.comp(11).upper(),
        observed_at=observed_at,
        device_id=seg.comp(18) or None,
        flags=tuple(flags),
    )
