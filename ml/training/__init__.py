"""Training a classifier: fitting, augmentation, distillation, finalisation (calibration
and the input guard) and recalibration of a shipped model."""
