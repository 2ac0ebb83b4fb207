"""The stored audit log: append-only, in the caller's transaction, and tamper-evident."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from ketasafe import audit
from ketasafe.audit.exceptions import AuditLogIsAppendOnly
from ketasafe.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def _three_entries() -> list[AuditEntry]:
    return [audit.record("view", actor="test", detail=f"entry {i}") for i in range(3)]


def test_record_links_each_entry_to_the_previous() -> None:
    a, b, c = _three_entries()
    assert b.prev_hash == a.hash and c.prev_hash == b.hash
    call_command("audit_verify")


def test_entry_rolls_back_with_the_change_it_records() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("create", actor="test", detail="doomed")
        raise RuntimeError("the change failed")
    assert not AuditEntry.objects.filter(detail="doomed").exists()
    call_command("audit_verify")


def test_orm_update_and_delete_are_refused() -> None:
    entry, *_ = _three_entries()
    entry.detail = "changed"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(detail="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.all().delete()


def test_editing_a_row_by_hand_makes_verify_fail_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    _, middle, _ = _three_entries()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET detail = %s WHERE id = %s", ["forged", middle.pk])
    with pytest.raises(CommandError) as info:
        call_command("audit_verify")
    assert info.value.returncode == 1
    assert f"entry {middle.pk}" in str(info.value)


def test_deleting_a_row_by_hand_makes_verify_fail() -> None:
    first, middle, last = _three_entries()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [middle.pk])
    with pytest.raises(CommandError) as info:
        call_command("audit_verify")
    assert f"entry {last.pk}" in str(info.value)


def test_deleting_the_newest_row_by_hand_makes_verify_fail() -> None:
    *_, last = _three_entries()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [last.pk])
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_changes_are_recorded_as_compact_before_and_after(make_patient) -> None:
    patient = make_patient()
    entry = audit.record("update", actor="test", patient=patient, obj=patient,
                         before={"phone": "1"}, after={"phone": "2"})
    assert entry.changes == '{"after":{"phone":"2"},"before":{"phone":"1"}}'
    assert entry.object_type == "patients.Patient" and entry.object_id == str(patient.pk)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain() -> None:
    import threading

    from django.db import connections

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with transaction.atomic():
                    audit.record("view", actor=f"writer{n}", detail=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AuditEntry.objects.count() == 40
    call_command("audit_verify")


def test_the_base_manager_refuses_update_and_delete_too() -> None:
    entry, *_ = _three_entries()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry._base_manager.filter(pk=entry.pk).update(detail="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry._base_manager.all().delete()
    call_command("audit_verify")


def test_the_chain_head_cannot_be_deleted_through_the_orm() -> None:
    from ketasafe.audit.models import ChainHead

    _three_entries()
    with pytest.raises(AuditLogIsAppendOnly):
        ChainHead.objects.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        ChainHead._base_manager.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        ChainHead.objects.get(pk=1).delete()
    assert ChainHead.objects.filter(pk=1).exists()


def test_a_missing_head_with_entries_present_is_refused_not_restarted_from_genesis() -> None:
    from ketasafe.audit.exceptions import AuditChainHeadMissing

    _three_entries()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_chainhead")
    with pytest.raises(AuditChainHeadMissing, match="chain head is missing"):
        audit.record("view", actor="test", detail="after the head was removed")
    assert AuditEntry.objects.count() == 3


@pytest.mark.parametrize("remote_addr", ["2001:0DB8:0000::0001", "fe80::1%eth0", "::ffff:10.0.0.1",
                                         "10.0.0.7", "not an address"])
def test_client_addresses_are_hashed_as_stored_so_the_chain_verifies(rf, remote_addr) -> None:
    from ketasafe.audit.services import verify_chain

    request = rf.get("/", REMOTE_ADDR=remote_addr)
    entry = audit.record("view", actor="test", request=request)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.client_address == entry.client_address
    assert verify_chain() is None
    call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_a_flushed_database_starts_a_new_chain() -> None:
    from ketasafe.audit.models import ChainHead

    _three_entries()
    AuditEntry.objects.all()._raw_delete(AuditEntry.objects.db)  # what `flush` does: both tables emptied
    ChainHead.objects.all()._raw_delete(ChainHead.objects.db)
    first = audit.record("view", actor="test", detail="after the flush")
    assert first.prev_hash == "0" * 64  # a new chain from genesis, not a refusal
    call_command("audit_verify")


def test_a_chain_rewritten_after_an_anchor_was_taken_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    from ketasafe.audit import chain as chain_module
    from ketasafe.audit.models import ChainHead

    first, middle, last = _three_entries()
    call_command("audit_verify")
    anchor = capsys.readouterr().out.strip().rsplit("anchor ", 1)[1]
    assert anchor == f"{last.pk}:{last.hash}"
    # Someone with database access edits the middle entry and recomputes every later hash.
    with connection.cursor() as cursor:
        prev = first.hash
        for entry in (middle, last):
            entry = AuditEntry.objects.get(pk=entry.pk)
            if entry.pk == middle.pk:
                entry.detail = "forged"
            new_hash = chain_module.entry_hash(prev, entry.hashed_content())
            cursor.execute("UPDATE audit_auditentry SET detail = %s, prev_hash = %s, hash = %s WHERE id = %s",
                           [entry.detail, prev, new_hash, entry.pk])
            prev = new_hash
        cursor.execute("UPDATE audit_chainhead SET last_hash = %s WHERE id = 1", [prev])
    assert ChainHead.objects.get(pk=1).last_hash == prev
    call_command("audit_verify")  # the chain alone cannot tell
    with pytest.raises(CommandError) as info:
        call_command("audit_verify", anchor=[anchor])
    assert info.value.returncode == 1 and f"entry {last.pk}" in str(info.value)


def test_a_malformed_anchor_is_refused_with_exit_2() -> None:
    with pytest.raises(CommandError) as info:
        call_command("audit_verify", anchor=["12:nothex"])
    assert info.value.returncode == 2
