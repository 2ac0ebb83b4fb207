from django.apps import AppConfig


class ProtocolsConfig(AppConfig):
    name = "ketasafe.protocols"
    verbose_name = "Protocols and orders"
