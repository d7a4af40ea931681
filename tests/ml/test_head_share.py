"""python -m ml.evaluation.head_share: the figures behind the slice rule's head bound."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ml.evaluation.head_share import main, shares
from ml.labels import CLASSES


def test_a_head_counts_and_a_blank_frame_fills_it(tmp_path, capsys):
    yy, xx = np.mgrid[:200, :200]
    head = (((yy - 100) / 60) ** 2 + ((xx - 100) / 50) ** 2 < 1) * 200
    for cls in CLASSES:
        (tmp_path / cls).mkdir()
        Image.fromarray(head.astype("uint8")).save(tmp_path / cls / "head.png")
        Image.fromarray(np.zeros((200, 200), "uint8")).save(tmp_path / cls / "blank.png")
    s = shares(tmp_path, every=1)
    assert s.size == 8 and (s >= 0.99).sum() == 4 and 0.15 < s.min() < 0.5
    assert main([str(tmp_path), "--every", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["whole_frame_pct"] == 50.0
