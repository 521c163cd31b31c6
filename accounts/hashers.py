"""The password hasher: argon2id with its cost taken from settings.

Django's own Argon2PasswordHasher fixes the cost in the class (100 MiB, two passes,
8 lanes: ~0.3 s of a core per login on this project's machines). A login is the
top priority under overload (docs/overload.md), so its cost is a setting, by
default OWASP's first recommended argon2id configuration (docs/security.md).
Hashes made with other parameters still verify, and are rehashed with these at
the user's next login (Django's `must_update`).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class ConfiguredArgon2PasswordHasher(Argon2PasswordHasher):
    # Same algorithm name as Django's: stored hashes stay readable by either class.
    algorithm = "argon2"

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_TIME_COST)

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_MEMORY_KIB)

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_PARALLELISM)
