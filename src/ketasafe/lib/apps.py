from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "ketasafe.lib"
    verbose_name = "Shared helpers"
