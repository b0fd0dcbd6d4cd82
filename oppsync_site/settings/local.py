"""Development settings: safe defaults so a fresh clone runs with nothing configured."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

from .base import *  # noqa: F403

# gunicorn (the `Procfile`'s web process) serves static files through whitenoise straight from
# the apps and `static/`, as `runserver` would; production collects them at start-up instead.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
