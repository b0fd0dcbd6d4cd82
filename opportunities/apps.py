from django.apps import AppConfig


class OpportunitiesConfig(AppConfig):
    name = "opportunities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  # connects the totals refresh on single saves
