"""Differential test (issue 5): ``parse_oru_fast`` gives exactly what ``parse_oru`` (python-hl7,
the reference) gives, or the same rejection, on generated ORU messages, on every conformance
sample and on mutated real messages; and it never raises anything but MessageRejected."""

from __future__ import annotations

import pickle
from dataclasses import fields
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7 import fastparse
from ketasafe.monitoring.hl7.fastparse import parse_oru_fast
from ketasafe.monitoring.hl7.parse import parse_oru

from .test_hl7_fuzz import HL7_BYTES, REAL, SAMPLES, mutated

DIFF = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES: list[tzinfo] = [UTC, ZoneInfo("Europe/Zurich"), timezone(timedelta(hours=-5))]


def outcome(parse: object, raw: bytes | str, tz: tzinfo = UTC) -> object:
    try:
        return parse(raw, default_tz=tz)  # type: ignore[operator]
    except MessageRejected as exc:
        return ("rejected", exc.ack_code, exc.reason, exc.control_id, exc.error_code, exc.location,
                exc.sending_app, exc.sending_facility, exc.version)


def assert_same(raw: bytes | str, tz: tzinfo = UTC) -> None:
    reference = outcome(parse_oru, raw, tz)
    fast = outcome(parse_oru_fast, raw, tz)  # raises if anything but MessageRejected escapes
    assert fast == reference
    # == cannot see Decimal("97") against Decimal("97.0"), or one instant in two time zones.
    assert repr(fast) == repr(reference)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.hl7")), ids=lambda p: p.name)
@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_each_conformance_sample_reads_the_same(path: Path, tz: tzinfo) -> None:
    raw = path.read_bytes()
    assert_same(raw, tz)
    for eol in (b"\n", b"\r\n"):
        assert_same(raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").replace(b"\r", eol), tz)


# --- generated ORU^R01 messages -----------------------------------------------------------------

# Text that exercises escapes (well-formed, unterminated, unknown, hex, .sp<n>), separators
# inside values, whitespace and non-ASCII.
ATOMS = st.sampled_from([
    "", " ", "120", " 98.6 ", "-3", "+.5", "1.", "2.73x10^-7", "NaN", "1e5", "abc", "Ü", "\\F\\", "\\S\\",
    "\\T\\", "\\R\\", "\\E\\", "\\X41\\", "\\X4\\", "\\.sp3\\", "\\.spx\\", "\\H\\bold\\N\\", "\\Z1\\", "\\",
    "x\\F", "\\\\", "20250301101500", "20250301101500.1234+0100", "202503011015-0500", "2025", "20251340",
    "20250301101500+2400", "MDC", "NM", "SN", "ST", "FN", "nm", "X", "F", "R", "150021", "1.0.1.1", "1", "2",
    "mmHg", "266016", "MDC_DIM_MMHG", "%", "0012A3FFFE456789", "EUI-64", ">", "<=", "/", ":", "ORU", "R01",
])  # fmt: skip


@st.composite
def field_text(draw: st.DrawFn, seps: tuple[str, str, str, str]) -> str:
    """A field with repetitions, components and subcomponents, in the message's separators."""
    fs, comp, rep, sub = seps
    reps = draw(st.lists(
        st.lists(st.lists(ATOMS | st.text(max_size=4), min_size=1, max_size=3), min_size=1, max_size=4),
        min_size=1, max_size=2))  # fmt: skip
    text = rep.join(comp.join(sub.join(subs) for subs in comps) for comps in reps)
    return text.replace("\r", "").replace("\n", "")


@st.composite
def oru_message(draw: st.DrawFn) -> bytes | str:
    enc = draw(st.sampled_from(["^~\\&", "^~\\&", "#~\\$", "^~!&", "^~\\&#"]))
    fs = draw(st.sampled_from(["|", "|", "*"]))
    comp, rep, esc, sub = enc[0], enc[1], enc[2], enc[3]
    if esc != "\\":
        atoms_esc = esc  # escapes written with the message's own escape character below
    else:
        atoms_esc = "\\"
    seps = (fs, comp, rep, sub)

    def fld() -> str:
        return draw(field_text(seps)).replace("\\", atoms_esc)

    def plain(*choices: str) -> str:
        return draw(st.sampled_from(choices))

    msg_type = plain("ORU^R01", "ORU^R01^ORU_R01", "oru^r01", "ADT^A01", "ORU^R30", "", "ORU")
    version = plain("2.6", "2.5.1", "2.3", "2.4", "2.7", "", "2.6^x")
    msh = [
        "MSH", enc, fld(), fld(), fld(), fld(), plain("20250301101500+0100", "20250301", "garbage", ""), "",
        msg_type.replace("^", comp), plain("M1", " M2 ", "", "M\\F\\3".replace("\\", esc)), plain("P", "T^x", ""),
        version.replace("^", comp),
    ]  # fmt: skip
    msh_text = "MSH" + fs + fs.join(msh[1:])
    segments = [msh_text]
    for _ in range(draw(st.integers(0, 2))):
        segments.append(fs.join(["PID", "", "", plain("MRN1", "MRN2", "", "MRN1^^^X^MR").replace("^", comp)]))
    for _ in range(draw(st.integers(0, 2))):
        segments.append(fs.join(["PV1", "", "I", plain("A^1^C3", "^^C3", "", "A", "A^1^^").replace("^", comp)]))
    set_ids = ["1", "2", "1", "", "3"]
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            segments.append(fs.join(["OBR", "1", fld(), "", "", "", "",
                                     plain("20250301101500+0100", "", "bad", "20250301")]))
        for _ in range(draw(st.integers(0, 4))):
            parts = ["OBX", draw(st.sampled_from(set_ids)), plain("NM", "SN", "ST", "", "FN", "nm"),
                     fld(), plain("1", "1.0.1", "1.0.1.1", "", "1.2.1.1"), fld(), fld(), "", "", "", "",
                     plain("R", "F", "X", ""), "", "", plain("", "20250301101455+0100", "bad", "2025"), "", "", "",
                     plain("", "DEV1", "DEV2^EUI-64".replace("^", comp))]  # fmt: skip
            cut = draw(st.integers(3, len(parts)))
            segments.append(fs.join(parts[:cut]))
    if draw(st.booleans()):
        segments.insert(draw(st.integers(1, len(segments))), draw(st.sampled_from(
            ["NTE|1||note", "ZXX", "BHS|^~\\&|x", "FHS", "MSH", "MSH|^~\\&|A", "1AB|x", "   ", "", "PID"])))
    eol = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    # Trailing whitespace of every kind: python-hl7 strip()s the message, we must too.
    ending = st.sampled_from(["", eol, " ", "\t\r\n", "\x1c\r", "\x0c", " \x1f", "\u00a0", "\u2003\r"])
    text = eol.join(segments) + draw(ending)
    return text.encode() if draw(st.booleans()) else text


@DIFF
@given(oru_message(), st.sampled_from(ZONES))
@example("MSH|^~\\&|A||||20250301||ORU^R01|1|P|2.5\rOBX|1|NM|x^y^MDC||1\\.sp2\\|mmHg", UTC)
@example("MSH|^~\\&|A||||20250301||ORU^R01|1|P|2.5\rOBX|1|SN|x||>^1|mmHg \x0c", UTC)
def test_generated_messages_read_the_same(raw: bytes | str, tz: tzinfo) -> None:
    assert_same(raw, tz)


@DIFF
@given(mutated())
def test_mutated_real_messages_read_the_same(raw: bytes) -> None:
    assert_same(raw)


@DIFF
@given(st.binary(max_size=300).map(lambda b: b"MSH|^~\\&|" + b))
def test_bytes_after_a_plausible_msh_read_the_same(raw: bytes) -> None:
    assert_same(raw)


@DIFF
@given(st.lists(HL7_BYTES | st.integers(0, 255), max_size=200).map(
    lambda bs: b"MSH|^~\\&|A||||2025||ORU^R01|1|P|2.5\rOBX|" + bytes(bs)))
def test_arbitrary_obx_bytes_read_the_same(raw: bytes) -> None:
    assert_same(raw)


@DIFF
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_a_rejection(raw: bytes) -> None:
    assert_same(raw)


def test_real_samples_are_loaded() -> None:
    assert len(REAL) >= 5


# --- the fast paths of parse_oru_fast -------------------------------------------------------------
# Most segments of real messages have no escape or repetition character and are read by plain
# splits; the generated messages above nearly always have some. These strip them from a random
# choice of segments, so both readings (and messages mixing them) are compared with parse_oru.


@st.composite
def plain_segments(draw: st.DrawFn) -> bytes | str:
    raw = draw(oru_message())
    text = raw.decode() if isinstance(raw, bytes) else raw
    eol = "\r\n" if "\r\n" in text else ("\n" if "\n" in text else "\r")
    segments = text.split(eol)
    msh = segments[0]
    fs = msh[3]
    end = msh.find(fs, 4)
    rep, esc = msh[5], msh[6]
    drop = (esc, rep) if draw(st.booleans()) else (esc,)
    out = []
    for index, segment in enumerate(segments):
        if draw(st.booleans()):
            head, body = (msh[: end + 1], msh[end + 1 :]) if index == 0 else ("", segment)
            for char in drop:
                body = body.replace(char, "")
            segment = head + body
        out.append(segment)
    joined = eol.join(out)
    return joined.encode() if isinstance(raw, bytes) else joined


@DIFF
@given(plain_segments(), st.sampled_from(ZONES))
def test_generated_messages_with_plain_segments_read_the_same(raw: bytes | str, tz: tzinfo) -> None:
    assert_same(raw, tz)


@st.composite
def device_groups(draw: st.DrawFn) -> str:
    """OBR groups with containment paths and OBX-18 in every arrangement: none, one (the usual
    MDS), several, nested, empty path parts, duplicate set ids."""
    paths = st.sampled_from(["1", "1.0", "1.0.1", "1.0.1.1", "1.0.1.2", "1.0.2.1", "1..1", ".", "1.", "",
                             "2", "2.1", "10.1", "1.01"])  # fmt: skip
    devices = st.sampled_from(["", "", "D1", "D2", "D3^EUI-64"])
    segments = ["MSH|^~\\&|A||||20250301101500+0100||ORU^R01|1|P|2.6"]
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            segments.append("OBR|1||||||" + draw(st.sampled_from(["", "20250301101400", "x"])))
        for _ in range(draw(st.integers(0, 6))):
            segments.append(f"OBX|{draw(st.sampled_from(['1', '2', '', '3']))}|NM|150021^SYS^MDC|"
                            f"{draw(paths)}|{draw(st.sampled_from(['1', '0', '-0.5', 'x']))}|mmHg|||||R"
                            f"|||{draw(st.sampled_from(['', '20250301101455', '20250301101455+0100']))}"
                            f"||||{draw(devices)}")  # fmt: skip
    return "\r".join(segments)


@DIFF
@given(device_groups(), st.sampled_from(ZONES))
def test_device_inheritance_and_duplicates_read_the_same(raw: str, tz: tzinfo) -> None:
    assert_same(raw, tz)


def test_observations_built_through_the_slots_are_the_dataclass_objects() -> None:
    """parse_oru_fast fills ParsedObservation/ParsedMessage through their slots; the objects must
    be indistinguishable from those __init__ builds (equality, hash, repr, pickling)."""
    for raw in REAL:
        try:
            reference = parse_oru(raw, default_tz=UTC)
        except MessageRejected:
            continue
        fast = parse_oru_fast(raw, default_tz=UTC)
        assert type(fast) is type(reference)
        assert repr(fast) == repr(reference)
        assert hash(fast.observations) == hash(reference.observations)
        assert pickle.loads(pickle.dumps(fast)) == reference  # noqa: S301 - our own bytes
        for obs in fast.observations:
            assert all(hasattr(obs, f.name) for f in fields(obs))  # every slot is set


def test_memos_never_change_a_result() -> None:
    """The memos of the fast path (components of OBX-3/OBX-6, NM values, segment ids) are pure:
    reading a message with them cold, warm and after they were emptied gives the same result."""
    raws = [*REAL, "MSH|^~\\&|A||||20250301||ORU^R01|1|P|2.5\rOBX|1|NM|x^y^MDC||0|a^b^c\rOBX|2|NM|x^y^MDC||00.50|a^b"]
    cold = []
    for raw in raws:
        fastparse._NUMBERS.clear()
        fastparse._STANDARD_READER.plain_comps3_memo.clear()
        cold.append(outcome(parse_oru_fast, raw))
    warm = [outcome(parse_oru_fast, raw) for raw in raws]
    assert warm == cold == [outcome(parse_oru, raw) for raw in raws]
    assert all(fastparse._SEGMENT_ID.fullmatch(sid) for sid in fastparse._VALID_IDS)
    for n in range(fastparse._MEMO_SIZE + 5):  # past the bound: emptied, never wrong
        text = f"MSH|^~\\&|A||||2025||ORU^R01|1|P|2.5\rOBX|1|NM|{n}^x^MDC||{n}|u{n}^v"
        assert outcome(parse_oru_fast, text) == outcome(parse_oru, text)
    assert len(fastparse._NUMBERS) <= fastparse._MEMO_SIZE
    assert len(fastparse._STANDARD_READER.plain_comps3_memo) <= fastparse._MEMO_SIZE


@pytest.mark.parametrize(("escape", "expanded"), [
    (r"\.sp20000000\ ", None), (r"\.in+999\ ", None), (r"\.sk 1000\ ", None), (r"\.br100\ ", None),
    (r"\.sp99\ ", "\r" * 99)])
def test_a_formatting_escape_asking_for_huge_repetition_is_kept_as_sent(escape: str, expanded: str | None) -> None:
    # A 200-byte frame must not make the listener allocate gigabytes: more than 99 repetitions
    # keep the value as sent, in both parsers alike.
    raw = ("MSH|^~\\&|MON|WARD|KS|KS|20260301101500||ORU^R01|ESC1|P|2.6\r"
           "PID|||MRN1\r"
           "OBR|1|||182777000^monitoring of patient^SNOMED-CT|||20260301101500\r"
           f"OBX|1|ST|0^NOTE^LOCAL||12{escape.strip()}3||||||F\r")
    assert_same(raw)
    value = parse_oru_fast(raw, default_tz=UTC).observations[0].raw_value
    assert len(value) < 200
    assert value == (f"12{expanded}3" if expanded is not None else f"12{escape.strip()}3")
