from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    name = "ketasafe.outcomes"
    verbose_name = "Outcomes"
