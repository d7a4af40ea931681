"""manage.py export_corrections --since DATE OUT: the slices radiologists corrected, for retraining."""
import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from scans.models import Via
from scans.services import ServiceError
from scans.services.corrections import MANIFEST, export_corrections


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since wants a date as YYYY-MM-DD, not {value!r}") from None


class Command(BaseCommand):
    help = ("Write the slices of signed reports whose radiologist disagreed with the AI (signed on or after "
            "--since) into OUT/<corrected label>/, de-identified, with OUT/manifest.csv: the folder layout "
            "python -m ml.train --data reads. Never starts a training.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, type=_date, help="first day (YYYY-MM-DD) of signatures")
        parser.add_argument("out", help="an empty or new folder")

    def handle(self, *args, **options):
        try:
            result = export_corrections(options["out"], options["since"], via=Via.COMMAND)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        per_class = ", ".join(f"{label} {n}" for label, n in sorted(result.per_class.items())) or "none"
        self.stdout.write(f"{result.slices} slices from {result.reports} reports ({per_class}); "
                          f"{result.unreadable} unreadable; manifest: {MANIFEST}")
