"""One GAN update, written once in keras.ops and differentiated per backend.

Loss: hinge (Lim & Ye 2017, https://arxiv.org/abs/1705.02894; as in SAGAN/BigGAN).
  D: mean(relu(1 - D(x, y))) + mean(relu(1 + D(G(z, y), y)))
  G: -mean(D(G(z, y), y))
Each iteration does one D step then one G step (alternating), both seeing DiffAugment
(:mod:`research.gan.diffaugment`), then updates an exponential moving average (EMA) of the
generator's weights; the EMA generator is the one that samples and ships (Yazici et al.
2019, https://arxiv.org/abs/1806.04498).

Keras 3 has no backend-neutral gradient call, so only the "take gradients and apply"
part is per backend: TensorFlow uses GradientTape inside tf.function; JAX uses
``stateless_call`` + ``jax.value_and_grad`` + ``optimizer.stateless_apply`` under
``jax.jit``, holding the variables as arrays and writing them back to the Keras
variables on :meth:`GANSteps.sync`. Random numbers (z, augmentation) are drawn on the
host and passed in, so both paths are pure functions of their inputs.
"""
from __future__ import annotations

import keras
from keras import ops

from research.gan.diffaugment import augment


def d_hinge_loss(real_logits, fake_logits):
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


def g_hinge_loss(fake_logits):
    return -ops.mean(fake_logits)


def ema_decay_at(step, decay: float):
    """Warm-up so early EMA weights are not dominated by the random init."""
    step = ops.cast(step, "float32")
    return ops.minimum(decay, (1.0 + step) / (10.0 + step))


class GANSteps:
    """The training state of one GAN and its per-iteration update.

    Args:
        generator, discriminator: built models (see :mod:`research.gan.models`).
        ema_generator: a model with the generator's architecture; receives the EMA.
        g_opt, d_opt: Keras optimizers (built here on the models' variables).
        ema_decay: EMA factor per iteration (after warm-up).

    Batches are dicts of arrays: real (B, S, S, 1) float32 in [-1, 1], labels (B, 1)
    int32, z (B, latent) float32, aug_real / aug_fake (dicts from diffaugment.draw).
    """

    def __init__(self, generator, discriminator, ema_generator, g_opt, d_opt, ema_decay: float = 0.999):
        self.G, self.D, self.G_ema = generator, discriminator, ema_generator
        self.g_opt, self.d_opt = g_opt, d_opt
        self.ema_decay = float(ema_decay)
        self.g_opt.build(self.G.trainable_variables)
        self.d_opt.build(self.D.trainable_variables)
        self.backend = keras.backend.backend()
        if self.backend == "tensorflow":
            self._impl = _TFImpl(self)
        elif self.backend == "jax":
            self._impl = _JAXImpl(self)
        else:
            raise NotImplementedError(f"GAN training supports the tensorflow and jax backends, "
                                      f"received: {self.backend}")

    def train_step(self, batch: dict, step: int) -> dict:
        """One D step, one G step, one EMA update. Returns float metrics."""
        d = self._impl.d_step(batch)
        g = self._impl.g_step(batch)
        self._impl.ema_step(step)
        return {"d_loss": float(d[0]), "d_real": float(d[1]), "d_fake": float(d[2]), "g_loss": float(g)}

    def d_step(self, batch: dict) -> float:
        return float(self._impl.d_step(batch)[0])

    def g_step(self, batch: dict) -> float:
        return float(self._impl.g_step(batch))

    def d_loss(self, batch: dict) -> float:
        """D hinge loss on a batch without updating anything (D in inference mode)."""
        self.sync()
        batch = _as_tensors(batch)
        fake = self.G([batch["z"], batch["labels"]], training=False)
        real_l = self.D([augment(batch["real"], batch["aug_real"]), batch["labels"]], training=False)
        fake_l = self.D([augment(fake, batch["aug_fake"]), batch["labels"]], training=False)
        return float(d_hinge_loss(real_l, fake_l))

    def g_loss(self, batch: dict) -> float:
        """G hinge loss on a batch without updating anything."""
        self.sync()
        batch = _as_tensors(batch)
        fake = self.G([batch["z"], batch["labels"]], training=False)
        return float(g_hinge_loss(self.D([augment(fake, batch["aug_fake"]), batch["labels"]], training=False)))

    def sync(self) -> None:
        """Write the backend's training state back into the Keras variables (no-op on TF)."""
        self._impl.sync()

    def reload(self) -> None:
        """Re-read the Keras variables after they were assigned from outside (a restore)."""
        self._impl.reload()


def _as_tensors(batch: dict) -> dict:
    """Eager Keras calls refuse a mix of tensors and numpy arrays in one input list."""
    return {k: _as_tensors(v) if isinstance(v, dict) else ops.convert_to_tensor(v) for k, v in batch.items()}


class _TFImpl:
    jit_compile = False   # XLA measured no faster on the 2-core CPU; worth a try on a GPU

    def __init__(self, s: GANSteps):
        import tensorflow as tf

        self.s = s
        self.d_step = tf.function(self._d_step, reduce_retracing=True, jit_compile=self.jit_compile)
        self.g_step = tf.function(self._g_step, reduce_retracing=True, jit_compile=self.jit_compile)
        self._ema = tf.function(self._ema_step)

    def _d_step(self, b):
        import tensorflow as tf

        s = self.s
        fake = s.G([b["z"], b["labels"]], training=True)
        x = ops.concatenate([augment(b["real"], b["aug_real"]), augment(fake, b["aug_fake"])], axis=0)
        y = ops.concatenate([b["labels"], b["labels"]], axis=0)
        with tf.GradientTape() as tape:
            logits = s.D([x, y], training=True)                 # (2B, 1): real then fake
            real_l, fake_l = ops.split(logits, 2, axis=0)
            loss = d_hinge_loss(real_l, fake_l)
        grads = tape.gradient(loss, s.D.trainable_variables)
        s.d_opt.apply_gradients(zip(grads, s.D.trainable_variables))
        return loss, ops.mean(real_l), ops.mean(fake_l)

    def _g_step(self, b):
        import tensorflow as tf

        s = self.s
        with tf.GradientTape() as tape:
            fake = s.G([b["z"], b["labels"]], training=True)
            loss = g_hinge_loss(s.D([augment(fake, b["aug_fake"]), b["labels"]], training=False))
        grads = tape.gradient(loss, s.G.trainable_variables)
        s.g_opt.apply_gradients(zip(grads, s.G.trainable_variables))
        return loss

    def _ema_step(self, step):
        s = self.s
        beta = ema_decay_at(step, s.ema_decay)
        for ve, v in zip(s.G_ema.trainable_variables, s.G.trainable_variables):
            ve.assign(beta * ve + (1.0 - beta) * v)
        for ve, v in zip(s.G_ema.non_trainable_variables, s.G.non_trainable_variables):
            ve.assign(v)   # batch-norm statistics follow the live generator

    def ema_step(self, step):
        self._ema(ops.convert_to_tensor(step, "int64"))

    def sync(self):
        pass

    def reload(self):
        pass


class _JAXImpl:
    """Functional state: (trainable, non-trainable) arrays per model plus optimizer arrays."""

    def __init__(self, s: GANSteps):
        import jax

        self.s = s
        self._pull()
        d_grad = jax.value_and_grad(self._d_loss_fn, has_aux=True)
        g_grad = jax.value_and_grad(self._g_loss_fn, has_aux=True)

        def d_step(state, b):
            g_tv, g_ntv, d_tv, d_ntv, d_ov = state
            (loss, (g_ntv, d_ntv, rl, fl)), grads = d_grad(d_tv, d_ntv, g_tv, g_ntv, b)
            d_tv, d_ov = s.d_opt.stateless_apply(d_ov, grads, d_tv)
            return (g_ntv, d_tv, d_ntv, d_ov), (loss, rl, fl)

        def g_step(state, b):
            g_tv, g_ntv, d_tv, d_ntv, g_ov = state
            (loss, g_ntv), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, b)
            g_tv, g_ov = s.g_opt.stateless_apply(g_ov, grads, g_tv)
            return (g_tv, g_ntv, g_ov), loss

        def ema_step(ema_tv, g_tv, step):
            beta = ema_decay_at(step, s.ema_decay)
            return [beta * e + (1.0 - beta) * v for e, v in zip(ema_tv, g_tv)]

        self._d_step, self._g_step = jax.jit(d_step), jax.jit(g_step)
        self._ema_step = jax.jit(ema_step)

    def _pull(self):
        s = self.s
        self.g_tv = [v.value for v in s.G.trainable_variables]
        self.g_ntv = [v.value for v in s.G.non_trainable_variables]
        self.d_tv = [v.value for v in s.D.trainable_variables]
        self.d_ntv = [v.value for v in s.D.non_trainable_variables]
        self.g_ov = [v.value for v in s.g_opt.variables]
        self.d_ov = [v.value for v in s.d_opt.variables]
        self.ema_tv = [v.value for v in s.G_ema.trainable_variables]

    def _d_loss_fn(self, d_tv, d_ntv, g_tv, g_ntv, b):
        s = self.s
        fake, g_ntv = s.G.stateless_call(g_tv, g_ntv, [b["z"], b["labels"]], training=True)
        x = ops.concatenate([augment(b["real"], b["aug_real"]), augment(fake, b["aug_fake"])], axis=0)
        y = ops.concatenate([b["labels"], b["labels"]], axis=0)
        logits, d_ntv = s.D.stateless_call(d_tv, d_ntv, [x, y], training=True)
        real_l, fake_l = ops.split(logits, 2, axis=0)
        return d_hinge_loss(real_l, fake_l), (g_ntv, d_ntv, ops.mean(real_l), ops.mean(fake_l))

    def _g_loss_fn(self, g_tv, g_ntv, d_tv, d_ntv, b):
        s = self.s
        fake, g_ntv = s.G.stateless_call(g_tv, g_ntv, [b["z"], b["labels"]], training=True)
        logits, _ = s.D.stateless_call(d_tv, d_ntv, [augment(fake, b["aug_fake"]), b["labels"]],
                                       training=False)
        return g_hinge_loss(logits), g_ntv

    def d_step(self, b):
        state = (self.g_tv, self.g_ntv, self.d_tv, self.d_ntv, self.d_ov)
        (self.g_ntv, self.d_tv, self.d_ntv, self.d_ov), out = self._d_step(state, b)
        return out

    def g_step(self, b):
        state = (self.g_tv, self.g_ntv, self.d_tv, self.d_ntv, self.g_ov)
        (self.g_tv, self.g_ntv, self.g_ov), loss = self._g_step(state, b)
        return loss

    def ema_step(self, step):
        self.ema_tv = self._ema_step(self.ema_tv, self.g_tv, step)

    def sync(self):
        s = self.s
        pairs = [(s.G.trainable_variables, self.g_tv), (s.G.non_trainable_variables, self.g_ntv),
                 (s.D.trainable_variables, self.d_tv), (s.D.non_trainable_variables, self.d_ntv),
                 (s.g_opt.variables, self.g_ov), (s.d_opt.variables, self.d_ov),
                 (s.G_ema.trainable_variables, self.ema_tv),
                 (s.G_ema.non_trainable_variables, self.g_ntv)]
        for variables, values in pairs:
            for v, val in zip(variables, values):
                v.assign(val)

    def reload(self):
        """After the Keras variables were assigned from outside (a checkpoint restore)."""
        self._pull()
