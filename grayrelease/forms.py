"""The admin's forms for features: operators' units (percent, one user per line), and
every rule checked by the same validators the services use, so each error shows
next to its field before anything is saved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Platform
from grayrelease.exceptions import InvalidRule
from grayrelease.models import GUARD_ACTIONS, Feature, RolloutStage, TimeWindow, VersionRange
from grayrelease.rules import (
    GUARD_SAMPLE_MAX,
    GUARD_SAMPLE_MIN,
    GUARD_WINDOW_MAX,
    stages_clean,
    time_windows_clean,
    version_ranges_clean,
)
from grayrelease.selectors import topology_known
from grayrelease.services.features import feature_spec_validate
from grayrelease.types import (
    FeatureSpec,
    GuardAction,
    GuardSpec,
    StageSpec,
    TimeWindowSpec,
    VersionRangeSpec,
)

TARGETS_HELP = "One user id or WeChat ID per line (or separated by commas)."


def percent_field(**kwargs: Any) -> forms.DecimalField:
    kwargs.setdefault("label", "Percentage (%)")
    kwargs.setdefault("help_text", "0.01 % steps; of the users the targeting selects.")
    return forms.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), **kwargs
    )


def to_basis_points(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _lines(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(",", "\n").splitlines() if part.strip())


class FeatureForm(forms.ModelForm[Feature]):
    percentage = percent_field(initial=Decimal(0))
    allow = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=f"Always get it (testers). {TARGETS_HELP}",
    )
    deny = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=f"Never get it. {TARGETS_HELP}",
    )
    platforms = forms.MultipleChoiceField(
        choices=Platform.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every platform.",
    )
    datacenters = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Users' home data centres; none ticked: all.",
    )
    campuses = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Users' home campuses; none ticked: all.",
    )
    guard_margin = percent_field(
        label="Margin (points of error rate)",
        initial=Decimal(1),
        required=False,
        help_text="Trip when the treated users' error rate exceeds the control's by more "
        "than this: 1.00 = one percentage point.",
    )
    guard_min_sample = forms.IntegerField(
        label="Minimum sample per variant",
        initial=100,
        required=False,
        help_text=f"Outcomes each variant needs in the window before any verdict "
        f"({GUARD_SAMPLE_MIN}-{GUARD_SAMPLE_MAX}).",
    )
    guard_window_seconds = forms.IntegerField(
        label="Window (seconds)",
        initial=600,
        required=False,
        help_text=f"The outcomes of the last this many seconds (up to {GUARD_WINDOW_MAX}).",
    )
    guard_action = forms.ChoiceField(
        label="When tripped",
        choices=GUARD_ACTIONS,
        initial=GuardAction.PAUSE.value,
        required=False,
        help_text="Pause: the schedule stops widening. Roll back: 0 % (testers on the allow "
        "list keep it) and the schedule back to its start.",
    )
    comment = forms.CharField(
        max_length=200, required=False, help_text="Why you change it; kept in the audit trail."
    )
    expected_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Feature
        fields = ["key", "description", "client_visible", "killed", "guarded"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        topology = topology_known()
        self.fields["datacenters"].choices = [(c, c) for c in topology.datacenters]  # type: ignore[attr-defined]
        self.fields["campuses"].choices = [(c, c) for c in sorted(topology.campuses)]  # type: ignore[attr-defined]
        feature = self.instance
        if feature.pk:
            self.initial.update(
                percentage=Decimal(feature.percentage_bp) / 100,
                allow="\n".join(feature.allow),
                deny="\n".join(feature.deny),
                platforms=feature.platforms,
                datacenters=feature.datacenters,
                campuses=feature.campuses,
                expected_revision=feature.revision,
                guard_margin=Decimal(feature.guard_margin_bp) / 100,
                guard_min_sample=feature.guard_min_sample,
                guard_window_seconds=feature.guard_window_seconds,
                guard_action=feature.guard_action,
            )

    def spec(self) -> FeatureSpec:
        """The spec of the cleaned form, without ranges, windows and stages."""
        data = self.cleaned_data
        return FeatureSpec(
            key=self.instance.key if self.instance.pk else data.get("key", ""),
            description=data.get("description", ""),
            client_visible=bool(data.get("client_visible")),
            killed=bool(data.get("killed")),
            percentage_bp=to_basis_points(data.get("percentage") or Decimal(0)),
            allow=_lines(data.get("allow", "")),
            deny=_lines(data.get("deny", "")),
            platforms=tuple(data.get("platforms", ())),
            datacenters=tuple(data.get("datacenters", ())),
            campuses=tuple(data.get("campuses", ())),
            guard=self._guard(),
        )

    def _guard(self) -> GuardSpec | None:
        data = self.cleaned_data
        if not data.get("guarded"):
            return None
        margin = data.get("guard_margin")
        return GuardSpec(
            margin_bp=to_basis_points(margin) if margin is not None else 0,
            min_sample=data.get("guard_min_sample") or 0,
            window_seconds=data.get("guard_window_seconds") or 0,
            action=data.get("guard_action") or GuardAction.PAUSE,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        feature = self.instance
        revision = data.get("expected_revision")
        if feature.pk and revision is not None:
            current = Feature.objects.filter(pk=feature.pk).values_list("revision", flat=True)
            if current.first() != revision:
                raise ValidationError(
                    "Someone saved this feature while you were editing it. Reload the page "
                    "and apply your change again.",
                    code="feature_changed",
                )
        try:
            feature_spec_validate(self.spec())
        except InvalidRule as error:
            renamed = {"percentage_bp": "percentage", "guard_margin_bp": "guard_margin"}
            field = renamed.get(error.field, error.field)
            self.add_error(field if field in self.fields else None, error.reason)
        return data


class _RulesFormSet(forms.BaseInlineFormSet):  # type: ignore[type-arg]
    """Checks the rows together (overlaps, order) with the services' validator."""

    def rows(self) -> list[dict[str, Any]]:
        return [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def specs(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def check(self, specs: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        try:
            self.check(self.specs())
        except InvalidRule as error:
            raise ValidationError(error.reason, code=error.code) from error


class VersionRangeFormSet(_RulesFormSet):
    def specs(self) -> tuple[VersionRangeSpec, ...]:
        return tuple(
            VersionRangeSpec(row.get("min_version") or None, row.get("max_version") or None)
            for row in self.rows()
        )

    def check(self, specs: tuple[Any, ...]) -> None:
        version_ranges_clean(specs)


class TimeWindowFormSet(_RulesFormSet):
    def specs(self) -> tuple[TimeWindowSpec, ...]:
        return tuple(
            TimeWindowSpec(row.get("starts_at"), row.get("ends_at")) for row in self.rows()
        )

    def check(self, specs: tuple[Any, ...]) -> None:
        time_windows_clean(specs)


class StageForm(forms.ModelForm[RolloutStage]):
    percentage = percent_field()

    class Meta:
        model = RolloutStage
        fields = ["soak_minutes"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["percentage"] = Decimal(self.instance.percentage_bp) / 100


class StageFormSet(_RulesFormSet):
    def specs(self) -> tuple[StageSpec, ...]:
        return tuple(
            StageSpec(to_basis_points(row["percentage"]), row["soak_minutes"])
            for row in self.rows()
        )

    def check(self, specs: tuple[Any, ...]) -> None:
        stages_clean(specs)


RULE_FORMSETS = {VersionRange: "version_ranges", TimeWindow: "time_windows", RolloutStage: "stages"}
