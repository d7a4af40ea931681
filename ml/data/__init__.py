"""The dataset: folder scanning, the leak-free validation split and the decoded-array cache
(:mod:`ml.data.dataset`). Training and evaluation both read it."""
