"""A tiny MMSI-Bench in its real on-disk format: ``MMSI_Bench.parquet`` with ``id`` int64,
``images`` a list of raw JPEG bytes (or, with ``structs``, HF Image structs), ``question_type``,
``question`` (options embedded), ``answer`` and ``thought``; for tests and the demo."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

__all__ = ["ROWS", "write_mmsi_parquet"]

_OPTIONS = "Options: A: left, B: right, C: front, D: behind"

# (id, question_type, answer, number of images)
ROWS: tuple[tuple[int, str, str, int], ...] = (
    (0, "Positional Relationship (Cam.–Obj.)", "B", 2),
    (1, "Positional Relationship (Cam.-Obj.)", "C", 2),  # hyphen variant
    (2, "Attribute (Meas.)", "D", 3),
    (3, "Motion (Cam.)", "B", 2),
    (4, "MSR", "B", 2),
    (5, "MSR", "A", 2),
    (6, "Attribute (Meas.)", "B", 2),
    (7, "Motion (Cam.)", "A", 2),
    (8, "MSR", "D", 2),
)


def _jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10, 7), (30 * k % 256, 90, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def write_mmsi_parquet(root: Path, structs: bool = False) -> Path:
    """Write ``root/MMSI_Bench.parquet`` (see :data:`ROWS`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    image_type = (
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]) if structs else pa.binary()
    )
    recs = []
    for rid, qtype, answer, n_images in ROWS:
        imgs = [_jpeg(rid * 4 + j) for j in range(n_images)]
        recs.append(
            {
                "id": rid,
                "images": [{"bytes": b, "path": None} for b in imgs] if structs else imgs,
                "question_type": qtype,
                "question": f"Question {rid}: where is the chair from the camera?\n{_OPTIONS}",
                "answer": answer,
                "thought": "Look at both views.",
            }
        )
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("images", pa.list_(image_type)),
            ("question_type", pa.string()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("thought", pa.string()),
        ]
    )
    path = root / "MMSI_Bench.parquet"
    pq.write_table(pa.Table.from_pylist(recs, schema=schema), path)
    return path
