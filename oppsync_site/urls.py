"""URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from .api_errors import json_not_found, json_server_error

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("oppsync_site.api_router")),
]

handler404 = json_not_found
handler500 = json_server_error
