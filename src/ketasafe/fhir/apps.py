from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "ketasafe.fhir"
    verbose_name = "FHIR"
