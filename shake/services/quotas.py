"""Setting a round's lottery quotas (seed 003): a new whole configuration with a new
version (the row's id), which every access process loads and swaps in at once
(docs/shake.md "Quotas")."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from shake.exceptions import PlanInvalid, RoundUnknown
from shake.models import PrizeKind, QuotaConfig, Round
from shake.quotas import class_of


def quota_classes(round_: Round) -> set[str]:
    """The prize classes of a round: `cash` and one per item (kind and sponsor)."""
    return {
        class_of(kind, sponsor)
        for kind, sponsor in round_.prizes.values_list("kind", "sponsor_id").distinct()
    } | {PrizeKind.CASH.value}


def quota_set(
    *, round_id: int, per_second: Mapping[str, int], actor: AbstractBaseUser | None
) -> QuotaConfig:
    """Replace the round's quotas (prizes per second by class, all processes together)."""
    with transaction.atomic():
        round_ = Round.objects.select_for_update().filter(pk=round_id).first()
        if round_ is None:
            raise RoundUnknown("No such round.")
        known = quota_classes(round_)
        for name, limit in per_second.items():
            if name not in known:
                raise PlanInvalid(f"Unknown prize class {name!r} (this round has {sorted(known)}).")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise PlanInvalid(f"The quota of {name!r} is a whole number of prizes per second.")
        label = str(actor)[:150] if actor is not None and actor.pk is not None else "system"
        return QuotaConfig.objects.create(
            round=round_, per_second=dict(per_second), actor_label=label
        )
