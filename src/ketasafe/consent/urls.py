from django.urls import path

from . import views

app_name = "consent"

urlpatterns = [
    path("documents/", views.documents, name="documents"),
    path("documents/new/", views.version_new, name="version_new"),
    path("versions/<int:version_id>/publish/", views.version_publish, name="version_publish"),
    path("patient/<int:patient_id>/sign/<int:version_id>/", views.sign, name="sign"),
    path("signature/<int:signature_id>/signature.png", views.signature_image, name="signature_image"),
    path("signature/<int:signature_id>/print/", views.print_view, name="print"),
    path("signature/<int:signature_id>/withdraw/", views.withdraw, name="withdraw"),
]
