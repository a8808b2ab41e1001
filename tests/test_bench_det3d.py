"""3D detection benchmarks (det3d-sunrgbd, det3d-arkitscenes): reading Omni3D JSON and the VST
release's question-format JSON, judging replies and AP aggregation, all hand-checked."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.eval.benchmarks.base import BenchmarkDataError, JudgedItem
from vst.eval.benchmarks.det3d import ARKitScenesDet3D, Det3DBenchmark, SunRGBDDet3D
from vst.eval.benchmarks.det3d_sources import (
    ARKITSCENES_CATEGORIES,
    DATASETS,
    OMNI3D_IN_CATEGORIES,
)
from vst.geometry.boxes import euler_to_matrix
from vst.geometry.conventions import from_omni3d
from vst.geometry.iou import box3d_iou
from vst.models.detect import detection_request
from vst.testing.hostile_text import hostile_answers
from vst.testing.omni3d_fixture import omni3d_corners, rot_y, write_omni3d_fixture


# -- fixtures ------------------------------------------------------------------------------
def _add_ignored_chair(json_path: Path) -> None:
    """A second chair in the SUN RGB-D image, truncated 0.995: Omni3D flags it ignore."""
    data = json.loads(json_path.read_text())
    center, dims, R = [1.2, 0.3, 4.5], [0.5, 0.9, 0.55], rot_y(0.0)
    ann = dict(data["annotations"][0])
    ann.update(
        id=9,
        center_cam=center,
        dimensions=dims,
        R_cam=R.tolist(),
        bbox3D_cam=omni3d_corners(center, dims, R).tolist(),
        truncation=0.995,
    )
    data["annotations"].append(ann)
    json_path.write_text(json.dumps(data))


@pytest.fixture()
def omni3d(tmp_path: Path) -> Path:
    """The shared Omni3D fixture (SUN RGB-D + ARKitScenes), its missing image written, one
    ignored chair added; returns the ``datasets`` folder (the data root)."""
    fx = write_omni3d_fixture(tmp_path)
    root = fx.image_root
    ark = root / "ARKitScenes/test/90000001"
    shutil.copy(ark / "90000001_100.000.jpg", ark / "90000001_101.000.jpg")
    _add_ignored_chair(fx.json_dir / "SUNRGBD_test.json")
    return root


def _reply(boxes: list[list[float]], label: str, fence: bool = True) -> str:
    """A model answer stating ``boxes`` (degrees) with angles written as degrees / 180."""
    entries = [{"bbox_3d": [*b[:6], *(a / 180.0 for a in b[6:9])], "label": label} for b in boxes]
    text = json.dumps(entries)
    return f"```json\n{text}\n```" if fence else text


def _shift_along_local_x(box: list[float], d: float) -> list[float]:
    axis = euler_to_matrix(np.asarray(box[6:9]))[:, 0]
    return [*(np.asarray(box[:3]) + d * axis).tolist(), *box[3:]]


# -- reading -------------------------------------------------------------------------------
def test_category_sets() -> None:
    assert len(OMNI3D_IN_CATEGORIES) == len(set(OMNI3D_IN_CATEGORIES)) == 38
    assert len(ARKITSCENES_CATEGORIES) == len(set(ARKITSCENES_CATEGORIES)) == 14
    assert set(ARKITSCENES_CATEGORIES) <= set(OMNI3D_IN_CATEGORIES)
    assert DATASETS["sunrgbd"].categories == OMNI3D_IN_CATEGORIES
    assert SunRGBDDet3D().name == "det3d-sunrgbd"
    assert ARKitScenesDet3D().name == "det3d-arkitscenes"
    with pytest.raises(ValueError):
        Det3DBenchmark("kitti")


def test_read_omni3d_sunrgbd(omni3d: Path) -> None:
    items = list(SunRGBDDet3D().read(omni3d))
    # chair, table, box usable; pillow (behind camera) and picture (truncated) only ignored
    # boxes: no question; lamp (valid3D false), books (size 0), dontcare: dropped
    assert [i.id for i in items] == ["900001:box", "900001:chair", "900001:table"]
    chair = items[1]
    assert chair.fields == {"category": "chair", "image": "900001", "source": "SUNRGBD_test.json"}
    assert chair.truth["ignore"] == [False, True]
    assert chair.truth["camera"] == {
        "fx": 120.0,
        "fy": 120.0,
        "cx": 80.0,
        "cy": 60.0,
        "width": 160,
        "height": 120,
        # 2 atan(160 / 240), 2 atan(120 / 240) in degrees
        "hfov": pytest.approx(67.380135, abs=1e-5),
        "vfov": pytest.approx(53.130102, abs=1e-5),
    }
    expected = from_omni3d([-0.45, 0.35, 2.4], [0.5, 0.9, 0.55], rot_y(30.0))
    got = np.asarray(chair.truth["boxes"][0])
    np.testing.assert_allclose(got[:6], [-0.45, 0.35, 2.4, 0.55, 0.9, 0.5], atol=1e-9)
    assert box3d_iou(got, expected)[0, 0] == pytest.approx(1.0, abs=1e-6)
    # the request: the engine's si_det3d wording for the one category, a FoV-unified image
    req = chair.request
    assert len(req.images) == 1 and req.images[0].size != (160, 120)
    assert req.messages[0]["role"] == "system"
    text = req.messages[1]["content"][-1]["text"]
    assert text.endswith("Detect every chair in the image and give its 3D bounding box.")
    assert "Camera details for this image." in text
    assert json.loads(json.dumps(chair.truth)) == chair.truth  # JSON-able


def test_read_omni3d_arkitscenes(omni3d: Path) -> None:
    items = list(ARKitScenesDet3D().read(omni3d))
    assert [i.id for i in items] == ["900101:cabinet", "900101:sofa", "900102:sofa"]


def test_missing_image_names_the_file(tmp_path: Path) -> None:
    fx = write_omni3d_fixture(tmp_path)  # as written: 90000001_101.000.jpg is missing
    with pytest.raises(BenchmarkDataError, match=re.escape("90000001_101.000.jpg")):
        list(ARKitScenesDet3D().read(fx.image_root))


def test_bad_json_names_the_file(omni3d: Path) -> None:
    path = omni3d / "Omni3D/SUNRGBD_test.json"
    path.write_text("{not json")
    with pytest.raises(BenchmarkDataError, match=re.escape("SUNRGBD_test.json")):
        list(SunRGBDDet3D().read(omni3d))
    path.write_text(json.dumps({"images": 3}))
    with pytest.raises(BenchmarkDataError, match=re.escape("SUNRGBD_test.json")):
        list(SunRGBDDet3D().read(omni3d))


def test_no_files(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=re.escape("SUNRGBD_test.json")):
        list(SunRGBDDet3D().read(tmp_path))


# -- judging and AP ------------------------------------------------------------------------
def _judge_all(bench: Det3DBenchmark, items: list, replies: dict[str, str]) -> list[JudgedItem]:
    return [bench.judge(i, replies[i.id]) for i in items]


def test_ground_truth_replies_score_ap_1(omni3d: Path) -> None:
    bench = SunRGBDDet3D()
    items = list(bench.read(omni3d))
    replies = {}
    for i in items:
        keep = [b for b, ig in zip(i.truth["boxes"], i.truth["ignore"], strict=True) if not ig]
        replies[i.id] = _reply(keep, i.truth["category"])
    # verbose: prose around the fenced list is fine
    replies["900001:box"] = "Sure! Here it is:\n" + replies["900001:box"] + "\nHope this helps."
    judged = _judge_all(bench, items, replies)
    for j in judged:
        assert j.scores["official"] == pytest.approx(1.0)
        assert j.scores["f1"] == pytest.approx(1.0)
    assert judged[1].parsed["labels"] == ["chair"]
    np.testing.assert_allclose(judged[1].parsed["boxes"][0], items[1].truth["boxes"][0], atol=1e-9)
    score = bench.aggregate(judged)
    assert score.official == pytest.approx(1.0)
    for key in ("AP", "AP15", "AP25", "AP50", "AR", "reward"):
        assert score.variants[key] == pytest.approx(1.0), key
    assert score.breakdown["category_AP"] == pytest.approx({"box": 1.0, "chair": 1.0, "table": 1.0})
    assert score.items == 3
    # a box on the ignored chair is neither TP nor FP for AP; the reward counts it as an FP
    both = bench.judge(items[1], _reply(items[1].truth["boxes"], "chair"))
    assert both.scores["f1"] == pytest.approx(2 / 3)
    assert both.scores["official"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert bench.aggregate([judged[0], both, judged[2]]).variants["AP"] == pytest.approx(1.0)


def test_shifted_and_extra_boxes_lower_ap_by_hand(omni3d: Path) -> None:
    bench = SunRGBDDet3D()
    items = {i.id: i for i in bench.read(omni3d)}
    box, chair, table = (items[f"900001:{c}"] for c in ("box", "chair", "table"))
    # chair moved along its local X (length l = 0.55) by d: IoU = (l - d) / (l + d) = 0.32
    d = 0.55 * (1 - 0.32) / (1 + 0.32)
    moved = _shift_along_local_x(chair.truth["boxes"][0], d)
    assert box3d_iou(moved, chair.truth["boxes"][0])[0, 0] == pytest.approx(0.32)
    # table: a false positive listed before the true box (equal scores keep the order)
    far = [5.0, 0.0, 9.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    replies = {
        box.id: _reply(box.truth["boxes"], "box"),
        chair.id: _reply([moved], "chair"),
        table.id: _reply([far, table.truth["boxes"][0]], "table"),
    }
    judged = [bench.judge(items[k], v) for k, v in replies.items()]
    assert judged[1].scores["official"] == pytest.approx(0.5 * 0.32 + 0.5 * 1.0)
    assert judged[2].scores["f1"] == pytest.approx(2 / 3)
    score = bench.aggregate(judged)
    # chair: matched at IoU thresholds 0.05..0.30 (6 of 10) -> AP 0.6, AP15 1, AP25 1, AP50 0
    # table: precision 1/2 at every recall point at every threshold -> AP 0.5
    assert score.breakdown["category_AP"] == pytest.approx({"box": 1.0, "chair": 0.6, "table": 0.5})
    assert score.variants["AP"] == pytest.approx((1.0 + 0.6 + 0.5) / 3)
    assert score.variants["AP15"] == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    assert score.official == score.variants["AP15"]
    assert score.variants["AP25"] == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    assert score.variants["AP50"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert score.variants["AR"] == pytest.approx((1.0 + 0.6 + 1.0) / 3)


def test_request_is_detection_request(omni3d: Path) -> None:
    item = next(iter(SunRGBDDet3D().read(omni3d)))
    image = Image.open(omni3d / "SUNRGBD/kv1/NYUdata/NYU9901/image/NYU9901.jpg")
    requests, _ = detection_request(image, categories="box", intrinsics=(120.0, 120.0, 80.0, 60.0))
    assert item.request.fingerprint() == requests[0].fingerprint()


def test_think_and_hostile_replies_never_raise(omni3d: Path) -> None:
    bench = SunRGBDDet3D()
    item = list(bench.read(omni3d))[1]
    right = _reply([item.truth["boxes"][0]], "chair")
    assert bench.judge(item, "<think>a chair, left</think>" + right).scores["official"] == 1.0
    for name, text in hostile_answers(50_000).items():
        judged = bench.judge(item, text)
        assert 0.0 <= judged.scores["official"] <= 1.0, name
        json.dumps(judged.parsed)
    nan = '[{"bbox_3d": [NaN, 0, 2, 1, 1, 1, 0, 0, 0], "label": "chair"}, ' + (
        '{"bbox_3d": [0, 0, 2, -1, 1, 1, 0, 0, 0], "label": "chair"}]'
    )
    assert bench.judge(item, nan).parsed["boxes"] == []


def test_garbage_and_malformed_replies_score_0(omni3d: Path) -> None:
    bench = SunRGBDDet3D()
    items = list(bench.read(omni3d))
    replies = [
        "I cannot see any boxes.",
        '```json\n[{"bbox_3d": [1, 2, "x"\n```',
        "\x00" * 50 + "[[[[",
    ]
    judged = [bench.judge(i, r) for i, r in zip(items, replies, strict=True)]
    for j in judged:
        assert j.parsed["boxes"] == [] and j.parsed["notes"]
        assert j.scores == {"official": 0.0, "f1": 0.0}
    score = bench.aggregate(judged)
    for key in ("official", "AP", "AP15", "AP25", "AP50", "AR", "reward"):
        assert score.variants[key] == 0.0, key
    assert bench.judge(items[0], None).scores["official"] == 0.0  # type: ignore[arg-type]


def test_rejudge_from_judged_item_and_duplicates(omni3d: Path) -> None:
    bench = SunRGBDDet3D()
    items = list(bench.read(omni3d))
    reply = _reply(items[0].truth["boxes"], "box")
    first = bench.judge(items[0], reply)
    again = bench.judge(first, reply)
    assert again == first
    score = bench.aggregate([first, again])
    assert score.items == 1 and score.official == pytest.approx(1.0)
    assert bench.aggregate([]).official is None


# -- the VST release's question-format JSON ------------------------------------------------
def _write_vst_release(root: Path, with_prompts: bool = True) -> list[dict]:
    """Two SUN RGB-D questions in the release's QA format (images 64x48)."""
    ds = root / "sunrgbd"
    (ds / "annotations").mkdir(parents=True)
    (ds / "sunrgbd/val").mkdir(parents=True)
    gt = []
    for n, (cat, boxes) in enumerate(
        [
            ("chair", [[0.1, 0.2, 2.0, 0.5, 0.8, 0.5, 0.0, 30.0, 0.0]]),
            (
                "table",
                [
                    [-0.5, 0.4, 3.0, 1.2, 0.7, 0.8, 0.0, -10.0, 0.0],
                    [0.8, 0.4, 4.0, 1.0, 0.7, 0.6, 5.0, 0.0, 0.0],
                ],
            ),
        ]
    ):
        name = f"{n:06d}.jpg"
        Image.new("RGB", (64, 48), (90, 90, 90)).save(ds / "sunrgbd/val" / name)
        gt.append(
            {
                "uid": f"sun_{n}",
                "image_path": f"sunrgbd/val/{name}",
                "height": 48,
                "width": 64,
                "category": cat,
                "camera_intrinsics": {"fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0},
                "answer": boxes,
            }
        )
    (ds / "annotations/sunrgbd_total3d_val_metaqa_20250321.json").write_text(json.dumps(gt))
    if with_prompts:
        prompts = [{"uid": g["uid"], "image_path": g["image_path"], "question": "..."} for g in gt]
        (ds / "annotations/sunrgbd_val_total3d-prompt_v4_norm.json").write_text(
            json.dumps(prompts[::-1])
        )
    return gt


def test_vst_release_format(tmp_path: Path) -> None:
    gt = _write_vst_release(tmp_path)
    write_omni3d_fixture(tmp_path / "omni")  # both present: auto prefers the release's file
    shutil.copytree(tmp_path / "omni/datasets/Omni3D", tmp_path / "Omni3D")
    bench = SunRGBDDet3D()
    items = list(bench.read(tmp_path))
    assert [i.id for i in items] == ["sun_1", "sun_0"]  # the prompt file's order
    assert items[0].truth["boxes"] == gt[1]["answer"]
    assert items[0].truth["ignore"] == [False, False]
    assert items[0].truth["camera"]["fx"] == 50.0
    assert "Detect every table" in items[0].request.messages[1]["content"][-1]["text"]
    judged = [bench.judge(i, _reply(i.truth["boxes"], "anything")) for i in items]
    score = bench.aggregate(judged)
    assert score.official == pytest.approx(1.0) and score.variants["AP"] == pytest.approx(1.0)
    assert any("sunrgbd_total3d_val_metaqa_20250321.json" in n for n in score.notes)
    # one of two tables found: precision 1 up to recall 1/2, i.e. at 51 of the 101 recall
    # points (0.00..0.50), 0 beyond -> table AP 51/101
    half = bench.judge(items[0], _reply([gt[1]["answer"][1]], "table"))
    score = bench.aggregate([half, judged[1]])
    assert score.breakdown["category_AP"] == pytest.approx({"chair": 1.0, "table": 51 / 101})
    assert score.variants["AP"] == pytest.approx((1.0 + 51 / 101) / 2)
    assert score.variants["AR"] == pytest.approx((1.0 + 0.5) / 2)
    # source="omni3d" forces the Omni3D file
    omni = list(SunRGBDDet3D(source="omni3d").read(tmp_path / "omni/datasets"))
    assert omni[0].id == "900001:box"


def test_vst_release_bad_items_name_the_file(tmp_path: Path) -> None:
    gt = _write_vst_release(tmp_path, with_prompts=False)
    path = tmp_path / "sunrgbd/annotations/sunrgbd_total3d_val_metaqa_20250321.json"
    assert [i.id for i in SunRGBDDet3D().read(tmp_path)] == ["sun_0", "sun_1"]
    for bad, why in (
        ({"answer": [[1, 2, 3]]}, "answer must be a list of 9-number boxes"),
        ({"category": "spaceship"}, "not in the dataset's set"),
        ({"camera_intrinsics": {"fx": "a"}}, "fx must be a finite number"),
        ({"image_path": "sunrgbd/val/nothere.jpg"}, "not found"),
        ({"image_path": "../../../etc/passwd"}, "not found"),
        ({"width": 65}, "image is 64x48"),
    ):
        broken = [dict(gt[0], **bad), gt[1]]
        path.write_text(json.dumps(broken))
        with pytest.raises(BenchmarkDataError, match=re.escape(path.name)) as err:
            list(SunRGBDDet3D().read(tmp_path))
        assert why in str(err.value)
    path.write_text(json.dumps(gt))
    prompts = path.parent / "sunrgbd_val_total3d-prompt_v4_norm.json"
    prompts.write_text(json.dumps([{"question_id": "sun_7", "question": "?"}]))
    with pytest.raises(BenchmarkDataError, match=re.escape(prompts.name)):
        list(SunRGBDDet3D().read(tmp_path))
