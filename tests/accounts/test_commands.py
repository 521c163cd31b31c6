"""Management command: createoperator."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_createoperator__with_password_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPERATOR_PASSWORD", "an-operator-passphrase")
    call_command("createoperator", email="Ops@Example.com", noinput=True, stdout=io.StringIO())
    operator = User.objects.get(email="ops@example.com")
    assert operator.is_staff
    assert not operator.is_superuser
    assert operator.check_password("an-operator-passphrase")


def test_createoperator__without_a_password_and_no_prompt__fails_clearly(monkeypatch: Any) -> None:
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="OPERATOR_PASSWORD"):
        call_command("createoperator", email="ops@example.com", noinput=True)
    assert not User.objects.filter(email="ops@example.com").exists()


def test_createoperator__weak_password__is_refused(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPERATOR_PASSWORD", "123")
    with pytest.raises(CommandError, match="password"):
        call_command("createoperator", email="ops@example.com", noinput=True)


def test_createoperator__existing_user__is_promoted_keeping_the_password() -> None:
    from tests.factories import PASSWORD, make_user

    user = make_user(email="promote@example.com")
    call_command(
        "createoperator", email="promote@example.com", superuser=True, stdout=io.StringIO()
    )
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)
    assert user.check_password(PASSWORD)
