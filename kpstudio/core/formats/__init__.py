"""Annotation file formats: each importer parses and validates a file into a LabelSet."""
