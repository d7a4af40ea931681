"""The ``python -m ml.analyze`` command; the code is in ml/analysis/cli.py."""
from ml.analysis.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
