"""The input guard (is this a brain MRI slice at all?), which guard a model uses, and the
offline out-of-distribution set it is evaluated on."""
