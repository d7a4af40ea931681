"""Where media lives: MEDIA_ROOT on a filesystem, or a bucket on S3 (or an S3-compatible store).

``BRAINAI_S3_BUCKET`` set switches the default storage to django-storages' ``S3Storage``,
so several web and worker hosts share one media store without a shared filesystem.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
or the host's role), never from a setting of ours. The bucket stays private: media is
only ever read through the media gate (brainai_site.media), which streams it to clinic
users, so no object needs a public ACL or a signed URL.
"""
from __future__ import annotations

from typing import Mapping

from brainai_site.env import env_str, env_url

STATICFILES = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


def storages_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """Django's ``STORAGES`` for this environment.

    Args:
        environ: the variables to read (``os.environ`` when None).

    Returns:
        ``{"default": ..., "staticfiles": ...}``: FileSystemStorage on MEDIA_ROOT without
        ``BRAINAI_S3_BUCKET``; with it, S3Storage on that bucket, under
        ``BRAINAI_S3_PREFIX`` (default ``media``), at ``BRAINAI_S3_ENDPOINT_URL`` (MinIO,
        Ceph, a test server; empty = AWS) in ``BRAINAI_S3_REGION``.

    Raises:
        ImproperlyConfigured: an endpoint that is not an http(s) URL.
    """
    bucket = env_str("BRAINAI_S3_BUCKET", environ=environ)
    if not bucket:
        return {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}, "staticfiles": STATICFILES}
    endpoint = env_str("BRAINAI_S3_ENDPOINT_URL", environ=environ)
    options = {
        "bucket_name": bucket,
        "location": env_str("BRAINAI_S3_PREFIX", "media", environ=environ).strip("/"),
        "region_name": env_str("BRAINAI_S3_REGION", environ=environ),
        "endpoint_url": env_url("BRAINAI_S3_ENDPOINT_URL", "", environ=environ,
                                schemes=("http", "https")) if endpoint else None,
        # Names are content hashes and ids; a second file of one name gets a suffix, as on disk.
        "file_overwrite": False,
        "default_acl": None,  # the bucket's own (private) policy
    }
    return {"default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
            "staticfiles": STATICFILES}
