"""Rollout guards in the admin and the operators' API: the settings are edited,
audited and refused when bad with the reason next to the field; the last
verdict is shown; the guard's alert rule in monitoring is read-only."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from grayrelease.models import ChangeAction, FeatureChange
from grayrelease.services.guard import guard_rule_name, rollout_guards_check
from grayrelease.types import GuardSpec
from monitoring.models import AlertRule
from tests.factories import make_feature
from tests.grayrelease.test_admin import change_url, page_form, post, preview_url

pytestmark = pytest.mark.django_db


def test_admin__guard_settings__are_shown_saved_and_audited(ops: Client) -> None:
    # given: an unguarded feature's page, which shows the guard's fields
    feature = make_feature("web.guardme", percentage_bp=100)
    data = page_form(ops, change_url(feature))
    assert {"guard_margin", "guard_min_sample", "guard_window_seconds", "guard_action"} <= set(data)
    # when: the operator guards it
    data |= {
        "guarded": ["on"],
        "guard_margin": ["2.5"],
        "guard_min_sample": ["50"],
        "guard_window_seconds": ["300"],
        "guard_action": ["rollback"],
        "comment": ["guard it"],
    }
    response = post(ops, change_url(feature), data)
    # then
    assert response.status_code == 302, response.content.decode()[-3000:]
    feature.refresh_from_db()
    assert (
        feature.guarded,
        feature.guard_margin_bp,
        feature.guard_min_sample,
        feature.guard_window_seconds,
        feature.guard_action,
    ) == (True, 250, 50, 300, "rollback")
    change = FeatureChange.objects.filter(feature_key="web.guardme").first()
    assert change is not None
    assert change.after is not None
    assert (change.action, change.comment) == (ChangeAction.UPDATED, "guard it")
    assert change.after["spec"]["guard"] == {
        "margin_bp": 250,
        "min_sample": 50,
        "window_seconds": 300,
        "action": "rollback",
    }
    # and the page shows them again
    again = page_form(ops, change_url(feature))
    assert (again["guarded"], again["guard_margin"], again["guard_action"]) == (
        ["on"],
        ["2.5"],
        ["rollback"],
    )


BAD_GUARDS = [
    ({"guard_margin": ["0"]}, "the margin (basis points of error rate, 100 = 1 point)"),
    ({"guard_min_sample": ["3"]}, "the minimum sample per variant must be a whole number"),
    ({"guard_window_seconds": ["2"]}, "the window in seconds must be a whole number from 10"),
    ({"guard_window_seconds": ["100000"]}, "from 10 to 86400"),
    ({"guard_action": ["explode"]}, "Select a valid choice"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_GUARDS)
def test_admin__bad_guard_settings__are_refused_with_the_message_on_the_page(
    ops: Client, fields: dict[str, list[str]], message: str
) -> None:
    feature = make_feature("web.badguard", percentage_bp=100)
    data = page_form(ops, change_url(feature)) | {"guarded": ["on"]} | fields
    # when: saved, and previewed
    saved = post(ops, change_url(feature), data)
    previewed = post(ops, preview_url(feature), data).content.decode()
    # then
    assert saved.status_code == 200
    assert message in saved.content.decode()
    assert message in previewed
    feature.refresh_from_db()
    assert (feature.revision, feature.guarded) == (1, False)


def test_admin__guarded_feature__shows_its_last_verdict(ops: Client) -> None:
    # given: a guarded feature the guard has judged (no outcomes yet)
    feature = make_feature("web.judged", percentage_bp=500, guard=GuardSpec(min_sample=40))
    assert "Not judged yet." in ops.get(change_url(feature)).content.decode()
    rollout_guards_check()
    # when
    page = ops.get(change_url(feature)).content.decode()
    listing = ops.get("/admin/grayrelease/feature/").content.decode()
    # then
    assert "<strong>insufficient</strong>" in page
    assert "not enough outcomes (40 per variant needed)" in page
    assert "insufficient" in listing


def test_admin__guard_alert_rule__is_read_only_but_for_its_switch(ops: Client) -> None:
    # given: the rule the guard keeps in monitoring
    make_feature("web.ruled", percentage_bp=500, guard=GuardSpec())
    rollout_guards_check()
    rule = AlertRule.objects.get(name=guard_rule_name("web.ruled"))
    url = f"/admin/monitoring/alertrule/{rule.pk}/change/"
    page = ops.get(url).content.decode()
    # when: an operator switches it off, and tries to change its threshold
    response = ops.post(url, {"enabled": "", "threshold": "99"})
    # then
    assert 'name="threshold"' not in page
    assert response.status_code == 302, response.content.decode()[-2000:]
    rule.refresh_from_db()
    assert (rule.enabled, rule.threshold) == (False, 0.01)


def test_api__guard__is_set_shown_and_bad_values_are_refused(operator: APIClient) -> None:
    make_feature("api.guard", percentage_bp=100)
    url = "/api/grayrelease/features/api.guard"
    # when: guarded through the API
    answer = operator.patch(url, {"guard": {"margin_bp": 300, "action": "rollback"}}, format="json")
    # then: the settings left out take their defaults; the verdict is empty until judged
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["guard"] == {
        "margin_bp": 300,
        "min_sample": 100,
        "window_seconds": 600,
        "action": "rollback",
    }
    assert body["guard_verdict"] == {"state": None, "checked_at": None, "explanation": ""}
    # and bad values are refused naming the setting, changing nothing
    refused = operator.patch(url, {"guard": {"min_sample": 1}}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_rule"
    assert refused.json()["details"]["field"] == "guard_min_sample"
    assert operator.get(url).json()["guard"]["margin_bp"] == 300
    # and null removes the guard
    assert operator.patch(url, {"guard": None}, format="json").json()["guard"] is None


def test_api__guard_action_not_known__is_refused(operator: APIClient) -> None:
    answer = operator.post(
        "/api/grayrelease/features",
        {"key": "api.badaction", "guard": {"action": "explode"}},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["details"]["field"] == "guard_action"
    assert "'pause' or 'rollback'" in answer.json()["message"]
