"""Multi-image VST-P tasks (frame 1's camera frame is the world frame)."""
