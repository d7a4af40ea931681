"""Training-time augmentation, three ways: :mod:`~ml.training.augment.tf_data` (the
``tf.data`` pipeline of ``ml.train``), :mod:`~ml.training.augment.keras_layer` (the same
transforms as a backend-neutral Keras layer) and :mod:`~ml.training.augment.deletion`
(random removal, the faithfulness metric's perturbation)."""
