"""The ``python -m ml.evaluate`` command; the code is in ml/evaluation/evaluate.py."""
from ml.evaluation.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
