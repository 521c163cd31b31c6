"""Celery tasks of gray release: thin wrappers over services.push, services.schedule,
services.windows and services.guard."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from grayrelease.services.guard import rollout_guards_check
from grayrelease.services.push import flag_push_run, flag_pushes_resume
from grayrelease.services.schedule import rollout_stages_advance
from grayrelease.services.windows import time_windows_announce


@shared_task(
    name="grayrelease.tasks.push_flag_change",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def push_flag_change(change_id: int) -> int:
    return flag_push_run(change_id=change_id)


@shared_task(name="grayrelease.tasks.advance_rollout_stages")
def advance_rollout_stages() -> list[str]:
    return rollout_stages_advance()


@shared_task(name="grayrelease.tasks.resume_flag_pushes")
def resume_flag_pushes() -> list[int]:
    return flag_pushes_resume(older_than_seconds=settings.GRAYRELEASE_PUSH_RESUME_SECONDS)


@shared_task(name="grayrelease.tasks.announce_time_windows")
def announce_time_windows() -> list[str]:
    return time_windows_announce()


@shared_task(name="grayrelease.tasks.check_rollout_guards")
def check_rollout_guards() -> list[str]:
    return [f"{check.key}: {check.state}" for check in rollout_guards_check()]
