"""The audit log: one append-only table plus a one-row chain head.

Only `ketasafe.audit.record` writes here. No update or delete path exists: the model and its
querysets refuse them, and the admin is read-only. A change made behind the ORM's back (by hand
in the database) breaks the hash chain, which `ketasafe audit_verify` reports.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models

from .exceptions import AuditLogIsAppendOnly


class Action(models.TextChoices):
    VIEW = "view"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    PRINT = "print"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    PERMISSION_CHANGE = "permission_change"
    BREAK_GLASS = "break_glass"
    REFUSED = "refused"  # a refused safety-relevant attempt (e.g. an unauthorised signature)


class AppendOnlyQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditLogIsAppendOnly("audit entries cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class AuditEntry(models.Model):
    # Indexes: only those the auditor's filters use (time; patient and time; actor and time).
    # Every index is written on every entry, and the monitor ingest writes one per message:
    # a unique index on the (random) hash alone cost a page write per entry and guarded
    # nothing the chain does not (benchmarks/README.md).
    at = models.DateTimeField(db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", db_index=False,
    )
    # "user:<username>" or "system:<component>": readable even without a user row.
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=Action.choices)
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False,
    )
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    # Canonical JSON text of {"before": {...}, "after": {...}} or {} (kept as text so the
    # hashed bytes are exactly the stored bytes, whatever the database does to JSON).
    changes = models.TextField(blank=True, default="")
    detail = models.CharField(max_length=500, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        # The base manager too (used by related-object access and by AuditEntry._base_manager),
        # so no manager of this model can update or delete.
        base_manager_name = "objects"
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["patient", "at"]), models.Index(fields=["actor", "at"])]
        permissions = [("view_audit_log", "Can read and export the audit log")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditLogIsAppendOnly("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")

    def hashed_content(self) -> dict[str, object]:
        return hashed_content(self)


@dataclass(slots=True)
class NewEntry:
    """An entry built but not yet chained or stored (``AuditEntry`` without id and hashes)."""

    at: dt.datetime  # UTC
    actor_user_id: int | None
    actor: str
    action: str
    patient_id: int | None
    object_type: str
    object_id: str
    changes: str
    detail: str
    client_address: str | None

    def hashed_content(self) -> dict[str, object]:
        return hashed_content(self)


def hashed_content(entry: AuditEntry | NewEntry) -> dict[str, object]:
    """The fields the hash covers, as plain JSON values, for a stored entry or one about to be
    stored (one definition for both). The id is not among them: order is vouched for by each
    entry's prev_hash, so the row can be hashed before it is inserted."""
    return {
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor_user": entry.actor_user_id,
        "actor": entry.actor,
        "action": entry.action,
        "patient": entry.patient_id,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "changes": entry.changes,
        "detail": entry.detail,
        "client_address": entry.client_address,
    }


class ChainHeadQuerySet(models.QuerySet["ChainHead"]):
    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("the audit chain head cannot be deleted")


class ChainHead(models.Model):
    """One row: the newest entry's id and hash. Locked by each writer, so the chain is serial.

    Never deleted: without it the next entry would restart the chain from genesis, hiding
    whatever was removed before it. (Updated only by ``audit.record``.)
    """

    last_entry_id = models.BigIntegerField(null=True)
    last_hash = models.CharField(max_length=64)

    objects = ChainHeadQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"chain head at #{self.last_entry_id}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("the audit chain head cannot be deleted")
