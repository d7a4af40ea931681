"""Settings for the test suite: the real settings, with a private broker, media and DB.

The e2e fixtures (tests/e2e/conftest.py) start a redis-server on the port chosen here
and a Celery worker process that inherits these variables, so both sides agree.
"""
import atexit
import os
import shutil
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if "BRAINAI_TEST_REDIS_URL" not in os.environ:
    os.environ["BRAINAI_TEST_REDIS_URL"] = f"redis://127.0.0.1:{_free_port()}/0"
# Always the private server, never a Redis someone else uses.
os.environ["REDIS_URL"] = os.environ["BRAINAI_TEST_REDIS_URL"]
if "BRAINAI_MEDIA_ROOT" not in os.environ:
    os.environ["BRAINAI_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="brainai-test-media-")
    atexit.register(shutil.rmtree, os.environ["BRAINAI_MEDIA_ROOT"], ignore_errors=True)
# Tests never call an outside LLM; the ones that test the LLM path start a fake on loopback.
os.environ["BRAINAI_LLM_PROVIDER"] = os.environ.get("BRAINAI_TEST_LLM_PROVIDER", "template")

from brainai_site.settings import *  # noqa: E402,F401,F403
from brainai_site.settings import DATABASES, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file per run (not :memory:) so the worker process sees committed rows, and
    # concurrent runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-brainai-{os.getpid()}.sqlite3")}

    def _remove_wal_files(name=DATABASES["default"]["TEST"]["NAME"]):
        # pytest-django deletes the database file; SQLite's WAL side files stay behind.
        for suffix in ("-wal", "-shm"):
            if not os.path.exists(name) and os.path.exists(name + suffix):
                os.remove(name + suffix)

    atexit.register(_remove_wal_files)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
