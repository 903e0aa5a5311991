"""What a web process would otherwise do in its first request, done as the application loads.

The first request of a fresh process imported every view, compiled the templates it used and
read the translation catalogs: about 0.4 s of CPU, paid by whichever resident came first —
and again by every worker gunicorn starts to replace one (``max_requests``). gunicorn loads
the application in its master (``preload_app``), so the master does this once and every
worker starts with it done.

Nothing here touches the database, Redis or the network: a connection opened in the master
would be shared by every worker forked from it.
"""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.template import engines
from django.urls import get_resolver
from django.utils.translation import trans_real


def warm_up() -> None:
    for urlconf in {settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF}:
        resolver = get_resolver(urlconf)
        resolver.reverse_dict  # noqa: B018  (imports every view and fills the reverse table)
        is_language_prefix_patterns_used(urlconf)
    for language, _name in settings.LANGUAGES:
        trans_real.translation(language)
    engine = engines["django"]
    for name in project_templates():
        engine.get_template(name)


def project_templates() -> list[str]:
    """The names of the project's own templates (not those of Django or other packages)."""
    project = Path(settings.BASE_DIR).resolve()
    names = []
    for app in apps.get_app_configs():
        folder = Path(app.path).resolve() / "templates"
        if "site-packages" in folder.parts or not folder.is_relative_to(project):
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in {".html", ".txt"}:
                names.append(path.relative_to(folder).as_posix())
    return names
