"""Periodic housekeeping of accounts (scheduled by Celery beat)."""

from celery import shared_task

from accounts.services.contacts import friend_requests_expire
from accounts.tickets import tickets_purge_dead


@shared_task(name="accounts.tasks.expire_friend_requests")
def expire_friend_requests() -> int:
    return friend_requests_expire()


@shared_task(name="accounts.tasks.purge_dead_tickets")
def purge_dead_tickets() -> int:
    return tickets_purge_dead()
