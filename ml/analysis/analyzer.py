"""``ml.Analyzer``: the API the workers call. Images in, one :class:`SliceResult` each out.

    analyzer = Analyzer.load()                  # once per process; cached per model
    results = analyzer.analyze(frames)          # ndarrays (H, W) in [0, 1] or ml.io.frame.Frame

One compiled forward-and-backward pass over the batch (:class:`ml.explain.fused.FusedGraph`
under the TensorFlow backend, :class:`ml.explain.fused_jax.FusedGraphJax` under JAX) gives
the calibrated probabilities, the guard's features, Grad-CAM, Grad-CAM++ and the
guided-backprop gradients; there is no second forward pass for the maps. It follows the
test-time augmentation of :mod:`ml.model.predict` (image + mirror, logits and features averaged),
so its probabilities equal ``ml.model.predict.predict_logits_features`` up to float rounding.
Around the model: preprocessing, the input guard, mapping every map back onto the
original image, the region descriptor and a per-case faithfulness check, each timed.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ml.analysis.device import default_pixel_budget, use_bfloat16
from ml.io.frame import Frame
from ml.labels import CLASSES, NOT_BRAIN_MRI
from ml.model.calibration import softmax
from ml.model.preprocess import prepare
from ml.timing import StageTimer

log = logging.getLogger(__name__)

STAGES = ("preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness")


@dataclass
class SliceResult:
    """What the analysis says about one image.

    Attributes:
        label: a class name, or ``"not_brain_mri"`` when the input guard rejects.
        probabilities: class -> calibrated probability (metadata temperature), all classes.
        confidence: the top calibrated probability.
        in_distribution: the guard's verdict.
        guard: the guard's verdict as a dict (score, components, reasons).
        gradcam: (H, W) float32 in [0, 1] on the original image, for ``predicted_label``.
        gradcam_pp: the same for Grad-CAM++, or None when not asked for.
        saliency: (H, W) float32 in [0, 1], the seed's guided-backprop picture, or None.
        region: descriptor of the Grad-CAM map (:func:`ml.explain.region.describe_region`).
        regions: descriptors of every map computed, by method name.
        faithfulness: per-case deletion AUC of Grad-CAM against random maps
            (:class:`ml.explain.faithfulness.DeletionVsRandom`), or None when not asked for.
        timings: seconds per stage for this slice (each batch stage divided by batch size).
        predicted_label: the model's top class, even when the guard rejects the image.
    """

    label: str
    probabilities: dict[str, float]
    confidence: float
    in_distribution: bool
    guard: dict
    gradcam: np.ndarray
    gradcam_pp: np.ndarray | None
    saliency: np.ndarray | None
    region: dict
    faithfulness: dict | None
    timings: dict[str, float]
    predicted_label: str = ""
    regions: dict[str, dict] = field(default_factory=dict)


def _mtime(path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _phantom(size: int) -> np.ndarray:
    """A bright ellipse with a blob, for warming the graphs up without any file."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    head = ((yy - 0.5) / 0.42) ** 2 + ((xx - 0.5) / 0.36) ** 2 < 1.0
    blob = (yy - 0.4) ** 2 + (xx - 0.6) ** 2 < 0.01
    return (0.5 * head + 0.4 * blob).astype(np.float32)


def fused_graph_class():
    """The fused analysis for the Keras backend in use; imports only that backend's module.

    Returns:
        :class:`ml.explain.fused.FusedGraph` (TensorFlow) or
        :class:`ml.explain.fused_jax.FusedGraphJax` (JAX).

    Raises:
        NotImplementedError: any other Keras backend.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        from ml.explain.fused import FusedGraph

        return FusedGraph
    if backend == "jax":
        from ml.explain.fused_jax import FusedGraphJax

        return FusedGraphJax
    raise NotImplementedError(f"no fused analysis for the Keras backend {backend!r}; "
                              "set KERAS_BACKEND to tensorflow or jax")


class Analyzer:
    """A loaded model with everything needed to analyse slices.

    Build with :meth:`load` (registry name, cached per process) or directly from a Keras
    model and its metadata (tests, notebooks).

    Args:
        model: Keras model (N, S, S, 1) in [0, 1] -> (N, C) logits.
        metadata: the model's metadata.json dict; reads ``input_size``, ``classes``,
            ``target_layer``, ``feature_layer``, ``temperature``, ``tta``, ``guard`` (or
            ``guard_model``, a shipped model whose guard it borrows: :mod:`ml.guard.source`)
            and (optional) ``cam_score``.
        name: model name (default: metadata ``name``).
        version: model version (default: "unversioned").
        warmup: trace and run the compiled graphs once now.

    Raises:
        ValueError: metadata disagrees with the model, or a named layer is missing.
    """

    _cache: dict[tuple[str, str], "Analyzer"] = {}      # (folder, version) -> analyzer
    _by_name: dict[str | None, tuple] = {}              # name -> (analyzer, {watched file: mtime})
    _cache_lock = threading.Lock()

    def __init__(self, model, metadata: dict, *, name: str | None = None,
                 version: str | None = None, warmup: bool = True):
        from ml.model.builders import feature_layer, target_layer
        from ml.model.predict import uses_flip

        self._metadata = dict(metadata)
        size = int(model.inputs[0].shape[1])
        if int(metadata.get("input_size", size)) != size:
            raise ValueError(f"metadata input_size {metadata.get('input_size')} does not match the "
                             f"model's input side {size}")
        self._classes = tuple(metadata.get("classes", CLASSES))
        n_out = int(model.outputs[0].shape[-1])
        if len(self._classes) != n_out:
            raise ValueError(f"metadata lists {len(self._classes)} classes but the model has {n_out} outputs")
        arch = metadata.get("arch", "cnn")
        self._name = name or metadata.get("name") or model.name
        self._version = version or "unversioned"
        self.size = size
        self.temperature = float(metadata.get("temperature", 1.0))
        self.tta = uses_flip(metadata)
        graph_class = fused_graph_class()
        self.bfloat16 = graph_class.__name__ == "FusedGraphJax" and use_bfloat16()
        if self.bfloat16:
            from ml.explain.fused_jax import in_bfloat16

            model = in_bfloat16(model)       # maps within BF16_TOLERANCE of float32
        self.graph = graph_class(model, metadata.get("target_layer") or target_layer(arch),
                                 metadata.get("feature_layer") or feature_layer(arch), tta=self.tta,
                                 cam_score=metadata.get("cam_score", "logit"), temperature=self.temperature)
        from ml.guard.source import for_metadata

        self.guard_source = for_metadata(metadata, self._name)      # own guard, or a lender's
        self.guard = self.guard_source.guard if self.guard_source else None
        if self.guard is None:
            log.warning("model %s has no input guard in its metadata: every image is accepted", self._name)
        if warmup:
            self.warmup()

    # ---- construction --------------------------------------------------------------
    @classmethod
    def load(cls, name: str | None = None, *, warmup: bool = True) -> "Analyzer":
        """The analyzer for a registered model (None: the default), loaded once per process.

        The cache key is the model folder and its version (the weights and every metadata
        field that changes an answer, ``ml.model.registry.ModelInfo.version``), so new
        weights or a recalibrated ``metadata.json`` on disk load the new model on the
        next call.

        Raises:
            ml.errors.ModelNotFoundError: no such model.
        """
        from ml.model import registry

        with cls._cache_lock:
            # Fast path: the same name asked again, weights and metadata untouched (no
            # registry scan, no metadata parse: metadata.json holds the guard's matrices).
            hit = cls._by_name.get(name)
            if hit is not None and all(_mtime(path) == mtime for path, mtime in hit[1].items()):
                return hit[0]
            info = registry.get(name)
            key = (str(info.path.resolve()), info.version)
            if key not in cls._cache:
                t0 = time.perf_counter()
                model = registry.load_keras(info)
                cls._cache[key] = cls(model, info.metadata, name=info.name, version=info.version,
                                      warmup=warmup)
                log.info("loaded model %s %s in %.1f s", info.name, info.version, time.perf_counter() - t0)
            cls._by_name[name] = (cls._cache[key], {path: _mtime(path) for path in info.watched_files()})
            return cls._cache[key]

    def warmup(self) -> None:
        """Trace the compiled graphs (with and without saliency) and run them once."""
        img = _phantom(self.size)
        self.analyze([img], saliency=True)
        self.analyze([img], saliency=False, gradcam_pp=False, faithfulness=False)

    # ---- properties ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        """The registry's version: 12 hex digits over the weights and the metadata that changes an answer."""
        return self._version

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    @property
    def metadata(self) -> dict:
        return self._metadata

    # ---- analysis ------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(N, C) logits -> calibrated probabilities (metadata temperature)."""
        return softmax(logits, self.temperature)

    def scored_probabilities(self, x: np.ndarray) -> np.ndarray:
        """The faithfulness metric's model: (M, S, S, 1) prepared inputs -> calibrated
        probabilities as the product computes them, so with the model's test-time flip
        (logits of the image and its mirror averaged) when it has one. Grad-CAM explains
        that prediction (the mean of the two halves' CAMs), so deletion must follow it too."""
        from ml.model.predict import merge_flips, with_flips

        x = np.asarray(x, np.float32)
        if not self.tta:
            return self.probabilities(self.graph.forward(x))
        both = self.graph.forward(np.asarray(with_flips(x)))              # one batched call
        return self.probabilities(np.asarray(merge_flips(both)))

    def analyze(self, images, *, saliency: bool = True, orientations: Sequence | None = None,
                gradcam_pp: bool = True, faithfulness: bool = True,
                batch_size: int = 32) -> list[SliceResult]:
        """Classify and explain a batch of slices.

        Args:
            images: a sequence of (H, W) float arrays in [0, 1] or :class:`ml.io.frame.Frame`
                (a single one is accepted too). Sizes may differ.
            saliency: compute the guided-backprop saliency map (about one more pass).
            orientations: per image, a DICOM ImageOrientationPatient (6 floats) or None;
                by default a Frame's ``meta["image_orientation_patient"]`` is used.
            gradcam_pp: also map Grad-CAM++ back onto the original.
            faithfulness: per-case deletion check of Grad-CAM against random maps.
            batch_size: images per compiled call (the graph sees twice as many with TTA).

        Returns:
            One :class:`SliceResult` per image, in order.

        Raises:
            ValueError: an image is not 2-D, is empty, or holds non-finite values;
                orientations has the wrong length.
        """
        items = self._as_items(images)
        if orientations is not None and len(orientations) != len(items):
            raise ValueError(f"orientations has {len(orientations)} entries for {len(items)} images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, received: {batch_size}")
        results: list[SliceResult] = []
        batch_size = self._batch_cap(batch_size)
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            orient = [orientations[start + i] if orientations is not None
                      else meta.get("image_orientation_patient") for i, (_px, meta) in enumerate(chunk)]
            results.extend(self._analyze_batch(chunk, orient, saliency, gradcam_pp, faithfulness))
        return results

    def _batch_cap(self, batch_size: int) -> int:
        """Slices per compiled call: at most ``BRAINAI_MAX_BATCH_PIXELS`` input pixels in
        the graph, the mirrored copies of the flip TTA included.

        The default (:func:`default_pixel_budget`) on the CPU, 64 × 160², is 32 slices of
        160 px with the flip (`cnn`) and 18 of 299 px without it (`xception`): the backward
        pass to the pixels keeps every activation of the batch, and Xception at 299 px with
        64 images in the graph needs more than 24 GB. On an accelerator it grows with the
        device's memory.
        """
        from ml.model.predict import batch_for

        budget = int(os.environ.get("BRAINAI_MAX_BATCH_PIXELS") or default_pixel_budget())
        return max(1, min(batch_size, batch_for(self.size, budget // (2 if self.tta else 1))))

    @staticmethod
    def _as_items(images) -> list[tuple[np.ndarray, dict]]:
        if isinstance(images, Frame) or (isinstance(images, np.ndarray) and images.ndim == 2):
            images = [images]
        items = []
        for i, im in enumerate(images):
            pixels, meta = (im.pixels, dict(im.meta)) if isinstance(im, Frame) else (im, {})
            pixels = np.asarray(pixels, np.float32)
            if pixels.ndim != 2 or pixels.size == 0:
                raise ValueError(f"image {i}: expected a non-empty 2-D (H, W) array, received shape {pixels.shape}")
            if not np.all(np.isfinite(pixels)):
                raise ValueError(f"image {i}: holds NaN or infinite values")
            items.append((pixels, meta))
        return items

    def _analyze_batch(self, chunk, orientations, saliency, gradcam_pp, faithfulness) -> list[SliceResult]:
        from ml.explain.base_cam import to_original
        from ml.explain.region import describe_region, head_mask
        from ml.explain.saliency import saliency_map

        n = len(chunk)
        timer = StageTimer.fromkeys(STAGES, 0.0)
        with timer.stage("preprocess"):
            prepared = [prepare(px, self.size) for px, _ in chunk]
            x = np.stack([p.x for p in prepared])[..., None]            # (N, S, S, 1)

        with timer.stage("model"):
            out = self.graph(x, saliency=saliency)
            probs = self.probabilities(out["logits"])                    # (N, C)

        with timer.stage("guard"):
            if self.guard_source is not None and self.guard_source.borrowed:
                gx, glogits, gfeats = self.guard_source.features([px for px, _ in chunk])
                verdicts = [self._assess(chunk[i], gx[i], gfeats[i], glogits[i]) for i in range(n)]
            else:
                verdicts = [self._assess(chunk[i], prepared[i].x, out["features"][i], out["logits"][i])
                            for i in range(n)]

        with timer.stage("maps"):
            maps: dict[str, list] = {"gradcam": [to_original(out["gradcam"][i], prepared[i])
                                                 for i in range(n)]}
            if gradcam_pp:
                maps["gradcam_pp"] = [to_original(out["gradcam_pp"][i], prepared[i]) for i in range(n)]
        with timer.stage("saliency"):
            if saliency:
                maps["saliency"] = [to_original(saliency_map(out["input_gradients"][i]), prepared[i])
                                    for i in range(n)]

        with timer.stage("region"):
            regions = []
            for i in range(n):
                mask = head_mask(chunk[i][0])
                regions.append({k: describe_region(v[i], chunk[i][0], orientations[i], mask=mask)
                                for k, v in maps.items()})

        with timer.stage("faithfulness"):
            faith = self._faithfulness(x, out) if faithfulness else [None] * n
        per_slice = {k: v / n for k, v in timer.items()}
        per_slice["total"] = sum(per_slice.values())

        results = []
        for i in range(n):
            predicted = self._classes[int(out["classes"][i])]
            verdict = verdicts[i]
            results.append(SliceResult(
                label=predicted if verdict["in_distribution"] else NOT_BRAIN_MRI,
                probabilities={c: float(p) for c, p in zip(self._classes, probs[i])},
                confidence=float(probs[i].max()),
                in_distribution=bool(verdict["in_distribution"]),
                guard=verdict,
                gradcam=maps["gradcam"][i],
                gradcam_pp=maps["gradcam_pp"][i] if gradcam_pp else None,
                saliency=maps["saliency"][i] if saliency else None,
                region=regions[i]["gradcam"],
                faithfulness=faith[i],
                timings=dict(per_slice),
                predicted_label=predicted,
                regions=regions[i],
            ))
        return results

    def _faithfulness(self, x: np.ndarray, out: dict) -> list[dict]:
        from ml.explain.faithfulness import DeletionVsRandom

        cls = out["classes"]
        base = self.probabilities(out["logits"])[np.arange(len(x)), cls]        # TTA-merged, as scored
        return DeletionVsRandom()(x, out["gradcam"], cls, self.scored_probabilities, base)

    def check_faithfulness(self, images, *, batch_size: int = 32) -> list[dict]:
        """The per-case faithfulness check alone, for slices analysed without it.

        The check costs about 9 forward passes per slice (4 times the analysis itself);
        a worker can analyse a whole study with ``faithfulness=False`` and run this on
        the few key slices the report shows. Same values as ``analyze`` would give.

        Args:
            images: as for :meth:`analyze`.

        Returns:
            One dict per image (see :class:`ml.explain.faithfulness.DeletionVsRandom`).
        """
        items = self._as_items(images)
        out: list[dict] = []
        batch_size = self._batch_cap(batch_size)
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            x = np.stack([prepare(px, self.size).x for px, _ in chunk])[..., None]
            out.extend(self._faithfulness(x, self.graph(x, saliency=False)))
        return out

    def _assess(self, item, x, features, logits) -> dict:
        pixels, meta = item
        if self.guard is None:
            return {"in_distribution": True, "score": 0.0, "components": {},
                    "reasons": ["no input guard configured for this model"]}
        return self.guard.assess(pixels, x, features, logits, meta).as_dict()

    def maps_for_inputs(self, x: np.ndarray, targets=None, *, saliency: bool = True) -> dict[str, Any]:
        """Maps on the model-input grid for prepared inputs (for evaluation).

        Args:
            x: (N, S, S) or (N, S, S, 1) prepared inputs.
            targets: (N,) class indices to explain, or None for the predicted class.

        Returns:
            The fused pass's arrays plus ``probabilities`` (N, C) and, with saliency,
            ``saliency`` (N, S, S) (the seed's pipeline before mapping back).
        """
        from ml.explain.saliency import saliency_map

        x = np.asarray(x, np.float32)
        x = x[..., None] if x.ndim == 3 else x
        out = self.graph(x, targets, saliency=saliency)
        out["probabilities"] = self.probabilities(out["logits"])
        if saliency:
            maps = [saliency_map(g) for g in out["input_gradients"]]
            out["saliency"] = np.stack(maps) if maps else np.zeros((0,) + x.shape[1:3], np.float32)
        return out
