"""Outside ap-northeast-1 the web process, the Celery worker and `manage.py check` refuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "sesshu.settings",
        "SESSHU_TESTING": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_S3_REGION_NAME", "eu-west-1"),
        ("SESSHU_SES_REGION", "ap-northeast-3"),
        ("SESSHU_SNS_REGION", "us-west-2"),
    ],
)
def test_the_web_process_refuses_to_start(setting: str, value: str) -> None:
    result = _run(["-c", "import sesshu.wsgi"], **{setting: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert setting in result.stderr and value in result.stderr


def test_the_web_process_starts_in_tokyo() -> None:
    result = _run(["-c", "import sesshu.wsgi; print('served')"], AWS_REGION="ap-northeast-1")
    assert result.returncode == 0, result.stderr
    assert "served" in result.stdout


def test_the_celery_worker_refuses_to_start() -> None:
    result = _run(
        ["-m", "celery", "-A", "sesshu.celery", "worker", "--pool=solo", "-l", "WARNING"],
        AWS_REGION="us-east-1",
        CELERY_BROKER_URL=os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15"),
    )
    assert result.returncode != 0
    assert "AWS_REGION" in result.stderr + result.stdout
    assert "us-east-1" in result.stderr + result.stdout


def test_the_system_check_names_the_kms_key_region() -> None:
    result = _run(
        ["manage.py", "check"],
        SESSHU_KMS_KEY_ID="arn:aws:kms:us-east-1:111122223333:key/abcd",
    )
    assert result.returncode != 0
    assert "sesshu.E001" in result.stderr
    assert "SESSHU_KMS_KEY_ID" in result.stderr
