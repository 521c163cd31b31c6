"""The embedded mode's seams (`make run`: SQLite, in-memory channel layer, Celery
run in the calling thread), in one place.

Production runs Celery workers and beat; the embedded mode runs neither, so what
they would do happens here instead:

- `beat`: one thread of the ASGI process runs CELERY_BEAT_SCHEDULE
  (`embedded_beat_start`, called by wechat_core.asgi).
- `background`: work that would hold the user's request if run eagerly (an
  official account's webhook push and its retries) runs on a small pool of
  threads, its waits on the server's event loop (`retry_in_background`).

An app asks `tasks_run_inline()` before handing such work to Celery.
"""

from __future__ import annotations

from django.conf import settings

from wechat_core.embedded.background import retry_in_background
from wechat_core.embedded.beat import embedded_beat_start

__all__ = ["embedded_beat_start", "retry_in_background", "tasks_run_inline"]


def tasks_run_inline() -> bool:
    """True where Celery runs every task in the calling thread (the embedded mode)."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)
