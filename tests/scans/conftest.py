"""Fixtures of the portal tests: signed-in browsers, and reports as a clinic would see them.

The users come from tests/conftest.py; the code behind the reports is in tests/builders.py.
"""
from __future__ import annotations

import pytest

from scans import services
from tests import builders as b


@pytest.fixture
def report(staff_user):
    """One glioma MRI slice (the dataset's, else a phantom), analysed and explained: awaiting review."""
    return b.ready_report(staff_user, 1, mri_class="glioma")


@pytest.fixture
def signed_report(report, radiologist):
    services.update_review(report, radiologist, "Enhancing mass, left frontal.", "Likely high-grade glioma.")
    return services.sign_report(report, radiologist)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def radiologist_client(client, radiologist):
    client.force_login(radiologist)
    return client
