from django.urls import path

from . import views

app_name = "protocols"
urlpatterns = [
    path("", views.protocol_list, name="list"),
    path("versions/new/", views.version_new, name="version_new"),
    path("orders/new/<int:patient_id>/", views.order_new, name="order_new"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/change/<int:patient_id>/", views.order_new, name="order_change"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
]
