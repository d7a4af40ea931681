"""The conditional GAN: shapes, learning, deterministic sampling, ml.training.train reading its
folder, the quality measures and the ablation plan, all on tiny sizes (CPU, seconds)."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from research.gan import diffaugment
from research.gan.__main__ import main as gan_main
from research.gan.models import GANConfig, build_discriminator, build_generator, generator_size_bytes
from ml.labels import CLASSES
from tests.ml.folders import write_class_folder

TINY = ["--size", "32", "--latent-dim", "16", "--g-top", "32", "--d-top", "32"]
SPLIT = ["--val-fraction", "0.25", "--split-seed", "7", "--limit", "40"]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    write_class_folder(root, 12, seed=0)
    return root


@pytest.fixture(scope="module")
def gan_run(real, tmp_path_factory):
    """One epoch of `python -m research.gan train` on the tiny folder, then a resumed second epoch."""
    out = tmp_path_factory.mktemp("gan")
    common = ["train", "--data", str(real), "--out", str(out), "--batch-size", "8", "--quiet",
              "--cache-dir", str(out / "cache"), *TINY, *SPLIT]
    assert gan_main([*common, "--epochs", "1"]) == 0
    assert gan_main([*common, "--epochs", "2", "--resume"]) == 0
    return out


@pytest.fixture(scope="module")
def synthetic(gan_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    assert gan_main(["sample", "--generator", str(gan_run / "generator.keras"), "--per-class", "6",
                     "--out", str(out), "--seed", "3"]) == 0
    return out


def _tiny_state(seed=0):
    from research.gan.train import build_state

    args = argparse.Namespace(seed=seed, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, ema_decay=0.999)
    return build_state(GANConfig(size=32, latent_dim=16, g_top=32, d_top=32), args)


def _blob_batches(latent_dim=16):
    from research.gan.train import Batches

    yy, xx = np.mgrid[0:32, 0:32]
    x = np.stack([((yy - 16) ** 2 + (xx - 16) ** 2 < (6 + k) ** 2) * 200 for k in range(16)]).astype(np.uint8)
    return Batches(x, np.arange(16) % 4, 8, latent_dim, seed=0)


def test_the_generator_and_discriminator_have_the_promised_shapes():
    cfg = GANConfig(size=32, latent_dim=16, g_top=32, d_top=32)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    labels = np.array([[0], [2], [3]], np.int32)
    img = np.asarray(g([z, labels], training=False))
    assert img.shape == (3, 32, 32, 1) and img.min() >= -1 and img.max() <= 1
    assert np.asarray(d([img, labels], training=False)).shape == (3, 1)
    full = build_generator(GANConfig())
    assert tuple(full.output.shape) == (None, 128, 128, 1)
    assert tuple(build_discriminator(GANConfig()).output.shape) == (None, 1)
    names = [layer.name for layer in full.layers]
    assert len(names) == len(set(names)) and "image" in names


def test_the_128px_generator_is_small_enough_to_ship(tmp_path):
    g = build_generator(GANConfig(size=128))
    g.save(tmp_path / "g.keras")
    assert generator_size_bytes(g) < 20e6
    assert (tmp_path / "g.keras").stat().st_size < 20e6


def test_the_config_says_what_it_received():
    with pytest.raises(ValueError, match="received: 100"):
        build_generator(GANConfig(size=100))


def test_spectral_norm_brings_the_top_singular_value_to_one():
    from research.gan.spectral_norm import SNDense, spectral_normalize

    layer = SNDense(8, name="sn")
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    for _ in range(30):                       # power iterations advance only in training
        layer(x, training=True)
    w, _ = spectral_normalize(layer.kernel, layer.u.value)
    assert np.linalg.svd(np.asarray(w), compute_uv=False)[0] == pytest.approx(1.0, abs=0.02)
    assert np.linalg.svd(np.asarray(layer.kernel), compute_uv=False)[0] != pytest.approx(1.0, abs=0.02)


def test_diffaugment_moves_pixels_and_fills_the_background():
    x = -np.ones((1, 16, 16, 1), np.float32)
    x[0, 5, 5, 0] = 1.0
    ident = diffaugment.draw(np.random.default_rng(0), 1, 16, policy=())
    assert np.allclose(np.asarray(diffaugment.augment(x, ident)), x)
    p = dict(ident, shift_y=np.array([2.0], np.float32), shift_x=np.array([-3.0], np.float32))
    moved = np.asarray(diffaugment.augment(x, p))[0, :, :, 0]
    assert moved[7, 2] == pytest.approx(1.0) and np.sum(moved > -1) == 1
    p = dict(ident, cut_y=np.array([5.0], np.float32), cut_x=np.array([5.0], np.float32),
             cut_half=np.array([2.0], np.float32))
    assert np.asarray(diffaugment.augment(x, p))[0, 5, 5, 0] == pytest.approx(-1.0)


def test_a_few_steps_lower_the_losses_on_a_fixed_batch():
    steps, batches = _tiny_state(), _blob_batches()
    fixed = batches.make(np.arange(8))
    before = steps.d_loss(fixed)               # ~2 at init: logits near 0
    rng = np.random.default_rng(1)
    for i in range(15):
        steps.train_step(batches.make(rng.choice(16, 8, replace=False)), i)
    assert steps.d_loss(fixed) < before - 0.2
    # Against the now fixed discriminator, generator steps lower the generator loss.
    losses = [steps.g_step(fixed) for _ in range(8)]   # each is the loss before that update
    assert losses[-1] < losses[0] - 0.1


def test_train_writes_generator_grids_metadata_and_resumes(gan_run):
    meta = json.loads((gan_run / "gan.json").read_text())
    assert (gan_run / "generator.keras").is_file()
    assert (gan_run / "samples" / "epoch_001.png").is_file() and (gan_run / "samples" / "epoch_002.png").is_file()
    grid = np.asarray(Image.open(gan_run / "samples" / "epoch_002.png"))
    assert grid.shape[0] == 4 * 32                        # one row per class
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    assert meta["training"]["steps_run"] == 2 * meta["history"][0]["steps"]
    assert meta["data"]["excluded_validation"] and meta["data"]["n_used"] == 30   # 40 - 25% held out


def test_a_new_run_refuses_to_overwrite_an_old_one(gan_run, real):
    with pytest.raises(FileExistsError, match="--resume"):
        gan_main(["train", "--data", str(real), "--out", str(gan_run), "--quiet", *TINY, *SPLIT])


def test_sampling_is_deterministic_for_a_seed(gan_run, tmp_path):
    from research.gan.sample import write_folder

    g = gan_run / "generator.keras"
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_folder(g, tmp_path / name, per_class=3, seed=seed, progress=False)
    def pixels(name):
        files = sorted((tmp_path / name).rglob("*.png"))
        return [f.parent.name for f in files], [np.asarray(Image.open(f)) for f in files]

    (cls_a, a), (_, b), (_, c) = pixels("a"), pixels("b"), pixels("c")
    assert len(a) == 3 * len(CLASSES) and set(cls_a) == set(CLASSES)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    with pytest.raises(FileExistsError):
        write_folder(g, tmp_path / "a", per_class=3, seed=5, progress=False)


@pytest.fixture(scope="module")
def classifier(real, synthetic, tmp_path_factory):
    from ml.training.train import main as train_main

    out = tmp_path_factory.mktemp("clf")
    rc = train_main(["--data", str(real), "--out", str(out), "--epochs", "1", "--input-size", "64",
                     "--batch-size", "8", "--val-fraction", "0.25", "--seed", "7", "--limit", "40",
                     "--cache-dir", str(out / "cache"), "--synthetic", str(synthetic), "--synthetic-ratio", "0.5"])
    assert rc == 0
    return out


def test_ml_train_reads_the_folder_ml_gan_sample_writes(classifier, synthetic):
    meta = json.loads((classifier / "metadata.json").read_text())
    assert meta["dataset"]["n_train"] == 30
    assert meta["training"]["n_synthetic"] == 15 == round(0.5 * meta["dataset"]["n_train"])
    prov = json.loads((synthetic / "gan_samples.json").read_text())
    assert prov["trained_on"]["split_seed"] == 7 and prov["trained_on"]["excluded_validation"]


def test_evaluate_reports_fid_kid_agreement_and_the_copy_check(gan_run, classifier, real, tmp_path):
    from research.gan.quality import evaluate, format_table

    out = tmp_path / "quality.json"
    report = evaluate(str(gan_run / "generator.keras"), str(classifier), str(real), per_class=6, seed=0,
                      cache_dir=str(tmp_path / "c"), out=out, progress=False)
    assert json.loads(out.read_text())["split"] == {"val_fraction": 0.25, "split_seed": 7,
                                                    "n_train": 30, "n_holdout": 10}
    for name in CLASSES:
        v = report["per_class"][name]
        assert v["fid"] >= 0 and np.isfinite(v["kid"]) and 0 <= v["agreement"] <= 1
        assert 0 <= v["copy_check"]["share_gen_below"] <= 1
        assert (tmp_path / f"quality_nearest_{name}.png").is_file()
    assert format_table(report).count("\n") == 1 + len(CLASSES)


def test_fid_and_kid_are_near_zero_for_one_distribution_and_grow_with_a_shift():
    from research.gan.quality import frechet_distance, kernel_inception_distance

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b) < 0.05
    assert frechet_distance(a, b + 1.0) == pytest.approx(8.0, rel=0.05)   # |mu shift|^2, same covariance
    kid_same, _ = kernel_inception_distance(a, b, n_subsets=10, subset_size=500)
    kid_far, _ = kernel_inception_distance(a, b + 1.0, n_subsets=10, subset_size=500)
    assert abs(kid_same) < 0.01 < kid_far


def test_the_copy_check_flags_a_generator_that_returns_training_images():
    from research.gan.quality import copy_check, nearest_distances

    rng = np.random.default_rng(0)
    train, holdout = rng.random((200, 64)), rng.random((50, 64))
    copies = train[:40] + rng.normal(0, 0.001, (40, 64))
    fresh = rng.random((40, 64))
    ho_nn, _ = nearest_distances(holdout, train)
    assert copy_check(nearest_distances(copies, train)[0], ho_nn)["share_gen_below"] == 1.0
    assert copy_check(nearest_distances(fresh, train)[0], ho_nn)["share_gen_below"] < 0.3


def _ablation_args(**kw):
    from research.gan.ablation import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args([f"--{k.replace('_', '-')}={v}" if v is not True else f"--{k.replace('_', '-')}"
                         for k, v in kw.items()])


def test_the_ablation_trains_every_arm_with_the_same_seed_split_and_step_budget(tmp_path):
    from research.gan.ablation import arms_for, train_command

    args = _ablation_args(out=tmp_path, epochs=20, seed=11, synthetic="SYN")
    arms = arms_for([0.25, 1.0], "SYN")
    cmds = {a.name: train_command(a, args) for a in arms}
    assert list(cmds) == ["real_only", "classic", "classic_gan_0.25", "classic_gan_1"]
    assert "--no-augment" in cmds["real_only"] and "--no-augment" not in cmds["classic"]
    for cmd in cmds.values():
        assert cmd[cmd.index("--seed") + 1] == "11" and cmd[cmd.index("--val-fraction") + 1] == "0.1"
    epochs = {n: int(c[c.index("--epochs") + 1]) for n, c in cmds.items()}
    assert epochs == {"real_only": 20, "classic": 20, "classic_gan_0.25": 16, "classic_gan_1": 10}
    assert cmds["classic_gan_1"][-4:] == ["--synthetic", "SYN", "--synthetic-ratio", "1"]


def test_the_ablation_refuses_gan_images_that_saw_its_validation_split(real, synthetic):
    from research.gan.ablation import check_synthetic

    ok = _ablation_args(data=real, synthetic=synthetic, seed=7, val_fraction=0.25, limit=40)
    assert check_synthetic(ok, 0.5)["problems"] == []
    with pytest.raises(SystemExit, match="not this one"):
        check_synthetic(_ablation_args(data=real, synthetic=synthetic, seed=8, val_fraction=0.25, limit=40), 0.5)
    with pytest.raises(SystemExit, match="needs 30 images"):
        check_synthetic(ok, 1.0)


def test_the_paired_bootstrap_centres_on_the_observed_difference():
    from ml.evaluation import metrics
    from research.gan.ablation import paired_bootstrap

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    better = np.where(rng.random(400) < 0.9, y, (y + 1) % 4)
    worse = np.where(rng.random(400) < 0.7, y, (y + 1) % 4)
    r = paired_bootstrap(y, better, worse, metrics.accuracy, n_boot=300)
    assert r["ci95"][0] < r["diff"] < r["ci95"][1] and r["ci95"][0] > 0


def test_fid_matches_the_textbook_formula_with_matrix_square_roots():
    from research.gan.quality import frechet_distance

    rng = np.random.default_rng(1)
    a, b = rng.random((300, 6)), rng.random((200, 6)) * 1.5
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(w)) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root @ sb @ root)).sum()
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9)
