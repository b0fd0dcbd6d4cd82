"""WSGI entry point (gunicorn). DJANGO_SETTINGS_MODULE must be set: no fallback to development."""

from django.core.wsgi import get_wsgi_application

from .entrypoints import settings_module_required

settings_module_required("the WSGI application (oppsync_site.wsgi)")
application = get_wsgi_application()
