"""Evaluation: answer extraction, VSI-Bench MRA, Omni3D-style AP3D, reports."""
