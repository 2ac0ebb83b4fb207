from typing import Any

from django.contrib import admin

from .models import RuleSetVersion, Screening


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only: screenings and rule sets change only through the audited services."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Screening)
class ScreeningAdmin(ReadOnlyAdmin):
    list_display = ["id", "patient", "protocol", "status", "outcome", "rules_version", "signed_at"]
    list_filter = ["status", "protocol", "outcome"]


@admin.register(RuleSetVersion)
class RuleSetVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "based_on", "used", "activated_at", "created_at"]
