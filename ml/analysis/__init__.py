"""The Analyzer the workers call (:mod:`ml.analysis.analyzer`) and the code of the
``python -m ml.analyze`` command (:mod:`ml.analysis.cli`)."""
