"""python -m ml.data.sizes: the figures behind the series rules' matrix minimum."""
from __future__ import annotations

import json

from PIL import Image

from ml.data.sizes import main, smallest_sides, summary
from ml.labels import CLASSES


def _dataset(root, sizes):
    for i, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for j, (w, h) in enumerate(sizes):
            Image.new("L", (w + i, h), color=j * 10).save(root / cls / f"{j}.png")
    return root


def test_it_reports_the_smaller_side_per_class_and_overall(tmp_path):
    root = _dataset(tmp_path, [(300, 200), (100, 400)])
    sides = smallest_sides(root)
    assert sides["glioma"] == [200, 100] and sides["pituitary"] == [200, 103]
    table = summary(sides)
    assert table["all"] == {"images": 8, "min": 100, "median": 151.5, "max": 200, "below_128": 4}


def test_the_command_prints_one_json_line_last(tmp_path, capsys):
    root = _dataset(tmp_path, [(256, 256)])
    assert main([str(root), "--below", "300"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["all"]["below_300"] == 4
