# syntax=docker/dockerfile:1
#
# Sesshu application image: web (gunicorn), Celery worker and beat, and migrations all run
# from it (k8s/base sets the command of each). Multi-stage: dependencies are built in a
# virtualenv in the first stage and only that virtualenv, the application's source folders,
# translations, manage.py and gunicorn.conf.py are copied into the runtime stage, which runs
# as an unprivileged user.
#
#   docker build -t sesshu:<version> .
#
# Base image: an exact Python 3.11 patch release on Debian bookworm, the same in both stages.
# To pin the digest as well, append it to both FROM lines: python:3.11.14-slim-bookworm@sha256:...

# --- Dependencies ---------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# The runtime dependencies of pyproject.toml, at the versions of constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN pip install --upgrade "pip>=24.2" \
    && pip install --constraint constraints.txt . \
    && pip uninstall --yes sesshu \
    && python -m compileall -q /opt/venv

# CA bundle of Amazon RDS in Tokyo, for sslmode=verify-full on the database connection.
RUN python -c "import urllib.request as u; u.urlretrieve('https://truststore.pki.rds.amazonaws.com/ap-northeast-1/ap-northeast-1-bundle.pem', '/build/rds-ca.pem')" \
    && grep -q "BEGIN CERTIFICATE" /build/rds-ca.pem

# --- Runtime --------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="sesshu" \
      org.opencontainers.image.description="Sesshu vaccination booking (ap-northeast-1)"

RUN groupadd --system --gid 10001 sesshu \
    && useradd --system --uid 10001 --gid sesshu --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin sesshu

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /build/rds-ca.pem /etc/ssl/certs/rds-ap-northeast-1-bundle.pem

WORKDIR /app
# Source only: owned by root, read-only for the application user.
COPY manage.py gunicorn.conf.py ./
COPY platform/ ./platform/
COPY tenants/ ./tenants/
COPY booking/ ./booking/
COPY audit/ ./audit/
# The project's translations (settings.LOCALE_PATHS: control plane, base template, tenants,
# audit); the apps' own catalogues come with their folders. Compiled (.mo) in the repository.
COPY locale/ ./locale/

# platform/ is a source folder (never a package), next to the repository root on the path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/platform:/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=sesshu.settings \
    SESSHU_VAR_DIR=/app/var

# Bytecode and static files are made now: the containers run with a read-only root
# filesystem. collectstatic only reads settings; the database URL is never connected to.
RUN python -m compileall -q platform tenants booking audit manage.py \
    && DJANGO_DEBUG=1 DATABASE_URL=postgresql://build@127.0.0.1:1/build \
       python manage.py collectstatic --noinput --verbosity 0

USER 10001:10001

EXPOSE 8000 9100

# Kubernetes uses its own probes (k8s/base); this one serves plain `docker run` of the web.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["gunicorn", "--worker-tmp-dir=/dev/shm"]
