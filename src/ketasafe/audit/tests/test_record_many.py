"""`record_many_ids`: several entries under one head lock, the same chain as `record` one by one."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from ketasafe import audit
from ketasafe.audit.models import AuditEntry, ChainHead
from ketasafe.audit.services import record_many_ids, verify_chain

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 1, 10, 15, tzinfo=dt.UTC)


def _items(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"action": "create", "actor": "system:mllp", "object_type": "monitoring.InboundMessage",
             "object_id": start + i, "after": {"n": start + i, "at": AT}, "at": AT} for i in range(n)]


def record_many(items: list[dict[str, object]]) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(pk__in=record_many_ids(items)).order_by("id"))


def test_entries_written_together_verify_and_continue_the_chain() -> None:
    first = audit.record("view", actor="test", detail="before")
    written = record_many(_items(5))
    last = audit.record("view", actor="test", detail="after")
    assert written[0].prev_hash == first.hash
    assert [b.prev_hash for b in written[1:]] == [a.hash for a in written[:-1]]
    assert last.prev_hash == written[-1].hash
    assert ChainHead.objects.get(pk=1).last_entry_id == last.pk
    assert verify_chain() is None
    call_command("audit_verify")


def test_the_same_content_gives_the_same_hashes_as_record_one_by_one() -> None:
    many = record_many(_items(3))
    AuditEntry.objects.all()._raw_delete(AuditEntry.objects.db)  # test-only reset of the log
    ChainHead.objects.all()._raw_delete(ChainHead.objects.db)
    one_by_one = [audit.record(**item) for item in _items(3)]  # type: ignore[arg-type]
    assert [e.hash for e in many] == [e.hash for e in one_by_one]


def test_entries_roll_back_with_the_caller_and_the_chain_stays_intact() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        record_many(_items(3))
        raise RuntimeError("the change failed")
    assert AuditEntry.objects.count() == 0
    record_many(_items(2))
    assert verify_chain() is None


def test_an_edit_behind_the_orm_is_caught() -> None:
    written = record_many(_items(4))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET detail = 'forged' WHERE id = %s", [written[2].pk])
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_nothing_to_write_writes_nothing() -> None:
    assert record_many([]) == []
    assert not ChainHead.objects.exists()
