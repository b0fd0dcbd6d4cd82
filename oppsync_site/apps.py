from django.apps import AppConfig


class OppsyncSiteConfig(AppConfig):
    name = "oppsync_site"
    verbose_name = "OppSync"
    default_auto_field = "django.db.models.BigAutoField"
