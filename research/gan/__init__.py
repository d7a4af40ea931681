"""Class-conditional GAN for MRI data augmentation (off by default).

``python -m research.gan train | sample | evaluate | ablation``; see docs/gan.md.
Importing this package is cheap: Keras loads only in the submodules that need it.
"""
