"""ORU^R01 parsing against the real-world conformance samples and the untidy cases of issue 5."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7.parse import ParsedMessage, ParsedObservation, parse_oru
from ketasafe.monitoring.hl7.timestamps import format_dtm, parse_dtm

# ../shared/conformance relative to the project root; the samples are not copied into the tree.
SAMPLES = Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "hl7"
CLINIC_TZ = ZoneInfo("America/New_York")
PLUS5 = timezone(timedelta(hours=5))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def parse(raw: bytes | str) -> ParsedMessage:
    return parse_oru(raw, default_tz=CLINIC_TZ)


def by_code(msg: ParsedMessage, code: str) -> ParsedObservation:
    return next(o for o in msg.observations if o.code == code)


def test_samples_are_where_the_tests_expect_them() -> None:
    assert (SAMPLES / "ipf_pcd01_bp_request.hl7").is_file()


def test_pcd01_bp_header_and_patient() -> None:
    msg = parse(sample("ipf_pcd01_bp_request.hl7"))
    assert msg.sending_app == "AcmeInc^ACDE48234567ABCD^EUI-64"
    assert msg.sending_facility == ""
    assert msg.control_id == "MSGID1234"
    assert msg.message_type == "ORU^R01"
    assert msg.version == "2.6"
    assert msg.processing_id == "P"
    assert msg.sent_at == datetime(2009, 7, 13, 9, 0, 30, tzinfo=PLUS5)
    assert msg.patient_id == "789567"
    assert msg.bed is None
    assert msg.flags == ()
    assert msg.dedup_key == ("AcmeInc^ACDE48234567ABCD^EUI-64", "", "MSGID1234")


def test_pcd01_bp_observations_codes_units_and_times() -> None:
    msg = parse(sample("ipf_pcd01_bp_request.hl7"))
    assert [o.code for o in msg.observations] == ["528391", "150020", "150021", "150022", "150023"]
    sys_ = by_code(msg, "150021")
    assert (sys_.value_type, sys_.code_text, sys_.code_system) == (
        "NM", "MDC_PRESS_BLD_NONINV_SYS", "MDC"
    )
    assert sys_.sub_id == "1.0.1.1"
    assert sys_.numeric_value == Decimal("120")
    assert (sys_.units_code, sys_.units_text, sys_.units_system) == (
        "266016", "MDC_DIM_MMHG", "MDC"
    )
    assert sys_.result_status == "R"
    # OBX-14 is empty on the metrics: OBR-7 applies (issue 5).
    assert sys_.observed_at == datetime(2009, 8, 13, 9, 57, 15, tzinfo=PLUS5)
    assert sys_.flags == ()
    assert by_code(msg, "150022").numeric_value == Decimal("80")
    assert by_code(msg, "150023").numeric_value == Decimal("100")
    # The MDS-level OBX carries the EUI-64; its metrics inherit it through OBX-4 containment.
    mds = by_code(msg, "528391")
    assert (mds.value_type, mds.raw_value, mds.device_id) == ("", "", "0123456789ABCDEF")
    assert sys_.device_id == "0123456789ABCDEF"


def test_continua_oximeter_spo2_and_trailing_space_in_pid3() -> None:
    msg = parse(sample("ipf_continua_wan_oximeter.hl7"))
    assert msg.patient_id == "789567"
    assert msg.sent_at == datetime(2009, 7, 13, 9, 0, 30, tzinfo=UTC)
    spo2 = by_code(msg, "150456")
    assert spo2.numeric_value == Decimal("80.5")
    assert spo2.units_code == "262688"
    assert spo2.observed_at == datetime(2009, 7, 15, 7, 7, 7, tzinfo=UTC)
    pleth = by_code(msg, "150452")
    assert pleth.value_type == "NA"
    assert pleth.raw_value == "12^123^24^12^234^55^66^77^88^99"
    assert pleth.numeric_value is None
    assert pleth.flags == ()


def test_continua_bp_with_cwe_and_dtm_observations() -> None:
    msg = parse(sample("ipf_continua_wan_bp.hl7"))
    assert len(msg.observations) == 7
    sync = by_code(msg, "68220")
    assert (sync.value_type, sync.raw_value) == ("CWE", "532224^MDC_TIME_SYNC_NONE^MDC")
    dev = by_code(msg, "528391")
    assert dev.result_status == "X"
    assert by_code(msg, "150021").numeric_value == Decimal("120")
    dtm = by_code(msg, "67975")
    assert dtm.raw_value == "20091028123702"
    assert dtm.observed_at == datetime(2009, 10, 28, 17, 37, 2, tzinfo=UTC)


def test_invalid_glucose_is_rejected_ae_naming_the_obx() -> None:
    with pytest.raises(MessageRejected) as info:
        parse(sample("ipf_continua_wan_glucose_INVALID.hl7"))
    exc = info.value
    assert exc.ack_code == "AE"
    assert exc.control_id == "MSGID1234"
    assert "OBX" in exc.reason and "OBX-2" in exc.reason
    assert "set id 8" in exc.reason and "set id 10" in exc.reason
    assert exc.location == ("OBX", 8, 2)
    assert exc.error_code == "101"
    assert exc.sending_app == "AcmeInc^ACDE48234567ABCD^EUI-64"


def test_normative_lab_oru_is_kept_as_received() -> None:
    msg = parse(sample("python_hl7_normative_lab_oru_v24.hl7"))
    assert (msg.sending_app, msg.sending_facility) == ("GHH LAB", "ELAB-3")
    assert (msg.receiving_app, msg.receiving_facility) == ("GHH OE", "BLDG4")
    assert msg.version == "2.4"
    assert msg.control_id == "CNTRL-3456"
    assert msg.patient_id == "555-44-4444"
    # No zone in MSH-7: the clinic's zone applies.
    assert msg.sent_at == datetime(2002, 2, 15, 9, 30, tzinfo=CLINIC_TZ)
    sn, fn = msg.observations
    assert (sn.value_type, sn.raw_value, sn.numeric_value) == ("SN", "^182", Decimal("182"))
    assert sn.units_code == "mg/dl"
    assert sn.observed_at == datetime(2002, 2, 15, 7, 30, tzinfo=CLINIC_TZ)  # OBR-7
    assert sn.flags == ()
    assert (fn.value_type, fn.numeric_value) == ("FN", None)
    assert fn.flags == ("unsupported_value_type",)


MINIMAL = (
    "MSH|^~\\&|MON|CLINIC|KS|CLINIC|20250301101500+0100||ORU^R01^ORU_R01|C1|P|2.6",
    "PID|||P123",
    "PV1||I|RECOVERY^2^CHAIR3",
    "OBR|1|||VITALS|||20250301101400+0100",
    "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|132|266016^MDC_DIM_MMHG^MDC|||||R",
    "OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.2.1|71|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R",
)


def build(*segments: str, sep: str = "\r") -> str:
    return sep.join(segments) + sep


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segment_separators_cr_lf_crlf_parse_identically(sep: str) -> None:
    assert parse(build(*MINIMAL, sep=sep)) == parse(build(*MINIMAL))


def test_bytes_and_text_parse_identically_and_mllp_residue_is_ignored() -> None:
    text = build(*MINIMAL)
    assert parse(text.encode()) == parse(text)
    assert parse(b"\x0b" + text.encode() + b"\x1c\r") == parse(text)


def test_bed_is_pv1_3_components_joined() -> None:
    msg = parse(build(*MINIMAL))
    assert msg.bed == "RECOVERY^2^CHAIR3"
    only_bed = list(MINIMAL)
    only_bed[2] = "PV1||I|^^CHAIR3"
    assert parse(build(*only_bed)).bed == "^^CHAIR3"


def test_escape_sequences_are_decoded_in_values_and_codes() -> None:
    msg = parse(build(
        *MINIMAL[:4],
        "OBX|1|ST|X1^Note \\T\\ comment^LOCAL||a\\F\\b\\S\\c\\R\\d\\E\\e|||||||F",
    ))  # fmt: skip
    obs = msg.observations[0]
    assert obs.code_text == "Note & comment"
    assert obs.raw_value == "a|b^c~d\\e"


def test_malformed_escape_is_kept_as_sent_not_raised() -> None:
    msg = parse(build(*MINIMAL[:4], "OBX|1|ST|X1^T^LOCAL||x\\.spQ\\y|||||||F"))
    assert msg.observations[0].raw_value == "x\\.spQ\\y"


def test_untidy_observations_are_flagged_and_the_rest_is_normal() -> None:
    msg = parse(build(
        *MINIMAL[:4],
        "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||128|266016^MDC_DIM_MMHG^MDC|||||R",
        "OBX|1|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC||84|266016^MDC_DIM_MMHG^MDC|||||R",
        "OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||2.73x10^-7|262688^MDC_DIM_PERCENT^MDC|||||R",
        "OBX|4|NM|HR_LOCAL^Heart rate||72|bpm|||||R",
        "OBX|5|NM|151562^MDC_RESP_RATE^MDC||14||||||R",
        "OBX|6|NM|147842^MDC_ECG_HEART_RATE^MDC||71|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R",
    ))  # fmt: skip
    flags = [o.flags for o in msg.observations]
    assert flags == [
        ("duplicate_set_id",),
        ("duplicate_set_id",),
        ("value_not_numeric",),
        ("no_coding_system",),
        ("no_units",),
        (),
    ]
    assert msg.observations[0].numeric_value == Decimal("128")  # still stored normally
    odd = msg.observations[2]
    assert odd.raw_value == "2.73x10^-7"
    assert odd.numeric_value is None
    assert msg.observations[3].code == "HR_LOCAL"
    assert msg.observations[5].numeric_value == Decimal("71")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1e5", "1,5", "12 3", "--1", ""])
def test_nm_accepts_only_hl7_numbers(text: str) -> None:
    msg = parse(build(*MINIMAL[:4], f"OBX|1|NM|150021^S^MDC||{text}|mm[Hg]|||||R"))
    obs = msg.observations[0]
    assert obs.numeric_value is None
    assert obs.flags == (("value_not_numeric",) if text else ())


@pytest.mark.parametrize(
    ("text", "value"),
    [("+5", "5"), ("-0.5", "-0.5"), (".5", "0.5"), ("5.", "5"), ("007", "7"), (" 98.60 ", "98.60")],
)
def test_nm_numbers(text: str, value: str) -> None:
    msg = parse(build(*MINIMAL[:4], f"OBX|1|NM|150021^S^MDC||{text}|mm[Hg]|||||R"))
    assert msg.observations[0].numeric_value == Decimal(value)


@pytest.mark.parametrize(
    ("text", "value", "flagged"),
    [("^182", "182", False), ("=^182", "182", False), ("182", "182", False),
     (">^180", None, False), ("^10^-^20", None, False), ("?^1", None, True), ("^x", None, True)],
)  # fmt: skip
def test_structured_numeric(text: str, value: str | None, flagged: bool) -> None:
    msg = parse(build(*MINIMAL[:4], f"OBX|1|SN|150021^S^MDC||{text}|mm[Hg]|||||R"))
    obs = msg.observations[0]
    assert obs.numeric_value == (Decimal(value) if value else None)
    assert ("value_not_numeric" in obs.flags) is flagged


def test_obx14_wins_then_obr7_then_msh7() -> None:
    msg = parse(build(
        "MSH|^~\\&|MON||||20250301101500||ORU^R01|C1|P|2.5",
        "OBX|1|NM|A^A^L||1|x|||||R",
        "OBR|1|||V|||20250301101400",
        "OBX|2|NM|B^B^L||1|x|||||R|||20250301101330.25-0300",
        "OBX|3|NM|C^C^L||1|x|||||R",
    ))  # fmt: skip
    before_obr, own, from_obr = msg.observations
    assert before_obr.observed_at == datetime(2025, 3, 1, 10, 15, tzinfo=CLINIC_TZ)  # MSH-7
    assert own.observed_at == datetime(
        2025, 3, 1, 10, 13, 30, 250000, tzinfo=timezone(-timedelta(hours=3))
    )
    assert from_obr.observed_at == datetime(2025, 3, 1, 10, 14, tzinfo=CLINIC_TZ)


def test_unreadable_obx14_is_flagged_and_falls_back() -> None:
    msg = parse(build(*MINIMAL[:4], "OBX|1|NM|A^A^L||1|x|||||R|||20251301"))
    obs = msg.observations[0]
    assert obs.flags == ("bad_timestamp",)
    assert obs.observed_at == datetime(2025, 3, 1, 10, 14, tzinfo=timezone(timedelta(hours=1)))


def test_no_usable_time_anywhere_gives_none_and_flags() -> None:
    msg = parse(build("MSH|^~\\&|MON||||||ORU^R01|C1|P|2.5", "OBX|1|NM|A^A^L||1|x|||||R"))
    assert msg.sent_at is None
    assert msg.flags == ("bad_timestamp",)
    assert msg.observations[0].observed_at is None
    assert msg.observations[0].flags == ("bad_timestamp",)


def test_oru_without_obx_is_accepted_and_flagged() -> None:
    msg = parse(build(*MINIMAL[:4]))
    assert msg.observations == ()
    assert msg.flags == ("no_observations",)


@pytest.mark.parametrize(
    "raw",
    [b"", b"hello world", b"\x00\x01\x02", b"PID|||1\rMSH|^~\\&|", b"MSH", b"MSH|",
     b"MSH|^~\\&", b"MSHa^~\\&|x", b"MSH|^^\\&|A||||||ORU^R01|1|P|2.5"],
)  # fmt: skip
def test_non_hl7_is_rejected_ar(raw: bytes) -> None:
    with pytest.raises(MessageRejected) as info:
        parse(raw)
    assert info.value.ack_code == "AR"


@pytest.mark.parametrize(
    ("msh9", "error_code"),
    [("ADT^A01^ADT_A01", "200"), ("QRY^Q01", "200"), ("ORU^R30", "201"), ("", "200")],
)
def test_other_message_types_are_rejected_ar(msh9: str, error_code: str) -> None:
    with pytest.raises(MessageRejected) as info:
        parse(build(f"MSH|^~\\&|MON||||20250301||{msh9}|C9|P|2.5", "PID|||1"))
    assert info.value.ack_code == "AR"
    assert info.value.control_id == "C9"
    assert info.value.error_code == error_code
    assert "ORU^R01" in info.value.reason


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"])
def test_supported_versions(version: str) -> None:
    assert parse(build(f"MSH|^~\\&|M||||20250301||ORU^R01|1|P|{version}")).version == version


@pytest.mark.parametrize("version", ["2.2", "2.7", "3.0", "", "abc"])
def test_unsupported_versions_are_rejected_ar(version: str) -> None:
    with pytest.raises(MessageRejected) as info:
        parse(build(f"MSH|^~\\&|M||||20250301||ORU^R01|1|P|{version}"))
    assert (info.value.ack_code, info.value.error_code) == ("AR", "203")


def test_missing_control_id_is_rejected_ae() -> None:
    with pytest.raises(MessageRejected) as info:
        parse(build("MSH|^~\\&|M||||20250301||ORU^R01||P|2.5"))
    assert (info.value.ack_code, info.value.control_id) == ("AE", None)
    assert "MSH-10" in info.value.reason


@pytest.mark.parametrize(
    "extra",
    ["MSH|^~\\&|M||||20250301||ORU^R01|2|P|2.5", "pid|||1", "garbage line", "PID|||9"],
)
def test_structural_errors_are_rejected_ae(extra: str) -> None:
    with pytest.raises(MessageRejected) as info:
        parse(build(*MINIMAL, extra))
    assert info.value.ack_code == "AE"
    assert info.value.control_id == "C1"


def test_custom_delimiters_are_honoured() -> None:
    msg = parse(build(
        "MSH#*@!%#M####20250301##ORU*R01#C1#P#2.5",
        "OBX#1#NM#150021*S*MDC##120@5#mm[Hg]#####R",
        "OBX#2#ST#N*N*L##a!F!b%c#######R",
    ))  # fmt: skip
    rep, text = msg.observations
    assert (rep.code, rep.code_text, rep.code_system) == ("150021", "S", "MDC")
    assert rep.raw_value == "120@5"  # "@" is the repetition separator here: not a number
    assert rep.flags == ("value_not_numeric",)
    assert text.raw_value == "a#b%c"  # !F! is the escaped field separator "#"


def test_unterminated_escape_is_kept_as_sent() -> None:
    msg = parse(build(*MINIMAL[:4], "OBX|1|ST|N^N^L||120\\5|||||||F"))
    assert msg.observations[0].raw_value == "120\\5"


def test_latin1_bytes_are_decoded() -> None:
    raw = build(*MINIMAL[:4], "OBX|1|ST|N^N^L||Temp\xe9rature|||||||F").encode("latin-1")
    assert parse(raw).observations[0].raw_value == "Temp\xe9rature"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", datetime(2025, 1, 1, tzinfo=CLINIC_TZ)),
        ("202503011015", datetime(2025, 3, 1, 10, 15, tzinfo=CLINIC_TZ)),
        ("20250301101530.1234", datetime(2025, 3, 1, 10, 15, 30, 123400, tzinfo=CLINIC_TZ)),
        ("20250301101530.1234567", datetime(2025, 3, 1, 10, 15, 30, 123456, tzinfo=CLINIC_TZ)),
        ("20250301101530+0000", datetime(2025, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("20250301101530.5-0530", datetime(2025, 3, 1, 10, 15, 30, 500000,
                                           tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
        ("2025030110+1400", datetime(2025, 3, 1, 10, tzinfo=timezone(timedelta(hours=14)))),
    ],
)  # fmt: skip
def test_dtm_parsing(text: str, expected: datetime) -> None:
    got = parse_dtm(text, default_tz=CLINIC_TZ)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    ["", "196203520", "20251301", "20250230", "2025030124", "20250301101560", "2025.5",
     "20250301+2400", "20250301+0060", "2025-03-01", "20250301 1015"],
)  # fmt: skip
def test_dtm_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_dtm(text, default_tz=CLINIC_TZ)


def test_format_dtm_round_trips_and_needs_a_zone() -> None:
    moment = datetime(2025, 3, 1, 10, 15, 30, tzinfo=timezone(-timedelta(hours=5)))
    assert format_dtm(moment) == "20250301101530-0500"
    assert parse_dtm(format_dtm(moment), default_tz=UTC) == moment
    with pytest.raises(ValueError):
        format_dtm(datetime(2025, 3, 1))  # noqa: DTZ001 - naive on purpose


# --- parse_dtm against its earlier, straightforward form (the fast path and offset memo) -------
_REFERENCE_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d+))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?",
    re.ASCII,
)


def reference_parse_dtm(text: str, *, default_tz: timezone | ZoneInfo) -> datetime:
    """parse_dtm as it was before the fast path and the offset memo (the oracle)."""
    match = _REFERENCE_DTM.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an HL7 DTM value: {text!r}")
    year, month, day, hour, minute, second, frac, sign, off_h, off_m = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz: timezone | ZoneInfo
    if sign is None:
        tz = default_tz
    else:
        if int(off_m) >= 60:
            raise ValueError(f"bad UTC offset in {text!r}")
        delta = timedelta(hours=int(off_h), minutes=int(off_m))
        if delta >= timedelta(hours=24):
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(-delta if sign == "-" else delta)
    return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                    int(second or 0), micro, tzinfo=tz)  # fmt: skip


def dtm_outcome(parse: object, text: str, tz: timezone | ZoneInfo) -> object:
    try:
        got = parse(text, default_tz=tz)  # type: ignore[operator]
    except ValueError as exc:
        return ("ValueError", str(exc))
    return (got, repr(got), got.utcoffset(), got.tzinfo, got.fold)


DTM_TEXT = st.one_of(
    st.text(alphabet="0123456789", max_size=16),
    st.builds(
        lambda digits, frac, off, pad: f"{pad}{digits}{frac}{off}{pad}",
        st.sampled_from(["2025", "202503", "20250301", "2025030110", "202503011015", "20250301101530",
                         "20251301101530", "20250230101530", "20250301241530", "20250301106030",
                         "20250301101560", "00000101000000", "99991231235959", "20240229000000"]),
        st.sampled_from(["", "", ".1", ".1234", ".1234567", ".", "x"]),
        st.sampled_from(["", "", "+0000", "-0000", "+0100", "-0530", "+1400", "+2359", "+2400", "+0060",
                         "-2400", "+01", "+01000", "Z"]),
        st.sampled_from(["", "", " ", "\t", "\u00a0"]),
    ),
    st.text(max_size=20),
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(DTM_TEXT, st.sampled_from([UTC, CLINIC_TZ, PLUS5, ZoneInfo("Europe/Zurich")]))
def test_parse_dtm_matches_its_reference_form(text: str, tz: timezone | ZoneInfo) -> None:
    assert dtm_outcome(parse_dtm, text, tz) == dtm_outcome(reference_parse_dtm, text, tz)
    # A second read (offset memo warm) gives the same again.
    assert dtm_outcome(parse_dtm, text, tz) == dtm_outcome(reference_parse_dtm, text, tz)


def reference_format_dtm(moment: datetime) -> str:
    """format_dtm as it was before it stopped using strftime for 4-digit years (the oracle)."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("format_dtm needs an aware datetime")
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{mins:02d}"


@settings(max_examples=1000, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    st.sampled_from([UTC, CLINIC_TZ, PLUS5, ZoneInfo("Europe/Zurich"), timezone(-timedelta(hours=9, minutes=30)),
                     timezone(timedelta(seconds=-1)), timezone(timedelta(hours=5, seconds=30))]),
    st.booleans(),
)  # fmt: skip
def test_format_dtm_matches_its_reference_form(moment: datetime, tz: timezone | ZoneInfo, fold: bool) -> None:
    aware = moment.replace(tzinfo=tz, fold=int(fold))
    assert format_dtm(aware) == reference_format_dtm(aware)
