"""OppSync's admin site: the navigation a marketer expects, and pages of the apps' own.

People, Opportunities and Activities come first, then smart lists and campaigns; sync internals,
field definitions, settings and users sit under Administration, which only people with the matching
permissions see at all. A page that is no model's (the sync status) is registered by the app that
owns it (`admin_page_register`, as `admin.register` does for a model): this kernel module imports
no app. The navigation below names models by their app label, which is data, not an import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
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


@dataclass(frozen=True)
class AdminPage:
    """A page of the admin that is no model's changelist, listed first under Administration."""

    title: str  # its entry in the navigation
    object_name: str  # the entry's key among the models (what the navigation's templates see)
    permission: str  # to see the entry and to open any of its views (403 without it)
    # (route under /admin/, view, URL name in the `admin` namespace); the first is the entry's link.
    views: tuple[tuple[str, Callable[[HttpRequest], HttpResponse], str], ...]


class OppSyncAdminSite(admin.AdminSite):
    site_header = "OppSync"
    site_title = "OppSync"
    index_title = "Salesforce opportunities for marketing"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.pages: list[AdminPage] = []

    def page_register(self, page: AdminPage) -> None:
        """Add an app's page; call it from the app's admin module (autodiscovery imports it
        before the URLs are built)."""
        self.pages.append(page)

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
        custom: list[URLResolver | URLPattern] = [
            path(route, self.admin_view(_permission_required(page.permission, view)), name=name)
            for page in self.pages
            for route, view, name in page.views
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
        administration = [
            {
                "name": page.title,
                "object_name": page.object_name,
                "admin_url": reverse(f"admin:{page.views[0][2]}", current_app=self.name),
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            }
            for page in self.pages
            if request.user.has_perm(page.permission)
        ]
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


def _permission_required(
    permission: str, view: Callable[[HttpRequest], HttpResponse]
) -> Callable[[HttpRequest], HttpResponse]:
    def checked(request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return view(request)

    return checked


def admin_page_register(page: AdminPage) -> None:
    """Add a page to the project's admin site (`admin.site`, OppSyncAdminSite by admin_config.py)."""
    site = admin.site
    if not isinstance(site, OppSyncAdminSite):
        raise ImproperlyConfigured(
            f"{page.title!r} needs OppSyncAdminSite as the default admin site; INSTALLED_APPS must "
            "name oppsync_site.admin_config.OppSyncAdminConfig instead of django.contrib.admin."
        )
    site.page_register(page)
