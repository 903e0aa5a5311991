from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("controlplane.urls")),
]

# In the visitor's language, naming the municipality (Django's own pages are English).
handler400 = "sesshu.errors.bad_request"
handler403 = "sesshu.errors.permission_denied"
handler404 = "sesshu.errors.page_not_found"
handler500 = "sesshu.errors.server_error"
