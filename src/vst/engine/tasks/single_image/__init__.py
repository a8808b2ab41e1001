"""Single-image VST-P tasks (answers in the camera frame of that image)."""
