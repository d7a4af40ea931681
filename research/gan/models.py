"""Class-conditional DCGAN for grey MRI slices: generator and projection discriminator.

Generator (DCGAN, Radford et al. 2015, https://arxiv.org/abs/1511.06434): the latent z
concatenated with a learned class embedding, projected to 4x4, then one stride-2
transposed convolution + batch norm + ReLU per doubling up to the output side, tanh out.
Transposed 4x4/stride-2 convolutions cost about half of nearest-upsample + 3x3 conv, the
difference that matters on a 2-core CPU; a kernel divisible by the stride keeps
checkerboard artefacts down.

Discriminator: stride-2 spectrally normalised convolutions (:mod:`research.gan.spectral_norm`)
down to 4x4, global sum pooling, and the projection head of Miyato & Koyama 2018
(https://arxiv.org/abs/1802.05637): logit = w.h + embed(y).h, which conditions far more
reliably than concatenating the label to the input.

Both models output/take images in [-1, 1] (background -1) with shape (B, S, S, 1) and
labels as int32 (B, 1). Every layer has a name.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
from keras import layers

from research.gan.spectral_norm import SNConv2D, SNDense, SNEmbedding
from ml.labels import CLASSES


# PyTorch's default (0.1 there), as in the reference DCGAN code: the generator changes
# fast, and Keras' 0.99 leaves inference-mode statistics hundreds of steps behind.
_BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class GANConfig:
    """Architecture of one GAN; stored in gan.json so a checkpoint rebuilds its models.

    Attributes:
        size: output side in pixels, a power of two in [32, 512].
        latent_dim: length of z.
        embed_dim: generator class-embedding length.
        g_top: generator channels at 4x4 and 8x8; they halve per doubling after that.
        d_top: discriminator channel cap; channels double per halving up to it.
        min_channels: floor for both.
        n_classes: number of conditioning classes.
    """

    size: int = 128
    latent_dim: int = 128
    embed_dim: int = 32
    g_top: int = 256
    d_top: int = 256
    min_channels: int = 16
    n_classes: int = len(CLASSES)

    def check(self) -> "GANConfig":
        """Raises ValueError naming the bad field and the value received."""
        if self.size < 32 or self.size > 512 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two in [32, 512], received: {self.size}")
        for name in ("latent_dim", "embed_dim", "g_top", "d_top", "min_channels", "n_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, received: {getattr(self, name)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def _channels(top: int, floor: int, res: int) -> int:
    """Channels at a resolution: `top` up to 8x8, halving per doubling, never below floor."""
    return max(floor, min(top, top * 8 // res))


def build_generator(cfg: GANConfig = GANConfig()) -> keras.Model:
    """(z (B, latent_dim) float32, label (B, 1) int32) -> image (B, S, S, 1) in [-1, 1].

    About 1.6M parameters (6.5 MB float32) at the default 128 px.

    Raises:
        ValueError: a bad config field (see :meth:`GANConfig.check`).
    """
    cfg.check()
    z = keras.Input((cfg.latent_dim,), name="z")
    label = keras.Input((1,), dtype="int32", name="label")
    e = layers.Embedding(cfg.n_classes, cfg.embed_dim, name="class_embedding")(label)  # (B, 1, E)
    e = layers.Flatten(name="class_embedding_flat")(e)
    h = layers.Concatenate(name="z_and_class")([z, e])
    c = _channels(cfg.g_top, cfg.min_channels, 4)
    h = layers.Dense(4 * 4 * c, use_bias=False, name="project")(h)
    h = layers.Reshape((4, 4, c), name="project_reshape")(h)                      # (B, 4, 4, c)
    h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="project_bn")(h)
    h = layers.ReLU(name="project_act")(h)
    for k in range(1, int(math.log2(cfg.size // 4)) + 1):
        res = 4 * 2 ** k
        h = layers.Conv2DTranspose(_channels(cfg.g_top, cfg.min_channels, res), 4, strides=2,
                                   padding="same", use_bias=False, name=f"up{res}_deconv")(h)
        h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"up{res}_bn")(h)
        h = layers.ReLU(name=f"up{res}_act")(h)                                   # (B, res, res, c)
    h = layers.Conv2D(1, 3, padding="same", name="to_image")(h)
    out = layers.Activation("tanh", name="image")(h)
    return keras.Model([z, label], out, name="generator")


def build_discriminator(cfg: GANConfig = GANConfig()) -> keras.Model:
    """(image (B, S, S, 1) in [-1, 1], label (B, 1) int32) -> logit (B, 1), unbounded.

    Raises:
        ValueError: a bad config field.
    """
    cfg.check()
    image = keras.Input((cfg.size, cfg.size, 1), name="image")
    label = keras.Input((1,), dtype="int32", name="label")
    h = image
    res = cfg.size
    while res > 4:
        res //= 2
        h = SNConv2D(_channels(cfg.d_top, cfg.min_channels, res), 4, strides=2, name=f"down{res}_conv")(h)
        h = layers.LeakyReLU(0.2, name=f"down{res}_act")(h)                      # (B, res, res, c)
    c = _channels(cfg.d_top, cfg.min_channels, 4)
    h = SNConv2D(c, 3, name="final_conv")(h)
    h = layers.LeakyReLU(0.2, name="final_act")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)                            # (B, c)
    # Sum pooling as in SN-GAN: the mean shrinks logits 16x, far from the hinge margin of 1.
    h = layers.Rescaling(16.0, name="sum_pool")(h)
    unconditional = SNDense(1, name="unconditional")(h)                          # (B, 1)
    e = SNEmbedding(cfg.n_classes, c, name="class_projection")(label)            # (B, 1, c)
    e = layers.Flatten(name="class_projection_flat")(e)
    projection = layers.Dot(axes=1, name="projection")([e, h])                  # (B, 1)
    logit = layers.Add(name="logit")([unconditional, projection])
    return keras.Model([image, label], logit, name="discriminator")


def generator_size_bytes(generator: keras.Model) -> int:
    """Float32 weight bytes: a lower bound on the saved .keras file."""
    return 4 * int(generator.count_params())
