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
# metadata.json fields that record how a model was made or measured and never change an
# answer. Every other field (temperature, tta, guard, guard_model, classes, input_size,
# preprocessing, target_layer, feature_layer, ...) is part of the version, so a field
# added later counts until someone lists it here.
DESCRIPTIVE_FIELDS = frozenset({"name", "dataset", "validation", "guard_evaluation", "own_guard_evaluation",
                                "training", "seed", "finalize_seconds", "parameters", "recalibrated"})


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
    def metadata_file(self) -> Path:
        return self.path / "metadata.json"

    @property
    def version(self) -> str:
        """First 12 hex digits of a sha256 over everything that changes an answer: the
        weights, every metadata field not in ``DESCRIPTIVE_FIELDS``, and the version of the
        model whose guard this one borrows (its weights compute the guard's features)."""
        h = hashlib.sha256(f"weights {self.sha256}\nmetadata {self.metadata_sha256}\n".encode())
        lender = self.lender
        if lender is not None:
            h.update(f"guard {lender.name} {lender.version}\n".encode())
        return h.hexdigest()[:12]

    @property
    def sha256(self) -> str:
        """sha256 of the weights file."""
        return _file_sha256(str(self.model_file), self.model_file.stat().st_mtime_ns)

    @property
    def metadata_sha256(self) -> str:
        """sha256 of the canonical JSON of the metadata fields that change an answer."""
        if self.metadata_file.is_file():
            return _metadata_sha256(str(self.metadata_file), self.metadata_file.stat().st_mtime_ns)
        return _output_metadata_sha256(self.metadata)

    @property
    def lender(self) -> "ModelInfo | None":
        """The model whose input guard this one borrows (``guard_model``), or None."""
        name = self.metadata.get("guard_model")
        return get(name) if name and name != self.name else None

    def watched_files(self) -> list[Path]:
        """The files whose change changes the version: weights and metadata, the lender's too."""
        files = [self.model_file, self.metadata_file]
        lender = self.lender
        return files + (lender.watched_files() if lender is not None else [])

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


def output_metadata(metadata: dict) -> dict:
    """The metadata fields that change an answer (all but ``DESCRIPTIVE_FIELDS``)."""
    return {k: v for k, v in metadata.items() if k not in DESCRIPTIVE_FIELDS}


def _output_metadata_sha256(metadata: dict) -> str:
    canonical = json.dumps(output_metadata(metadata), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=16)
def _metadata_sha256(path: str, _mtime: int) -> str:
    return _output_metadata_sha256(_parse_json(path, _mtime))


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
