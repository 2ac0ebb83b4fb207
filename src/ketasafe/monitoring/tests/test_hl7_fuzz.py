"""Hypothesis: nothing a socket can deliver makes the parser or the decoder raise anything but
MessageRejected (issue 5: garbage never stops the listener)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.exceptions import MessageRejected
from ketasafe.monitoring.hl7.codes import map_observation
from ketasafe.monitoring.hl7.mllp import MllpDecoder, frame
from ketasafe.monitoring.hl7.parse import parse_oru

SAMPLES = Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "hl7"
REAL = [p.read_bytes() for p in sorted(SAMPLES.glob("*.hl7"))]
# Characters that matter to HL7 structure, so mutations hit the interesting paths.
HL7_BYTES = st.sampled_from(list(b"|^~\\&\r\n\x0b\x1c MSHOBXPIDR0123456789.+-#"))

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_reject(raw: bytes) -> None:
    try:
        msg = parse_oru(raw, default_tz=UTC)
    except MessageRejected as exc:
        assert exc.ack_code in ("AE", "AR")
        assert exc.reason
        return
    for obs in msg.observations:
        map_observation(obs)  # mapping must not raise on whatever was parsed either


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(HL7_BYTES | st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=6) | st.lists(HL7_BYTES, max_size=6).map(bytes))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=400))
def test_parse_oru_on_arbitrary_bytes(raw: bytes) -> None:
    parse_or_reject(raw)


@FUZZ
@given(st.binary(max_size=300).map(lambda b: b"MSH|^~\\&|" + b))
def test_parse_oru_on_bytes_after_a_plausible_msh(raw: bytes) -> None:
    parse_or_reject(raw)


@FUZZ
@given(mutated())
def test_parse_oru_on_mutated_real_messages(raw: bytes) -> None:
    parse_or_reject(raw)


@FUZZ
@given(st.text(max_size=300).map(lambda t: "MSH|^~\\&|A||||2025||ORU^R01|1|P|2.5\rOBX|" + t))
def test_parse_oru_on_arbitrary_obx_text(raw: str) -> None:
    parse_or_reject(raw.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.lists(st.binary(max_size=64) | st.sampled_from([b"\x0b", b"\x1c", b"\x1c\r"]),
                max_size=40))  # fmt: skip
def test_decoder_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    dec = MllpDecoder(max_frame_bytes=256)
    for chunk in chunks:
        for msg in dec.feed(chunk):
            assert b"\x0b" not in msg and b"\x1c" not in msg
            assert 0 < len(msg) <= 256
        assert dec.buffered <= 256
    dec.close()


@FUZZ
@given(st.lists(st.sampled_from(REAL), min_size=1, max_size=4), st.data())
def test_decoder_recovers_every_message_however_the_stream_is_cut(
    messages: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = MllpDecoder()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += dec.feed(stream[start:end])
    assert out == messages
    assert dec.take_problems() == []
