import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from brainai_site import backup


class Command(BaseCommand):
    help = "Back up the database and MEDIA_ROOT into a new folder (docs/operations.md, 'Backup and restore')."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="a folder that does not exist yet")

    def handle(self, *args, folder: Path, **options):
        try:
            manifest = backup.backup(folder)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps({"folder": str(folder), "vendor": manifest["vendor"],
                                      "media_files": len(manifest["media"]),
                                      "signed_versions": len(manifest["signed_versions"])}))
