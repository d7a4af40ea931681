"""Find and load shipped or configured models by name.

A model is a folder ``<root>/<name>/`` holding ``metadata.json`` and its weights: a
``model.keras``, or a ``weights.npz`` of per-channel quantised kernels
(:mod:`ml.model.weight_pack`, for models whose float32 file would pass the repository's 20 MB
limit; the architecture is rebuilt from the metadata). Roots, in order:
``BRAINAI_MODEL_DIR`` (if set), then ``ml/weights/``. Only folders with weights and
metadata count, so the product lists only models that ship weights.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ml.errors import ModelNotFoundError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
WEIGHT_FILES = ("model.keras", "weights.npz")   # in order of preference


def weights_file(folder: Path) -> Path | None:
    """The weights file of a model folder, or None."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def model_roots() -> list[Path]:
    roots = []
    env = os.environ.get("BRAINAI_MODEL_DIR")
    if env:
        roots.append(Path(env))
    roots.append(WEIGHTS_DIR)
    return roots


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path  # folder
    metadata: dict

    @property
    def model_file(self) -> Path:
        """``model.keras``, or the packed ``weights.npz`` (same folder)."""
        return weights_file(self.path) or self.path / "model.keras"

    @property
    def version(self) -> str:
        """First 12 hex digits of the weights file's sha256."""
        return self.sha256[:12]

    @property
    def sha256(self) -> str:
        return _file_sha256(str(self.model_file), self.model_file.stat().st_mtime_ns)

    @property
    def accuracy(self) -> float:
        return float(self.metadata.get("validation", {}).get("accuracy", 0.0))


@lru_cache(maxsize=16)
def _file_sha256(path: str, _mtime: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_metadata(path: Path) -> dict:
    return _parse_json(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _parse_json(path: str, _mtime: int) -> dict:
    # metadata.json holds the guard's matrices (a few MB): parse once per version.
    return json.loads(Path(path).read_text())


def _scan() -> dict[str, ModelInfo]:
    found: dict[str, ModelInfo] = {}
    for root in model_roots():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            meta_file = folder / "metadata.json"
            if folder.name in found or not (meta_file.is_file() and weights_file(folder)):
                continue
            found[folder.name] = ModelInfo(folder.name, folder, _read_metadata(meta_file))
    return found


def available_models() -> list[str]:
    """Names of the models with weights, most accurate first."""
    infos = _scan()
    return sorted(infos, key=lambda n: (-infos[n].accuracy, n))


def default_model_name() -> str:
    """``BRAINAI_MODEL`` if set, else the most accurate model that ships."""
    env = os.environ.get("BRAINAI_MODEL")
    if env:
        return env
    names = available_models()
    if not names:
        raise ModelNotFoundError(
            "no trained model found; looked in " + ", ".join(str(r) for r in model_roots())
        )
    return names[0]


def get(name: str | None = None) -> ModelInfo:
    """Look a model up by name (None = default), or by a folder path.

    Raises:
        ModelNotFoundError: no such model.
    """
    name = name or default_model_name()
    path = Path(name)
    if path.is_dir() and weights_file(path) and (path / "metadata.json").is_file():
        return ModelInfo(path.name, path, _read_metadata(path / "metadata.json"))
    infos = _scan()
    if name not in infos:
        raise ModelNotFoundError(f"unknown model {name!r}; available: {sorted(infos) or 'none'}")
    return infos[name]


def load_keras(info: ModelInfo):
    """Load the Keras model of a ModelInfo (compile=False: inference only)."""
    import keras

    if info.model_file.name == "weights.npz":
        from ml.model import weight_pack
        from ml.model.builders import build_model

        model = build_model(info.metadata["arch"], int(info.metadata["input_size"]))
        weight_pack.load_into(model, info.model_file)
        return model
    return keras.models.load_model(info.model_file, compile=False)
