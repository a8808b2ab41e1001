"""Vision-language-action (VLA) support: action normalisation statistics and action tokens."""
