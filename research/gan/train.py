"""``python -m research.gan train``: train the class-conditional GAN on real MRI slices.

Writes into --out (default ``var/gan``):
  generator.keras        the EMA generator (what ``sample`` and ``evaluate`` load)
  gan.json               config, data provenance, per-epoch losses, timing
  samples/epoch_NNN.png  one row per class, fixed latents, after every epoch
  checkpoint/            full state (G, D, EMA, optimizers, RNG) for --resume

By default the GAN never sees the classifier's validation split (``ml.training.train``'s grouped
split with the same --val-fraction and --split-seed), so generated images cannot carry
validation slices into the augmentation ablation.
Training stops at --epochs, --max-steps or --time-budget-min, whichever comes first.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ml.data import dataset as mldata
from research.gan import diffaugment
from research.gan.models import GANConfig
from ml.labels import CLASSES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(mldata.default_data_dir()), help="one folder per class")
    p.add_argument("--out", default="var/gan")
    p.add_argument("--size", type=int, default=128, help="image side (power of two)")
    p.add_argument("--latent-dim", type=int, default=128)
    p.add_argument("--g-top", type=int, default=256, help="generator channels at 4-8 px")
    p.add_argument("--d-top", type=int, default=256, help="discriminator channel cap")
    p.add_argument("--min-channels", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations")
    p.add_argument("--time-budget-min", type=float, default=90.0, help="stop after this much training time")
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--no-diffaugment", action="store_true", help="ablate DiffAugment")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--val-fraction", type=float, default=0.1, help="as ml.training.train: the split to hold out")
    p.add_argument("--split-seed", type=int, default=1337, help="as ml.train --seed")
    p.add_argument("--include-validation", action="store_true",
                   help="also train on ml.training.train's validation split (leaks into the ablation)")
    p.add_argument("--limit", type=int, default=None, help="use at most N images (smoke runs; as ml.training.train)")
    p.add_argument("--cache-dir", default="var/cache")
    p.add_argument("--grid-cols", type=int, default=8)
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def load_real(args) -> tuple[np.ndarray, np.ndarray, dict]:
    """Real training slices as ml.training.train prepares them, minus its validation split.

    Returns:
        x (N, S, S) uint8, y (N,) int, and a provenance dict for gan.json.
    """
    items = mldata.subsample(mldata.scan(args.data), args.limit, args.split_seed)
    manifest = mldata.manifest_sha256(items, args.data)
    x = mldata.load_arrays(items, args.size, cache_dir=args.cache_dir, progress=not args.quiet)
    y = np.array([it.label for it in items])
    keep = np.arange(len(items))
    if not args.include_validation:
        keep, _ = mldata.grouped_split(items, args.val_fraction, args.split_seed)
    info = {
        "dir": str(args.data), "manifest_sha256": manifest, "n_images": len(items), "limit": args.limit,
        "n_used": int(len(keep)), "excluded_validation": not args.include_validation,
        "val_fraction": args.val_fraction, "split_seed": args.split_seed,
        "per_class": {c: int(n) for c, n in zip(CLASSES, np.bincount(y[keep], minlength=len(CLASSES)))},
    }
    return x[keep], y[keep], info


class Batches:
    """Seeded epoch shuffles, left-right flips, latents and DiffAugment draws (host side)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int, latent_dim: int, seed: int,
                 policy=diffaugment.POLICY):
        if len(x) < batch:
            raise ValueError(f"need at least batch_size={batch} images, received: {len(x)}")
        self.x, self.y, self.batch, self.latent_dim = x, y, batch, latent_dim
        self.policy = policy
        self.rng = np.random.default_rng(seed)
        self.steps_per_epoch = len(x) // batch

    def epoch(self):
        order = self.rng.permutation(len(self.x))
        for i in range(self.steps_per_epoch):
            yield self.make(order[i * self.batch:(i + 1) * self.batch])

    def make(self, idx: np.ndarray) -> dict:
        b, size = len(idx), self.x.shape[1]
        real = self.x[idx].astype(np.float32) / 127.5 - 1.0                     # (B, S, S) in [-1, 1]
        flip = self.rng.random(b) < 0.5
        real[flip] = real[flip, :, ::-1]
        return {
            "real": real[..., None],
            "labels": self.y[idx].astype(np.int32)[:, None],                     # (B, 1)
            "z": self.rng.standard_normal((b, self.latent_dim)).astype(np.float32),
            "aug_real": diffaugment.draw(self.rng, b, size, self.policy),
            "aug_fake": diffaugment.draw(self.rng, b, size, self.policy),
        }


def build_state(cfg: GANConfig, args):
    """Models, optimizers and the step object for one run."""
    import keras

    from research.gan.models import build_discriminator, build_generator
    from research.gan.steps import GANSteps

    keras.utils.set_random_seed(args.seed)
    g, d, g_ema = build_generator(cfg), build_discriminator(cfg), build_generator(cfg)
    g_ema.set_weights(g.get_weights())
    g_opt = keras.optimizers.Adam(args.lr_g, beta_1=args.beta1, beta_2=args.beta2, name="g_adam")
    d_opt = keras.optimizers.Adam(args.lr_d, beta_1=args.beta1, beta_2=args.beta2, name="d_adam")
    return GANSteps(g, d, g_ema, g_opt, d_opt, ema_decay=args.ema_decay)


def _groups(steps) -> dict:
    return {"g": steps.G.weights, "d": steps.D.weights, "ema": steps.G_ema.weights,
            "gopt": steps.g_opt.variables, "dopt": steps.d_opt.variables}


def save_checkpoint(steps, folder: Path, state: dict) -> None:
    """All variables to state.npz and counters + RNG to state.json, each written atomically."""
    steps.sync()
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}/{i:04d}": np.asarray(v.value) for k, vs in _groups(steps).items() for i, v in enumerate(vs)}
    tmp = folder / "state.tmp.npz"
    np.savez(tmp, **arrays)
    tmp.replace(folder / "state.npz")
    (folder / "state.tmp.json").write_text(json.dumps(state, indent=1))
    (folder / "state.tmp.json").replace(folder / "state.json")


def load_checkpoint(steps, folder: Path) -> dict:
    """Assign every variable from a checkpoint; returns the saved counters.

    Raises:
        FileNotFoundError: no checkpoint in folder.
        ValueError: the checkpoint's variables do not match these models.
    """
    if not (folder / "state.npz").is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {folder}")
    with np.load(folder / "state.npz") as npz:
        for k, vs in _groups(steps).items():
            names = sorted(n for n in npz.files if n.startswith(f"{k}/"))
            if len(names) != len(vs):
                raise ValueError(f"checkpoint has {len(names)} '{k}' variables, the model {len(vs)}: "
                                 "rebuild with the config in gan.json")
            for v, n in zip(vs, names):
                v.assign(npz[n])
    steps.reload()
    return json.loads((folder / "state.json").read_text())


def _write_outputs(steps, out: Path, meta: dict, epoch: int, grid_z: np.ndarray) -> None:
    from PIL import Image

    from research.gan.models import generator_size_bytes
    from research.gan.sample import grid_image

    steps.sync()
    (out / "samples").mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_image(steps.G_ema, grid_z)).save(out / "samples" / f"epoch_{epoch:03d}.png")
    tmp = out / "generator.tmp.keras"
    steps.G_ema.save(tmp)
    tmp.replace(out / "generator.keras")
    meta["generator"] = {"file": "generator.keras", "parameters": int(steps.G_ema.count_params()),
                         "weight_bytes": generator_size_bytes(steps.G_ema),
                         "file_bytes": os.path.getsize(out / "generator.keras")}
    (out / "gan.json").write_text(json.dumps(meta, indent=1))


def run(args) -> dict:
    """Train; returns the gan.json dict. See the module docstring for the outputs."""
    import keras
    from tqdm import tqdm

    cfg = GANConfig(size=args.size, latent_dim=args.latent_dim, g_top=args.g_top, d_top=args.d_top,
                    min_channels=args.min_channels).check()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume and (out / "checkpoint" / "state.npz").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or pick another --out")
    x, y, data_info = load_real(args)
    policy = () if args.no_diffaugment else diffaugment.POLICY
    batches = Batches(x, y, args.batch_size, cfg.latent_dim, args.seed, policy)
    steps = build_state(cfg, args)
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "history": []}
    if args.resume:
        state = load_checkpoint(steps, out / "checkpoint")
        batches.rng.bit_generator.state = state["rng"]
    grid_z = np.random.default_rng([args.seed, 999]).standard_normal((args.grid_cols, cfg.latent_dim)).astype(np.float32)
    meta = {
        "kind": "brainai-conditional-gan", "classes": list(CLASSES), "config": cfg.to_dict(),
        "data": data_info,
        "training": {k: getattr(args, k) for k in ("batch_size", "lr_g", "lr_d", "beta1", "beta2", "ema_decay",
                                                   "seed", "epochs", "max_steps", "time_budget_min")},
        "diffaugment": list(policy), "loss": "hinge", "backend": keras.backend.backend(),
        "keras": keras.__version__,
    }
    print(f"gan: {len(x)} real slices at {cfg.size}px ({data_info['per_class']}), "
          f"G {steps.G.count_params():,} / D {steps.D.count_params():,} parameters, "
          f"{batches.steps_per_epoch} steps/epoch, backend {meta['backend']}", flush=True)
    budget_s = args.time_budget_min * 60.0
    stop = False
    while state["epoch"] < args.epochs and not stop:
        epoch = state["epoch"] + 1
        sums, n = {}, 0
        t0 = time.time()
        bar = tqdm(batches.epoch(), total=batches.steps_per_epoch, desc=f"epoch {epoch}/{args.epochs}",
                   unit="step", disable=args.quiet)
        for batch in bar:
            m = steps.train_step(batch, state["step"])
            state["step"] += 1
            n += 1
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(d=f"{m['d_loss']:.3f}", g=f"{m['g_loss']:.3f}")
            spent = state["seconds"] + time.time() - t0
            if (args.max_steps and state["step"] >= args.max_steps) or spent >= budget_s:
                stop = True
                break
        bar.close()
        state["seconds"] += time.time() - t0
        state["epoch"] = epoch
        row = {"epoch": epoch, "steps": n, **{k: round(v / max(n, 1), 4) for k, v in sums.items()},
               "seconds": round(time.time() - t0, 1)}
        state["history"].append(row)
        print(f"epoch {epoch}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "epoch"), flush=True)
        state["rng"] = batches.rng.bit_generator.state
        meta["training"].update({"epochs_run": epoch, "steps_run": state["step"],
                                 "seconds": round(state["seconds"], 1), "stopped_early": stop})
        meta["history"] = state["history"]
        save_checkpoint(steps, out / "checkpoint", state)
        _write_outputs(steps, out, meta, epoch, grid_z)
    print(f"done: {state['step']} steps, {state['seconds'] / 60:.1f} min -> {out / 'generator.keras'}", flush=True)
    return meta


def main(args: argparse.Namespace) -> int:
    run(args)
    return 0
