"""The ``python -m ml.recalibrate`` command; the code is in ml/training/recalibrate.py."""
from ml.training.recalibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
