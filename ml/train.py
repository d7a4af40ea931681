"""The ``python -m ml.train`` command; the code is in ml/training/train.py."""
from ml.training.train import main

if __name__ == "__main__":
    raise SystemExit(main())
