from django.apps import AppConfig


class SmartlistsConfig(AppConfig):
    name = "smartlists"
    verbose_name = "Smart lists"
    default_auto_field = "django.db.models.BigAutoField"
