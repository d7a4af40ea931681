from django.core.management.base import BaseCommand

from scans import services


class Command(BaseCommand):
    help = "Queue again every analysis, explanation and finalisation still waiting."

    def handle(self, *args, **options):
        counts = services.requeue_stalled()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
