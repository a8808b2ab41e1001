"""3D detection at inference (vst.models.detect, vst detect): the prompt is the engine's, the
ground-truth answer comes back as boxes that land on the objects, garbage never crashes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app
from vst.engine.context import EngineContext
from vst.engine.detection import category_answer
from vst.engine.imaging import smart_resize
from vst.engine.registry import get_task
from vst.geometry.bev import BEV_COLORS
from vst.geometry.boxes import box3d_corners
from vst.geometry.cameras import UNIFIED_FOCAL, Intrinsics, fov_from_focal, project_points
from vst.geometry.overlay import box_segments, draw_boxes
from vst.models.backends.base import Sampling
from vst.models.backends.scripted import ScriptedBackend
from vst.models.detect import (
    ASSUMED_HFOV,
    detection_frame,
    detection_request,
    parse_detections,
)
from vst.models.detect_output import CategoryResult, render_outputs, write_outputs
from vst.models.prompts import PLAIN_SYSTEM_PROMPT


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def case(engine_scenes):
    """A frame with two askable categories, its si_det3d sample, the targets per category
    (ids near to far, camera boxes, answer text) and the frame's RGB image."""
    task = get_task("si_det3d")
    ctx = EngineContext()
    for scene in engine_scenes:
        labels = {o.id: o.label for o in scene.objects}
        for frame in scene.frames:
            view = ctx.view(scene, frame)
            cats = task.categories(view, labels)
            if len(cats) < 2:
                continue
            samples = [
                s
                for s in task.generate(scene, np.random.default_rng(0), 200, ctx)
                if s.meta["frame_ids"] == [frame.id]
            ]
            if not samples:
                continue
            truth = {}
            for label, ids in cats.items():
                order, text, _ = category_answer(
                    label, ids, np.stack([view.box_cam(i) for i in ids])
                )
                truth[label] = (text, np.stack([view.box_cam(i) for i in order]))
            image = Image.fromarray(frame.load_image(), "RGB")
            return {"frame": frame, "sample": samples[0], "truth": truth, "image": image}
    pytest.fail("no synthetic frame with two askable categories")


def _intr(frame) -> tuple[float, float, float, float]:
    K = frame.K
    return float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])


def _truth_backend(case) -> ScriptedBackend:
    return ScriptedBackend(lambda request, _i: case["truth"][request.id][0])


def test_request_states_the_camera_exactly_as_the_engine(case):
    sample, frame = case["sample"], case["frame"]
    meta = sample.meta
    label = meta["turns"][0]["label"]
    requests, det = detection_request(
        case["image"],
        categories=[label],
        intrinsics=_intr(frame),
        preamble=meta["preamble"],
        output_line=meta["output_line"],
        phrasing=meta["turns"][0]["phrasing"],
    )
    (request,) = requests
    engine_text = sample.messages[0]["content"][1]["text"]
    assert request.messages[0]["content"][0]["text"] == PLAIN_SYSTEM_PROMPT
    assert [c["type"] for c in request.messages[1]["content"]] == ["image", "text"]
    assert request.messages[1]["content"][1]["text"] == engine_text
    # the same pixels at the same unified size
    assert request.images[0].size == sample.images[0].size
    assert np.array_equal(np.asarray(request.images[0]), np.asarray(sample.images[0]))
    model = det.meta()["model"]
    for key in ("width", "height", "fov_size", "hfov", "vfov", "focal"):
        assert model[key] == meta["unified"][key], key
    # and the numbers are the ones Algorithm 1 gives for this camera
    fx, fy, _, _ = _intr(frame)
    hfov = np.degrees(2 * np.arctan(frame.width / (2 * fx)))
    fw, fh = int(2 * 696.3 * np.tan(np.radians(hfov) / 2)), int(frame.height * 696.3 / fy)
    h, w = smart_resize(fh, fw)
    assert (det.unified.width, det.unified.height) == (w, h) == request.images[0].size
    assert f"hfov={hfov:.2f}" in engine_text and f"width={w}" in engine_text


def test_ground_truth_answer_lands_on_the_objects(case):
    frame = case["frame"]
    requests, det = detection_request(
        case["image"], categories=list(case["truth"]), intrinsics=_intr(frame)
    )
    backend = _truth_backend(case)
    completions = backend.generate(requests, Sampling())
    results = []
    for request, completion in zip(requests, completions, strict=True):
        parsed = parse_detections(completion.text, det, to_original=True)
        assert parsed.notes == []
        _, gt = case["truth"][request.id]
        assert parsed.labels == [request.id] * len(gt)
        # 2-decimal answers: centres/sizes within 5 mm, angles within 0.9 degrees
        np.testing.assert_allclose(parsed.boxes[:, :6], gt[:, :6], atol=0.005 + 1e-9)
        diff = (parsed.boxes[:, 6:] - gt[:, 6:] + 180) % 360 - 180
        assert np.abs(diff).max() <= 0.9 + 1e-9
        want, _ = project_points(box3d_corners(gt).reshape(-1, 3), frame.K)
        got = np.concatenate([d.corners_2d for d in parsed.detections])
        front = np.isfinite(want[:, 0])
        assert front.any()
        assert np.abs(got[front] - want[front]).max() < 2.0
        results.append(CategoryResult(request.id, "", completion.text, None, parsed))
    overlay, bev = render_outputs(case["image"], det, results)
    assert overlay.size == case["image"].size and bev.size == (800, 800)
    pix = np.asarray(overlay)
    checked = 0
    k = 0
    for r in results:
        for d in r.parsed.detections:
            color = np.array(_rgb(BEV_COLORS[k % len(BEV_COLORS)]))
            k += 1
            for u, v in d.corners_2d:
                c, rr = round(u), round(v)
                if not (1 <= c < pix.shape[1] - 1 and 1 <= rr < pix.shape[0] - 1):
                    continue
                window = pix[rr - 1 : rr + 2, c - 1 : c + 2].reshape(-1, 3)
                assert (window == color).all(axis=1).any(), (r.category, u, v)
                checked += 1
    assert checked >= 8  # at least one box's corners inside the picture


def test_to_original_keeps_the_metric_boxes_and_moves_only_the_2d(case):
    frame = case["frame"]
    label = next(iter(case["truth"]))
    text = case["truth"][label][0]
    _, det = detection_request(case["image"], categories=label, intrinsics=_intr(frame))
    model = parse_detections(text, det)
    orig = parse_detections(text, det, to_original=True)
    assert model.camera_name == "model" and orig.camera_name == "original"
    assert np.array_equal(model.boxes, orig.boxes)
    assert [d.given for d in model.detections] == [d.given for d in orig.detections]
    # pixels of the resized image: u' = (u + 0.5) * sx - 0.5 (Intrinsics.scaled)
    sx, sy = det.unified.scale_x, det.unified.scale_y
    for a, b in zip(model.detections, orig.detections, strict=True):
        front = np.isfinite(b.corners_2d[:, 0])
        np.testing.assert_allclose(
            a.corners_2d[front, 0], (b.corners_2d[front, 0] + 0.5) * sx - 0.5
        )
        np.testing.assert_allclose(
            a.corners_2d[front, 1], (b.corners_2d[front, 1] + 0.5) * sy - 0.5
        )
    assert (model.camera.width, model.camera.height) == det.image.size
    assert orig.camera == det.camera
    # the numbers as the model wrote them, angles still / 180
    written = json.loads(text.split("```json")[1].split("```")[0])
    assert [list(d.given) for d in orig.detections] == [e["bbox_3d"] for e in written]
    rec = orig.detections[0].to_json()
    assert rec["rotation"]["euler_xyz_rad"] == pytest.approx(
        np.radians(np.array(written[0]["bbox_3d"][6:]) * 180).tolist()
    )


def test_hfov_only_and_no_intrinsics(case):
    frame = case["frame"]
    fx, _, cx, _ = _intr(frame)
    hfov = fov_from_focal(frame.width, fx)
    label = next(iter(case["truth"]))
    (by_k,), _ = detection_request(case["image"], categories=label, intrinsics=_intr(frame))
    (by_h,), det_h = detection_request(case["image"], categories=label, hfov=hfov)
    # the synthetic camera has square pixels and a centred principal point: same request
    assert det_h.camera.fx == pytest.approx(fx) and det_h.camera.cx == cx
    assert by_h.messages == by_k.messages
    assert not det_h.assumed_intrinsics

    (req,), det = detection_request(case["image"], categories=label)
    assert det.assumed_intrinsics and det.meta()["assumed_intrinsics"] is True
    assert det.camera.hfov == pytest.approx(ASSUMED_HFOV)
    assert fov_from_focal(960, UNIFIED_FOCAL) == pytest.approx(ASSUMED_HFOV)
    assert "hfov=69.16" in req.messages[1]["content"][1]["text"]
    # a 960 px wide image at the assumed hfov is already at the unified focal
    wide = detection_frame(Image.new("RGB", (960, 720)))
    assert wide.fov_size == (959, 719) and wide.unified.focal == 696.3

    with pytest.raises(ValueError, match="not both"):
        detection_frame(case["image"], intrinsics=_intr(frame), hfov=60.0)
    with pytest.raises(ValueError, match="hfov"):
        detection_frame(case["image"], hfov=180.0)
    with pytest.raises(ValueError, match="fx"):
        detection_frame(case["image"], intrinsics=(-1.0, 100.0, 10.0, 10.0))
    with pytest.raises(ValueError, match="category"):
        detection_request(case["image"], categories=[])


GARBAGE = [
    "",
    "I cannot see any chairs here.",
    "```json\n[{'bbox_3d': [1, 2, 3]}]\n```",
    '[{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, 0]}]',  # no label
    '[{"bbox_3d": [0, 0, 2, 1, 1, "1", 0, 0, 0], "label": "chair"}]',
    '[{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, NaN], "label": "chair"}]',
    '[{"bbox_3d": [1e300, 0, 2, 1, 1, 1, 0, 0, 0], "label": "chair"}]',
    '[{"bbox_3d": [0, 0, 2, -1, 1, 1, 0, 0, 0], "label": "chair"}]',
    '[{"bbox_3d": [0, 0, 2, 1, 1, 1, 1e308, 0, 0], "label": "chair"}]',
    "[" * 50_000,
    "{" * 50_000 + "}" * 50_000,
    "<think>the chair is at",
    '```json\n[\n  {"bbox_3d": [0.1, 0.2',
    "\x00\ud800 ```json ``` ``` ```",
]


@pytest.mark.parametrize("text", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_answers_give_no_boxes_and_a_note(case, text, tmp_path):
    _, det = detection_request(case["image"], categories="chair", hfov=70.0)
    parsed = parse_detections(text, det, to_original=True)
    assert parsed.detections == [] and len(parsed.notes) >= 1
    paths = write_outputs(
        tmp_path, case["image"], det, [CategoryResult("chair", "", text, None, parsed)]
    )
    record = json.loads(paths["detections"].read_text())
    assert record["categories"][0]["boxes"] == []


def test_non_string_answer_does_not_crash(case):
    _, det = detection_request(case["image"], categories="chair", hfov=70.0)
    assert parse_detections(None, det).detections == []  # type: ignore[arg-type]


def test_boxes_behind_and_across_the_camera_are_clipped():
    cam = Intrinsics(200.0, 200.0, 159.5, 119.5, 320, 240)
    behind = np.array([0, 0, -3, 1, 1, 1, 0, 0, 0], dtype=float)
    across = np.array([0, 0, 0.2, 1, 1, 1, 0, 30, 0], dtype=float)  # spans z = -0.3 .. 0.7
    assert box_segments(behind, cam) == []
    segs = box_segments(across, cam)
    assert 0 < len(segs) < 12
    pts = np.array([p for s in segs for p in s])
    assert np.isfinite(pts).all()
    assert (pts[:, 0] >= -320 - 1e-9).all() and (pts[:, 0] <= 640 + 1e-9).all()
    image = Image.new("RGB", (320, 240), (0, 0, 0))
    drawn = draw_boxes(image, np.stack([behind, across]), ["a", "b"], cam, ["red", "blue"])
    arr = np.asarray(drawn)
    assert (arr == [0, 0, 255]).all(axis=2).sum() > 100  # the box crossing the camera shows
    assert not (arr == [255, 0, 0]).all(axis=2).any()  # the one behind does not
    assert np.asarray(image).max() == 0  # the input image is not drawn on


def test_outputs_are_deterministic(case, tmp_path):
    frame = case["frame"]
    requests, det = detection_request(
        case["image"], categories=list(case["truth"]), intrinsics=_intr(frame)
    )
    results = [
        CategoryResult(
            r.id,
            "",
            case["truth"][r.id][0],
            None,
            parse_detections(case["truth"][r.id][0], det, True),
        )
        for r in requests
    ]
    a = write_outputs(tmp_path / "a", case["image"], det, results)
    b = write_outputs(tmp_path / "b", case["image"], det, results)
    for name in ("detections", "overlay", "bev"):
        assert a[name].read_bytes() == b[name].read_bytes(), name


# --------------------------------------------------------------------------- the CLI


@pytest.fixture()
def cli(case, tmp_path, monkeypatch):
    """The CLI with open_backend answering the ground truth; the frame saved as a PNG."""
    import vst.models.backends.factory as factory

    opened = []

    def fake_open(model, kind="auto", cache_dir=None, **options):
        opened.append((model, kind, options))
        return _truth_backend(case)

    monkeypatch.setattr(factory, "open_backend", fake_open)
    path = tmp_path / "frame.png"
    case["image"].save(path)
    return {"image": path, "opened": opened, "out": tmp_path / "out"}


def _run(args):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_cli_end_to_end(case, cli):
    fx, fy, cx, cy = _intr(case["frame"])
    cats = list(case["truth"])
    args = ["detect", str(cli["image"]), "--model", "some/dir", "--out", str(cli["out"])]
    args += ["--fx", str(fx), "--fy", str(fy), "--cx", str(cx), "--cy", str(cy)]
    for c in cats:
        args += ["--category", c]
    code, out = _run(args)
    assert code == 0, out
    assert cli["opened"][0][:2] == ("some/dir", "auto")
    for name in ("detections.json", "overlay.png", "bev.png"):
        assert (cli["out"] / name).is_file()
        assert str(cli["out"] / name) in out
    assert "assumed" not in out
    record = json.loads((cli["out"] / "detections.json").read_text())
    assert record["camera"]["fx"] == fx and record["assumed_intrinsics"] is False
    assert [c["category"] for c in record["categories"]] == cats
    K = case["frame"].K
    for entry in record["categories"]:
        _, gt = case["truth"][entry["category"]]
        assert len(entry["boxes"]) == len(gt) and entry["error"] is None
        for box, g in zip(entry["boxes"], gt, strict=True):
            np.testing.assert_allclose(box["center_m"], g[:3], atol=0.005 + 1e-9)
            want, _ = project_points(box3d_corners(g)[0], K)
            got = np.array([[np.nan, np.nan] if c is None else c for c in box["corners_2d"]])
            ok = np.isfinite(want[:, 0])
            assert np.abs(got[ok] - want[ok]).max() < 2.0
    overlay = Image.open(cli["out"] / "overlay.png")
    assert overlay.size == case["image"].size


def test_cli_without_intrinsics_warns_and_records_the_assumption(case, cli):
    label = next(iter(case["truth"]))
    code, out = _run(
        ["detect", str(cli["image"]), "--model", "m", "--category", label, "--out", str(cli["out"])]
    )
    assert code == 0, out
    assert re.search(r"warning: no intrinsics given: assumed hfov=69\.16", out)
    record = json.loads((cli["out"] / "detections.json").read_text())
    assert record["assumed_intrinsics"] is True
    assert record["camera"]["hfov"] == pytest.approx(69.16)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fx", "-5", "--fy", "100"], "--fx must be > 0"),
        (["--fx", "100"], "--fx and --fy"),
        (["--hfov", "60", "--fx", "100", "--fy", "100"], "not both"),
        (["--hfov", "190"], "hfov must be in (0, 180)"),
        (["--fx", "nan", "--fy", "100"], "finite"),
        (["--system", "chatty"], "--system"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(case, cli, extra, message):
    args = ["detect", str(cli["image"]), "--model", "m", "--category", "chair", *extra]
    code, out = _run([*args, "--out", str(cli["out"])])
    assert code == 2, out
    assert message in out and len(out.strip().splitlines()) == 1 and "Traceback" not in out
    assert not cli["out"].exists()


def test_cli_bad_image_exit_2(cli, tmp_path):
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    for path, message in (
        (tmp_path / "missing.jpg", "image not found"),
        (garbage, "cannot read image"),
        (tmp_path, "not a file"),
    ):
        code, out = _run(["detect", str(path), "--model", "m", "--category", "chair"])
        assert code == 2, out
        assert message in out and len(out.strip().splitlines()) == 1


def test_cli_failed_request_is_reported_and_exits_1(case, cli, monkeypatch):
    import vst.models.backends.factory as factory

    def failing(request, _i):
        raise RuntimeError("server said 500")

    monkeypatch.setattr(factory, "open_backend", lambda *a, **k: ScriptedBackend(failing))
    args = ["detect", str(cli["image"]), "--model", "m", "--hfov", "70", "--category", "chair"]
    code, out = _run([*args, "--out", str(cli["out"])])
    assert code == 1
    assert "failed chair: RuntimeError: server said 500" in out
    record = json.loads((cli["out"] / "detections.json").read_text())
    assert record["categories"][0]["error"] == "RuntimeError: server said 500"
