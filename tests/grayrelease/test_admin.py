"""The operators' admin for features: staff only, saves through the services (so
audited and published), previews coverage before saving, refuses bad rules with
the message next to the field, and shows each feature's audit trail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from grayrelease.models import ChangeAction, Feature, FeatureChange
from grayrelease.services.features import feature_percentage_set
from tests.factories import login_session, make_feature, make_user
from tests.support.adminforms import add_inline_row, form_data

pytestmark = pytest.mark.django_db

LIST = "/admin/grayrelease/feature/"
ADD = "/admin/grayrelease/feature/add/"


def change_url(feature: Feature) -> str:
    return f"/admin/grayrelease/feature/{feature.pk}/change/"


def preview_url(feature: Feature | None) -> str:
    return f"/admin/grayrelease/feature/{feature.pk}/preview/" if feature else f"{LIST}preview/"


def page_form(browser: Client, url: str) -> dict[str, list[str]]:
    response = browser.get(url)
    assert response.status_code == 200
    return form_data(response.content.decode(), "feature_form")


def post(browser: Client, url: str, data: dict[str, list[str]]) -> Any:
    return browser.post(url, {k: v if len(v) != 1 else v[0] for k, v in data.items()})


def test_admin__chat_user__is_sent_to_the_login_page_everywhere() -> None:
    feature = make_feature("web.staff")
    browser = Client()
    browser.force_login(make_user())
    for url in (LIST, ADD, change_url(feature), "/admin/grayrelease/featurechange/"):
        response = browser.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/admin/login/")
    assert browser.post(preview_url(feature), {}).status_code == 302


def test_admin__operator__creates_a_feature_through_the_service_and_it_is_audited(
    ops: Client,
) -> None:
    # given: the add form, filled in
    data = page_form(ops, ADD)
    data |= {
        "key": ["web.admin_made"],
        "description": ["Made in the admin"],
        "percentage": ["5"],
        "platforms": ["ios", "android"],
        "client_visible": ["on"],
        "comment": ["first cohort"],
    }
    add_inline_row(data, "version_ranges", min_version="2.0.0", max_version="")
    # when
    response = post(ops, ADD, data)
    # then
    assert response.status_code == 302, response.content.decode()[-3000:]
    feature = Feature.objects.get(key="web.admin_made")
    assert (feature.percentage_bp, feature.platforms, feature.client_visible) == (
        500,
        ["ios", "android"],
        True,
    )
    assert list(feature.version_ranges.values_list("min_version", "max_version")) == [("2.0.0", "")]
    change = FeatureChange.objects.get(feature_key="web.admin_made")
    assert (change.action, change.actor_label.split(" ")[0], change.comment) == (
        ChangeAction.CREATED,
        "Olga",
        "first cohort",
    )


def test_admin__change_page__shows_the_audit_trail_before_to_after(ops: Client) -> None:
    feature = make_feature("web.trail", percentage_bp=100)
    feature_percentage_set(key="web.trail", percentage_bp=500, actor=None, comment="widen")
    page = ops.get(change_url(feature)).content.decode()
    assert "Audit trail" in page
    assert "percentage_bp: 1.00 % → 5.00 %" in page
    assert "widen" in page


def test_admin__edit__saves_one_audited_change(ops: Client) -> None:
    feature = make_feature("web.edit", percentage_bp=100)
    data = page_form(ops, change_url(feature))
    data |= {"percentage": ["12.5"], "comment": ["more"]}
    response = post(ops, change_url(feature), data)
    assert response.status_code == 302
    feature.refresh_from_db()
    assert (feature.percentage_bp, feature.revision) == (1250, 2)
    assert FeatureChange.objects.filter(feature_key="web.edit").count() == 2


def test_admin__preview__counts_what_the_form_would_cover_without_saving(ops: Client) -> None:
    # given: 4 users signed in on iOS and 2 on the web (the operator is not), a saved feature at 0 %
    for platform in ("ios", "ios", "ios", "ios", "web", "web"):
        login_session(make_user(), platform=platform)
    feature = make_feature("web.cover", percentage_bp=0)
    data = page_form(ops, change_url(feature))
    # when: previewing 100 % of iOS
    data |= {"percentage": ["100"], "platforms": ["ios"]}
    html = post(ops, preview_url(feature), data).content.decode()
    # then
    cells = dict(re.findall(r'data-rule="([a-z_]+)" data-users="(\d+)"', html))
    assert cells == {
        "population": "6",
        "platforms": "4",
        "percentage": "6",
        "enabled": "4",
        "current": "0",
    }
    assert 'data-gained="4"' in html
    feature.refresh_from_db()
    assert (feature.percentage_bp, feature.revision) == (0, 1)


BAD_FORMS = [
    (
        "overlapping version ranges",
        [
            ("version_ranges", {"min_version": "1.0.0", "max_version": "3.0.0"}),
            ("version_ranges", {"min_version": "2.0.0", "max_version": ""}),
        ],
        {},
        "overlap; merge them into one",
    ),
    (
        "invalid version",
        [("version_ranges", {"min_version": "1.x", "max_version": ""})],
        {},
        "is not a semantic version",
    ),
    (
        "percentage out of range",
        [],
        {"percentage": ["150"]},
        "Ensure this value is less than or equal to 100",
    ),
    (
        "stages that narrow",
        [
            ("stages", {"percentage": "20", "soak_minutes": "60"}),
            ("stages", {"percentage": "5", "soak_minutes": "60"}),
        ],
        {},
        "must widen",
    ),
    ("unknown user", [], {"allow": ["424242424"]}, "no such user: 424242424"),
]


@pytest.mark.parametrize(("case", "rows", "fields", "message"), BAD_FORMS)
def test_admin__bad_rules__are_refused_with_the_message_on_the_page(
    ops: Client,
    case: str,
    rows: list[tuple[str, dict[str, str]]],
    fields: dict[str, list[str]],
    message: str,
) -> None:
    # given: a feature, edited with a bad rule
    feature = make_feature("web.badform", percentage_bp=100)
    data = page_form(ops, change_url(feature)) | fields
    for prefix, row in rows:
        add_inline_row(data, prefix, **row)
    # when: saved, and previewed
    saved = post(ops, change_url(feature), data)
    previewed = post(ops, preview_url(feature), data).content.decode()
    # then: the form comes back with the message, and nothing changed
    assert saved.status_code == 200
    assert message in saved.content.decode()
    assert message in previewed
    assert 'data-preview="errors"' in previewed
    feature.refresh_from_db()
    assert (feature.revision, feature.version_ranges.count()) == (1, 0)


def test_admin__edit_from_a_stale_page__is_refused(ops: Client) -> None:
    feature = make_feature("web.stale", percentage_bp=100)
    data = page_form(ops, change_url(feature))
    feature_percentage_set(key="web.stale", percentage_bp=300, actor=None)  # someone else
    data |= {"percentage": ["50"]}
    response = post(ops, change_url(feature), data)
    assert "Someone saved this feature while you were editing it" in response.content.decode()
    feature.refresh_from_db()
    assert feature.percentage_bp == 300


def test_admin__kill_action__turns_selected_features_off_and_is_audited(ops: Client) -> None:
    one, two = make_feature("web.k1", percentage_bp=10_000), make_feature("web.k2")
    response = ops.post(LIST, {"action": "kill", "_selected_action": [one.pk, two.pk]})
    assert response.status_code == 302
    assert set(Feature.objects.filter(killed=True).values_list("key", flat=True)) == {
        "web.k1",
        "web.k2",
    }
    assert FeatureChange.objects.filter(action=ChangeAction.KILLED).count() == 2


def test_admin__delete_action__goes_through_the_service_and_keeps_the_trail(ops: Client) -> None:
    feature = make_feature("web.del")
    ops.post(LIST, {"action": "delete_features", "_selected_action": [feature.pk]})
    assert not Feature.objects.filter(key="web.del").exists()
    assert FeatureChange.objects.filter(feature_key="web.del", action=ChangeAction.DELETED).exists()
    assert ops.get("/admin/grayrelease/featurechange/").status_code == 200


def test_admin__schedule_actions__set_standard_stages_then_start(ops: Client) -> None:
    feature = make_feature("web.sched")
    ops.post(LIST, {"action": "standard_schedule", "_selected_action": [feature.pk]})
    ops.post(LIST, {"action": "start_schedule", "_selected_action": [feature.pk]})
    feature.refresh_from_db()
    assert list(feature.stages.values_list("percentage_bp", flat=True)) == [
        100,
        500,
        2000,
        5000,
        10_000,
    ]
    assert (feature.schedule_status, feature.percentage_bp) == ("running", 100)
    # and starting again is refused with a message, not an error page
    page = ops.post(
        LIST, {"action": "start_schedule", "_selected_action": [feature.pk]}, follow=True
    ).content.decode()
    assert "is running already" in page
