from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "ketasafe.audit"
    verbose_name = "Audit log"
