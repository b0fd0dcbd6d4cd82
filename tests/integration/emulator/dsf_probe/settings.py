"""Settings of the django-salesforce probe; the emulator's address and credentials come from the
environment the conformance test sets (PROBE_*), its CA from REQUESTS_CA_BUNDLE."""

import os

SECRET_KEY = "django-salesforce-probe"  # a throwaway project, never served
INSTALLED_APPS = ["salesforce", "tests.integration.emulator.dsf_probe"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "salesforce": {
        "ENGINE": "salesforce.backend",
        "HOST": os.environ.get("PROBE_HOST", ""),
        "CONSUMER_KEY": os.environ.get("PROBE_CLIENT_ID", ""),
        "CONSUMER_SECRET": os.environ.get("PROBE_CLIENT_SECRET", ""),
        "USER": os.environ.get("PROBE_USER", ""),
        # The username-password flow: the password followed by the security token.
        "PASSWORD": os.environ.get("PROBE_PASSWORD", ""),
    },
}
DATABASE_ROUTERS = ["salesforce.router.ModelRouter"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
