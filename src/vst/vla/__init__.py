"""Vision-language-action (VLA) data: episode readers (LIBERO HDF5, LeRobot v3.0 / v2.1) and
their conversion to the release's LIBERO parquet records."""
