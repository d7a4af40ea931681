"""Media on object storage: with BRAINAI_S3_BUCKET set, an upload's files go to the bucket
and come back through the media gate, and nothing lands in MEDIA_ROOT.

The bucket is moto's S3 server on loopback (real HTTP, real boto3 and django-storages);
the storage comes from brainai_site.storage.storages_from_env, the function settings use.
"""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from brainai_site.storage import storages_from_env
from scans.models import Scan
from tests import builders as b
from tests.broker import free_port

BUCKET = "brainai-media"


@pytest.fixture
def bucket(monkeypatch):
    """A private bucket on moto's server; the default storage switched to it by our settings function."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "brainai-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "brainai-test-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    env = {"BRAINAI_S3_BUCKET": BUCKET, "BRAINAI_S3_ENDPOINT_URL": endpoint, "BRAINAI_S3_REGION": "eu-west-1"}
    try:
        with override_settings(STORAGES=storages_from_env(env)):
            yield client
    finally:
        server.stop()


def _object(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _served(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_an_upload_goes_to_the_bucket_and_comes_back_through_the_media_gate(bucket, staff_api, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)  # empty: other tests' uploads of the same slice are elsewhere
    data = b.brain_jpegs(1)[0]
    response = staff_api.post("/api/v1/uploads/", {"files": [b.upload("slice.jpg", data)], "patient_id": "S3-1"},
                              format="multipart")
    assert response.status_code == 202 and response.json()["accepted"] == 1
    scan = Scan.objects.get(study_id=response.json()["studies"][0]["id"])
    names = [scan.source.name, scan.image.name]
    assert all(names)

    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {f"media/{name}" for name in names} <= keys
    assert _object(bucket, f"media/{scan.source.name}") == data
    assert not any((Path(settings.MEDIA_ROOT) / name).exists() for name in names)

    source = staff_api.get(f"/media/{scan.source.name}")
    assert source.status_code == 200 and _served(source) == data
    preview = staff_api.get(f"/media/{scan.image.name}")
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    assert _served(preview) == _object(bucket, f"media/{scan.image.name}")

    assert APIClient().get(f"/media/{scan.source.name}").status_code in (302, 401)
    assert staff_api.get("/media/previews/not-there.png").status_code == 404


def test_without_a_bucket_media_stays_on_the_filesystem():
    storages = storages_from_env({})
    assert storages["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert "staticfiles" in storages


def test_a_bucket_takes_its_prefix_region_and_endpoint_from_the_environment():
    options = storages_from_env({"BRAINAI_S3_BUCKET": "b", "BRAINAI_S3_PREFIX": "/clinic-a/",
                                 "BRAINAI_S3_REGION": "eu-central-1",
                                 "BRAINAI_S3_ENDPOINT_URL": "https://minio.local:9000"})["default"]["OPTIONS"]
    assert options["location"] == "clinic-a" and options["region_name"] == "eu-central-1"
    assert options["endpoint_url"] == "https://minio.local:9000" and options["file_overwrite"] is False
    with pytest.raises(ImproperlyConfigured, match="BRAINAI_S3_ENDPOINT_URL"):
        storages_from_env({"BRAINAI_S3_BUCKET": "b", "BRAINAI_S3_ENDPOINT_URL": "ftp://x"})
