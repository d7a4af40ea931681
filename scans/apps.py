from django.apps import AppConfig


class ScansConfig(AppConfig):
    name = "scans"
    verbose_name = "BrainAI scans and reports"

    def ready(self):
        from scans import checks  # noqa: F401  (registers the system checks)
