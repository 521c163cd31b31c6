"""Passwords are argon2id hashes at the cost the settings name; a hash of another
cost still verifies and is rehashed at the next login (docs/security.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, identify_hasher, make_password
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import PASSWORD, device_json, make_user

pytestmark = pytest.mark.django_db

CONFIGURED = override_settings(
    PASSWORD_HASHERS=["accounts.hashers.ConfiguredArgon2PasswordHasher"],
    PASSWORD_ARGON2_TIME_COST=2,
    PASSWORD_ARGON2_MEMORY_KIB=2048,
    PASSWORD_ARGON2_PARALLELISM=2,
)


class OlderCostArgon2(Argon2PasswordHasher):
    """A hash made as an older deployment (or Django's default class) would."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


def cost_of(encoded: str) -> dict[str, int]:
    decoded = identify_hasher(encoded).decode(encoded)
    return {k: decoded[k] for k in ("time_cost", "memory_cost", "parallelism")}


@CONFIGURED
def test_a_new_password__is_hashed_with_argon2id_at_the_configured_cost() -> None:
    encoded = make_password("correct horse battery")
    assert encoded.startswith("argon2$argon2id$")
    assert cost_of(encoded) == {"time_cost": 2, "memory_cost": 2048, "parallelism": 2}


@CONFIGURED
def test_a_hash_of_another_cost__verifies_and_is_rehashed_at_the_next_login() -> None:
    # given a user whose password was stored at another cost
    user = make_user(email="olga@example.com")
    User.objects.filter(pk=user.pk).update(
        password=OlderCostArgon2().encode(PASSWORD, "saltsaltsalt")
    )
    # when she logs in with it
    response = APIClient().post(
        "/api/accounts/login",
        {"identifier": "olga@example.com", "password": PASSWORD, "device": device_json()},
        format="json",
    )
    # then she is let in, and her hash now has the configured cost
    assert response.status_code == 200, response.json()
    user.refresh_from_db()
    assert cost_of(user.password) == {"time_cost": 2, "memory_cost": 2048, "parallelism": 2}
    assert user.check_password(PASSWORD)
    assert not user.check_password("not her password")
