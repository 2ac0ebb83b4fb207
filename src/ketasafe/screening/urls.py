from django.urls import path

from . import views

app_name = "screening"

urlpatterns = [
    path("patient/<int:patient_id>/start/", views.start_intake, name="start"),
    path("<int:screening_id>/", views.detail, name="detail"),
    path("<int:screening_id>/intake/", views.intake, name="intake"),
    path("<int:screening_id>/sign/", views.sign, name="sign"),
    path("<int:screening_id>/not-treated/", views.not_treated, name="not_treated"),
    path("api/intake", views.api_intake, name="api_intake"),
    path("rulesets/", views.rulesets, name="rulesets"),
    path("rulesets/new/<int:base_id>/", views.ruleset_new, name="ruleset_new"),
    path("rulesets/<int:ruleset_id>/activate/", views.ruleset_activate, name="ruleset_activate"),
]
