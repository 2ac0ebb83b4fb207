"""Hypothesis over framing + process_message with the database: whatever a socket delivers,
no exception escapes, and every complete frame gets an ACK whose MSA-1 is AA, AE or AR (the
rest is dropped by the decoder and, on a real connection, ends with the connection closed)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.hl7.mllp import MllpDecoder, frame
from ketasafe.monitoring.ingest import process_batch, process_message

from .helpers import SAMPLES, ack_fields, oru

REAL = [p.read_bytes() for p in sorted(SAMPLES.glob("*.hl7"))] + [oru("FUZZ-1"), oru("FUZZ-2", bed="X")]
HL7_BYTES = st.sampled_from(list(b"|^~\\&\r\n\x0b\x1c MSHOBXPIDPV1R0123456789.+-#\xff\x00"))
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] = draw(HL7_BYTES)
        elif op == "insert":
            data[at:at] = bytes(draw(st.lists(HL7_BYTES, max_size=5)))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        else:
            del data[at:]
    return bytes(data)


def check_ack(ack: bytes) -> None:
    assert isinstance(ack, bytes) and ack.startswith(b"MSH|")
    fields = ack_fields(ack)
    assert fields[1] in ("AA", "AE", "AR")
    # The generic "internal error" AE means a parser or storage bug, never an answer to bad input.
    assert "internal error" not in "|".join(fields[2:]), ack
    assert b"\x0b" not in ack and b"\x1c" not in ack  # safe to frame


def stored_counts() -> tuple[int, ...]:
    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring.models import Device, InboundMessage, Observation

    return tuple(model.objects.count() for model in (InboundMessage, Observation, AuditEntry, Device))


def check_message(raw: bytes) -> None:
    """ACK oracle for one message: a good ACK, and an AE/AR stored nothing at all."""
    before = stored_counts()
    ack = process_message(raw)
    check_ack(ack)
    if ack_fields(ack)[1] != "AA":
        assert stored_counts() == before, ack


@pytest.mark.django_db
@FUZZ
@given(chunks=st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=4),
       cuts=st.lists(st.integers(1, 400), max_size=8), framed=st.booleans())
def test_any_byte_stream_gets_acks_or_is_dropped_never_an_exception(chunks, cuts, framed) -> None:
    stream = b"".join(frame(c) if framed and b"\x0b" not in c and b"\x1c" not in c else c for c in chunks)
    decoder = MllpDecoder()
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(stream[pos:pos + cut])
        pos += cut
    pieces.append(stream[pos:])
    frames = [m for piece in pieces for m in decoder.feed(piece)]
    decoder.close()
    for raw in frames:
        check_message(raw)


@pytest.mark.django_db
@FUZZ
@given(batch=st.lists(mutated(), min_size=1, max_size=5))
def test_a_batch_of_mutated_messages_answers_each_in_order(batch) -> None:
    before = stored_counts()
    acks = process_batch(batch)
    assert len(acks) == len(batch)
    for ack in acks:
        check_ack(ack)
    if all(ack_fields(ack)[1] != "AA" for ack in acks):
        assert stored_counts() == before  # rejected messages leave no trace


@pytest.mark.django_db
@FUZZ
@given(raw=mutated())
def test_a_rejected_message_stores_nothing_and_is_never_an_internal_error(raw) -> None:
    check_message(raw)


def test_the_oracle_fails_on_the_generic_internal_error() -> None:
    from ketasafe.monitoring.ingest import _generic_error

    with pytest.raises(AssertionError):
        check_ack(_generic_error(None))
