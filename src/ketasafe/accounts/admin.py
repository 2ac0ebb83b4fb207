"""Staff accounts and roles are managed only on the audited staff pages (/staff/).

Django's own User and Group admin would change roles and passwords with no audit entry, so
they are taken off the admin site.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

for model in (get_user_model(), Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
