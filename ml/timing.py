"""Seconds spent per named stage: the one timer the Analyzer, the pipeline and the tasks use.

    timer = StageTimer()
    with timer.stage("decode"):
        frames = read_frames(data)
    timer["decode"]                                # seconds, summed over every "decode" block

A :class:`StageTimer` is a plain ``dict`` of stage name -> seconds, so it logs, sums and
serialises like one.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Mapping


class StageTimer(dict):
    """Stage name -> seconds (float), added to by :meth:`stage` blocks and :meth:`add`."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block and add its wall-clock seconds to ``self[name]``.

        Args:
            name: the stage; a new name starts at 0.

        The time is added even when the block raises.
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - start

    def add(self, seconds: Mapping[str, float]) -> None:
        """Add another timer's (or any mapping's) seconds, stage by stage."""
        for name, s in seconds.items():
            self[name] = self.get(name, 0.0) + s
