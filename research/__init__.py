"""Research tools the product does not run: the conditional GAN (off by default, it made
the classifier worse), the training-recipe sweep and the CAM-variants study.

Each is a command (``python -m research.gan``, ``python -m research.sweep``,
``python -m research.cam_variants``). research/ imports ml/; nothing in ml/ imports research/.
"""
