"""A focused ORU^R01 reader: the same result as ``parse.parse_oru``, some 40 times faster.

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

How it is fast (``benchmarks/hl7_parse.py``; the listener's whole budget is ~150 µs a message):
only MSH, PID, PV1, OBR and OBX are split into fields; an OBX (or MSH, PID-3, PV1-3) without the
escape and the repetition character, i.e. nearly every real one, is read with plain
``partition``/``split`` on the component separator, since decoding and taking the first
repetition are then identities; any other is read by ``_Reader``, the general reading. Timestamps
are parsed once per distinct text in a message. Pure functions of a field's text that repeat
from message to message (OBX-3/OBX-6 components, NM values, valid segment ids) are memoised in
bounded dicts. The frozen result dataclasses are filled through their slots (see below).

Contract: returns a ``ParsedMessage`` or raises ``MessageRejected``; nothing else (fuzzed).
Pure: no Django, no clock.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
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
    _decode,
    _Header,
    _nm,
    _sn,
    _time,
    repeats_too_many,
)

_SPECIAL = frozenset({"MSH", "BHS", "FHS"})  # python-hl7 reads their MSH-1/MSH-2 like MSH's
# MSH-1, MSH-2 and the separator after them as nearly every sender writes them: known to pass
# _check_delimiters, so that check is skipped for them.
_STANDARD_SEPARATORS = "|^~\\&|"
# Pads a short segment's fields: a field that is not there reads exactly like an empty one.
_EMPTY_FIELDS = ("",) * 19
# Versions that match _SUPPORTED_VERSION, the usual ones, checked without the regex.
_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"})
# Segment ids already found to match _SEGMENT_ID (bounded: at most 26 * 36 * 36 can match).
_VALID_IDS: set[str] = set()

# ParsedObservation and ParsedMessage are frozen dataclasses: their generated __init__ stores
# each field through object.__setattr__, ~2.5 µs an OBX, a third of this parser's time. The
# values are stored through the slot descriptors instead (~1 µs), which is what __init__ does
# minus the indirection, before the object is handed out; the checks below fail the import if
# a field, a default or a __post_init__ appears that this would miss, and the differential test
# compares the results with the reference parser's, built by __init__.
_OBSERVATION_FIELDS = (
    "position", "set_id", "value_type", "code", "code_text", "code_system", "sub_id", "raw_value",
    "numeric_value", "units_code", "units_text", "units_system", "result_status", "observed_at",
    "device_id", "flags",
)  # fmt: skip
_MESSAGE_FIELDS = (
    "sending_app", "sending_facility", "receiving_app", "receiving_facility", "sent_at",
    "control_id", "message_type", "version", "processing_id", "patient_id", "bed", "observations",
    "flags",
)  # fmt: skip
for _cls, _names in ((ParsedObservation, _OBSERVATION_FIELDS), (ParsedMessage, _MESSAGE_FIELDS)):
    if (
        tuple(f.name for f in dataclass_fields(_cls)) != _names
        or getattr(_cls, "__slots__", None) != _names
        or hasattr(_cls, "__post_init__")
    ):
        raise ImportError(f"fastparse: {_cls.__name__} changed; update its constructor here")
_new = object.__new__
(_set_position, _set_set_id, _set_value_type, _set_code, _set_code_text, _set_code_system,
 _set_sub_id, _set_raw_value, _set_numeric_value, _set_units_code, _set_units_text,
 _set_units_system, _set_result_status, _set_observed_at, _set_device_id,
 _set_obs_flags) = (getattr(ParsedObservation, name).__set__ for name in _OBSERVATION_FIELDS)  # fmt: skip
_MESSAGE_SETTERS = tuple(getattr(ParsedMessage, name).__set__ for name in _MESSAGE_FIELDS)


def _message(*values: object) -> ParsedMessage:
    """``ParsedMessage(*values)``, through the slots (see above); once a message, so a loop."""
    msg = _new(ParsedMessage)
    for setter, value in zip(_MESSAGE_SETTERS, values, strict=True):
        setter(msg, value)
    return msg


_MEMO_SIZE = 2048


class _Separators:
    """What python-hl7's ``unescape`` reads from its container: ``esc`` and ``separators``
    (segment, field, repetition, component, subcomponent)."""

    __slots__ = ("esc", "separators")

    def __init__(self, esc: str, separators: str) -> None:
        self.esc = esc
        self.separators = separators


class _Reader:
    """The general reading of one message's fields: raw field text -> the values ``parse_oru``
    reads, escape sequences and repetitions included."""

    __slots__ = ("fs", "rep", "comp", "sub", "esc", "_container", "plain_comps3_memo")

    def __init__(self, fs: str, enc: str) -> None:
        # MSH-2: component, repetition, escape, subcomponent (a 5th, v2.7 truncation, is text).
        self.fs, self.comp, self.rep, self.esc, self.sub = fs, enc[0], enc[1], enc[2], enc[3]
        self._container = _Separators(self.esc, "\r" + fs + self.rep + self.comp + self.sub)
        self.plain_comps3_memo: dict[str, tuple[str, str, str]] = {}

    def plain_comps3(self, raw: str) -> tuple[str, str, str]:
        """``comps3`` of a field without escape and repetition characters, memoised: OBX-3 and
        OBX-6 (code and unit) repeat in every message of a device. Pure, so a memo entry cannot
        go stale; the memo is emptied when it reaches _MEMO_SIZE entries."""
        parts = raw.split(self.comp, 3)
        n = len(parts)
        found = (parts[0].strip(), parts[1].strip() if n > 1 else "", parts[2].strip() if n > 2 else "")
        memo = self.plain_comps3_memo
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[raw] = found
        return found

    def leaf(self, value: str) -> str:
        esc = self.esc
        # As parse_oru: an odd number of escape characters (an unterminated sequence, which
        # python-hl7 would silently drop) keeps the value as sent.
        if esc not in value or value.count(esc) % 2 or repeats_too_many(value, esc):
            return value
        try:
            return str(_hl7_unescape(self._container, value))
        except Exception:  # noqa: BLE001 - e.g. int() of a malformed \.sp<n>\; keep as sent
            return value

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


# The reader of messages with the standard separators, shared so its memo lasts (no other state).
_STANDARD_READER = _Reader("|", "^~\\&")


# OBX-5 text -> its NM value: vital signs repeat the same few hundred values. Pure, so an entry
# cannot go stale (a Decimal is immutable); emptied when it reaches _MEMO_SIZE entries.
_NUMBERS: dict[str, Decimal] = {}


def _number(leaf: str) -> Decimal | None:
    """parse._nm of a field that is this one leaf (plain digits need no regex), memoised."""
    text = leaf.strip()
    if not ((text.isdigit() and text.isascii()) or _NM.fullmatch(text)):
        return None
    if len(_NUMBERS) >= _MEMO_SIZE:
        _NUMBERS.clear()
    number = _NUMBERS[leaf] = Decimal(text)
    return number


def _split_segments(raw: bytes | str) -> list[str]:
    """``parse._split_segments``, ~1.5 µs cheaper: the LF replacements are skipped when there is
    no LF (a no-op then, but a scan of the whole text each), and ``filter`` runs in C."""
    text = _decode(raw).strip("\x0b\x1c\ufeff \t\r\n")
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return list(filter(str.strip, text.split("\r")))


def _segment_id(text: str, r: _Reader) -> str:
    """python-hl7's id of a segment: the whole text if it has no separator at all, the first 3
    characters for MSH/BHS/FHS (their MSH-1 is whatever follows), else the text before the first
    field separator."""
    if r.fs not in text and r.rep not in text and r.comp not in text and r.sub not in text:
        return text
    head = text[:3]
    if head in _SPECIAL:
        return head
    return text.split(r.fs, 1)[0]


# MSH-10 (None if empty), MSH-3, MSH-4, MSH-12.1: what a rejection is acknowledged with.
_HeaderValues = tuple[str | None, str, str, str]


def _reject(head: _HeaderValues, code: Literal["AE", "AR"], reason: str, error_code: str,
            location: tuple[str, int, int] | None = None) -> MessageRejected:
    """parse's rejection (``_Header.reject``); the header object is built only to reject."""
    control_id, sending_app, sending_facility, version = head
    return _Header(control_id, sending_app, sending_facility, version).reject(
        code, reason, error_code, location
    )


def parse_oru_fast(raw: bytes | str, *, default_tz: tzinfo) -> ParsedMessage:
    """Parse one HL7 v2.3-2.6 ORU^R01 exactly as ``parse.parse_oru`` does (see the module
    docstring); ``default_tz`` is the clinic's zone for timestamps without an offset."""
    segments = _split_segments(raw)
    if not segments or not segments[0].startswith("MSH"):
        raise MessageRejected(
            "AR", "not an HL7 v2 message: it does not start with an MSH segment", None,
            error_code="100",
        )
    if segments[0][3:9] != _STANDARD_SEPARATORS:
        _check_delimiters(segments[0])
    # python-hl7 strips the joined message; only the end of the last segment can change.
    segments[-1] = segments[-1].rstrip()
    return _read(segments, default_tz)


# What parse_oru reads from MSH: MSH-10 (None if empty), MSH-3, MSH-4, MSH-5, MSH-6 (whole,
# stripped), MSH-12.1, MSH-9.1, MSH-9.2 (upper-cased), MSH-7.1, MSH-11.1 (upper-cased).
_MshValues = tuple[str | None, str, str, str, str, str, str, str, str, str]


def _msh_values(msh: list[str], r: _Reader) -> _MshValues:
    """``msh`` is MSH-3 to MSH-12 (python-hl7 keeps MSH-1 and MSH-2 whole, so the rest of the
    segment splits the ordinary way)."""
    app, facility, rcv_app, rcv_facility, msh7, _msh8, msh9, msh10, msh11, msh12 = msh
    comp = r.comp
    if r.esc not in (fields := r.fs.join(msh)) and r.rep not in fields:
        # No escape and no repetition: decoding and taking the first repetition are identities.
        msg_type = msh9.split(comp, 2)
        return (
            msh10.strip() or None, app.strip(), facility.strip(), rcv_app.strip(),
            rcv_facility.strip(), msh12.partition(comp)[0].strip(), msg_type[0].strip().upper(),
            msg_type[1].strip().upper() if len(msg_type) > 1 else "", msh7.partition(comp)[0].strip(),
            msh11.partition(comp)[0].strip().upper(),
        )
    return (
        r.text(msh10).strip() or None, r.text(app).strip(), r.text(facility).strip(),
        r.text(rcv_app).strip(), r.text(rcv_facility).strip(), r.comp_of(msh12),
        r.comp_of(msh9, 1).upper(), r.comp_of(msh9, 2).upper(), r.comp_of(msh7),
        r.comp_of(msh11).upper(),
    )


def _read(segments: list[str], default_tz: tzinfo) -> ParsedMessage:
    msh_text = segments[0]
    fs = msh_text[3]
    end = msh_text.find(fs, 4)
    r = _STANDARD_READER if msh_text[3:9] == _STANDARD_SEPARATORS else _Reader(fs, msh_text[4:end])
    rest = msh_text[end + 1 :]
    msh = rest.split(fs, 10) if rest else []  # MSH-3 .. MSH-12, then the rest unsplit
    if len(msh) < 10:
        msh.extend(_EMPTY_FIELDS[len(msh) : 10])
    (control_id, sending_app, sending_facility, receiving_app, receiving_facility, version,
     msg_code, event, sent_text, processing_id) = _msh_values(msh[:10], r)  # fmt: skip
    head = (control_id, sending_app, sending_facility, version)
    # _check_header
    if msg_code != "ORU":
        shown = "^".join(p for p in (msg_code, event) if p) or "(empty)"
        reason = f"unsupported message type {shown}: only ORU^R01 is accepted"
        raise _reject(head, "AR", reason, "200", ("MSH", 1, 9))
    if event != "R01":
        reason = f"unsupported event ORU^{event or '(empty)'}: only ORU^R01 is accepted"
        raise _reject(head, "AR", reason, "201", ("MSH", 1, 9))
    if version not in _VERSIONS and not _SUPPORTED_VERSION.fullmatch(version):
        reason = f"unsupported HL7 version {version or '(empty)'!r}: 2.3 to 2.6 are accepted"
        raise _reject(head, "AR", reason, "203", ("MSH", 1, 12))
    if control_id is None:
        raise _reject(head, "AE", "MSH-10 (message control id) is empty", "101", ("MSH", 1, 10))

    # _check_structure: every segment's id; only PID, PV1, OBR and OBX are read further.
    pids: list[str] = []
    pv1s: list[str] = []
    obrs_and_obxs: list[str] = []
    for index in range(1, len(segments)):
        text = segments[index]
        sid = text[:3]
        if text[3:4] != fs or fs in sid:  # not the usual "XYZ|...": python-hl7's reading
            sid = _segment_id(text, r)
        if sid not in _VALID_IDS:
            if not _SEGMENT_ID.fullmatch(sid):
                reason = f"segment {index + 1} has no valid segment id ({sid[:12]!r})"
                raise _reject(head, "AE", reason, "100")
            _VALID_IDS.add(sid)
        if sid == "OBX" or sid == "OBR":
            obrs_and_obxs.append(text)
        elif sid == "PID":
            pids.append(text)
        elif sid == "PV1":
            pv1s.append(text)
        elif sid == "MSH":
            reason = (
                f"segment {index + 1} is a second MSH: send one message per frame "
                "(batches are not accepted)"
            )
            raise _reject(head, "AE", reason, "100")
    # None of these is MSH/BHS/FHS, so python-hl7 splits all their fields the ordinary way.
    patient = _first_component(_field(pids[0], fs, 3), r) if pids else None
    bed = _bed(_field(pv1s[0], fs, 3), r) if pv1s else None
    if (len(pids) > 1 and len({_first_component(_field(t, fs, 3), r) for t in pids}) > 1) or (
        len(pv1s) > 1 and len({_bed(_field(t, fs, 3), r) for t in pv1s}) > 1
    ):
        reason = (
            "observations for more than one patient or bed in one message: "
            "send one ORU^R01 per patient"
        )
        raise _reject(head, "AE", reason, "207")

    # Read every OBX before the OBX-2 rule (nothing below can raise), then apply it.
    times: dict[str, datetime | None] = {"": None}  # parse._time once per distinct text
    sent_at = times[sent_text] = _time(sent_text, default_tz) if sent_text else None
    observations, empty_type = _observations(obrs_and_obxs, r, sent_at, times, default_tz)
    if empty_type:
        where = ", ".join(f"OBX #{n} (set id {set_id or '-'})" for n, set_id in empty_type)
        reason = (
            f"OBX-5 holds a value but OBX-2 (value type) is empty in {where}; "
            "HL7 requires OBX-2 whenever OBX-5 is valued"
        )
        raise _reject(head, "AE", reason, "101", ("OBX", empty_type[0][0], 2))

    msg_flags: list[MessageFlag] = []
    if sent_at is None:
        msg_flags.append("bad_timestamp")
    if not observations:
        msg_flags.append("no_observations")
    return _message(
        sending_app, sending_facility, receiving_app, receiving_facility, sent_at, control_id,
        "ORU^R01", version, processing_id, patient or None, bed, observations,
        tuple(msg_flags),
    )


def _field(text: str, fs: str, n: int) -> str:
    fields = text.split(fs, n + 1)
    return fields[n] if n < len(fields) else ""


def _first_component(raw: str, r: _Reader) -> str:
    """``r.comp_of(raw)``; without escape and repetition characters a plain split."""
    if r.esc in raw or r.rep in raw:
        return r.comp_of(raw)
    return raw.partition(r.comp)[0].strip()


def _bed(raw: str, r: _Reader) -> str | None:
    if r.esc in raw or r.rep in raw:
        parts = [r.comp_of(raw, c) for c in (1, 2, 3)]
    else:  # comp_of's reads, less the components that are missing (dropped below anyway)
        parts = list(map(str.strip, raw.split(r.comp, 3)[:3]))
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts) or None


def _observations(
    segments: list[str], r: _Reader, sent_at: datetime | None,
    times: dict[str, datetime | None], default_tz: tzinfo,
) -> tuple[tuple[ParsedObservation, ...], list[tuple[int, str]]]:
    """parse._observations of the OBR and OBX ``segments`` (in order), and (OBX occurrence,
    set id) of every OBX whose OBX-5 is valued while OBX-2 is empty. ``times`` caches parse._time
    per text."""
    observations: list[ParsedObservation] = []
    empty_type: list[tuple[int, str]] = []
    # The current OBR group (OBX before any OBR form one too), whose rules apply at its end:
    # where it starts in observations, OBX-18 by OBX-4, its observations without OBX-18, its
    # set ids and those seen more than once.
    group_start = 0
    devices: dict[str, str] = {}
    unresolved: list[ParsedObservation] = []
    set_ids: set[str] = set()
    duplicate_ids: set[str] = set()
    obr_time: datetime | None = None
    obr_bad = False
    fs, comp, rep, esc, sub = r.fs, r.comp, r.rep, r.esc, r.sub
    first, comps3, text_of = r.first, r.comps3, r.text
    comps_memo, plain_comps3 = r.plain_comps3_memo, r.plain_comps3
    for text in segments:
        fields = text.split(fs)
        nf = len(fields)
        if nf < 19:
            fields.extend(_EMPTY_FIELDS[nf:])
        if fields[0] == "OBR":
            if observations:
                _end_group(observations[group_start:], devices, unresolved, duplicate_ids)
                group_start = len(observations)
                devices, unresolved, set_ids, duplicate_ids = {}, [], set(), set()
            obr_text = first(fields[7])
            if obr_text in times:
                obr_time = times[obr_text]
            else:
                obr_time = times[obr_text] = _time(obr_text, default_tz)
            obr_bad = bool(obr_text) and obr_time is None
            continue
        if esc not in text and rep not in text:
            # The common case. Without escape and repetition characters, decoding and taking
            # the first repetition are identities: _Reader's reads reduce to these splits.
            set_id = fields[1].partition(comp)[0].strip()
            value_type = fields[2].partition(comp)[0].strip().upper()
            # (A memo hit is a non-empty tuple, so "or" computes only on a miss.)
            code, code_text, code_system = comps_memo.get(fields[3]) or plain_comps3(fields[3])
            sub_id = fields[4].strip()
            raw5 = raw_value = fields[5]
            units_code, units_text, units_system = comps_memo.get(fields[6]) or plain_comps3(fields[6])
            status = fields[11].partition(comp)[0].strip().upper()
            obx_text = fields[14].partition(comp)[0].strip()
            device = fields[18].partition(comp)[0].strip()
            leaf: str | None = None if comp in raw5 or sub in raw5 else raw5
        else:
            set_id = first(fields[1])
            value_type = first(fields[2]).upper()
            code, code_text, code_system = comps3(fields[3])
            sub_id = text_of(fields[4]).strip()
            raw5 = fields[5]
            raw_value = text_of(raw5)
            units_code, units_text, units_system = comps3(fields[6])
            status = first(fields[11]).upper()
            obx_text = first(fields[14])
            device = first(fields[18])
            leaf = r.single_leaf(raw5)
        has_value = bool(raw_value.strip())
        if has_value and not value_type:
            empty_type.append((len(observations) + 1, set_id))
        if set_id:  # parse counts (group, set id) pairs; empty set ids are never duplicates
            if set_id in set_ids:
                duplicate_ids.add(set_id)
            else:
                set_ids.add(set_id)
        flags: list[ObservationFlag] = []
        numeric: Decimal | None = None
        if value_type and value_type not in VALUE_TYPES:
            flags.append("unsupported_value_type")
        if has_value and value_type == "NM":
            if leaf is None:
                numeric = _nm(r.field(raw5))
            else:
                numeric = _NUMBERS.get(leaf)
                if numeric is None:
                    numeric = _number(leaf)
            if numeric is None:
                flags.append("value_not_numeric")
        elif has_value and value_type == "SN":
            numeric, well_formed = _sn(r.field(raw5))
            if not well_formed:
                flags.append("value_not_numeric")
        if has_value and value_type in ("NM", "SN") and not (units_code or units_text):
            flags.append("no_units")
        if not code_system:
            flags.append("no_coding_system")
        if obx_text in times:
            observed_at = times[obx_text]
        else:
            observed_at = times[obx_text] = _time(obx_text, default_tz)
        if observed_at is None:
            observed_at = obr_time or sent_at
            if obx_text or (obr_bad and obr_time is None) or observed_at is None:
                flags.append("bad_timestamp")
        # Through the slots (see _message), in field order.
        obs = _new(ParsedObservation)
        _set_position(obs, len(observations))
        _set_set_id(obs, set_id)
        _set_value_type(obs, value_type)
        _set_code(obs, code)
        _set_code_text(obs, code_text)
        _set_code_system(obs, code_system)
        _set_sub_id(obs, sub_id)
        _set_raw_value(obs, raw_value)
        _set_numeric_value(obs, numeric)
        _set_units_code(obs, units_code)
        _set_units_text(obs, units_text)
        _set_units_system(obs, units_system)
        _set_result_status(obs, status)
        _set_observed_at(obs, observed_at)
        if device:
            _set_device_id(obs, device)
            if sub_id:
                devices[sub_id] = device
        else:
            unresolved.append(obs)
        _set_obs_flags(obs, tuple(flags))
        observations.append(obs)
    if observations:
        _end_group(observations[group_start:], devices, unresolved, duplicate_ids)
    return tuple(observations), empty_type


def _end_group(
    group: list[ParsedObservation], devices: dict[str, str], unresolved: list[ParsedObservation],
    duplicate_ids: set[str],
) -> None:
    """The group-level rules of parse._observations for one OBR group: ``duplicate_set_id``, and
    for each of ``unresolved`` (no OBX-18) the device id of the nearest containing OBX
    (``parse._device_ids``; ``devices`` is OBX-18 by OBX-4)."""
    if duplicate_ids:
        for obs in group:
            if obs.set_id in duplicate_ids:
                _set_obs_flags(obs, (*obs.flags, "duplicate_set_id"))
    if len(devices) == 1:
        # The usual shape, one OBX-18 (on the MDS). parse tries the prefixes of OBX-4 that end
        # before a ".", nearest first ("1.0.1.1" -> "1.0.1" -> "1.0" -> "1"); path is one of
        # them iff OBX-4 starts with path + ".", and with one path there is no nearer one.
        ((path, device),) = devices.items()
        prefix = path + "."
        for obs in unresolved:
            _set_device_id(obs, device if obs.sub_id.startswith(prefix) else None)
        return
    for obs in unresolved:
        inherited: str | None = None
        path = obs.sub_id
        while devices and "." in path:
            path = path.rpartition(".")[0]
            inherited = devices.get(path)
            if inherited:
                break
        _set_device_id(obs, inherited)

