"""Group commit: what one message's failure costs inside a batch, the one-by-one fallback, and
that a transaction that cannot commit is never acknowledged AA."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from ketasafe.audit.models import AuditEntry
from ketasafe.audit.services import verify_chain
from ketasafe.monitoring import ingest
from ketasafe.monitoring.ingest import process_batch
from ketasafe.monitoring.models import InboundMessage, Observation

from .helpers import ack_code, oru

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_failing_inside_the_transaction_costs_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest.assign

    def picky(msg, now, lookups=None):  # type: ignore[no-untyped-def]
        if msg.control_id == "BAD":
            raise RuntimeError("assignment failed")
        return real(msg, now, lookups)

    monkeypatch.setattr(ingest, "assign", picky)
    acks = process_batch([oru("OK1"), oru("BAD"), oru("BAD"), oru("OK2")])
    assert [ack_code(a) for a in acks] == ["AA", "AE", "AE", "AA"]
    assert sorted(InboundMessage.objects.values_list("control_id", flat=True)) == ["OK1", "OK2"]


def test_when_the_batch_insert_fails_each_message_is_stored_alone_with_its_own_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest._insert

    def no_batches(prepared):  # type: ignore[no-untyped-def]
        if len(prepared) > 1:
            real(prepared)  # writes, then fails: the savepoint must take all of it back
            raise DatabaseError("the multi-row insert failed")
        real(prepared)

    monkeypatch.setattr(ingest, "_insert", no_batches)
    acks = process_batch([oru("F1", systolic=111), oru("F2", systolic=122), oru("F3", systolic=133)])
    assert [ack_code(a) for a in acks] == ["AA", "AA", "AA"]
    assert InboundMessage.objects.count() == 3 and AuditEntry.objects.count() == 3
    for control_id, systolic in (("F1", 111), ("F2", 122), ("F3", 133)):
        message = InboundMessage.objects.get(control_id=control_id)
        assert message.observations.count() == 7
        assert message.observations.get(kind="systolic").value == systolic
        assert AuditEntry.objects.get(object_id=str(message.pk)).changes.count(f'"control_id":"{control_id}"') == 1
    assert verify_chain() is None


def test_a_transaction_that_cannot_commit_is_never_acknowledged_aa(monkeypatch: pytest.MonkeyPatch) -> None:
    process_batch([oru("WARM")])  # code map and chain head in place
    real_insert = ingest._insert

    def insert(prepared):  # type: ignore[no-untyped-def]
        if len(prepared) > 1 or prepared[0].control_id == "C":
            raise DatabaseError("insert failed")
        real_insert(prepared)

    real_rollback = connection.savepoint_rollback
    rollbacks: list[str] = []

    def lost_at_the_second(sid):  # type: ignore[no-untyped-def]
        rollbacks.append(sid)
        if len(rollbacks) == 2:  # the batch's savepoint rolls back; C's cannot
            raise DatabaseError("connection lost while rolling back to a savepoint")
        real_rollback(sid)

    monkeypatch.setattr(ingest, "_insert", insert)
    monkeypatch.setattr(connection, "savepoint_rollback", lost_at_the_second)
    acks = process_batch([oru("A"), oru("B"), oru("C")])  # A and B are stored in savepoints first
    monkeypatch.undo()
    assert len(rollbacks) == 2
    assert "AA" not in [ack_code(a) for a in acks]
    connection.close()
    assert list(InboundMessage.objects.values_list("control_id", flat=True)) == ["WARM"]
    assert Observation.objects.count() == 7


def test_no_keys_ask_nothing(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        assert ingest._stored_keys(set()) == set()


def test_a_control_id_longer_than_is_stored_is_rejected_not_taken_for_a_repeat() -> None:
    long_a, long_b = "X" * 200 + "A", "X" * 200 + "B"  # the same first 200 characters
    acks = process_batch([oru(long_a), oru(long_b), oru("X" * 200)])
    assert [ack_code(a) for a in acks] == ["AE", "AE", "AA"]
    assert "longer than 200" in acks[0].decode()
    assert list(InboundMessage.objects.values_list("control_id", flat=True)) == ["X" * 200]


def test_a_message_with_nul_bytes_is_rejected_on_every_database_and_costs_the_batch_nothing() -> None:
    # PostgreSQL text cannot hold NUL: before, the whole batch's commit failed ("internal error").
    with_nul = oru("NUL1").replace(b"KETA^^CHAIR1", b"KETA^^CH\x00AIR1")
    acks = process_batch([oru("OK1"), with_nul, oru("OK2")])
    assert [ack_code(a) for a in acks] == ["AA", "AE", "AA"]
    assert "NUL" in acks[1].decode() and "internal error" not in acks[1].decode()
    assert sorted(InboundMessage.objects.values_list("control_id", flat=True)) == ["OK1", "OK2"]
