"""The classifier: builders, preprocessing, prediction (with the flip TTA), calibration,
the registry of shipped models and their packed weights."""
