"""A tiny 3DSRBench in its real on-disk formats: the VLMEvalKit circular TSV (base64 JPEG in
``image``) and the parquet variant (HF Image structs), written for tests and the demo.

Ten rows, four base questions: ``h0000001`` (2 circular rows + a flipped question with its 2
circular rows), ``l0000002``, ``o0000003`` and ``m0000004`` (2 circular rows each).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["ROWS", "write_3dsr_parquet", "write_3dsr_tsv"]

# (qid, category, question, options, answer)
ROWS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("h0000001", "height_higher", "Is the lamp higher than the cup?", ("yes", "no"), "A"),
    ("h0000001-1", "height_higher", "Is the lamp higher than the cup?", ("no", "yes"), "B"),
    ("h0000001-flip", "height_higher", "Is the cup higher than the lamp?", ("yes", "no"), "B"),
    ("h0000001-flip-1", "height_higher", "Is the cup higher than the lamp?", ("no", "yes"), "A"),
    (
        "l0000002",
        "location_above",
        "Where is the shelf relative to the bed?",
        ("below", "level", "above", "NA"),
        "C",
    ),
    (
        "l0000002-1",
        "location_above",
        "Where is the shelf relative to the bed?",
        ("level", "NA", "below", "above"),
        "D",
    ),
    ("o0000003", "orientation_viewpoint", "Is the car facing us?", ("no", "yes"), "B"),
    ("o0000003-1", "orientation_viewpoint", "Is the car facing us?", ("yes", "no"), "A"),
    ("m0000004", "multi_object_facing", "Does the dog face the cat?", ("yes", "no"), "A"),
    ("m0000004-1", "multi_object_facing", "Does the dog face the cat?", ("no", "yes"), "B"),
)


def _jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (20 * k % 256, 40, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _records(b64: bool) -> list[dict[str, Any]]:
    out = []
    for k, (qid, category, question, options, answer) in enumerate(ROWS):
        img = _jpeg(k)
        rec: dict[str, Any] = {"index": k, "qid": qid, "question": question}
        for letter, text in zip("ABCD", (*options, None, None), strict=False):
            rec[letter] = text
        rec.update(
            answer=answer,
            category=category,
            image=base64.b64encode(img).decode("ascii") if b64 else {"bytes": img, "path": None},
            image_source="MS-COCO",
            image_url=f"http://images.cocodataset.org/train2017/{k:012d}.jpg",
        )
        out.append(rec)
    return out


def write_3dsr_tsv(root: Path, name: str = "3dsrbench_v1_vlmevalkit_circular.tsv") -> Path:
    """The TSV as VLMEvalKit writes it (pandas, tab-separated, ``index`` int64, empty C/D)."""
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(_records(b64=True))
    df["index"] = df["index"].astype("int64")
    path = root / name
    df.to_csv(path, sep="\t", index=False)
    return path


def write_3dsr_parquet(root: Path, name: str = "3dsrbench_v1-00000-of-00001.parquet") -> Path:
    """The parquet variant: same columns, ``image`` an HF Image struct (bytes, path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    recs = _records(b64=False)
    schema = pa.schema(
        [("index", pa.int64()), ("qid", pa.string()), ("question", pa.string())]
        + [(c, pa.string()) for c in "ABCD"]
        + [("answer", pa.string()), ("category", pa.string()), ("image", image_type)]
        + [("image_source", pa.string()), ("image_url", pa.string())]
    )
    path = root / name
    pq.write_table(pa.Table.from_pylist(recs, schema=schema), path)
    return path
