from django.urls import path

from . import views

app_name = "sessions"
urlpatterns = [
    path("", views.today, name="today"),
    path("schedule/", views.schedule, name="schedule"),
    path("forms-due/", views.forms_due, name="forms_due"),
    path("overrides/", views.overrides, name="overrides"),
    path("<int:session_id>/", views.detail, name="detail"),
    path("<int:session_id>/record/", views.record, name="record"),
    path("<int:session_id>/step/<slug:name>/", views.step, name="step"),
]
