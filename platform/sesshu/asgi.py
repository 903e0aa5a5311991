from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sesshu.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from sesshu.regions import assert_tokyo  # noqa: E402

application = get_asgi_application()
assert_tokyo(settings)
