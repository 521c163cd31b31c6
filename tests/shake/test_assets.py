"""Sponsor assets pushed ahead of the show (docs/shake.md "Sponsor assets"): stored here
by their hash and served from our origin, listed in a versioned manifest, and the
share of online clients holding all of them counted for the operators; a new manifest
version pushed to signed-in users as a `shake_assets` sync entry."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import override_settings
from PIL import Image

from accounts.services.operators import operator_grant
from devtools.processes import ServerProcess
from messaging.selectors import sync_read
from shake.access import engine
from shake.models import Activity, AssetPush, Round, SponsorAsset
from shake.services.assets import asset_store, assets_push_run, assets_pushes_resume
from tests.factories import login_session, make_user
from tests.shake.conftest import approved_round
from tests.support.waiting import eventually
from tests.support.wirecheck import entry_errors
from wechat_core.metrics import sample_value
from wechat_core.sync.log import entries_append_payloads
from wechat_core.sync.models import EntryKind, SyncEntry

pytestmark = pytest.mark.django_db


def png(colour: str, size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


def sponsors_of(round_: Round) -> list[int]:
    return list(round_.activity.sponsors.order_by("id").values_list("pk", flat=True))


def auth(client: Any) -> tuple[int, dict[str, str]]:
    session = login_session(make_user())
    return session.user.pk, {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}


def loaded() -> None:
    """The access process (this test's engine) reads the rounds and their manifests."""
    with override_settings(SHAKE_ENGINE_THREAD=False):
        engine().step(force=True)


@pytest.fixture
def image_server() -> Iterator[tuple[str, bytes]]:
    """A sponsor's own web server, holding its logo at /logo.png."""
    body = png("navy", 16)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/logo.png"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", body
    server.shutdown()
    server.server_close()


def test_import_from_a_file__stored_by_its_hash__served_from_here_cached_for_ever(
    client: Any, tmp_path: Path
) -> None:
    round_ = approved_round(prizes_each=1)
    sponsor = sponsors_of(round_)[0]
    content = png("red")
    path = tmp_path / "beer.png"
    path.write_bytes(content)

    call_command("shake_asset_import", str(sponsor), "logo", str(path), stdout=io.StringIO())

    digest = hashlib.sha256(content).hexdigest()
    asset = SponsorAsset.objects.get(sponsor_id=sponsor, role="logo")
    assert (asset.sha256, asset.size, asset.content_type) == (digest, len(content), "image/png")
    response = client.get(f"/api/shake/assets/{digest}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    unknown = client.get(f"/api/shake/assets/{'0' * 64}")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "shake_asset_unknown"


def test_import_from_a_url__fetched_and_hashed(image_server: tuple[str, bytes]) -> None:
    base, body = image_server
    sponsor = sponsors_of(approved_round(prizes_each=1))[1]

    asset_import_out = io.StringIO()
    call_command(
        "shake_asset_import",
        str(sponsor),
        "background",
        f"{base}/logo.png",
        stdout=asset_import_out,
    )

    asset = SponsorAsset.objects.get(sponsor_id=sponsor, role="background")
    assert asset.sha256 == hashlib.sha256(body).hexdigest()
    assert asset.source == f"{base}/logo.png"
    assert asset.sha256 in asset_import_out.getvalue()
    with pytest.raises(CommandError, match="Could not fetch"):
        call_command("shake_asset_import", str(sponsor), "logo", f"{base}/missing.png")


def test_import__not_an_image__refused_and_nothing_stored(tmp_path: Path) -> None:
    round_ = approved_round(prizes_each=1)
    sponsor = sponsors_of(round_)[0]
    path = tmp_path / "logo.png"
    path.write_bytes(b"<html>not a logo</html>")
    with pytest.raises(CommandError, match="not a readable image"):
        call_command("shake_asset_import", str(sponsor), "logo", str(path))
    assert not SponsorAsset.objects.exists()
    round_.activity.refresh_from_db()
    assert round_.activity.assets_version == 0


def test_manifest__every_asset_with_its_hash_and_size__its_version_in_the_schedule(
    client: Any,
) -> None:
    round_ = approved_round(prizes_each=1)
    beer, moon, _ = sponsors_of(round_)
    logo, background = png("red"), png("gold", 32)
    asset_store(sponsor_id=beer, role="logo", content=logo)
    asset_store(sponsor_id=moon, role="background", content=background)
    _, headers = auth(client)
    loaded()

    manifest = client.get("/api/shake/assets", **headers).json()
    named = client.get(f"/api/shake/assets?activity={round_.activity_id}", **headers).json()
    schedule = client.get("/api/shake/schedule", **headers).json()

    assert manifest["activity"] == round_.activity_id
    assert manifest["version"] == 2
    assert manifest["assets"] == [
        {
            "url": f"/api/shake/assets/{hashlib.sha256(logo).hexdigest()}",
            "sha256": hashlib.sha256(logo).hexdigest(),
            "bytes": len(logo),
            "content_type": "image/png",
            "sponsor": beer,
            "role": "logo",
        },
        {
            "url": f"/api/shake/assets/{hashlib.sha256(background).hexdigest()}",
            "sha256": hashlib.sha256(background).hexdigest(),
            "bytes": len(background),
            "content_type": "image/png",
            "sponsor": moon,
            "role": "background",
        },
    ]
    assert named == manifest
    for entry in manifest["assets"]:
        fetched = b"".join(client.get(entry["url"]).streaming_content)
        assert hashlib.sha256(fetched).hexdigest() == entry["sha256"]
    assert schedule["assets"] == {"activity": round_.activity_id, "version": 2}


def test_manifest__a_replaced_logo__new_version_reaches_the_access_process(client: Any) -> None:
    round_ = approved_round(prizes_each=1)
    beer = sponsors_of(round_)[0]
    asset_store(sponsor_id=beer, role="logo", content=png("red"))
    _, headers = auth(client)
    loaded()
    before = client.get("/api/shake/assets", **headers).json()

    asset_store(sponsor_id=beer, role="logo", content=png("blue"))
    loaded()
    after = client.get("/api/shake/assets", **headers).json()

    assert (before["version"], after["version"]) == (1, 2)
    assert [a["sha256"] for a in after["assets"]] == [hashlib.sha256(png("blue")).hexdigest()]
    assert client.get("/api/shake/schedule", **headers).json()["assets"]["version"] == 2


def test_reports__share_of_online_clients_holding_everything__gauge_and_operators_page(
    client: Any,
) -> None:
    round_ = approved_round(prizes_each=1)
    beer, moon, _ = sponsors_of(round_)
    logo = asset_store(sponsor_id=beer, role="logo", content=png("red")).sha256
    other = asset_store(sponsor_id=moon, role="logo", content=png("green")).sha256
    loaded()
    activity = round_.activity_id
    answers = []
    for held in ([logo, other], [logo], [other, logo]):
        _, headers = auth(client)
        answers.append(
            client.post(
                "/api/shake/assets/held",
                {"activity": activity, "version": 2, "held": held},
                content_type="application/json",
                **headers,
            ).json()
        )

    assert [a["complete"] for a in answers] == [True, False, True]
    assert answers[1]["missing"] == [other]
    assert sample_value("shake_assets_online_clients", activity=str(activity)) == 3
    assert sample_value("shake_assets_complete_ratio", activity=str(activity)) == pytest.approx(
        2 / 3
    )
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    page = client.get("/operators/shake/").content.decode()
    assert f'data-activity="{activity}" data-online="3" data-holding="2"' in page
    assert "67 %" in page


def test_reports__a_client_holding_an_older_version__not_complete__counted_once(
    client: Any,
) -> None:
    round_ = approved_round(prizes_each=1)
    beer = sponsors_of(round_)[0]
    asset_store(sponsor_id=beer, role="logo", content=png("red"))
    latest = asset_store(sponsor_id=beer, role="logo", content=png("blue")).sha256
    loaded()
    _, headers = auth(client)
    body = {"activity": round_.activity_id, "held": [latest]}

    old = client.post(
        "/api/shake/assets/held", body | {"version": 1}, content_type="application/json", **headers
    )
    new = client.post(
        "/api/shake/assets/held", body | {"version": 2}, content_type="application/json", **headers
    )

    assert (old.json()["complete"], new.json()["complete"]) == (False, True)
    label = str(round_.activity_id)
    assert sample_value("shake_assets_online_clients", activity=label) == 1
    assert sample_value("shake_assets_complete_ratio", activity=label) == 1.0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"version": 1, "held": ["not-a-hash"]}, 400, "invalid"),
        ({"version": 1, "held": ["A" * 64]}, 400, "invalid"),
        ({"version": -1, "held": []}, 400, "invalid"),
        ({"version": 1, "held": ["a" * 64] * 201}, 400, "invalid"),
        ({"version": 1}, 400, "invalid"),
    ],
)
def test_reports__malformed__refused(
    client: Any, body: dict[str, Any], status: int, code: str
) -> None:
    round_ = approved_round(prizes_each=1)
    asset_store(sponsor_id=sponsors_of(round_)[0], role="logo", content=png("red"))
    _, headers = auth(client)
    response = client.post(
        "/api/shake/assets/held",
        body | {"activity": round_.activity_id},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == status
    assert response.json()["code"] == code


def test_reports__activity_without_assets_404__without_a_ticket_401(client: Any) -> None:
    round_ = approved_round(prizes_each=1)
    _, headers = auth(client)
    body = {"activity": round_.activity_id, "version": 0, "held": []}
    none = client.post("/api/shake/assets/held", body, content_type="application/json", **headers)
    anonymous = client.post("/api/shake/assets/held", body, content_type="application/json")
    bad_query = client.get("/api/shake/assets?activity=x", **headers)
    assert (none.status_code, none.json()["code"]) == (404, "shake_asset_unknown")
    assert anonymous.status_code == 401
    assert (bad_query.status_code, bad_query.json()["code"]) == (400, "invalid")


def asset_entries(user_id: int) -> list[dict[str, Any] | None]:
    return list(
        SyncEntry.objects.filter(user_id=user_id, kind="shake_assets")
        .order_by("seq")
        .values_list("payload", flat=True)
    )


def test_push__each_new_version_to_every_signed_in_user__once__synced_as_typed() -> None:
    round_ = approved_round(prizes_each=1)
    activity = round_.activity_id
    beer, moon, _ = sponsors_of(round_)
    alice, bob = login_session(make_user()), login_session(make_user())
    signed_out = make_user()
    asset_store(sponsor_id=beer, role="logo", content=png("red"))

    assert assets_push_run(activity_id=activity, version=1) == 2
    assert assets_push_run(activity_id=activity, version=1) == 0  # a duplicate task
    asset_store(sponsor_id=moon, role="logo", content=png("blue"))
    asset_store(sponsor_id=moon, role="logo", content=png("green"))
    assert assets_push_run(activity_id=activity, version=2) == 0  # replaced: 3 pushes it
    assert assets_push_run(activity_id=activity, version=3) == 2

    pushed = [{"activity": activity, "version": 1}, {"activity": activity, "version": 3}]
    assert asset_entries(alice.user.pk) == pushed
    assert asset_entries(bob.user.pk) == pushed
    assert asset_entries(signed_out.pk) == []
    page = sync_read(ticket=bob.ticket, user_id=bob.user.pk, since=0, limit=100)
    synced = [entry for entry in page.entries if entry["kind"] == "shake_assets"]
    assert [entry["payload"] for entry in synced] == pushed
    assert [error for entry in synced for error in entry_errors(entry)] == []


def test_push__interrupted__continues_after_its_cursor__superseded_one_is_closed() -> None:
    # given: a push of version 1 interrupted after Alice's batch (her entry written and
    # the cursor past her in one transaction), Bob not reached yet
    round_ = approved_round(prizes_each=1)
    activity = round_.activity_id
    alice, bob = login_session(make_user()), login_session(make_user())
    Activity.objects.filter(pk=activity).update(assets_version=1)
    payload = {"activity": activity, "version": 1}
    entries_append_payloads(kind=EntryKind.SHAKE_ASSETS, payloads={alice.user.pk: payload})
    AssetPush.objects.create(activity_id=activity, version=1, after_user=alice.user.pk, pushed=1)
    # when: it runs again (the beat's resume, or the task redelivered), twice
    assert assets_push_run(activity_id=activity, version=1) == 1
    assert assets_push_run(activity_id=activity, version=1) == 0
    # then: Bob got it, nobody twice
    assert asset_entries(alice.user.pk) == [payload]
    assert asset_entries(bob.user.pk) == [payload]
    assert AssetPush.objects.get(version=1).finished_at is not None
    # and: a push left unfinished whose version was replaced is closed, not resumed
    Activity.objects.filter(pk=activity).update(assets_version=3)
    AssetPush.objects.create(activity_id=activity, version=2)
    assert assets_push_run(activity_id=activity, version=2) == 0
    closed = AssetPush.objects.get(version=2)
    assert (closed.finished_at is not None, closed.superseded) == (True, True)
    assert assets_pushes_resume(stale_seconds=0) == []
    assert len(asset_entries(bob.user.pk)) == 1


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_push__an_import__the_worker_pushes_its_version(celery_worker: ServerProcess) -> None:
    round_ = approved_round(prizes_each=1)
    alice = login_session(make_user())
    asset_store(sponsor_id=sponsors_of(round_)[0], role="logo", content=png("red"))

    eventually(
        lambda: asset_entries(alice.user.pk) == [{"activity": round_.activity_id, "version": 1}],
        timeout=30,
        what="the shake_assets entry written by the worker",
    )


def test_manifest__says_how_often_to_report(client: Any) -> None:
    round_ = approved_round(prizes_each=1)
    asset_store(sponsor_id=sponsors_of(round_)[0], role="logo", content=png("red"))
    _, headers = auth(client)
    with override_settings(SHAKE_ASSETS_REPORT_SECONDS=45):
        manifest = client.get(f"/api/shake/assets?activity={round_.activity_id}", **headers)
    assert manifest.json()["report_seconds"] == 45


def noise_png() -> bytes:
    """A PNG of about 12 KB (noise does not compress)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(out, format="PNG")
    return out.getvalue()


def operator_client(client: Any) -> Any:
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    return client


def upload(client: Any, sponsor: int, content: bytes, *, name: str = "logo.png") -> str:
    """Upload from the operators' page; the page's messages after it."""
    client.post(
        f"/operators/shake/sponsors/{sponsor}/assets",
        {"role": "logo", "file": SimpleUploadedFile(name, content, content_type="image/gif")},
    )
    return str(client.get("/operators/shake/").content.decode())


def test_upload__from_the_operators_page__hashed_here__a_new_manifest_version(
    client: Any,
) -> None:
    # given: an operator on the page of an approved activity
    round_ = approved_round(prizes_each=1)
    beer = sponsors_of(round_)[0]
    content = png("red", 12)
    operator_client(client)
    # when: they upload a PNG (which the browser called a GIF)
    page = upload(client, beer, content)
    # then: stored under its SHA-256 computed here, typed by its content, version bumped
    digest = hashlib.sha256(content).hexdigest()
    asset = SponsorAsset.objects.get(sponsor_id=beer, role="logo")
    assert (asset.sha256, asset.size, asset.content_type) == (digest, len(content), "image/png")
    assert asset.source.startswith("upload:logo.png by Ops")
    assert f"sha256 {digest}" in page
    assert f"<code>{digest[:12]}</code>" in page
    round_.activity.refresh_from_db()
    assert round_.activity.assets_version == 1
    served = client.get(f"/api/shake/assets/{digest}")
    assert b"".join(served.streaming_content) == content


@override_settings(SHAKE_ASSET_MAX_BYTES=2048, SHAKE_ASSET_TYPES=["PNG"])
@pytest.mark.parametrize(
    ("content", "said"),
    [
        (noise_png(), "An asset has 1 to 2048 bytes."),  # too large
        (b"x" * 200_000, "An asset has at most 2048 bytes."),  # refused before it is read
        (b"not an image at all", "The asset is not a readable image."),
        (b"GIF89a", "The asset is not a readable image."),
    ],
    ids=["too_large", "far_too_large", "not_an_image", "truncated_gif"],
)
def test_upload__past_the_limits_as_set__refused_and_nothing_stored(
    client: Any, content: bytes, said: str
) -> None:
    round_ = approved_round(prizes_each=1)
    page = upload(operator_client(client), sponsors_of(round_)[0], content)
    assert said in page
    assert not SponsorAsset.objects.exists()


@override_settings(SHAKE_ASSET_TYPES=["PNG"])
def test_upload__a_type_not_allowed_by_the_setting__refused(client: Any) -> None:
    round_ = approved_round(prizes_each=1)
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="GIF")
    page = upload(operator_client(client), sponsors_of(round_)[0], out.getvalue(), name="a.gif")
    assert "Assets must be one of PNG." in page
    assert not SponsorAsset.objects.exists()


def test_upload__not_for_users(client: Any) -> None:
    round_ = approved_round(prizes_each=1)
    client.force_login(make_user())
    response = client.post(
        f"/operators/shake/sponsors/{sponsors_of(round_)[0]}/assets",
        {"role": "logo", "file": SimpleUploadedFile("logo.png", png("red"))},
    )
    assert response.status_code == 302  # to the login
    assert not SponsorAsset.objects.exists()
