from django.urls import path

from . import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_register, name="register"),
    path("<int:patient_id>/", views.patient_detail, name="detail"),
    path("<int:patient_id>/edit/", views.patient_edit, name="edit"),
    path("<int:patient_id>/add/<slug:kind>/", views.record_add, name="record_add"),
    path("problem/<int:problem_id>/status/", views.problem_status, name="problem_status"),
    path("<slug:kind>/<int:record_id>/stop/", views.record_stop, name="record_stop"),
]
