"""The one allowed AWS region, and a pattern that finds AWS region codes in any text."""

from __future__ import annotations

import re

ALLOWED_REGION = "ap-northeast-1"

# us-east-1, ap-northeast-3, us-gov-west-1, eu-central-2, ... also inside ARNs, endpoint host
# names and availability zones (us-east-1a).
REGION_RE = re.compile(
    r"(?<![a-z0-9])"
    r"((?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?"
    r"-(?:north|south|east|west|central)(?:east|west)?-[0-9]{1,2})"
    r"(?![0-9])"
)


def foreign_regions_in(text: str) -> set[str]:
    return {r for r in REGION_RE.findall(text) if r != ALLOWED_REGION}
