from typing import Any

from django.contrib import admin

from .models import RuleSetVersion, Screening


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only: these records change only through the audited services. A model holding
    patient data is not even shown: the admin writes no audit entry for what it shows (the
    app's own pages do), and a superuser holds no capability in KetaSafe."""

    holds_patient_data = False

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return not self.holds_patient_data and super().has_view_permission(request, obj)

    def has_module_permission(self, request: Any) -> bool:
        return not self.holds_patient_data and super().has_module_permission(request)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Screening)
class ScreeningAdmin(ReadOnlyAdmin):
    holds_patient_data = True
    list_display = ["id", "patient", "protocol", "status", "outcome", "rules_version", "signed_at"]
    list_filter = ["status", "protocol", "outcome"]


@admin.register(RuleSetVersion)
class RuleSetVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "based_on", "used", "activated_at", "created_at"]
