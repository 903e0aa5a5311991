from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class SesshuConfig(AppConfig):
    name = "sesshu"
    verbose_name = "Sesshu"

    def ready(self) -> None:
        from sesshu.proxy import check_trusted_proxies
        from sesshu.regions import check_tokyo_region

        checks.register(check_tokyo_region, checks.Tags.security, deploy=False)
        checks.register(check_trusted_proxies, checks.Tags.security, deploy=True)
