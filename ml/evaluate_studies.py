"""The ``python -m ml.evaluate_studies DIR`` command; the code is in ml/evaluation/studies.py."""
from ml.evaluation.studies import main

if __name__ == "__main__":
    raise SystemExit(main())
