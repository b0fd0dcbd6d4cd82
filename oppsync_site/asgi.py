"""ASGI entry point. DJANGO_SETTINGS_MODULE must be set: no fallback to development."""

from django.core.asgi import get_asgi_application

from .entrypoints import settings_module_required

settings_module_required("the ASGI application (oppsync_site.asgi)")
application = get_asgi_application()
