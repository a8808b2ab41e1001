"""A fifteen-question BLINK in its real on-disk format, for the ``blink`` reader.

Layout (HF ``BLINK-Benchmark/BLINK``): ``<Subtask>/val-00000-of-00001.parquet`` for each of the
14 subtasks (one question each, two for Relative_Depth). Columns and types follow the dataset
card: ``idx`` string (``val_<Subtask>_<n>``), ``question``/``sub_task``/``answer``/``prompt``/
``explanation`` string, ``choices`` list<string>, ``image_1``..``image_4`` the HF Image struct
``{bytes: binary, path: string}`` (null when unused).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["BLINK_ROWS", "blink_record", "write_blink", "write_blink_parquet"]

# (subtask, question, choices, answer letter, number of images)
BLINK_ROWS: tuple[tuple[str, str, list[str], str, int], ...] = (
    ("Art_Style", "Which image shares the style of the reference?", ["image 2", "image 3"], "A", 3),
    ("Counting", "How many blue floats are there?", ["0", "1", "2", "3"], "C", 1),
    ("Forensic_Detection", "Which image is most likely real?", ["1", "2", "3", "4"], "D", 4),
    ("Functional_Correspondence", "Which point is used to pour?", ["A", "B", "C", "D"], "B", 2),
    ("IQ_Test", "Which option completes the pattern?", ["1", "2", "3", "4"], "B", 1),
    ("Jigsaw", "Which patch fills the gap?", ["image 2", "image 3"], "A", 3),
    ("Multi-view_Reasoning", "Is the camera moving left or right?", ["left", "right"], "A", 2),
    ("Object_Localization", "Which box is more accurate?", ["box A", "box B"], "B", 1),
    ("Relative_Depth", "Which point is closer to the camera?", ["point A", "point B"], "B", 1),
    ("Relative_Depth", "Which point is closer to the camera?", ["point A", "point B"], "B", 1),
    ("Relative_Reflectance", "Which point is darker?", ["A", "B", "About the same"], "C", 1),
    ("Semantic_Correspondence", "Which point matches REF?", ["A", "B", "C", "D"], "A", 2),
    ("Spatial_Relation", "Is the cat on the left of the dog?", ["yes", "no"], "A", 1),
    ("Visual_Correspondence", "Which point matches REF?", ["A", "B", "C", "D"], "D", 2),
    ("Visual_Similarity", "Which image is more similar?", ["image 2", "image 3"], "B", 3),
)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (17 * seed % 256, 60, 120)).save(buf, format="PNG")
    return buf.getvalue()


def blink_record(
    n: int, sub: str, question: str, choices: list[str], letter: str, k: int, split: str = "val"
) -> dict[str, Any]:
    """One row (the ``n``-th of its subtask, 1-based) with ``k`` images."""
    opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
    idx = f"{split}_{sub}_{n}"
    rec: dict[str, Any] = {
        "idx": idx,
        "question": question,
        "sub_task": sub.replace("_", " "),
        "choices": choices,
        "answer": f"({letter})" if split == "val" else "hidden",
        "prompt": f"{question}\nSelect from the following choices.\n{opts}",
        "explanation": "",
    }
    for i in range(4):
        rec[f"image_{i + 1}"] = (
            {"bytes": _png(n * 4 + i), "path": f"{idx}_{i + 1}.png"} if i < k else None
        )
    return rec


def _schema() -> Any:
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema(
        [
            ("idx", pa.string()),
            ("question", pa.string()),
            ("sub_task", pa.string()),
            ("image_1", image),
            ("image_2", image),
            ("image_3", image),
            ("image_4", image),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.string()),
            ("prompt", pa.string()),
            ("explanation", pa.string()),
        ]
    )


def write_blink_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    """``records`` as a parquet file with the BLINK schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records, schema=_schema()), path)
    return path


def write_blink(root: Path, split: str = "val") -> Path:
    """Write the fixture's ``split`` (``val``, or ``test`` with hidden answers) under
    ``root``; returns ``root``."""
    root = Path(root)
    by_sub: dict[str, list[dict[str, Any]]] = {}
    for sub, question, choices, letter, k in BLINK_ROWS:
        rows = by_sub.setdefault(sub, [])
        rows.append(blink_record(len(rows) + 1, sub, question, choices, letter, k, split))
    for sub, rows in by_sub.items():
        write_blink_parquet(root / sub / f"{split}-00000-of-00001.parquet", rows)
    return root
