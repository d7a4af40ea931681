"""Repository-wide pytest set-up: Django comes from pytest.ini (brainai_site.settings_test).

Keep TensorFlow quiet and single-threaded-friendly in tests; the suite runs on 2 cores.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
