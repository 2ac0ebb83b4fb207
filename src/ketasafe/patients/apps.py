from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "ketasafe.patients"
    verbose_name = "Patients"
