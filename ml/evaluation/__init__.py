"""Scoring a model: the ``python -m ml.evaluate`` code, metrics, plots and the
faithfulness study of the explanation maps."""
