"""What the WAF's logs (kept three years) never hold: session cookies, credentials, and the
query string, where a value typed into an address by hand would otherwise stay."""

from __future__ import annotations

from typing import Any

from tests.infra.iam_policies import TERRAFORM
from tests.infra.tokyo_guard import parse_directory


def _logging_configuration() -> dict[str, Any]:
    for doc in parse_directory(TERRAFORM).values():
        for resource in doc.get("resource", []):
            found = resource.get("aws_wafv2_web_acl_logging_configuration")
            if found:
                (body,) = found.values()
                return body
    raise AssertionError("no aws_wafv2_web_acl_logging_configuration")


def test_the_waf_logs_redact_cookies_credentials_and_the_query_string() -> None:
    redacted = _logging_configuration()["redacted_fields"]
    headers = {header["name"] for field in redacted for header in field.get("single_header", [])}
    assert headers == {"cookie", "authorization"}
    assert any("query_string" in field for field in redacted)
