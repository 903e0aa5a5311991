"""gunicorn for the web pods (read from the working directory: ``gunicorn`` alone serves Sesshu).

- bind and worker counts from the environment: GUNICORN_BIND (0.0.0.0:8000), GUNICORN_WORKERS
  (or WEB_CONCURRENCY, 3), GUNICORN_THREADS (4);
- the application loaded once, in the master (``preload_app``), and forked into the workers;
- no access log of gunicorn's: sesshu.logs.RequestContextMiddleware writes one JSON line per
  request, with the request id and the tenant; gunicorn's own lines are JSON too;
- Prometheus metrics on their own port (SESSHU_METRICS_PORT, 9100), served by the master from
  the files every worker writes under PROMETHEUS_MULTIPROC_DIR: never by Django, never on
  the public port.

Command-line flags override what is set here.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent
# platform/ is a source folder next to the repository root, never a package (ARCHITECTURE.md).
for _path in (str(_ROOT), str(_ROOT / "platform")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# Multiprocess mode is chosen when prometheus-client is first imported, in every process: set
# the folder before anything imports it, so the workers forked below inherit it.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sesshu-prometheus-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sesshu.settings")

from sesshu import metrics  # noqa: E402
from sesshu.env import env_choice, env_int, env_str  # noqa: E402
from sesshu.logs import LOG_LEVELS, logging_config  # noqa: E402

wsgi_app = "sesshu.wsgi:application"
bind = [env_str("GUNICORN_BIND", "0.0.0.0:8000")]
workers = env_int("GUNICORN_WORKERS", env_int("WEB_CONCURRENCY", 3, minimum=1), minimum=1)
threads = env_int("GUNICORN_THREADS", 4, minimum=1)
if Path("/dev/shm").is_dir():  # noqa: S108  (heartbeat files in memory, not on a disk)
    worker_tmp_dir = "/dev/shm"  # noqa: S108
timeout = 30
graceful_timeout = 30
keepalive = 75
max_requests = 2000
max_requests_jitter = 200
# The application (Django, every view, the templates: sesshu.wsgi warms them up) is loaded
# once in the master and the workers are forked from it: a worker that replaces another
# after max_requests starts at once, instead of spending ~0.8 s of CPU loading it again and
# making its first resident wait ~0.4 s more. The load opens no database or Redis connection.
preload_app = True

# The runtime control socket (gunicorn >= 25.1) would live under $HOME, read-only in the pods;
# Kubernetes manages the workers.
control_socket_disable = True

accesslog = None
errorlog = "-"
_logging = logging_config(level=env_choice("LOG_LEVEL", LOG_LEVELS, "INFO"))
_logging["loggers"].update(
    {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    }
)
logconfig_dict = _logging

_METRICS_ADDR = env_str("SESSHU_METRICS_ADDR", "0.0.0.0")  # noqa: S104  (pod network only)


def on_starting(server: Any) -> None:
    metrics.reset_multiproc_dir()


def when_ready(server: Any) -> None:
    metrics.start_metrics_server(port=metrics.metrics_port(), addr=_METRICS_ADDR)
    server.log.info("metrics server started")


def child_exit(server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)
