"""``python -m research.gan evaluate``: per-class quality and novelty of generated slices.

Measures, for every class, generated images against the real slices the GAN trained on
(``ml.training.train``'s training split; the validation split is the held-out reference):

- FID (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) and KID (Binkowski et al.
  2018, https://arxiv.org/abs/1801.01401) on the shipped classifier's penultimate
  features, not Inception's: ImageNet features know nothing of MRI. FID is biased by the
  sample size, so it is also reported at the held-out count (``fid_at_n_holdout``) next
  to the real-vs-real floor (held-out vs training, ``fid_holdout``). KID is unbiased.
- Classifier agreement: the share of generated images the classifier (calibrated
  softmax) assigns to the conditioned class; the held-out real accuracy is the reference.
- Copy check: RMS pixel distance (64 px) from each generated image to its nearest
  training image, against the same distance for held-out real images. A generator that
  copies puts far more than 5% of its images below the held-out 5th percentile.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml.labels import CLASSES


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (N, D) and (M, D), each N, M >= 2.

    Tr(sqrt(S_a S_b)) is the nuclear norm of A^T B / sqrt((N-1)(M-1)) for the centred
    sets A, B (the nonzero eigenvalues of S_a S_b are the squared singular values of
    A B^T), computed from the QR factors R_a R_b^T, at most D x D. Exact, real-valued for
    singular covariances (N < D is the usual case per class) and needs no scipy.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs >= 2 samples per set, received: {len(a)} and {len(b)}")
    ca, cb = a - a.mean(0), b - b.mean(0)
    ra, rb = np.linalg.qr(ca, mode="r"), np.linalg.qr(cb, mode="r")
    norm = np.sqrt((len(a) - 1) * (len(b) - 1))
    tr_cross = np.linalg.svd(ra @ rb.T, compute_uv=False).sum() / norm
    tr_a, tr_b = (ca ** 2).sum() / (len(a) - 1), (cb ** 2).sum() / (len(b) - 1)
    return float(max(((a.mean(0) - b.mean(0)) ** 2).sum() + tr_a + tr_b - 2 * tr_cross, 0.0))


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, n_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3, averaged over subsets.

    Returns:
        (mean, standard deviation) over the subsets.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs >= 2 samples per set, received: {len(a)} and {len(b)}")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def nearest_distances(query: np.ndarray, reference: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance from each query row to its nearest reference row, and that row's index.

    Args:
        query: (N, D) float; reference: (M, D) float.
    """
    q, r = np.asarray(query, np.float32), np.asarray(reference, np.float32)
    r_sq = (r ** 2).sum(1)
    dist, idx = np.empty(len(q), np.float32), np.empty(len(q), int)
    for i in range(0, len(q), batch):
        qb = q[i:i + batch]
        d2 = (qb ** 2).sum(1)[:, None] + r_sq[None, :] - 2 * qb @ r.T            # (b, M)
        j = d2.argmin(1)
        idx[i:i + batch] = j
        dist[i:i + batch] = np.sqrt(np.clip(d2[np.arange(len(qb)), j], 0, None) / q.shape[1])
    return dist, idx


def copy_check(gen_nn: np.ndarray, holdout_nn: np.ndarray, percentile: float = 5.0) -> dict:
    """Compare nearest-training distances of generated vs held-out real images."""
    thr = float(np.percentile(holdout_nn, percentile))
    return {
        "gen_nn_median": float(np.median(gen_nn)), "gen_nn_min": float(gen_nn.min()),
        "holdout_nn_median": float(np.median(holdout_nn)), "threshold": thr,
        "threshold_percentile": percentile,
        "share_gen_below": float(np.mean(gen_nn < thr)),
    }


def _small(x_uint8: np.ndarray, side: int = 64) -> np.ndarray:
    """(N, S, S) uint8 -> (N, side*side) float32 in [0, 1] for the copy check."""
    import cv2

    return np.stack([cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA) for x in x_uint8]
                    ).reshape(len(x_uint8), -1).astype(np.float32) / 255.0


def prepare_generated(imgs_uint8: np.ndarray, size: int) -> np.ndarray:
    """What ``ml.train --synthetic`` does to a generated PNG: read (/255) then prepare()."""
    from ml.model.preprocess import prepare

    return np.stack([np.round(prepare(im.astype(np.float32) / 255.0, size).x * 255.0).astype(np.uint8)
                     for im in imgs_uint8])


def _pairs_png(path: Path, gen: np.ndarray, train: np.ndarray, dist: np.ndarray, idx: np.ndarray, k: int = 8):
    """The k closest (generated | nearest training) pairs side by side."""
    from PIL import Image

    order = np.argsort(dist)[:k]
    rows = [np.concatenate([gen[i], np.full((gen.shape[1], 4), 255, np.uint8), train[idx[i]]], 1) for i in order]
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def evaluate(generator_path: str, classifier: str | None, data: str, per_class: int, seed: int,
             cache_dir: str | None, out: Path, progress: bool = True) -> dict:
    """Generate, featurise and measure; write ``out`` (JSON) and a pairs PNG beside it.

    Returns:
        The report dict (also written to ``out``).
    """
    from ml.model import calibration, registry
    from ml.data import dataset as mldata
    from research.gan.sample import load_generator, sample_class
    from ml.model.predict import logits_and_features_model, predict_logits_features

    generator, gmeta = load_generator(generator_path)
    trained_on = gmeta.get("data", {})
    info = registry.get(classifier)
    meta = info.metadata
    size, temperature = int(meta["input_size"]), float(meta.get("temperature", 1.0))
    dual = logits_and_features_model(registry.load_keras(info), meta["feature_layer"])

    split_seed = trained_on.get("split_seed", meta.get("seed", 1337))
    val_fraction = trained_on.get("val_fraction", meta.get("dataset", {}).get("val_fraction", 0.1))
    items = mldata.subsample(mldata.scan(data), trained_on.get("limit"), split_seed)
    tr_idx, ho_idx = mldata.grouped_split(items, val_fraction, split_seed)
    x_real = mldata.load_arrays(items, size, cache_dir=cache_dir, progress=progress)
    y_real = np.array([it.label for it in items])

    def feats(x_uint8):
        return predict_logits_features(dual, (x_uint8.astype(np.float32) / 255.0)[..., None])

    real_logits, real_feats = feats(x_real)
    real_small = _small(x_real[tr_idx])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"generator": str(generator_path), "classifier": info.name, "classifier_version": info.version,
              "feature_layer": meta["feature_layer"], "input_size": size, "per_class_requested": per_class,
              "seed": seed, "split": {"val_fraction": val_fraction, "split_seed": split_seed,
                                      "n_train": int(len(tr_idx)), "n_holdout": int(len(ho_idx))},
              "per_class": {}}
    all_gen_feats, all_gen_nn, all_ho_nn = [], [], []
    for k, name in enumerate(CLASSES):
        gen = prepare_generated(sample_class(generator, k, per_class, seed), size)   # (n, size, size)
        g_logits, g_feats = feats(gen)
        tr_k, ho_k = tr_idx[y_real[tr_idx] == k], ho_idx[y_real[ho_idx] == k]
        f_tr, f_ho = real_feats[tr_k], real_feats[ho_k]
        n_ho = len(ho_k)
        g_nn, g_nn_idx = nearest_distances(_small(gen), real_small)
        ho_nn, _ = nearest_distances(_small(x_real[ho_k]), real_small)
        p_gen = calibration.softmax(g_logits, temperature)
        p_ho = calibration.softmax(real_logits[ho_k], temperature)
        sub = np.random.default_rng(seed).choice(len(g_feats), min(n_ho, len(g_feats)), replace=False)
        kid, kid_sd = kernel_inception_distance(g_feats, f_tr, seed=seed)
        kid_ho, kid_ho_sd = kernel_inception_distance(f_ho, f_tr, seed=seed)
        report["per_class"][name] = {
            "n_generated": int(len(gen)), "n_train": int(len(tr_k)), "n_holdout": int(n_ho),
            "fid": frechet_distance(g_feats, f_tr),
            "fid_at_n_holdout": frechet_distance(g_feats[sub], f_tr),
            "fid_holdout": frechet_distance(f_ho, f_tr),
            "kid": kid, "kid_std": kid_sd, "kid_holdout": kid_ho, "kid_holdout_std": kid_ho_sd,
            "agreement": float(np.mean(p_gen.argmax(1) == k)),
            "agreement_mean_confidence": float(p_gen[:, k].mean()),
            "holdout_accuracy": float(np.mean(p_ho.argmax(1) == k)),
            "copy_check": copy_check(g_nn, ho_nn),
        }
        _pairs_png(out.with_name(f"{out.stem}_nearest_{name}.png"), gen, x_real[tr_idx], g_nn, g_nn_idx)
        all_gen_feats.append(g_feats)
        all_gen_nn.append(g_nn)
        all_ho_nn.append(ho_nn)
    pc = report["per_class"]
    report["all"] = {
        "fid": frechet_distance(np.concatenate(all_gen_feats), real_feats[tr_idx]),
        "fid_holdout": frechet_distance(real_feats[ho_idx], real_feats[tr_idx]),
        "agreement": float(np.mean([v["agreement"] for v in pc.values()])),
        "holdout_accuracy": float(np.mean([v["holdout_accuracy"] for v in pc.values()])),
        "copy_check": copy_check(np.concatenate(all_gen_nn), np.concatenate(all_ho_nn)),
    }
    out.write_text(json.dumps(report, indent=1))
    return report


def format_table(report: dict) -> str:
    """Markdown table of a report (the one docs/gan.md shows)."""
    head = ("| class | FID gen (n) | FID gen (n = holdout) | FID holdout (floor) | KID gen x1e3 | "
            "KID holdout x1e3 | agreement gen | accuracy holdout | NN gen median | NN holdout median | "
            "gen below holdout p5 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, v in report["per_class"].items():
        c = v["copy_check"]
        lines.append(
            f"| {name} | {v['fid']:.4g} ({v['n_generated']}) | {v['fid_at_n_holdout']:.4g} | {v['fid_holdout']:.4g} | "
            f"{1e3 * v['kid']:.3g} ± {1e3 * v['kid_std']:.2g} | {1e3 * v['kid_holdout']:.3g} ± {1e3 * v['kid_holdout_std']:.2g} | "
            f"{v['agreement']:.3f} | {v['holdout_accuracy']:.3f} | {c['gen_nn_median']:.4f} | "
            f"{c['holdout_nn_median']:.4f} | {c['share_gen_below']:.3f} |")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ml.data import dataset as mldata
    from research.gan.sample import DEFAULT_GENERATOR

    p.add_argument("--generator", default=DEFAULT_GENERATOR)
    p.add_argument("--classifier", default=None, help="registry name or model folder (default: the default model)")
    p.add_argument("--data", default=str(mldata.default_data_dir()), help="the real slices the GAN trained on")
    p.add_argument("--per-class", type=int, default=500, help="generated images per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default="var/cache")
    p.add_argument("--out", default="var/gan/quality.json")


def main(args: argparse.Namespace) -> int:
    report = evaluate(args.generator, args.classifier, args.data, args.per_class, args.seed,
                      args.cache_dir, Path(args.out))
    print(format_table(report))
    a = report["all"]
    print(f"all classes: FID {a['fid']:.4g} (holdout floor {a['fid_holdout']:.4g}), agreement "
          f"{a['agreement']:.3f} (holdout accuracy {a['holdout_accuracy']:.3f}), generated below holdout p5: "
          f"{a['copy_check']['share_gen_below']:.3f} (expect ~0.05)")
    print(f"-> {args.out}")
    return 0
