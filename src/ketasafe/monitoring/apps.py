from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "ketasafe.monitoring"
    verbose_name = "Monitoring"
