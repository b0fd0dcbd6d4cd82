"""The admin app's configuration, in its own module so `oppsync_site.apps` keeps one AppConfig."""

from django.contrib.admin.apps import AdminConfig


class OppSyncAdminConfig(AdminConfig):
    """Django's admin, with OppSync's site as the default: navigation for marketers first, the
    sync status page under Administration."""

    default_site = "oppsync_site.admin_site.OppSyncAdminSite"
