from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "ketasafe.sessions"
    label = "treatment_sessions"
    verbose_name = "Treatment sessions"
