"""Structured logs: one JSON object per line on stdout, tied to its request or task, with
nothing personal in it.

Every record carries the time (UTC), level, logger and message; inside a request also the
request id and the tenant (the municipality's code, ``platform`` for the control plane); inside
a Celery task also the task's name and id and the tenant the task's connection is in. The
context lives in contextvars, set by :class:`RequestContextMiddleware` and by the Celery
``task_prerun``/``task_postrun`` handlers below.

``log_type`` routes a record to its log group (docs/operations.md): ``audit`` for the audit
trail's copy, ``access`` for the one line per request, ``app`` for everything else.

Personal values never reach a line. :class:`PersonalDataFilter` formats the message itself,
after filtering arguments whose keys name personal fields, and masks whatever still looks
personal: runs of four or more digits (vouchers, phones, dates), e-mail addresses and
Japanese text (names, addresses), and the query string of any URL. Tracebacks are masked the
same way. The fields this module adds itself (request id, tenant code, task id, the access
line's numbers) are not masked: they are ours, not the caller's.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun
from django.core.signals import request_finished
from django.dispatch import receiver

from sesshu import metrics
from sesshu.observability import PERSONAL_FIELD_NAMES

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

AUDIT_LOGGER = "sesshu.audit"
ACCESS_LOGGER = "sesshu.access"
PLATFORM = "platform"
REQUEST_ID_HEADER = "X-Request-ID"
# Carries the request id from the request that queued a task to the worker that runs it.
TASK_REQUEST_ID_HEADER = "sesshu_request_id"
MASK = "＊"
FILTERED = "[Filtered]"
# A log line is for people and alerts; a megabyte in one is a mistake, and costs the pipeline.
MAX_MESSAGE_CHARS = 16_384

access_logger = logging.getLogger(ACCESS_LOGGER)

# --- Context -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskContext:
    name: str
    id: str


_request_id: ContextVar[str | None] = ContextVar("sesshu_request_id", default=None)
_request: ContextVar[HttpRequest | None] = ContextVar("sesshu_request", default=None)
_task: ContextVar[TaskContext | None] = ContextVar("sesshu_task", default=None)

_SCHEMA_OF_CODE = re.compile(r"^m(\d{6})$")  # tenants.codes.schema_name_for


def answered_on_purpose(response: HttpResponse) -> HttpResponse:
    """Mark a 5xx answer the site gives on purpose (the waiting room, a suspended
    municipality, logins stopped in incident mode) as logged. Django's request logger would
    write an error for each one, and Sentry, which takes errors from the log, raise an event
    per page: thousands in a rush. The access log still has every one."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def current_request_id() -> str | None:
    return _request_id.get()


def current_task() -> TaskContext | None:
    return _task.get()


def request_tenant_code(request: HttpRequest) -> str | None:
    """The tenant TenantHostMiddleware resolved: a code, ``platform``, or None (not yet, or
    an unknown host)."""
    if not hasattr(request, "tenant"):
        return None
    tenant = request.tenant
    if tenant is None:
        return PLATFORM
    code = getattr(tenant, "code", None)
    return str(code) if code else None


def connection_tenant_code() -> str | None:
    """The tenant the database connection of this thread is switched to."""
    from django.db import connection
    from django_tenants.utils import get_public_schema_name

    schema = getattr(connection, "schema_name", None)
    code = getattr(getattr(connection, "tenant", None), "code", None)
    if code:
        return str(code)
    if schema is None or schema == get_public_schema_name():
        return PLATFORM
    match = _SCHEMA_OF_CODE.match(str(schema))  # a bare schema_context, without the row
    return match.group(1) if match else None


def current_tenant_code() -> str | None:
    """A task's tenant is its connection's; a request's is the one its host resolved to;
    outside both there is none."""
    if _task.get() is not None:
        return connection_tenant_code()
    request = _request.get()
    if request is not None:
        return request_tenant_code(request)
    return None


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GENERATED_ID = re.compile(rf"^(?:{_UUID}|(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{{32,64}})$")
_TOKEN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_DIGIT_RUN = re.compile(r"\d{4,}")


def sane_request_id(value: str | None) -> str | None:
    """An incoming request id we are willing to log, or None.

    UUIDs and the 32-hex ids of proxies pass as they are; any other token of ASCII letters,
    digits and ``._-`` must hold no run of four digits, so a phone or voucher number is not
    carried into the logs through this header.
    """
    if not value:
        return None
    if _GENERATED_ID.match(value):
        return value
    if _TOKEN.match(value) and not _DIGIT_RUN.search(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


# --- Masking -------------------------------------------------------------------------------

_JP = (
    "\u3000-\u30ff"  # CJK punctuation, ideographic space, hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kanji, including compatibility forms
    "\uff00-\uffef"  # full-width letters and digits, half-width katakana
    "\U00020000-\U0003134f"  # rarer kanji found in names
)
_PERSONAL_KEYS = "|".join(
    re.escape(key) for key in sorted(PERSONAL_FIELD_NAMES, key=len, reverse=True) if key.isascii()
)
# Order matters: at each position the first alternative that matches wins.
_MASKED = re.compile(
    # key=value or "key": "value" where the key names a personal field
    rf"(?P<key>\b(?:{_PERSONAL_KEYS})['\"]?\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&)}}\]]+)"
    # ids that are ours and hold no person: UUIDs, hashes, hex request ids
    rf"|(?P<keep>\b(?:{_UUID}|(?=[0-9a-f]*[a-f])[0-9a-f]{{32,}})\b)"
    # (from the start of a token only: trying every position of a long token is quadratic)
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    # Japanese text, as one run even with digits and spaces inside (昭和23年4月1日)
    rf"|(?P<japanese>[{_JP}](?:[{_JP}\d\s\-・]*[{_JP}])?)"
    # four or more digits, also when split by separators: 090-1234-5678, 1948-04-01
    r"|(?P<digits>\d(?:[-‐/.\s]?\d){3,})"
)
# The query string of a URL or request line: GET /x?voucher=... HTTP/1.1
_QUERY = re.compile(r"(?<=\S)\?(?=[^\s\"'<>]*[=&])[^\s\"'<>]+")
_FRAME = re.compile(r'^\s*File "[^"\n]*", line \d+, in \S+$')


def _mask_match(match: re.Match[str]) -> str:
    if match.group("key") is not None:
        return match.group("key") + MASK
    if match.group("keep") is not None:
        return match.group("keep")
    return MASK


def mask_text(text: str) -> str:
    """``text`` with whatever looks personal replaced by ＊ and query strings dropped."""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " [truncated]"
    text = _QUERY.sub("?" + MASK, text)
    return _MASKED.sub(_mask_match, text)


def mask_traceback(text: str) -> str:
    """A traceback with its messages masked; the frame lines (file, line, function) stay."""
    return "\n".join(line if _FRAME.match(line) else mask_text(line) for line in text.split("\n"))


def scrub(value: Any, depth: int = 0) -> Any:
    """Containers with the values under personal keys filtered; other values are left for
    :func:`mask_text` after formatting (so ``%d`` still gets a number)."""
    if depth > 10:
        return FILTERED
    if isinstance(value, Mapping):
        return {
            key: FILTERED if str(key).lower() in PERSONAL_FIELD_NAMES else scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub(item, depth + 1) for item in value)
    return value


# Celery's worker logs a task's return value, args and kwargs in its own lines.
_CELERY_PAYLOAD_KEYS = frozenset({"return_value", "args", "kwargs"})
# The keys of the audit trail's line (audit.services): ids and hashes, nothing personal.
_AUDIT_VERBATIM_KEYS = frozenset({"chain", "seq", "action", "actor", "actor_id", "target"})
_MASKED_ATTR = "_sesshu_masked"


def _formatted_message(record: logging.LogRecord) -> str:
    args = record.args
    if not args:
        return str(record.msg)
    if isinstance(args, Mapping) and record.name.startswith("celery."):
        # Celery's own keys: "name" is the task's; the payload is what must not be shown.
        args = {k: FILTERED if k in _CELERY_PAYLOAD_KEYS else v for k, v in args.items()}
    else:
        args = scrub(args)
    try:
        return str(record.msg) % args
    except Exception:  # a bad format string must not lose the line
        return f"{record.msg} [arguments not formatted]"


def _audit_event(record: logging.LogRecord) -> dict[str, Any] | None:
    if record.name != AUDIT_LOGGER or record.args or not isinstance(record.msg, str):
        return None
    try:
        event = json.loads(record.msg)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    return {
        key: value
        if key in _AUDIT_VERBATIM_KEYS and isinstance(value, str | int | None)
        else _mask_value(key, value)
        for key, value in event.items()
    }


def mask_record(record: logging.LogRecord) -> None:
    """Replace the record's message and arguments by their masked, formatted form. Idempotent."""
    if getattr(record, _MASKED_ATTR, False):
        return
    event = _audit_event(record)
    if event is not None:
        record.audit = event
        record.msg = str(event.get("action", "audit"))
    else:
        record.msg = mask_text(_formatted_message(record))
    record.args = None
    setattr(record, _MASKED_ATTR, True)


def add_context(record: logging.LogRecord) -> None:
    """Copy the request/task context onto the record, once, where the record was made."""
    if hasattr(record, "request_id"):
        return
    record.request_id = _request_id.get()
    record.tenant = current_tenant_code()
    task = _task.get()
    record.task_name = task.name if task else None
    record.task_id = task.id if task else None


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        add_context(record)
        return True


class PersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


# --- Formatting ----------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    _MASKED_ATTR,
    "audit",
    "http",
    "request_id",
    "tenant",
    "task_name",
    "task_id",
    # Django's request logging attaches the request object: never serialised (its repr
    # carries the query string).
    "request",
    "server_time",
}


def _mask_value(key: str, value: Any, depth: int = 0) -> Any:
    if key.lower() in PERSONAL_FIELD_NAMES or depth > 10:
        return FILTERED
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if not _DIGIT_RUN.search(str(value)) else MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): _mask_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value("", v, depth + 1) for v in value]
    return None  # objects: their repr is not ours to vouch for


def log_type_of(record: logging.LogRecord) -> str:
    if record.name == AUDIT_LOGGER:
        return "audit"
    if record.name == ACCESS_LOGGER:
        return "access"
    return "app"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        add_context(record)
        mask_record(record)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "log_type": log_type_of(record),
            "message": record.getMessage(),
        }
        for field in ("request_id", "tenant", "task_name", "task_id"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        for field in ("http", "audit"):
            value = getattr(record, field, None)
            if isinstance(value, dict):
                entry[field] = value
        celery = record.name.startswith("celery.")
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_") or key in entry:
                continue
            if celery and key == "data":  # the task's arguments again
                continue
            masked = _mask_value(key, value)
            if masked is not None or value is None:
                entry[key] = masked
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = mask_traceback(self.formatException(record.exc_info))
            entry["exception"] = record.exc_text
        elif record.exc_text:
            entry["exception"] = mask_traceback(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask_traceback(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def logging_config(*, level: str = "INFO") -> dict[str, Any]:
    """The LOGGING setting: everything to stdout as JSON lines, through both filters."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "sesshu.logs.RequestContextFilter"},
            "personal": {"()": "sesshu.logs.PersonalDataFilter"},
        },
        "formatters": {"json": {"()": "sesshu.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["context", "personal"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # At DEBUG these print SQL parameters and whole AWS request/response bodies.
            "django.db.backends": {"level": "WARNING"},
            "botocore.endpoint": {"level": "INFO"},
            "botocore.parsers": {"level": "INFO"},
            ACCESS_LOGGER: {"level": "INFO"},
            AUDIT_LOGGER: {"level": "INFO"},
        },
    }


# --- Requests ------------------------------------------------------------------------------


def host_kind(request: HttpRequest) -> str:
    """resident, console or platform: the kind of page, never the page itself."""
    if not hasattr(request, "tenant"):
        return "unknown"
    if request.tenant is None:
        return "platform"
    console = request.path == "/console" or request.path.startswith("/console/")
    return "console" if console else "resident"


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def http_method(request: HttpRequest) -> str:
    """The method, or OTHER: any token is a valid method, and the client chooses it."""
    method = (request.method or "").upper()
    return method if method in HTTP_METHODS else "OTHER"


class RequestContextMiddleware:
    """Give the request an id (the caller's ``X-Request-ID`` if sane), put it and the request
    in the logging context, log one access line and count the request.

    Place it right after HealthMiddleware: probes are neither logged nor counted, everything
    else is, including requests refused by host validation.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        # Not reset on the way out: Django logs 4xx/5xx responses after the middleware chain
        # has returned. request_finished clears the context; the next request replaces it.
        _request_id.set(request_id)
        _request.set(request)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            self._observe(request, status, time.perf_counter() - started)

    @staticmethod
    def _observe(request: HttpRequest, status: int, seconds: float) -> None:
        kind = host_kind(request)
        tenant = request_tenant_code(request)
        method = http_method(request)
        path = mask_text(request.path)
        http: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "host_kind": kind,
        }
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            http["route"] = match.route
        access_logger.info("%s %s %s", method, path, status, extra={"http": http})
        metrics.request_observed(
            method=method,
            status=status,
            host_kind=kind,
            tenant=tenant or "",
            seconds=seconds,
        )


@receiver(request_finished, dispatch_uid="sesshu.logs.request_context_end")
def _request_context_end(**kwargs: Any) -> None:
    _request.set(None)
    _request_id.set(None)


# --- Celery --------------------------------------------------------------------------------

_task_tokens: dict[str, tuple[Token[TaskContext | None], Token[str | None] | None]] = {}


def _task_header(task: Any, name: str) -> Any:
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None)
    if isinstance(headers, Mapping) and name in headers:
        return headers[name]
    return getattr(request, name, None)


@before_task_publish.connect(dispatch_uid="sesshu.logs.request_id_to_task")
def _request_id_to_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = _request_id.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


@task_prerun.connect(dispatch_uid="sesshu.logs.task_context_enter")
def _task_context_enter(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    name = str(getattr(task, "name", "") or "")
    task_token = _task.set(TaskContext(name=name, id=str(task_id)))
    id_token = None
    if _request_id.get() is None:  # an eager task inside a request keeps the request's id
        carried = _task_header(task, TASK_REQUEST_ID_HEADER)
        id_token = _request_id.set(sane_request_id(carried if isinstance(carried, str) else None))
    _task_tokens[str(task_id)] = (task_token, id_token)


@task_postrun.connect(dispatch_uid="sesshu.logs.task_context_leave")
def _task_context_leave(task_id: str = "", **kwargs: Any) -> None:
    tokens = _task_tokens.pop(str(task_id), None)
    if tokens is None:
        return
    task_token, id_token = tokens
    try:
        _task.reset(task_token)
        if id_token is not None:
            _request_id.reset(id_token)
    except ValueError:  # set in another context: leave none behind
        _task.set(None)


@setup_logging.connect(dispatch_uid="sesshu.logs.celery_logging")
def _celery_logging(**kwargs: Any) -> None:
    """Celery would put its own plain-text handlers on the root logger; a receiver of this
    signal replaces that, so the worker and beat log through the LOGGING setting too."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
