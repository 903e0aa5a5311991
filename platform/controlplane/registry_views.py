"""Registry imports on a municipality's behalf, from the control plane.

The vendor uploads, previews and confirms; the import runs in the municipality's schema and
its trail records the vendor as the actor. The error file and the activation codes hold
residents' data, so they are downloaded by the municipality from its console, never here.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry_forms import RegistryUploadForm, import_context, registry_import_decision
from booking.services.registry_import import (
    RegistryImportRefused,
    registry_import_upload,
)
from controlplane.access import client_ip, operator_required
from controlplane.selectors import municipality_get
from tenants.models import Municipality

RECENT_IMPORTS = 10


def _open_municipality(code: str) -> Municipality:
    municipality = municipality_get(code=code)
    if municipality.status == Municipality.Status.DECOMMISSIONED:
        raise Http404("decommissioned")
    return municipality


@require_http_methods(["GET", "POST"])
@operator_required
def registry_imports(request: HttpRequest, code: str) -> HttpResponse:
    municipality = _open_municipality(code)
    form = RegistryUploadForm(request.POST or None, request.FILES or None)
    with tenant_context(municipality):
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                registry_import = registry_import_upload(
                    stream=upload,
                    file_name=upload.name,
                    size=upload.size,
                    actor=Actor.vendor(request.user),
                    source=RegistryImport.Source.CONTROL_PLANE,
                    full_list=form.cleaned_data["full_list"],
                    encoding=form.cleaned_data["encoding"],
                    ip=client_ip(request),
                )
            except RegistryImportRefused as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("controlplane:registry_import", code=code, pk=registry_import.pk)
        recent = list(RegistryImport.objects.all()[:RECENT_IMPORTS])
    return render(
        request,
        "controlplane/registry_imports.html",
        {"municipality": municipality, "form": form, "imports": recent},
    )


@require_GET
@operator_required
def registry_import_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    municipality = _open_municipality(code)
    with tenant_context(municipality):
        registry_import = RegistryImport.objects.filter(pk=pk).first()
        if registry_import is None:
            raise Http404("no such import")
        context = import_context(registry_import)
    return render(
        request,
        "controlplane/registry_import.html",
        # The vendor's page: its lists of residents are the municipality's console's.
        {"municipality": municipality, "for_vendor": True, **context},
    )


@require_POST
@operator_required
def registry_import_decide(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    municipality = _open_municipality(code)
    with tenant_context(municipality):
        registry_import = RegistryImport.objects.filter(pk=pk).first()
        if registry_import is None:
            raise Http404("no such import")
        registry_import_decision(
            request, registry_import, Actor.vendor(request.user), client_ip(request)
        )
    return redirect("controlplane:registry_import", code=code, pk=pk)
