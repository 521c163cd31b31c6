"""A task written with no monitoring code, as any app would write one."""

from celery import shared_task


@shared_task(name="tests.monitoring.sample_tasks.new_task")
def new_task(x: int) -> int:
    return x * 2
