"""Create the first admin (once) and say how to sign in."""
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from scans import roles


class Command(BaseCommand):
    help = "Create a first superuser 'admin' (also radiologist) if no superuser exists; print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", default=str(settings.VAR_DIR / "admin-password.txt"))

    def handle(self, *args, username, password_file, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"An admin exists already (the first password was written to {password_file}).")
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        for name in roles.GROUPS:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        with open(password_file, "w") as fh:
            fh.write(password + "\n")
        self.stdout.write(self.style.SUCCESS(
            f"Created admin user '{username}' with password {password} (also saved to {password_file})."))
