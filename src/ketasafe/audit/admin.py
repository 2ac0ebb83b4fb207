from typing import Any

from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: no add, change or delete path exists for the audit log, admin included."""

    list_display = ["id", "at", "actor", "action", "patient", "object_type", "object_id"]
    list_filter = ["action"]
    search_fields = ["actor", "object_id", "detail"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
