import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from brainai_site import backup


class Command(BaseCommand):
    help = ("Restore a backup into the empty database and MEDIA_ROOT the settings name, then check "
            "media hashes, signed snapshots and file references.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="a folder written by `manage.py backup`")

    def handle(self, *args, folder: Path, **options):
        try:
            summary = backup.restore(folder)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        if summary["missing_files"]:
            raise CommandError(f"restored, but {len(summary['missing_files'])} stored file names have no file")
        self.stdout.write(json.dumps(summary))
