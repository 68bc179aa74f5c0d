from django.apps import AppConfig


class UpgradeReleaseConfig(AppConfig):
    name = "tests.deploy.upgrade_release"
    label = "upgrade_release"
    default_auto_field = "django.db.models.BigAutoField"
