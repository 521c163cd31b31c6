"""The daily DR drill as a Celery task (thin: drills.services.drill_run)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from drills.services import drill_run

# The drill runs for minutes: its own time limits, well beyond the block (the hard one
# kills without cleanup; the next drill then unblocks what an interrupted one left).
_DRILL_SOFT_LIMIT = int(
    settings.DR_DRILL_BASELINE_SECONDS
    + settings.DR_DRILL_BLOCK_SECONDS
    + 2 * settings.DR_DRILL_SEND_TIMEOUT_SECONDS
    + 300
)


@shared_task(
    name="drills.tasks.dr_drill",
    soft_time_limit=_DRILL_SOFT_LIMIT,
    time_limit=_DRILL_SOFT_LIMIT + 120,
)
def dr_drill() -> str:
    """The daily DR drill (minutes long: routed to the `default` queue, not `monitoring`)."""
    return str(drill_run(trigger="beat").outcome)
