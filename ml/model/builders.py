"""Model builders. Every layer has a name so Grad-CAM finds its layer by name.

Both builders return a Keras model whose output is **logits** (layer ``logits``);
softmax and temperature are applied outside the graph by :mod:`ml.model.calibration`, so
calibrated probabilities never need a second model.
"""
from __future__ import annotations

import keras
from keras import layers

from ml.labels import CLASSES

ARCHITECTURES = ("cnn", "xception")

# Names the rest of ml/ relies on (stored in metadata.json too).
CNN_TARGET_LAYER = "block4_sepconv2_act"
CNN_FEATURE_LAYER = "features"
XCEPTION_TARGET_LAYER = "block14_sepconv2_act"
XCEPTION_FEATURE_LAYER = "head_dense"


def _conv_bn_relu(x, filters: int, name: str, *, strides: int = 1, separable: bool = False):
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    kind = "sepconv" if separable else "conv"
    x = conv(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_{kind}")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_act")(x)


def build_cnn(input_size: int = 128, widths: tuple[int, ...] = (32, 64, 128, 256, 512)) -> keras.Model:
    """Compact CNN shaped for a 2-core CPU.

    A stride-2 plain stem and one plain block do the full-resolution work (separable
    convolutions do not pay off there on CPU), then three blocks of depthwise-separable
    convolutions. About 0.6M parameters at the default widths.

    Args:
        input_size: side of the square grey input.
        widths: (stem, block1, block2, block3, block4) channel counts.

    Returns:
        An uncompiled ``keras.Model`` named ``cnn``: (batch, S, S, 1) -> (batch, 4) logits.
    """
    if input_size < 64 or input_size % 16:
        raise ValueError(f"input_size must be a multiple of 16 and >= 64, received: {input_size}")
    if len(widths) != 5:
        raise ValueError(f"widths must have 5 entries (stem + 4 blocks), received: {widths}")
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = _conv_bn_relu(inputs, widths[0], "stem", strides=2)          # (S/2, S/2, w0)
    x = _conv_bn_relu(x, widths[1], "block1_1")
    x = _conv_bn_relu(x, widths[1], "block1_2")
    x = layers.MaxPooling2D(2, name="block1_pool")(x)                  # (S/4, S/4, w1)
    for i, w in enumerate(widths[2:], start=2):
        x = _conv_bn_relu(x, w, f"block{i}_1", separable=True)
        x = _conv_bn_relu(x, w, f"block{i}_2", separable=True)
        if i < 4:
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    # block4_2 output, (S/16, S/16, w4), is the Grad-CAM target layer.
    # Keras names the ReLU of block4_2 "block4_2_act"; keep a stable alias.
    x = layers.Identity(name=CNN_TARGET_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name=CNN_FEATURE_LAYER)(x)     # (batch, w4)
    x = layers.Dropout(0.3, name="head_dropout")(x)
    logits = layers.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inputs, logits, name="cnn")


def build_xception(input_size: int = 299, imagenet_weights: str | None = None) -> keras.Model:
    """Keras Xception backbone with the seed's head.

    Global max pool, dropout 0.3, dense 128 ReLU, dropout 0.25, dense 4 (logits).
    The grey input is repeated to 3 channels and scaled to [-1, 1] inside the graph.

    Args:
        input_size: side of the square input (>= 71, Xception's minimum).
        imagenet_weights: path to a local ImageNet ``.h5`` without top, or None to
            train from scratch (the machine cannot download weights).
    """
    if input_size < 71:
        raise ValueError(f"Xception needs input_size >= 71, received: {input_size}")
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Concatenate(name="grey_to_rgb")([inputs, inputs, inputs])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_unit_symmetric")(x)
    # input_tensor= grows the backbone's layers on our graph, so the model is flat:
    # Grad-CAM finds block14_sepconv2_act by name and the guided twin can clone it.
    backbone = keras.applications.Xception(include_top=False, weights=None, input_tensor=x)
    if imagenet_weights:
        backbone.load_weights(imagenet_weights)
    x = backbone.output
    x = layers.GlobalMaxPooling2D(name="head_gmp")(x)
    x = layers.Dropout(0.3, name="head_dropout1")(x)
    x = layers.Dense(128, activation="relu", name=XCEPTION_FEATURE_LAYER)(x)
    x = layers.Dropout(0.25, name="head_dropout2")(x)
    logits = layers.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inputs, logits, name="xception")


def build_model(arch: str, input_size: int | None = None, **kwargs) -> keras.Model:
    """Build an architecture by name ("cnn" or "xception")."""
    if arch == "cnn":
        return build_cnn(input_size or 128, **kwargs)
    if arch == "xception":
        return build_xception(input_size or 299, **kwargs)
    raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")


def target_layer(arch: str) -> str:
    return {"cnn": CNN_TARGET_LAYER, "xception": XCEPTION_TARGET_LAYER}[arch]


def feature_layer(arch: str) -> str:
    return {"cnn": CNN_FEATURE_LAYER, "xception": XCEPTION_FEATURE_LAYER}[arch]
