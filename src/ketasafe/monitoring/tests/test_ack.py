"""ACK messages: MSA-2 echoes MSH-10, AE/AR carry a readable reason in MSA-3 and ERR."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7 import ack as ack_module
from ketasafe.monitoring.hl7.ack import ack_accepted, ack_rejected, build_ack, escape_text
from ketasafe.monitoring.hl7.parse import parse_oru

SAMPLES = Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "hl7"
NOW = datetime(2025, 3, 1, 10, 15, 30, tzinfo=timezone(timedelta(hours=1)))


def segments(ack: bytes) -> dict[str, list[str]]:
    assert ack.endswith(b"\r")
    return {seg[:3]: seg.split("|") for seg in ack.decode().rstrip("\r").split("\r")}


def test_aa_for_the_pcd01_sample_echoes_control_id_and_swaps_sender() -> None:
    msg = parse_oru((SAMPLES / "ipf_pcd01_bp_request.hl7").read_bytes(), default_tz=UTC)
    ack = ack_accepted(msg, now=NOW)
    seg = segments(ack)
    assert set(seg) == {"MSH", "MSA"}
    msh = seg["MSH"]
    # Split on "|": index n is MSH-(n+1) because MSH-1 is the separator itself.
    assert msh[1] == "^~\\&"
    assert msh[2] == "KetaSafe"
    assert msh[4] == "AcmeInc^ACDE48234567ABCD^EUI-64"  # MSH-5 = original MSH-3
    assert msh[6] == "20250301101530+0100"
    assert msh[8] == "ACK^R01^ACK"
    assert len(msh[9]) == 20
    assert (msh[10], msh[11]) == ("P", "2.6")
    assert seg["MSA"] == ["MSA", "AA", "MSGID1234"]


def test_ack_parses_with_python_hl7() -> None:
    ack = build_ack(code="AA", control_id="X1", now=NOW, ack_control_id="A1", version="2.5")
    parsed = hl7.parse(ack.decode())
    assert str(parsed.segment("MSA")[2]) == "X1"
    assert str(parsed.segment("MSH")[10]) == "A1"


def test_ae_for_the_invalid_glucose_sample_names_obx_in_msa3_and_err() -> None:
    with pytest.raises(MessageRejected) as info:
        parse_oru((SAMPLES / "ipf_continua_wan_glucose_INVALID.hl7").read_bytes(), default_tz=UTC)
    seg = segments(ack_rejected(info.value, now=NOW))
    assert seg["MSA"][1:3] == ["AE", "MSGID1234"]
    assert "OBX-2" in seg["MSA"][3] and len(seg["MSA"][3]) <= 80
    err = seg["ERR"]
    assert err[2] == "OBX^8^2"  # ERR-2 location (v2.5+)
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert "set id 10" in err[8]  # full reason in ERR-8


def test_ar_for_an_adt_echoes_its_control_id() -> None:
    with pytest.raises(MessageRejected) as info:
        parse_oru("MSH|^~\\&|HIS|H|||20250301||ADT^A01|ADT77|P|2.4\rPID|||1\r", default_tz=UTC)
    seg = segments(ack_rejected(info.value, now=NOW))
    assert seg["MSA"][1:3] == ["AR", "ADT77"]
    assert seg["MSH"][4] == "HIS" and seg["MSH"][5] == "H"
    # v2.4 ERR-1: segment^sequence^field^code&text&table
    assert seg["ERR"][1] == "MSH^1^9^200&Unsupported message type&HL70357"


def test_fallback_when_nothing_could_be_read() -> None:
    ack = build_ack(code="AR", control_id=None, now=NOW, reason="not HL7", ack_control_id="A1")
    seg = segments(ack)
    assert seg["MSH"][4:6] == ["", ""]
    assert seg["MSH"][11] == "2.6"
    assert seg["MSA"] == ["MSA", "AR", "", "not HL7"]
    assert seg["ERR"][3] == "207^Application internal error^HL70357"


def test_reason_is_escaped_and_cannot_break_the_segment() -> None:
    ack = build_ack(code="AE", control_id="a|b", now=NOW, reason="x|y^z~w&v\\u\rOBX|evil",
                    ack_control_id="A1")  # fmt: skip
    seg = segments(ack)
    assert set(seg) == {"MSH", "MSA", "ERR"}
    assert seg["MSA"][2] == "a\\F\\b"
    assert seg["MSA"][3] == "x\\F\\y\\S\\z\\R\\w\\T\\v\\E\\u OBX\\F\\evil"


def test_escape_text_round_trips_through_python_hl7_unescape() -> None:
    text = "a|b^c~d&e\\f"
    msg = hl7.parse("MSH|^~\\&|x")
    assert msg.unescape(escape_text(text)) == text


def test_version_23_uses_two_component_message_type() -> None:
    seg = segments(build_ack(code="AA", control_id="1", now=NOW, version="2.3"))
    assert seg["MSH"][8] == "ACK^R01"


def test_aa_has_no_err_segment_and_naive_now_is_refused() -> None:
    assert b"ERR" not in build_ack(code="AA", control_id="1", now=NOW)
    with pytest.raises(ValueError):
        build_ack(code="AA", control_id="1", now=datetime(2025, 1, 1))  # noqa: DTZ001



# --- ack_accepted's cached parts and escape_text's fast path, against the plain build ----------

_REFERENCE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def reference_escape_text(text: str) -> str:
    """escape_text as it was before its fast path (the oracle)."""
    text = text.replace("\\", "\\E\\")
    text = text.replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("~", "\\R\\").replace("&", "\\T\\")
    return _REFERENCE_CONTROL.sub(" ", text)


HL7_TEXT = st.text(alphabet=st.sampled_from(list("aZ09 .-|^~&\\\r\n\t\x00\x1f\x7f\x80Üé€")), max_size=12) | st.text(
    max_size=12
)
SENDER = st.sampled_from(["", "GW", "AcmeInc^ACDE48234567ABCD^EUI-64", "a|b", "x\\y&z~", "Ü^€", " GW "]) | HL7_TEXT
VERSION = st.sampled_from(["2.6", "2.5.1", "2.5", "2.4", "2.3", "2.3.1", "2.2", "", " 2.6 ", "2.7"]) | HL7_TEXT
ZONES = [UTC, ZoneInfo("Europe/Zurich"), ZoneInfo("America/New_York"), timezone(timedelta(hours=-5, minutes=-30))]
MOMENTS = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    st.sampled_from(ZONES),
)


@settings(max_examples=600, deadline=None)
@given(HL7_TEXT)
def test_escape_text_matches_its_reference_form(text: str) -> None:
    assert escape_text(text) == reference_escape_text(text)


def plain_aa(msg: object, ack: bytes, now: datetime, app: str, facility: str) -> bytes:
    """build_ack's AA for the same message, with the MSH-10 that ``ack`` drew."""
    ack_control_id = ack.decode().split("\r")[0].split("|")[9]
    return build_ack(
        code="AA", control_id=msg.control_id, now=now, sending_app=msg.sending_app,  # type: ignore[attr-defined]
        sending_facility=msg.sending_facility, version=msg.version,  # type: ignore[attr-defined]
        processing_id=msg.processing_id, app=app, facility=facility,  # type: ignore[attr-defined]
        ack_control_id=ack_control_id,
    )  # fmt: skip


BASE = parse_oru((SAMPLES / "ipf_pcd01_bp_request.hl7").read_bytes(), default_tz=UTC)


@settings(max_examples=600, deadline=None)
@given(SENDER, SENDER, VERSION, HL7_TEXT, st.sampled_from(["P", "T", "D", "", "p^x"]), MOMENTS,
       st.sampled_from(["KetaSafe", "", "K|S"]), st.sampled_from(["", "CLINIC", "Ü&x"]), st.booleans())  # fmt: skip
def test_ack_accepted_is_build_ack_byte_for_byte(
    sending_app: str, sending_facility: str, version: str, control_id: str, processing_id: str,
    now: datetime, app: str, facility: str, copy_now: bool,
) -> None:
    msg = replace(BASE, sending_app=sending_app, sending_facility=sending_facility, version=version,
                  control_id=control_id, processing_id=processing_id)  # fmt: skip
    for _ in range(2):  # cold, then with the sender's parts and ``now`` cached
        ack = ack_accepted(msg, now=now, app=app, facility=facility)
        assert ack == plain_aa(msg, ack, now, app, facility)
        if copy_now:  # an equal ``now`` that is another object
            now = now.replace(microsecond=now.microsecond)


def test_a_cached_now_is_never_confused_with_an_equal_moment_in_another_zone() -> None:
    msg = BASE
    zurich = datetime(2025, 3, 1, 11, 15, 30, tzinfo=ZoneInfo("Europe/Zurich"))
    utc = zurich.astimezone(UTC)
    assert zurich == utc
    assert segments(ack_accepted(msg, now=zurich))["MSH"][6] == "20250301111530+0100"
    assert segments(ack_accepted(msg, now=utc))["MSH"][6] == "20250301101530+0000"
    assert segments(ack_accepted(msg, now=zurich))["MSH"][6] == "20250301111530+0100"
    with pytest.raises(ValueError):
        ack_accepted(msg, now=datetime(2025, 1, 1))  # noqa: DTZ001 - naive is refused, cached or not


def test_sender_parts_cache_is_bounded_and_stays_right() -> None:
    for n in range(ack_module._AA_PARTS_SIZE + 10):
        msg = replace(BASE, sending_app=f"GW{n}^x|y", control_id=f"C{n}")
        ack = ack_accepted(msg, now=NOW)
        assert ack == plain_aa(msg, ack, NOW, "KetaSafe", "")
        assert len(ack_module._AA_PARTS) <= ack_module._AA_PARTS_SIZE


def test_random_control_id_is_uuid4_hex_of_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(300):
        data = bytes((seed * 37 + i * 101) % 256 for i in range(16))
        monkeypatch.setattr(ack_module.os, "urandom", lambda n, data=data: data[:n])
        assert ack_module._random_control_id() == uuid.UUID(bytes=data, version=4).hex[:20]
    monkeypatch.undo()
    ids = {ack_module._random_control_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 and i[12] == "4" and i[16] in "89ab" for i in ids)
