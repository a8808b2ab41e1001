"""The training-data manifest of a checkpoint and the benchmark-overlap statement: written by a
tiny training run, checked against the leakage guard's scene lists, carried into score files
and the report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_train_trainer import SMALL
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import shard_name, write_shard
from vst.eval.harness import run_benchmark, score_path
from vst.eval.leakage import training_overlap
from vst.eval.report import write_report
from vst.models.backends import ScriptedBackend
from vst.train.config import parse_train_config
from vst.train.manifest import MANIFEST_FILE, read_manifest
from vst.train.trainer import run_training

# scene0025_01 (ScanNet) and 41069025 (ARKitScenes) are VSI-Bench scenes; scene0000_00 is not
# in any shipped benchmark list
SCENES = [
    ("scannet", "scene0025_01", "train"),
    ("scannet", "scene0000_00", "train"),
    ("synthetic", "room_0007", "test"),
]


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8), "RGB")


def _shards(folder: Path, scenes: list[tuple[str, str, str]], task: str = "t_mcq") -> Path:
    """Two samples per scene, stamped with the engine's provenance keys."""
    samples = []
    for k in range(2 * len(scenes)):
        dataset, scene_id, split = scenes[k // 2]
        letter = "AB"[k % 2]
        samples.append(
            Sample(
                task=task,
                scenario="single_image",
                messages=[user(None, f"Q{k}: closer?\nA. chair\nB. table"), assistant(letter)],
                images=[_image(k)],
                answer=letter,
                reward={"mode": "mcq", "ground_truth": letter},
                meta={"source": dataset, "scene_id": scene_id, "split": split},
            )
        )
    data = folder / "data"
    data.mkdir(parents=True)
    write_shard(data / shard_name(0, hashlib.sha256(folder.name.encode()).hexdigest()), samples)
    return folder


def _manifest(folder: Path, scenes: list[dict[str, str]] | None, kind: str = "vst") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = {"name": "s", "kind": kind, "path": "x", "weight": 1.0, "scenes": scenes}
    (folder / MANIFEST_FILE).write_text(json.dumps({"version": 1, "sources": [source]}))
    return folder


def test_tiny_training_run_writes_the_manifest(tiny_model_dir, tmp_path):
    shards = _shards(tmp_path / "shards", SCENES)
    other = _shards(tmp_path / "other", [("arkitscenes", "41069025", "train")], task="t_other")
    config = parse_train_config(
        {
            "stage": "sft",
            "model": str(tiny_model_dir),
            "output_dir": str(tmp_path / "out"),
            "data": [
                {"kind": "vst", "path": str(shards), "weight": 1.0},
                {"kind": "vst", "path": str(other), "weight": 0.5, "tasks": ["t_other"]},
            ],
            "learning_rate": 1e-3,
            "vision_learning_rate": 1e-4,
            "global_batch_size": 4,
            "max_steps": 1,
            **SMALL,
        }
    )
    result = run_training(config)
    text = (result.output_dir / MANIFEST_FILE).read_text()
    manifest = json.loads(text)
    first, second = manifest["sources"]
    assert (first["kind"], first["path"], first["weight"]) == ("vst", str(shards), 1.0)
    assert first["scenes"] == [
        {"dataset": "scannet", "scene_id": "scene0000_00", "split": "train"},
        {"dataset": "scannet", "scene_id": "scene0025_01", "split": "train"},
        {"dataset": "synthetic", "scene_id": "room_0007", "split": "test"},
    ]
    assert (second["weight"], second["tasks"]) == (0.5, ["t_other"])
    assert second["scenes"] == [
        {"dataset": "arkitscenes", "scene_id": "41069025", "split": "train"}
    ]
    # deterministic: the same sources give the same bytes
    from vst.train.manifest import write_manifest
    from vst.train.trainer import data_sources

    (tmp_path / "again").mkdir()
    again = write_manifest(tmp_path / "again", data_sources(config, "config"))
    assert again.read_text() == text

    # the checkpoint's statement per benchmark
    vsi = training_overlap(result.output_dir, "vsibench")
    assert vsi["manifest"] is True
    assert vsi["overlap"] == ["41069025", "scene0025_01"]
    assert vsi["note"] == "2 training scene(s) belong to vsibench"
    assert training_overlap(result.output_dir, "vstp")["overlap"] == ["room_0007"]
    assert training_overlap(result.output_dir, "det3d-arkitscenes")["overlap"] == ["41069025"]
    assert training_overlap(result.output_dir, "det3d-sunrgbd")["overlap"] == []


def test_vsibench_scene_overlaps_vsibench_and_not_cvbench(tmp_path):
    model = _manifest(
        tmp_path / "ckpt",
        [
            {"dataset": "scannetpp", "scene_id": "09c1414f1b", "split": "train"},
            {"dataset": "scannet", "scene_id": "scene0000_00", "split": "train"},
        ],
    )
    assert training_overlap(model, "vsibench") == {
        "manifest": True,
        "overlap": ["09c1414f1b"],
        "note": "1 training scene(s) belong to vsibench",
    }
    cv = training_overlap(model, "cvbench")
    assert cv["manifest"] is True and cv["overlap"] is None
    assert cv["note"] == "cvbench: vst has no scene list for this benchmark; overlap not checked"
    assert training_overlap(model, "det3d-sunrgbd")["overlap"] == []
    # a ScanNet id under another dataset is not a VSI-Bench scene
    other = _manifest(tmp_path / "ck2", [{"dataset": "arkitscenes", "scene_id": "scene0025_01"}])
    assert training_overlap(other, "vsibench")["overlap"] == []


def test_sunrgbd_ids_in_both_spellings_and_unknown_sources(tmp_path):
    model = _manifest(
        tmp_path / "ckpt",
        [
            {"dataset": "sunrgbd", "scene_id": "000017", "split": "train"},
            {"dataset": "sunrgbd", "scene_id": "kv1__NYUdata__NYU0001", "split": "train"},
        ],
    )
    assert training_overlap(model, "det3d-sunrgbd")["overlap"] == [
        "000017",
        "kv1__NYUdata__NYU0001",
    ]
    llava = _manifest(tmp_path / "llava", None, kind="llava")
    out = training_overlap(llava, "vsibench")
    assert out["overlap"] == []
    assert out["note"] == (
        "no training scene belongs to vsibench (0 scene record(s) checked); "
        "scenes unknown for 1 source(s): s"
    )


def test_no_manifest_and_bad_manifest(tmp_path):
    out = training_overlap(tmp_path, "vsibench")
    assert out == {
        "manifest": False,
        "overlap": None,
        "note": f"no {MANIFEST_FILE} in {tmp_path}: training scenes unknown",
    }
    (tmp_path / MANIFEST_FILE).write_text('{"sources": [{"scenes": [{"scene_id": 3}]}]}')
    with pytest.raises(ValueError, match=r"vst_training_data.json: sources.0.scenes.0: "):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{")
    with pytest.raises(ValueError, match=r"vst_training_data.json: cannot read"):
        training_overlap(tmp_path, "vsibench")


def test_score_file_and_report_state_the_overlap(tmp_path):
    from test_eval_harness import Letters

    class Vsi(Letters):
        name = "vsibench"

    backend = ScriptedBackend(lambda request, i: "A", model_id="m")
    model = _manifest(tmp_path / "ckpt", [{"dataset": "scannet", "scene_id": "scene0025_01"}])
    run_dir = tmp_path / "run"
    run_benchmark(Vsi(4), backend, tmp_path, run_dir, model_dir=model)
    score = json.loads(score_path(run_dir, "vsibench").read_text())
    assert score["training_overlap"] == {
        "manifest": True,
        "overlap": ["scene0025_01"],
        "note": "1 training scene(s) belong to vsibench",
    }
    md, js, _ = write_report(run_dir)
    assert (
        "- vsibench: OVERLAP: 1 training scene(s) in this benchmark: scene0025_01" in md.read_text()
    )
    assert json.loads(js.read_text())["benchmarks"]["vsibench"]["training_overlap"]["overlap"] == [
        "scene0025_01"
    ]
    # a model folder without a manifest: no key, no line
    bare = tmp_path / "bare"
    bare.mkdir()
    run_benchmark(Vsi(4), backend, tmp_path, tmp_path / "run2", model_dir=bare)
    plain = json.loads(score_path(tmp_path / "run2", "vsibench").read_text())
    assert "training_overlap" not in plain
    md2, _, _ = write_report(tmp_path / "run2")
    assert "Training data" not in md2.read_text()
