"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace;
the beat schedule is `CELERY_BEAT_SCHEDULE` in `settings/base.py`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oppsync_site.settings.local")

app = Celery("oppsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["oppsync_site", "opportunities.sync", "campaigns"])
