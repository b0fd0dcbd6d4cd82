"""Test settings: fast password hashing, a file SQLite test database that other processes
(Celery workers started by integration tests) can open too."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-insecure-key")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-oppsync.sqlite3")}

# Processes the tests start (web, browser walks) serve the static files from the apps and
# `static/` directly, as `runserver` does in development; production collects them.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# In-process tests decide and deliver by calling the services; worker processes the tests start
# turn the hand-over on in their environment.
TRIGGERS_DISPATCH = env.bool("TRIGGERS_DISPATCH", default=False)
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=True)

# Tests log in with `client.login()`, which django-axes cannot see the address of; the login
# throttling test turns it on for itself.
AXES_ENABLED = env.bool("AXES_ENABLED", default=False)
