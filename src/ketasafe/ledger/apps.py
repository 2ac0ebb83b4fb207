from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ketasafe.ledger"
    verbose_name = "Controlled-substance ledger"
