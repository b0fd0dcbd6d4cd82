"""OppSync's admin site: the navigation a marketer expects, and the sync status page.

People, Opportunities and Activities come first (smart lists and campaigns will join them); sync
internals, field definitions, settings and users sit under Administration, which only people with
the matching permissions see at all.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path, reverse

# (app_label, model object_name) in the order each section lists them.
MARKETING = [
    ("people", "Person"),
    ("opportunities", "Opportunity"),
    ("opportunities", "Activity"),
    ("opportunities", "ContactRole"),
    ("smartlists", "SmartList"),
    ("campaigns", "Campaign"),
]
ADMINISTRATION = [
    ("oppsync_site", "SubscriptionSettings"),
    ("opportunities", "FieldDefinition"),
    ("opportunities", "SyncCycle"),
    ("opportunities", "SyncState"),
    ("oppsync_site", "WorkerHeartbeat"),
    ("auth", "User"),
    ("auth", "Group"),
    ("oppsync_site", "ApiToken"),
]
SYNC_STATUS_PERMISSION = "opportunities.view_synccycle"


class OppSyncAdminSite(admin.AdminSite):
    site_header = "OppSync"
    site_title = "OppSync"
    index_title = "Salesforce opportunities for marketing"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every admin, ours and Django's, takes only its own filters from a list URL."""
        from .admin_lookups import FiltersOnlyLookups

        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, FiltersOnlyLookups):
            admin_class = type(
                admin_class.__name__,
                (FiltersOnlyLookups, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from opportunities.admin_views import sync_status_panel_view, sync_status_view

        custom = [
            path("sync-status/", self.admin_view(sync_status_view), name="sync_status"),
            path("sync-status/panel/", self.admin_view(sync_status_panel_view), name="sync_status_panel"),
        ]
        return custom + super().get_urls()

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """Two sections instead of one per Django app; an app's own index page stays as Django
        builds it."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {(app["app_label"], model["object_name"]): model for app in apps for model in app["models"]}
        marketing = [models.pop(key) for key in MARKETING if key in models]
        administration = []
        if request.user.has_perm(SYNC_STATUS_PERMISSION):
            administration.append(
                {
                    "name": "Sync status",
                    "object_name": "SyncStatus",
                    "admin_url": reverse("admin:sync_status", current_app=self.name),
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            )
        administration += [models.pop(key) for key in ADMINISTRATION if key in models]
        administration += list(models.values())  # anything a later stage adds and forgets to place
        sections = [
            ("marketing", "Marketing", marketing),
            ("administration", "Administration", administration),
        ]
        return [
            {
                "name": name,
                "app_label": label,
                "app_url": reverse("admin:index", current_app=self.name) + f"#section-{label}",
                "has_module_perms": True,
                "models": section_models,
            }
            for label, name, section_models in sections
            if section_models
        ]
