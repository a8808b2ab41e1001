"""Helpers for tests and demos: fixture writers that lay out small datasets in their real on-disk
formats (one module per format), and an end-to-end check that generated samples verify."""
