"""Every portal page renders for a clinic user, says "Not for diagnostic use", and needs a login."""
import pytest
from django.urls import reverse

NOT_FOR_DIAGNOSTIC_USE = "not for diagnostic use"


def page_urls(report):
    return [
        reverse("scans:worklist"),
        reverse("scans:upload"),
        reverse("scans:study", args=[report.study_id]),
        reverse("scans:report", args=[report.pk]),
        reverse("scans:report-print", args=[report.pk]),
    ]


def test_every_page_renders_and_says_not_for_diagnostic_use(staff_client, report):
    for url in page_urls(report):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert NOT_FOR_DIAGNOSTIC_USE in response.content.decode().lower(), url


def test_it_requires_login_everywhere(client, report):
    for url in page_urls(report) + [reverse("scans:study-progress", args=[report.study_id])]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith("/accounts/login/"), url


def test_a_signed_in_user_without_a_role_is_refused(client, outsider, report):
    client.force_login(outsider)
    for url in page_urls(report):
        assert client.get(url).status_code == 403, url


def test_the_login_page_renders_with_the_disclaimer(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content
    assert NOT_FOR_DIAGNOSTIC_USE in response.content.decode().lower()


def test_a_user_signs_in_through_the_login_form(client, staff_user):
    response = client.post("/accounts/login/", {"username": "sam", "password": "pw-sam"})
    assert response.status_code == 302
    assert client.get(reverse("scans:worklist")).status_code == 200


def test_an_unknown_report_is_404(staff_client, db):
    assert staff_client.get(reverse("scans:report", args=[987654])).status_code == 404


@pytest.mark.parametrize("name", ["report", "report-print"])
def test_report_pages_show_every_slice_with_its_maps(staff_client, report, name):
    html = staff_client.get(reverse(f"scans:{name}", args=[report.pk])).content.decode()
    analysis = report.study.scans.get().analysis
    assert analysis.overlay.url in html and analysis.saliency.url in html
    assert report.study.scans.get().image.url in html
    assert "AI-generated, requires review" in html
    assert "template" in html  # the explanation's provider


def test_a_refusal_is_explained_on_a_portal_page(client, staff_user, report):
    client.force_login(staff_user)
    response = client.post(reverse("scans:report-sign", args=[report.pk]), {"findings": "", "impression": ""})
    assert response.status_code == 403
    html = response.content.decode()
    assert "only radiologists may" in html.lower() and "not for diagnostic use" in html.lower()
