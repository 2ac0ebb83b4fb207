from django.contrib import admin

from ketasafe.screening.admin import ReadOnlyAdmin

from .models import ConsentDocument, ConsentSignature, ConsentVersion


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(ReadOnlyAdmin):
    list_display = ["protocol", "kind", "created_at"]


@admin.register(ConsentVersion)
class ConsentVersionAdmin(ReadOnlyAdmin):
    list_display = ["document", "version", "title", "effective_date", "published"]


@admin.register(ConsentSignature)
class ConsentSignatureAdmin(ReadOnlyAdmin):
    holds_patient_data = True
    list_display = ["patient", "version", "signed_at", "witness", "prescriber", "withdrawn_at"]
    exclude = ["signature_png"]
