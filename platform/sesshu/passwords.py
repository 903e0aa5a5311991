from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class SizedArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id at m=19 MiB, t=2, p=1 (OWASP's minimum for argon2id).

    Django's default is 100 MiB per hash: forty concurrent logins on one web pod would need
    4 GB. At 19 MiB a booking-morning rush stays bounded; the throttle in front of the hash
    bounds the rest.
    """

    memory_cost = 19 * 1024
    time_cost = 2
    parallelism = 1
