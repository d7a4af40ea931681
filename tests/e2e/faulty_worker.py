"""The Celery app of the fault tests' workers: the real app (brainai_site.celery) and
real tasks, with two faults that can be switched on in each pool process, at the
point where a stored file is decoded (workers.pipeline.read_frames):

- ``BRAINAI_FAULT_DECODE_DELAY_S``: sleep that long before each decode, so a test can
  act mid-study;
- a stored file that contains ``tests.e2e.faults.POISON`` kills the pool process that
  decodes it (SIGKILL, as a crashing native decoder would).

``celery -A tests.e2e.faulty_worker worker ...``
"""
from __future__ import annotations

import os
import signal
import time

from celery.signals import worker_process_init

from brainai_site.celery import app  # noqa: F401  (celery -A finds the app here)

POISON = b"BRAINAI-TEST-POISON"


@worker_process_init.connect
def _install_faults(sender=None, **kwargs):
    from workers import pipeline

    real = pipeline.read_frames
    delay = float(os.environ.get("BRAINAI_FAULT_DECODE_DELAY_S", "0"))

    def read_frames(data, *args, **kw):
        if POISON in data:
            os.kill(os.getpid(), signal.SIGKILL)
        if delay:
            time.sleep(delay)
        return real(data, *args, **kw)

    pipeline.read_frames = read_frames
