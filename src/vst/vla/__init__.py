"""Vision-language-action (VLA): episode readers (LIBERO HDF5, LeRobot v3.0 / v2.1), their
conversion to the release's LIBERO parquet records, action normalisation statistics (with the
gripper kept in its own convention) and action tokens (256 bins; added or last-id vocabularies).
A fine-tuned checkpoint as a policy (:mod:`vst.vla.policy`) and its HTTP server
(:mod:`vst.vla.server`, ``vst vla serve``). Training and LIBERO rollouts are still to come
(issue 17)."""
