from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "ketasafe.screening"
    verbose_name = "Screening"
