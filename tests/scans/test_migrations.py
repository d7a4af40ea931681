"""The migrations match the models, and the role groups exist after migrating."""
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    call_command("makemigrations", "--check", "--dry-run", "--skip-checks", verbosity=0)


@pytest.mark.django_db
def test_the_role_groups_are_created_by_a_migration():
    assert set(Group.objects.values_list("name", flat=True)) >= {"staff", "radiologist"}
