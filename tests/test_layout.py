from __future__ import annotations

import platform
import sysconfig
from pathlib import Path

from django.apps import apps
from django.conf import settings

from sesshu.observability import PERSONAL_FIELD_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_platform_is_the_standard_library_module() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.system)


def test_the_platform_folder_is_not_a_package() -> None:
    assert (ROOT / "platform" / "sesshu").is_dir()
    assert not (ROOT / "platform" / "__init__.py").exists()


# auth, sessions and contenttypes are in both lists: the public copy holds vendor operators,
# each tenant's copy holds that municipality's staff. Residents' data is never in public.
_ALLOWED_SHARED_FIELDS = {("tenants", "municipality", "name")}


def test_no_shared_only_app_holds_personal_data() -> None:
    shared_only = set(settings.SHARED_APPS) - set(settings.TENANT_APPS)
    offenders = []
    for model in apps.get_models():
        config = model._meta.app_config
        if config.name not in shared_only:
            continue
        assert not getattr(model, "holds_personal_data", False), model
        for field in model._meta.get_fields():
            key = (config.label, model._meta.model_name, field.name)
            if field.name in PERSONAL_FIELD_NAMES and key not in _ALLOWED_SHARED_FIELDS:
                offenders.append(".".join(key))
    assert offenders == []


def test_models_marked_personal_live_only_in_tenant_apps() -> None:
    shared = set(settings.SHARED_APPS)
    for model in apps.get_models():
        if getattr(model, "holds_personal_data", False):
            assert model._meta.app_config.name not in shared, model
