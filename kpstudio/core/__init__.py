"""Data and files: project store, skeleton, image reading, formats, metrics (no Qt, no TF)."""
