"""What every entry point but `manage.py` checks first: which settings to run with.

`manage.py` defaults to the development settings, which is right on a developer's machine.
Anything else (gunicorn through `wsgi.py` or `asgi.py`, Celery through `celery.py`) must be told;
falling back to development settings in production would run with DEBUG on and a known key.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def settings_module_required(entry_point: str) -> str:
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "").strip()
    if not module:
        raise ImproperlyConfigured(
            f"DJANGO_SETTINGS_MODULE is not set for {entry_point}. Set it to "
            "oppsync_site.settings.production (or oppsync_site.settings.local on a development machine)."
        )
    return module
