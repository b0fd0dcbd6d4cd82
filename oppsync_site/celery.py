"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace;
the beat schedule is `CELERY_BEAT_SCHEDULE` in `settings/base.py`."""

from __future__ import annotations

from celery import Celery

from .entrypoints import settings_module_required

# `manage.py` sets the development default before it imports this; a worker or beat started
# with `celery -A oppsync_site` must be told which settings to use.
settings_module_required("Celery (celery -A oppsync_site)")

app = Celery("oppsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["oppsync_site", "opportunities.sync", "campaigns"])
