"""A focused ORU^R01 reader: the same result as ``parse.parse_oru``, about ten times faster.

Why it exists: ``benchmarks/ingest.py`` showed ``hl7.parse`` (python-hl7 builds a container
object for every field, repetition and component of every segment) plus our reading of it as the
largest single cost of durable ingest. Issue 5 allows a parser of our own only with a
differential test: ``tests/test_fastparse_differential.py`` checks with hypothesis, on generated
ORU messages, on every conformance sample and on mutated real messages, that ``parse_oru_fast``
returns exactly what ``parse_oru`` returns (or raises the same ``MessageRejected``).
``parse_oru`` stays the reference implementation and the test oracle.

How it stays equal: it reproduces python-hl7's splitting (segments on CR after the same
normalisation, fields on MSH-1, then repetition, component, subcomponent from MSH-2, including
python-hl7's special reading of MSH/BHS/FHS segments and the final ``strip()`` of the message),
splits only the fields that are read, and decodes escape sequences per leaf value with the same
function, python-hl7's ``unescape``, under the same guard as ``parse_oru`` (unterminated
sequences kept as sent). Higher-level rules (flags, rejections, timestamps, device inheritance)
use ``parse``'s own helpers or copy its few lines, in the same order.

Contract: returns a ``ParsedMessage`` or raises ``MessageRejected``; nothing else (fuzzed).
Pure: no Django, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Literal

from hl7.util import unescape as _hl7_unescape

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7.parse import (
    _NM,
    _SEGMENT_ID,
    _SUPPORTED_VERSION,
    VALUE_TYPES,
    Field,
    MessageFlag,
    ObservationFlag,
    ParsedMessage,
    ParsedObservation,
    _check_delimiters,
    _device_ids,
    _Header,
    _nm,
    _sn,
    _split_segments,
)
from ketasafe.monitoring.hl7.timestamps import parse_dtm

_SPECIAL = frozenset({"MSH", "BHS", "FHS"})  # python-hl7 reads their MSH-1/MSH-2 like MSH's


class _Separators:
    """What python-hl7's ``unescape`` reads from its container: ``esc`` and ``separators``
    (segment, field, repetition, component, subcomponent)."""

    __slots__ = ("esc", "separators")

    def __init__(self, esc: str, separators: str) -> None:
        self.esc = esc
        self.separators = separators


class _Reader:
    """Field access for one message: raw field text -> the values ``parse_oru`` reads."""

    __slots__ = ("fs", "rep", "comp", "sub", "esc", "_container", "_split_chars")

    def __init__(self, fs: str, enc: str) -> None:
        # MSH-2: component, repetition, escape, subcomponent (a 5th, v2.7 truncation, is text).
        self.fs, self.comp, self.rep, self.esc, self.sub = fs, enc[0], enc[1], enc[2], enc[3]
        self._container = _Separators(self.esc, "\r" + fs + self.rep + self.comp + self.sub)
        self._split_chars = (fs, self.rep, self.comp, self.sub)

    def leaf(self, value: str) -> str:
        esc = self.esc
        # As parse_oru: an odd number of escape characters (an unterminated sequence, which
        # python-hl7 would silently drop) keeps the value as sent.
        if esc not in value or value.count(esc) % 2:
            return value
        try:
            return str(_hl7_unescape(self._container, value))
        except Exception:  # noqa: BLE001 - e.g. int() of a malformed \.sp<n>\; keep as sent
            return value

    def segment(self, text: str) -> _Seg:
        """python-hl7's reading of one segment's text into an id and raw fields."""
        fs, rep, comp, sub = self._split_chars
        if fs not in text and rep not in text and comp not in text and sub not in text:
            return _Seg(text, [text])  # python-hl7: a segment with no separator is one string
        head = text[:3]
        if head in _SPECIAL:
            sep0 = text[3]
            end = text.find(sep0, 4)
            rest = text[end + 1 :]
            return _Seg(head, [head, sep0, text[4:end], *(rest.split(fs) if rest else ())])
        fields = text.split(fs)
        return _Seg(fields[0], fields)

    def field(self, raw: str) -> Field:
        leaf = self.leaf
        return tuple(
            tuple(tuple(leaf(s) for s in c.split(self.sub)) for c in r.split(self.comp))
            for r in raw.split(self.rep)
        )

    def text(self, raw: str) -> str:
        """The whole field, leaves decoded, rejoined with the message's separators."""
        if self.esc not in raw:
            return raw
        rep, comp, sub, leaf = self.rep, self.comp, self.sub, self.leaf
        return rep.join(
            comp.join(sub.join(leaf(s) for s in c.split(sub)) for c in r.split(comp))
            for r in raw.split(rep)
        )

    def first(self, raw: str) -> str:
        """Component 1 of the first repetition, stripped (the common read, kept cheap)."""
        if self.esc in raw:
            return self.comp_of(raw, 1)
        return raw.split(self.rep, 1)[0].split(self.comp, 1)[0].strip()

    def comps3(self, raw: str) -> tuple[str, str, str]:
        """Components 1-3 of the first repetition, as ``comp_of`` gives them."""
        if self.esc in raw:
            return self.comp_of(raw, 1), self.comp_of(raw, 2), self.comp_of(raw, 3)
        parts = raw.split(self.rep, 1)[0].split(self.comp, 3)
        n = len(parts)
        return (parts[0].strip(), parts[1].strip() if n > 1 else "", parts[2].strip() if n > 2 else "")

    def single_leaf(self, raw: str) -> str | None:
        """The value of a field that is one leaf (no repetition, component or subcomponent),
        else None."""
        if self.rep in raw or self.comp in raw or self.sub in raw:
            return None
        return self.leaf(raw)

    def comp_of(self, raw: str, c: int = 1) -> str:
        """Component ``c`` of the first repetition, subcomponents rejoined, stripped."""
        first = raw.split(self.rep, 1)[0]
        comps = first.split(self.comp)
        if c > len(comps):
            return ""
        part = comps[c - 1]
        if self.esc in part:
            part = self.sub.join(self.leaf(s) for s in part.split(self.sub))
        return part.strip()


class _Seg:
    """One segment: its id and raw fields, indexed like python-hl7's nodes (MSH-n at ``n``).
    parse_oru reads no field below 3 of MSH and none of BHS/FHS, the only segments whose leading
    fields python-hl7 keeps unsplit, so every field read here is split the ordinary way."""

    __slots__ = ("id", "fields")

    def __init__(self, seg_id: str, fields: list[str]) -> None:
        self.id = seg_id
        self.fields = fields

    def raw(self, n: int) -> str:
        fields = self.fields
        return fields[n] if n < len(fields) else ""


def _reject(head: _Header, code: Literal["AE", "AR"], reason: str, error_code: str,
            location: tuple[str, int, int] | None = None) -> MessageRejected:
    return head.reject(code, reason, error_code, location)


def parse_oru_fast(raw: bytes | str, *, default_tz: tzinfo) -> ParsedMessage:
    """Parse one HL7 v2.3-2.6 ORU^R01 exactly as ``parse.parse_oru`` does (see the module
    docstring); ``default_tz`` is the clinic's zone for timestamps without an offset."""
    segments = _split_segments(raw)
    if not segments or not segments[0].startswith("MSH"):
        raise MessageRejected(
            "AR", "not an HL7 v2 message: it does not start with an MSH segment", None,
            error_code="100",
        )
    _check_delimiters(segments[0])
    # python-hl7 strips the joined message; only the end of the last segment can change.
    segments[-1] = segments[-1].rstrip()
    msh_text = segments[0]
    fs = msh_text[3]
    r = _Reader(fs, msh_text[4 : msh_text.find(fs, 4)])
    return _read([r.segment(text) for text in segments], r, default_tz)


def _read(segs: list[_Seg], r: _Reader, default_tz: tzinfo) -> ParsedMessage:
    msh = segs[0]
    head = _Header(
        control_id=r.text(msh.raw(10)).strip() or None,
        sending_app=r.text(msh.raw(3)).strip(),
        sending_facility=r.text(msh.raw(4)).strip(),
        version=r.comp_of(msh.raw(12)),
    )
    # _check_header
    msg_type = msh.raw(9)
    msg_code, event = r.comp_of(msg_type, 1).upper(), r.comp_of(msg_type, 2).upper()
    if msg_code != "ORU":
        shown = "^".join(p for p in (msg_code, event) if p) or "(empty)"
        reason = f"unsupported message type {shown}: only ORU^R01 is accepted"
        raise _reject(head, "AR", reason, "200", ("MSH", 1, 9))
    if event != "R01":
        reason = f"unsupported event ORU^{event or '(empty)'}: only ORU^R01 is accepted"
        raise _reject(head, "AR", reason, "201", ("MSH", 1, 9))
    if not _SUPPORTED_VERSION.fullmatch(head.version):
        reason = f"unsupported HL7 version {head.version or '(empty)'!r}: 2.3 to 2.6 are accepted"
        raise _reject(head, "AR", reason, "203", ("MSH", 1, 12))
    if head.control_id is None:
        raise _reject(head, "AE", "MSH-10 (message control id) is empty", "101", ("MSH", 1, 10))
    control_id = head.control_id

    # _check_structure
    pids: list[_Seg] = []
    pv1s: list[_Seg] = []
    obrs_and_obxs: list[_Seg] = []
    for index, seg in enumerate(segs):
        sid = seg.id
        if not _SEGMENT_ID.fullmatch(sid):
            reason = f"segment {index + 1} has no valid segment id ({sid[:12]!r})"
            raise _reject(head, "AE", reason, "100")
        if index and sid == "MSH":
            reason = (
                f"segment {index + 1} is a second MSH: send one message per frame "
                "(batches are not accepted)"
            )
            raise _reject(head, "AE", reason, "100")
        if sid == "PID":
            pids.append(seg)
        elif sid == "PV1":
            pv1s.append(seg)
        elif sid == "OBX" or sid == "OBR":
            obrs_and_obxs.append(seg)
    patients = {r.comp_of(s.raw(3)) for s in pids}
    beds = {_bed(s, r) for s in pv1s}
    if len(patients) > 1 or len(beds) > 1:
        reason = (
            "observations for more than one patient or bed in one message: "
            "send one ORU^R01 per patient"
        )
        raise _reject(head, "AE", reason, "207")
    empty_type = [
        (occurrence, seg)
        for occurrence, seg in enumerate((s for s in obrs_and_obxs if s.id == "OBX"), start=1)
        if not r.comp_of(seg.raw(2)) and r.text(seg.raw(5)).strip()
    ]
    if empty_type:
        where = ", ".join(f"OBX #{n} (set id {r.comp_of(s.raw(1)) or '-'})" for n, s in empty_type)
        reason = (
            f"OBX-5 holds a value but OBX-2 (value type) is empty in {where}; "
            "HL7 requires OBX-2 whenever OBX-5 is valued"
        )
        raise _reject(head, "AE", reason, "101", ("OBX", empty_type[0][0], 2))

    times: dict[str, datetime | None] = {}

    def when(text: str) -> datetime | None:  # parse._time, once per distinct value
        if not text:
            return None
        if text in times:
            return times[text]
        try:
            found: datetime | None = parse_dtm(text, default_tz=default_tz)
        except ValueError:
            found = None
        times[text] = found
        return found

    msg_flags: list[MessageFlag] = []
    sent_at = when(r.comp_of(msh.raw(7)))
    if sent_at is None:
        msg_flags.append("bad_timestamp")
    observations = _observations(obrs_and_obxs, r, sent_at, when)
    if not observations:
        msg_flags.append("no_observations")
    pid = pids[0] if pids else None
    pv1 = pv1s[0] if pv1s else None
    return ParsedMessage(
        sending_app=head.sending_app,
        sending_facility=head.sending_facility,
        receiving_app=r.text(msh.raw(5)).strip(),
        receiving_facility=r.text(msh.raw(6)).strip(),
        sent_at=sent_at,
        control_id=control_id,
        message_type="ORU^R01",
        version=head.version,
        processing_id=r.comp_of(msh.raw(11)).upper(),
        patient_id=(r.comp_of(pid.raw(3)) or None) if pid else None,
        bed=_bed(pv1, r) if pv1 else None,
        observations=tuple(observations),
        flags=tuple(msg_flags),
    )


def _bed(pv1: _Seg, r: _Reader) -> str | None:
    raw = pv1.raw(3)
    parts = [r.comp_of(raw, c) for c in (1, 2, 3)]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts) or None


# One OBX before the group-level rules: everything but the inherited device and duplicate flag.
_Partial = tuple[int, str, str, str, str, str, str, str, Decimal | None, str, str, str, str,
                 datetime | None, str, list[ObservationFlag]]


def _observations(
    segs: list[_Seg], r: _Reader, sent_at: datetime | None, read_time: Callable[[str], datetime | None]
) -> list[ParsedObservation]:
    partial: list[_Partial] = []
    groups: list[int] = []
    group = 0
    obr_time: datetime | None = None
    obr_bad = False
    first, comps3, text = r.first, r.comps3, r.text
    for seg in segs:
        if seg.id == "OBR":
            group += 1
            obr_text = first(seg.raw(7))
            obr_time = read_time(obr_text)
            obr_bad = bool(obr_text) and obr_time is None
            continue
        flags: list[ObservationFlag] = []
        fields = seg.fields
        nf = len(fields)
        value_type = first(fields[2]).upper() if nf > 2 else ""
        raw5 = fields[5] if nf > 5 else ""
        raw_value = text(raw5)
        has_value = bool(raw_value.strip())
        numeric: Decimal | None = None
        if value_type and value_type not in VALUE_TYPES:
            flags.append("unsupported_value_type")
        if has_value and value_type == "NM":
            leaf = r.single_leaf(raw5)
            if leaf is None:
                numeric = _nm(r.field(raw5))
            else:  # parse._nm of a one-leaf field
                leaf = leaf.strip()
                numeric = Decimal(leaf) if _NM.fullmatch(leaf) else None
            if numeric is None:
                flags.append("value_not_numeric")
        elif has_value and value_type == "SN":
            numeric, well_formed = _sn(r.field(raw5))
            if not well_formed:
                flags.append("value_not_numeric")
        units_code, units_text, units_system = comps3(fields[6]) if nf > 6 else ("", "", "")
        if has_value and value_type in ("NM", "SN") and not (units_code or units_text):
            flags.append("no_units")
        code, code_text, code_system = comps3(fields[3]) if nf > 3 else ("", "", "")
        if not code_system:
            flags.append("no_coding_system")
        obx_text = first(fields[14]) if nf > 14 else ""
        observed_at = read_time(obx_text)
        if observed_at is None:
            observed_at = obr_time or sent_at
            if obx_text or (obr_bad and obr_time is None) or observed_at is None:
                flags.append("bad_timestamp")
        partial.append((
            len(partial), first(fields[1]) if nf > 1 else "", value_type, code, code_text,
            code_system, text(fields[4]).strip() if nf > 4 else "", raw_value, numeric, units_code,
            units_text, units_system, first(fields[11]).upper() if nf > 11 else "", observed_at,
            first(fields[18]) if nf > 18 else "", flags,
        ))
        groups.append(group)
    if not partial:
        return []
    counts = Counter((grp, p[1]) for grp, p in zip(groups, partial, strict=True))
    devices: list[str | None] = []
    start = 0
    # Groups are contiguous and increasing, so device inheritance runs per run of equal groups.
    while start < len(partial):
        end = start
        while end < len(partial) and groups[end] == groups[start]:
            end += 1
        members = partial[start:end]
        devices.extend(_device_ids([p[6] for p in members], [p[14] for p in members]))
        start = end
    result: list[ParsedObservation] = []
    for p, grp, device in zip(partial, groups, devices, strict=True):
        flags = p[15]
        if p[1] and counts[(grp, p[1])] > 1:
            flags.append("duplicate_set_id")
        result.append(ParsedObservation(
            position=p[0], set_id=p[1], value_type=p[2], code=p[3], code_text=p[4], code_system=p[5],
            sub_id=p[6], raw_value=p[7], numeric_value=p[8], units_code=p[9], units_text=p[10],
            units_system=p[11], result_status=p[12], observed_at=p[13], device_id=device,
            flags=tuple(flags),
        ))
    return result
