"""The single Celery application; tasks are discovered in each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")

# Every task checks its deadline before it runs (wechat_core.admission.celery).
app = Celery("wechat_core", task_cls="wechat_core.admission.celery:DeadlineTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
