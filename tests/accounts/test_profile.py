"""The user's own profile: fields, limits, avatar upload and serving."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import login_session, make_user

pytestmark = pytest.mark.django_db


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (800, 600), exif: bool = False) -> bytes:
    image = Image.new("RGB", size, (7, 193, 96))
    buffer = io.BytesIO()
    if exif:
        metadata = Image.Exif()
        metadata[0x010F] = "SecretCam"  # Make
        image.save(buffer, format=fmt, exif=metadata)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def me() -> tuple[User, APIClient]:
    user = make_user(nickname="Alice")
    return user, APIClient(headers=login_session(user).headers)


def upload(client: APIClient, data: bytes, name: str = "me.png") -> Any:
    file = io.BytesIO(data)
    file.name = name
    return client.put("/api/accounts/me/avatar", {"avatar": file}, format="multipart")


def test_profile__update_fields__are_saved_trimmed(me: tuple[User, APIClient]) -> None:
    user, client = me
    response = client.patch(
        "/api/accounts/me",
        {"nickname": "  Alice W. ", "region": "CN-44 Shenzhen", "signature": "Carpe diem"},
        format="json",
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.nickname, user.region, user.signature) == (
        "Alice W.",
        "CN-44 Shenzhen",
        "Carpe diem",
    )


def test_profile__fields_not_sent__are_left_alone(me: tuple[User, APIClient]) -> None:
    user, client = me
    client.patch("/api/accounts/me", {"region": "Paris"}, format="json")
    user.refresh_from_db()
    assert (user.nickname, user.region) == ("Alice", "Paris")


@pytest.mark.parametrize(
    ("field", "setting"),
    [("nickname", "NICKNAME_MAX_LENGTH"), ("signature", "SIGNATURE_MAX_LENGTH"),
     ("region", "REGION_MAX_LENGTH")],
)  # fmt: skip
def test_profile__over_the_configured_length__is_400(
    me: tuple[User, APIClient], settings: Any, field: str, setting: str
) -> None:
    _, client = me
    limit = getattr(settings, setting)
    assert client.patch("/api/accounts/me", {field: "字" * limit}, format="json").status_code == 200
    response = client.patch("/api/accounts/me", {field: "字" * (limit + 1)}, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"]["fields"]


@pytest.mark.parametrize("nickname", ["", "   ", "tab\there", "line\nbreak", "nul\x00"])
def test_profile__blank_or_control_character_nickname__is_400(
    me: tuple[User, APIClient], nickname: str
) -> None:
    _, client = me
    assert (
        client.patch("/api/accounts/me", {"nickname": nickname}, format="json").status_code == 400
    )


def test_avatar__png__is_shrunk_stored_and_served(me: tuple[User, APIClient]) -> None:
    _, client = me
    response = upload(client, image_bytes(size=(1600, 1200)))
    assert response.status_code == 200, response.json()
    url = response.json()["avatar_url"]
    served = Client().get(url)
    assert served.status_code == 200
    with Image.open(io.BytesIO(served.getvalue())) as image:
        assert max(image.size) == 640


def test_avatar__jpeg_with_exif__is_re_encoded_without_it(me: tuple[User, APIClient]) -> None:
    _, client = me
    response = upload(client, image_bytes("JPEG", exif=True), name="me.jpg")
    served = Client().get(response.json()["avatar_url"])
    data = served.getvalue()
    assert b"SecretCam" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif()


def test_avatar__replacing__deletes_the_old_file_after_commit(
    me: tuple[User, APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    _, client = me
    first = upload(client, image_bytes()).json()["avatar_url"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        upload(client, image_bytes("JPEG"), name="b.jpg")
    assert callbacks
    assert Client().get(first).status_code == 404


def test_avatar__not_an_image__is_400_invalid_image(me: tuple[User, APIClient]) -> None:
    _, client = me
    response = upload(client, b"%PDF-1.7 definitely not a picture", name="cv.png")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_image")


def test_avatar__over_the_size_limit__is_413(me: tuple[User, APIClient], settings: Any) -> None:
    user, client = me
    settings.AVATAR_MAX_BYTES = 2048
    response = upload(client, image_bytes(size=(400, 400)) + b"\0" * 4096)
    assert response.status_code == 413
    user.refresh_from_db()
    assert not user.avatar


def test_avatar__missing_file_field__is_400(me: tuple[User, APIClient]) -> None:
    _, client = me
    response = client.put("/api/accounts/me/avatar", {}, format="multipart")
    assert response.status_code == 400


def test_avatar__cleared__removes_it(
    me: tuple[User, APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    _, client = me
    url = upload(client, image_bytes()).json()["avatar_url"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete("/api/accounts/me/avatar").json()["avatar_url"] is None
    assert Client().get(url).status_code == 404
