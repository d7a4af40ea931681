"""A tiny one-folder-per-class dataset on disk, for tests of ml.training.train and research.gan."""
import numpy as np
from PIL import Image

from ml.labels import CLASSES


def write_class_folder(root, n_per_class, seed):
    """Grey 'heads' whose class is where a bright blob sits: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.zeros((96, 96), np.float32)
            img[(yy - 48) ** 2 + (xx - 48) ** 2 < 38 ** 2] = 0.4
            cy, cx = 30 + 12 * k, 30 + rng.integers(0, 30)   # class = where the blob sits
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 1.0
            img += rng.normal(0, 0.03, img.shape)
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / name / f"{i}.png")
