from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sesshu.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from sesshu.regions import assert_tokyo  # noqa: E402
from sesshu.warmup import warm_up  # noqa: E402

application = get_wsgi_application()
assert_tokyo(settings)  # the web process refuses to start outside ap-northeast-1
warm_up()  # in gunicorn's master (preload_app): every worker starts with it done
