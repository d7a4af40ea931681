"""The ``python -m ml.weight_pack`` command; the code is in ml/model/weight_pack.py."""
from ml.model.weight_pack import main

if __name__ == "__main__":
    raise SystemExit(main())
