"""The roles of contract §2b as Django groups, and the permissions each one carries.

Plain data, applied by data migrations (`roles_apply`); a later stage that adds models (smart
lists, campaigns) adds their permissions here and ships a migration that calls `roles_apply` again.
"""

from __future__ import annotations

from typing import Any

ADMINISTRATORS = "Administrators"
MARKETERS = "Marketers"
VIEWERS = "Viewers"

_SYNCED_DATA_VIEW = [
    "people.view_person",
    "opportunities.view_opportunity",
    "opportunities.view_contactrole",
    "opportunities.view_activity",
    "opportunities.view_fielddefinition",
    "oppsync_site.view_subscriptionsettings",
]
_SMART_LISTS_VIEW = ["smartlists.view_smartlist"]
_SMART_LISTS_EDIT = ["smartlists.add_smartlist", "smartlists.change_smartlist", "smartlists.delete_smartlist"]
_CAMPAIGNS_VIEW = ["campaigns.view_campaign"]
_CAMPAIGNS_EDIT = ["campaigns.add_campaign", "campaigns.change_campaign", "campaigns.delete_campaign"]
_SYNC_HEALTH_VIEW = [
    "opportunities.view_syncstate",
    "opportunities.view_synccycle",
    "opportunities.view_syncobjectrun",
    "oppsync_site.view_workerheartbeat",
]
_USER_ADMINISTRATION = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.delete_user",
    "auth.view_group",
    "oppsync_site.view_apitoken",
    "oppsync_site.add_apitoken",
    "oppsync_site.delete_apitoken",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWERS: [*_SYNCED_DATA_VIEW, *_SMART_LISTS_VIEW, *_CAMPAIGNS_VIEW],
    MARKETERS: [
        *_SYNCED_DATA_VIEW,
        *_SMART_LISTS_VIEW,
        *_SMART_LISTS_EDIT,
        *_CAMPAIGNS_VIEW,
        *_CAMPAIGNS_EDIT,
    ],
    ADMINISTRATORS: [
        *_SYNCED_DATA_VIEW,
        *_SMART_LISTS_VIEW,
        *_SMART_LISTS_EDIT,
        *_CAMPAIGNS_VIEW,
        *_CAMPAIGNS_EDIT,
        *_SYNC_HEALTH_VIEW,
        *_USER_ADMINISTRATION,
        "oppsync_site.change_subscriptionsettings",
    ],
}


def roles_apply(apps: Any) -> None:
    """Create the groups and give each exactly its permissions (idempotent).

    Works with the historical `apps` of a migration. Permissions are normally created after
    migrations run, so they are created here first.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, codes in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            # A model a later migration creates has no permission yet at an earlier step; that
            # migration calls roles_apply again.
            if permission is not None:
                permissions.append(permission)
        group.permissions.set(permissions)
