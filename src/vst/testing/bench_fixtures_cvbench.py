"""A five-question CV-Bench in its real on-disk formats, for the ``cvbench`` reader.

Layouts (HF ``nyu-visionx/CV-Bench``): ``"split"`` writes ``test_2d.parquet`` +
``test_3d.parquet`` (current ``main``), ``"single"`` one ``test.parquet`` (original upload),
``"jsonl"`` ``test.jsonl`` + ``img/{2D,3D}/<task>/<name>.png``. Parquet columns and types follow
the dataset card: ``idx`` int32, ``type``/``task``/``question``/``answer``/``prompt``/
``filename``/``source``/``source_dataset``/``source_filename`` string, ``target_class`` string
(nullable), ``target_size`` int32 (nullable), ``bbox`` list<list<float32>> (nullable),
``choices`` list<string>, ``image`` the HF Image struct ``{bytes: binary, path: string}``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["CVBENCH_ROWS", "write_cvbench"]

# (idx, type, task, source, question, choices, answer letter)
CVBENCH_ROWS: tuple[tuple[int, str, str, str, str, list[str], str], ...] = (
    (0, "2D", "Count", "ADE20K", "How many chairs are in the image?", ["3", "0", "2", "1"], "C"),
    (1, "2D", "Relation", "ADE20K", "Is the lamp above or below the bed?", ["above", "below"], "A"),
    (2, "2D", "Count", "COCO", "How many cups are in the image?", ["1", "2", "4", "5"], "B"),
    (0, "3D", "Depth", "Omni3D", "Which is closer to the camera?", ["lamp", "chair"], "B"),
    (1, "3D", "Distance", "Omni3D", "Which is closer to the sofa?", ["table", "sofa"], "A"),
)
"""The fixture's questions; 3D rows restart ``idx`` at 0 (ids are ``"{type}-{idx}"``)."""


def _prompt(question: str, choices: list[str]) -> str:
    opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return f"{question} Select from the following choices.\n{opts}"


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (40 * seed % 256, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _records() -> list[dict[str, Any]]:
    out = []
    for n, (idx, typ, task, source, question, choices, letter) in enumerate(CVBENCH_ROWS):
        filename = f"img/{typ}/{task.lower()}/{source.lower()}_{idx}.png"
        out.append(
            {
                "idx": idx,
                "type": typ,
                "task": task,
                "image": {"bytes": _png(n), "path": filename.rsplit("/", 1)[-1]},
                "question": question,
                "choices": choices,
                "answer": f"({letter})",
                "prompt": _prompt(question, choices),
                "filename": filename,
                "source": source,
                "source_dataset": f"{source} Validation Set",
                "source_filename": f"{source.lower()}_{idx}.jpg",
                "target_class": None if task != "Count" else "chair",
                "target_size": None if task != "Count" else 120,
                "bbox": None if typ == "2D" else [[1.0, 1.0, 3.0, 3.0], [4.0, 2.0, 6.0, 5.0]],
            }
        )
    return out


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("idx", pa.int32()),
            ("type", pa.string()),
            ("task", pa.string()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("question", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("answer", pa.string()),
            ("prompt", pa.string()),
            ("filename", pa.string()),
            ("source", pa.string()),
            ("source_dataset", pa.string()),
            ("source_filename", pa.string()),
            ("target_class", pa.string()),
            ("target_size", pa.int32()),
            ("bbox", pa.list_(pa.list_(pa.float32()))),
        ]
    )


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    """``records`` as a parquet file with the CV-Bench schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records, schema=_schema()), path)
    return path


def write_cvbench(root: Path, layout: str = "split") -> Path:
    """Write the fixture under ``root`` in ``layout`` (``split``, ``single`` or ``jsonl``);
    returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = _records()
    if layout == "split":
        write_parquet(root / "test_2d.parquet", [r for r in records if r["type"] == "2D"])
        write_parquet(root / "test_3d.parquet", [r for r in records if r["type"] == "3D"])
    elif layout == "single":
        write_parquet(root / "test.parquet", records)
    elif layout == "jsonl":
        with open(root / "test.jsonl", "w", encoding="utf-8") as fh:
            for r in records:
                img = root / r["filename"]
                img.parent.mkdir(parents=True, exist_ok=True)
                img.write_bytes(r["image"]["bytes"])
                fh.write(json.dumps({k: v for k, v in r.items() if k != "image"}) + "\n")
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return root
