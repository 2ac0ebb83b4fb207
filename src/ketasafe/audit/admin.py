from django.contrib import admin

from ketasafe.screening.admin import ReadOnlyAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """No add, change or delete path exists for the audit log, admin included; it is read on
    the auditor's pages (audited), not here."""

    holds_patient_data = True
    list_display = ["id", "at", "actor", "action", "patient", "object_type", "object_id"]
