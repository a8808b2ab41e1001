"""Video VST-P tasks (frame sequences from a scene's trajectory)."""
