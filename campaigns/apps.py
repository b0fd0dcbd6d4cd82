from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"
    verbose_name = "Trigger campaigns"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  # connects to the sync's activities_recorded signal
