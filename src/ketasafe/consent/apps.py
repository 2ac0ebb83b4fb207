from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "ketasafe.consent"
    verbose_name = "Consent"
