"""The verdict of a rollout guard: do the treated users fail more than the control?

Pure and DB-free. grayrelease.selectors.guard_samples reads the two samples
from monitoring's history; grayrelease.services.guard acts on the verdict.

The rule, with the feature's GuardSpec:

- no verdict (insufficient) while either variant has fewer than `min_sample`
  outcomes in the window: a handful of requests cannot tell a broken code
  path from bad luck, and a rollout at 100 % (or 0 %) has no one to compare with;
- tripped when the treated error rate exceeds the control's by more than
  `margin_bp` basis points of error rate (100 = 1 percentage point);
- healthy otherwise.

A difference, not a ratio: against a control with no errors at all, a ratio
would trip on the first treated error.
"""

from __future__ import annotations

from dataclasses import dataclass

from grayrelease.bucketing import BASIS_POINTS
from grayrelease.types import GuardSpec, GuardState


@dataclass(frozen=True, slots=True)
class VariantSample:
    """Outcomes of one variant in the window."""

    requests: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    state: GuardState
    treated: VariantSample
    control: VariantSample
    explanation: str


def _rate(sample: VariantSample) -> str:
    return f"{sample.error_rate * 100:.2f} % of {sample.requests}"


def guard_judge(
    *, guard: GuardSpec, treated: VariantSample, control: VariantSample
) -> GuardVerdict:
    """The verdict on these samples (see the module's docstring)."""
    seen = f"treated {_rate(treated)}, control {_rate(control)} failed"
    if treated.requests < guard.min_sample or control.requests < guard.min_sample:
        return GuardVerdict(
            GuardState.INSUFFICIENT,
            treated,
            control,
            f"not enough outcomes ({guard.min_sample} per variant needed): {seen}",
        )
    # Compared in whole numbers: errors_t/requests_t - errors_c/requests_c > margin,
    # multiplied out, so that a rate exactly at the margin never trips by rounding.
    excess = (
        treated.errors * control.requests * BASIS_POINTS
        - control.errors * treated.requests * BASIS_POINTS
    )
    tripped = excess > guard.margin_bp * treated.requests * control.requests
    margin = f"margin {guard.margin_bp / 100:.2f} points"
    if tripped:
        return GuardVerdict(GuardState.TRIPPED, treated, control, f"{seen}: beyond the {margin}")
    return GuardVerdict(GuardState.HEALTHY, treated, control, f"{seen}: within the {margin}")
