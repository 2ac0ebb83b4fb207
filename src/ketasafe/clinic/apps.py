from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "ketasafe.clinic"
    verbose_name = "Clinic"
