"""VLA readers (LIBERO HDF5, LeRobot v3.0 PNG / v3.0 MP4 / v2.1) and the conversion to the
release's LIBERO parquet, on fixtures written here in the exact on-disk layouts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.vla.convert import (
    ConvertReport,
    episode_records,
    kept_steps,
    prompt_for,
    rotate_180,
    write_libero_parquet,
)
from vst.vla.episodes import Episode, Step
from vst.vla.readers import (
    instruction_from_filename,
    read_lerobot,
    read_libero_folder,
    read_libero_hdf5,
)

H, W = 4, 6
LIBERO_NAME = "KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5"

# demo_0: 7 steps. Expected kept indices [2, 4, 6] (rule of vst.vla.convert):
#  t0 zero move, gripper +1: first step, no kept step yet -> no-op
#  t1 zero move, gripper -1: still no kept step (the gripper change counts only against a kept
#     step) -> no-op
#  t2 moves 0.5 in x                   -> kept
#  t3 zero move, gripper -1 as t2      -> no-op
#  t4 zero move, gripper +1 (changed)  -> kept
#  t5 moves 5e-5 < 1e-4, gripper +1    -> no-op
#  t6 moves 2e-4 in yaw, gripper +1    -> kept
DEMO0_ACTIONS = np.array(
    [
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, -1],
        [0.5, 0, 0, 0, 0, 0, -1],
        [0, 0, 0, 0, 0, 0, -1],
        [0, 0, 0, 0, 0, 0, 1],
        [5e-5, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 2e-4, 1],
    ],
    dtype=np.float64,
)
DEMO0_KEPT = [2, 4, 6]


def marked_frames(n: int, base: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8 frames: zeros except pixel (0, 0) = (base + 10 t + 1, 7, 9)."""
    frames = np.zeros((n, H, W, 3), dtype=np.uint8)
    for t in range(n):
        frames[t, 0, 0] = (base + 10 * t + 1, 7, 9)
    return frames


def write_libero(path: Path, problem_info: str | None = None, drop: str | None = None) -> Path:
    """A LIBERO HDF5 file: demo_0 (7 steps, success) and demo_1 (3 moving steps, failed)."""
    with h5py.File(path, "w") as fh:
        data = fh.create_group("data")
        if problem_info is not None:
            data.attrs["problem_info"] = problem_info
        demos = {
            "demo_0": (DEMO0_ACTIONS, [0, 0, 0, 0, 0, 0, 1]),
            "demo_1": (np.full((3, 7), 0.3), [0, 0, 0]),
        }
        for name, (actions, dones) in demos.items():
            g = data.create_group(name)
            g.create_group("obs").create_dataset(
                "agentview_rgb", data=marked_frames(len(actions), 100 * int(name[-1]))
            )
            if drop != "actions":
                g.create_dataset("actions", data=actions)
            g.create_dataset("dones", data=np.array(dones, dtype=np.uint8))
            g.create_dataset("rewards", data=np.array(dones, dtype=np.float64))
    return path


# ---------------------------------------------------------------- LIBERO HDF5


def test_instruction_from_filename_follows_the_release_rule():
    assert instruction_from_filename(LIBERO_NAME) == "turn on the stove"
    assert (
        instruction_from_filename(
            "LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_and_the_tomato_sauce_in_the_basket"
            "_demo.hdf5"
        )
        == "put both the alphabet soup and the tomato sauce in the basket"
    )
    # libero_spatial names carry no SCENE token: every word is the instruction
    assert (
        instruction_from_filename("pick_up_the_black_bowl_on_the_ramekin_demo.hdf5")
        == "pick up the black bowl on the ramekin"
    )


def test_libero_hdf5_reads_demos_in_order_with_success(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME)
    eps = list(read_libero_hdf5(path))
    assert [e.id for e in eps] == [
        "KITCHEN_SCENE3_turn_on_the_stove_0",
        "KITCHEN_SCENE3_turn_on_the_stove_1",
    ]
    assert [len(e) for e in eps] == [7, 3]
    assert [e.success for e in eps] == [True, False]
    assert eps[0].instruction == "turn on the stove"
    assert eps[0].steps[3].instruction == "turn on the stove"
    np.testing.assert_array_equal(eps[0].steps[2].action, [0.5, 0, 0, 0, 0, 0, -1])
    assert eps[0].steps[2].image.shape == (H, W, 3)
    assert tuple(eps[0].steps[2].image[0, 0]) == (21, 7, 9)
    assert tuple(eps[1].steps[1].image[0, 0]) == (111, 7, 9)
    assert eps[0].source == str(path)


def test_libero_hdf5_problem_info_instruction_wins(tmp_path):
    info = json.dumps({"language_instruction": "open  the top drawer", "problem_name": "x"})
    path = write_libero(tmp_path / LIBERO_NAME, problem_info=info)
    assert next(read_libero_hdf5(path)).instruction == "open the top drawer"


def test_libero_hdf5_bad_inputs_name_file_and_key(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME, drop="actions")
    with pytest.raises(
        ValueError,
        match=r"turn_on_the_stove_demo\.hdf5: missing dataset "
        r"data/demo_0/actions",
    ):
        list(read_libero_hdf5(path))
    junk = tmp_path / "junk_demo.hdf5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"junk_demo\.hdf5: cannot open as HDF5"):
        list(read_libero_hdf5(junk))


# ---------------------------------------------------------------- conversion


def test_kept_steps_rule():
    assert kept_steps(DEMO0_ACTIONS) == DEMO0_KEPT
    # a gripper change after a kept step is kept even without movement; equal gripper is not
    acts = [[0.1, 0, 0, 0, 0, 0, -1], [0, 0, 0, 0, 0, 0, -1], [0, 0, 0, 0, 0, 0, 1]]
    assert kept_steps(np.array(acts)) == [0, 2]


def test_rotate_180_moves_a_pixel_to_the_opposite_corner():
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[0, 0] = (1, 2, 3)
    img[1, 4] = (4, 5, 6)
    out = rotate_180(img)
    assert tuple(out[H - 1, W - 1]) == (1, 2, 3)
    assert tuple(out[H - 2, W - 5]) == (4, 5, 6)
    assert out.sum() == 21


def test_episode_records_from_libero(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME)
    report = ConvertReport()
    recs = [r for e in read_libero_hdf5(path) for r in episode_records(e, "libero_goal", report)]
    assert [r.id for r in recs] == [
        f"libero_goal_KITCHEN_SCENE3_turn_on_the_stove_0_{t}" for t in DEMO0_KEPT
    ]
    assert recs[0].prompt == "What action should the robot take to turn on the stove?"
    # step 2's marker pixel (21, 7, 9) at (0, 0) is now at the opposite corner
    assert tuple(recs[0].image[H - 1, W - 1]) == (21, 7, 9)
    assert tuple(recs[0].image[0, 0]) == (0, 0, 0)
    np.testing.assert_array_equal(recs[1].action, [0, 0, 0, 0, 0, 0, 1])
    assert recs[2].meta == {
        "instruction": "turn on the stove",
        "episode_id": "KITCHEN_SCENE3_turn_on_the_stove_0",
        "step": 6,
        "source": str(path),
    }
    assert (report.episodes_read, report.failed_dropped, report.noop_steps_dropped) == (2, 1, 4)


def test_prompt_text():
    assert prompt_for("put the bowl\non the plate") == (
        "What action should the robot take to put the bowl on the plate?"
    )


def test_write_libero_parquet_layout_and_counts(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME)
    out = tmp_path / "out"
    report = write_libero_parquet(read_libero_hdf5(path), out, "libero_goal", shard_rows=2)
    assert (report.episodes_read, report.failed_dropped) == (2, 1)
    assert (report.noop_steps_dropped, report.records_written) == (4, 3)
    assert [p.name for p in report.files] == [
        "libero_goal-00000.parquet",
        "libero_goal-00001.parquet",
    ]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in report.files]  # no temps
    rows = [r for p in report.files for r in pq.read_table(p).to_pylist()]
    assert [pq.read_metadata(p).num_rows for p in report.files] == [2, 1]
    first = rows[0]
    assert first["id"] == "libero_goal_KITCHEN_SCENE3_turn_on_the_stove_0_2"
    assert first["images"][0]["path"] == "libero_goal_KITCHEN_SCENE3_turn_on_the_stove_0_2.png"
    png = np.asarray(Image.open(io.BytesIO(first["images"][0]["bytes"])))
    assert png.shape == (H, W, 3)
    assert tuple(png[H - 1, W - 1]) == (21, 7, 9)
    meta = first["meta_info"]
    assert meta["action"] is None
    assert meta["action_unnorm"] == pytest.approx([0.5, 0, 0, 0, 0, 0, -1])
    assert meta["language_instruction"] == "turn on the stove"
    assert meta["data_source"] == "libero_goal"
    assert (meta["episode_id"], meta["step"]) == ("KITCHEN_SCENE3_turn_on_the_stove_0", 2)


def test_normalise_hook_fills_action(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME)
    report = write_libero_parquet(
        read_libero_hdf5(path),
        tmp_path / "o",
        "s",
        data_source="libero_goal_no_noops",
        normalise=lambda a: a * 2,
    )
    meta = pq.read_table(report.files[0]).to_pylist()[0]["meta_info"]
    assert meta["action"] == pytest.approx([1.0, 0, 0, 0, 0, 0, -2])
    assert meta["data_source"] == "libero_goal_no_noops"


def test_step_validation():
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        Step(np.zeros((2, 2, 3), np.uint8), np.zeros(6), "x")
    with pytest.raises(ValueError, match="uint8"):
        Step(np.zeros((2, 2, 3), np.float32), np.zeros(7), "x")


# ---------------------------------------------------------------- LeRobot fixtures

FPS = 10
TASKS = ["pick up the bowl", "close the drawer"]
# two episodes: ep 0 (task 1) 3 frames, ep 1 (task 0) 2 frames
EPISODES = [(0, 1, 3), (1, 0, 2)]
LR_H, LR_W = 32, 48


def lr_actions(ep: int, n: int) -> list[list[float]]:
    """Episode ``ep``'s actions: frame f moves x by (ep + 1) / 10 * f (frame 0 is a no-op)."""
    return [[(ep + 1) / 10 * f, 0, 0, 0, 0, 0, -1.0] for f in range(n)]


def lr_frame(ep: int, f: int) -> np.ndarray:
    """A flat-coloured frame (video-friendly) with a bright top-left quadrant."""
    img = np.full((LR_H, LR_W, 3), (40 + 60 * ep, 30 * f + 20, 90), dtype=np.uint8)
    img[: LR_H // 2, : LR_W // 2] = (230, 230, 230)
    return img


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def features(kind: str) -> dict:
    return {
        "observation.images.image": {"dtype": kind, "shape": [LR_H, LR_W, 3]},
        "action": {"dtype": "float32", "shape": [7]},
        "timestamp": {"dtype": "float32", "shape": [1]},
        "frame_index": {"dtype": "int64", "shape": [1]},
        "episode_index": {"dtype": "int64", "shape": [1]},
        "index": {"dtype": "int64", "shape": [1]},
        "task_index": {"dtype": "int64", "shape": [1]},
    }


def frame_rows(ep: int, task: int, n: int, start: int, images: bool) -> list[dict]:
    rows = []
    for f, act in enumerate(lr_actions(ep, n)):
        row = {
            "action": act,
            "timestamp": f / FPS,
            "frame_index": f,
            "episode_index": ep,
            "index": start + f,
            "task_index": task,
        }
        if images:
            row["observation.images.image"] = {"bytes": png_bytes(lr_frame(ep, f)), "path": ""}
        rows.append(row)
    return rows


def frame_schema(images: bool) -> pa.Schema:
    fields = [
        ("action", pa.list_(pa.float32())),
        ("timestamp", pa.float32()),
        ("frame_index", pa.int64()),
        ("episode_index", pa.int64()),
        ("index", pa.int64()),
        ("task_index", pa.int64()),
    ]
    if images:
        fields.append(("observation.images.image", IMAGE_STRUCT))
    return pa.schema(fields)


def write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = LR_W, LR_H, "yuv420p"
        stream.bit_rate = 4_000_000
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_v3(root: Path, kind: str) -> Path:
    """A LeRobot v3.0 dataset: both episodes in data/chunk-000/file-000.parquet; images as PNG
    structs (``kind="image"``) or one MP4 holding both episodes back to back (``"video"``)."""
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    info = {
        "codebase_version": "v3.0",
        "fps": FPS,
        "features": features(kind),
        "total_episodes": 2,
        "total_frames": 5,
        "total_tasks": 2,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        if kind == "video"
        else None,
        "robot_type": "panda",
        "splits": {"train": "0:2"},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    pq.write_table(pa.table({"task_index": [0, 1], "task": TASKS}), root / "meta" / "tasks.parquet")
    rows, ep_rows, start, frames = [], [], 0, []
    for ep, task, n in EPISODES:
        rows += frame_rows(ep, task, n, start, images=kind == "image")
        ep_row = {
            "episode_index": ep,
            "tasks": [TASKS[task]],
            "length": n,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
        }
        if kind == "video":
            key = "videos/observation.images.image"
            ep_row |= {
                f"{key}/chunk_index": 0,
                f"{key}/file_index": 0,
                f"{key}/from_timestamp": start / FPS,
                f"{key}/to_timestamp": (start + n) / FPS,
            }
            frames += [lr_frame(ep, f) for f in range(n)]
        ep_rows.append(ep_row)
        start += n
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(rows, schema=frame_schema(kind == "image")),
        root / "data" / "chunk-000" / "file-000.parquet",
    )
    pq.write_table(
        pa.Table.from_pylist(ep_rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    )
    if kind == "video":
        write_mp4(
            root / "videos" / "observation.images.image" / "chunk-000" / "file-000.mp4", frames
        )
    return root


def write_v21(root: Path) -> Path:
    """A LeRobot v2.1 dataset: one parquet per episode, PNG structs, jsonl metadata."""
    (root / "meta").mkdir(parents=True)
    info = {
        "codebase_version": "v2.1",
        "fps": FPS,
        "features": features("image"),
        "total_episodes": 2,
        "total_frames": 5,
        "total_tasks": 2,
        "total_chunks": 1,
        "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": (
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        ),
        "splits": {"train": "0:2"},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS))
    )
    lines, start = [], 0
    (root / "data" / "chunk-000").mkdir(parents=True)
    for ep, task, n in EPISODES:
        lines.append(json.dumps({"episode_index": ep, "tasks": [TASKS[task]], "length": n}))
        pq.write_table(
            pa.Table.from_pylist(frame_rows(ep, task, n, start, True), schema=frame_schema(True)),
            root / "data" / "chunk-000" / f"episode_{ep:06d}.parquet",
        )
        start += n
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    return root


def check_lerobot_episodes(eps: list[Episode], root: Path, atol: int) -> None:
    assert [e.id for e in eps] == ["1_0", "0_1"]
    assert [e.instruction for e in eps] == ["close the drawer", "pick up the bowl"]
    assert [len(e) for e in eps] == [3, 2]
    assert [e.success for e in eps] == [None, None]
    assert eps[0].source == str(root)
    np.testing.assert_allclose(eps[0].steps[2].action, [0.2, 0, 0, 0, 0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(eps[1].steps[1].action, [0.2, 0, 0, 0, 0, 0, -1], atol=1e-6)
    for e, ep in zip(eps, (0, 1), strict=True):
        for f, step in enumerate(e.steps):
            want = lr_frame(ep, f).astype(int)
            assert step.image.shape == (LR_H, LR_W, 3)
            assert np.abs(step.image.astype(int) - want).max() <= atol, (ep, f)


def test_lerobot_v3_png(tmp_path):
    root = write_v3(tmp_path / "ds", "image")
    check_lerobot_episodes(list(read_lerobot(root)), root, atol=0)
    assert [e.id for e in read_lerobot(root, episodes={1})] == ["0_1"]


def test_lerobot_v3_mp4(tmp_path):
    root = write_v3(tmp_path / "ds", "video")
    eps = list(read_lerobot(root))
    # lossy mpeg4 / yuv420p: flat colours come back within a few levels; the episode-1 frames
    # (from_timestamp 0.3 s) differ from episode 0's by 60 in red, so a wrong seek would fail
    check_lerobot_episodes(eps, root, atol=12)
    means = [float(s.image[LR_H // 2 :, :, 0].mean()) for e in eps for s in e.steps]
    assert means == pytest.approx([40, 40, 40, 100, 100], abs=4)


def test_lerobot_v21(tmp_path):
    root = write_v21(tmp_path / "ds")
    check_lerobot_episodes(list(read_lerobot(root)), root, atol=0)


def test_lerobot_conversion(tmp_path):
    root = write_v3(tmp_path / "ds", "image")
    report = write_libero_parquet(read_lerobot(root), tmp_path / "out", "libero_object")
    # frame 0 of each episode has zero movement -> 2 no-ops dropped, 3 records
    assert (report.episodes_read, report.failed_dropped) == (2, 0)
    assert (report.noop_steps_dropped, report.records_written) == (2, 3)
    rows = pq.read_table(report.files[0]).to_pylist()
    assert [r["id"] for r in rows] == [
        "libero_object_1_0_1",
        "libero_object_1_0_2",
        "libero_object_0_1_1",
    ]
    assert rows[2]["meta_info"]["language_instruction"] == "pick up the bowl"
    png = np.asarray(Image.open(io.BytesIO(rows[0]["images"][0]["bytes"])))
    # the bright top-left quadrant is bottom-right after the 180° rotation
    assert tuple(png[-1, -1]) == (230, 230, 230)
    assert tuple(png[0, 0]) == (40, 50, 90)


def test_lerobot_bad_inputs(tmp_path):
    root = write_v3(tmp_path / "ds", "image")
    with pytest.raises(ValueError, match=r"no feature 'observation.images.wrist'"):
        list(read_lerobot(root, image_key="observation.images.wrist"))
    info = json.loads((root / "meta" / "info.json").read_text())
    info["data_path"] = "../../elsewhere/file-{file_index:03d}.parquet"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="outside"):
        list(read_lerobot(root))
    info["codebase_version"] = "v1.6"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"info\.json: codebase_version 'v1.6'"):
        list(read_lerobot(root))
    root2 = write_v21(tmp_path / "ds2")
    (root2 / "data" / "chunk-000" / "episode_000001.parquet").unlink()
    with pytest.raises(ValueError, match=r"episode_000001\.parquet: missing file"):
        list(read_lerobot(root2))


def test_lerobot_v21_mp4_per_episode_videos(tmp_path):
    root = write_v21(tmp_path / "ds")
    info = json.loads((root / "meta" / "info.json").read_text())
    info["features"]["observation.images.image"]["dtype"] = "video"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    for ep, _task, n in EPISODES:
        path = root / "videos" / "chunk-000" / "observation.images.image"
        write_mp4(path / f"episode_{ep:06d}.mp4", [lr_frame(ep, f) for f in range(n)])
    check_lerobot_episodes(list(read_lerobot(root)), root, atol=12)


def test_lerobot_v3_tasks_parquet_as_pandas_writes_it(tmp_path):
    import pandas as pd

    root = write_v3(tmp_path / "ds", "image")
    # lerobot writes a DataFrame indexed by the task text; pandas stores the index as a column
    frame = pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(TASKS, name="task"))
    frame.to_parquet(root / "meta" / "tasks.parquet")
    assert [e.instruction for e in read_lerobot(root)] == TASKS[::-1]
    pd.DataFrame({"task_index": [0, 1]}, index=TASKS).to_parquet(root / "meta" / "tasks.parquet")
    assert [e.instruction for e in read_lerobot(root)] == TASKS[::-1]


def test_lerobot_next_success_drops_failed_episode(tmp_path):
    root = write_v21(tmp_path / "ds")
    path = root / "data" / "chunk-000" / "episode_000001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("next.success", pa.array([False, False])), path)
    eps = list(read_lerobot(root))
    assert [e.success for e in eps] == [None, False]
    report = write_libero_parquet(eps, tmp_path / "out", "libero_10")
    # episode 0: frame 0 is a no-op, 2 records; episode 1 failed and dropped whole
    assert (report.episodes_read, report.failed_dropped) == (2, 1)
    assert (report.noop_steps_dropped, report.records_written) == (1, 2)


def test_libero_hdf5_group_instead_of_dataset(tmp_path):
    path = tmp_path / LIBERO_NAME
    with h5py.File(path, "w") as fh:
        g = fh.create_group("data/demo_0")
        g.create_group("obs/agentview_rgb")
        g.create_dataset("actions", data=np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"cannot read data/demo_0/obs/agentview_rgb"):
        list(read_libero_hdf5(path))


def test_lerobot_length_mismatch(tmp_path):
    root = write_v21(tmp_path / "ds")
    lines = (root / "meta" / "episodes.jsonl").read_text().replace('"length": 2', '"length": 4')
    (root / "meta" / "episodes.jsonl").write_text(lines)
    with pytest.raises(
        ValueError,
        match=r"episode_000001\.parquet: episode 1: 2 frames, but the "
        "metadata says 4",
    ):
        list(read_lerobot(root))


def test_libero_folder_reads_files_in_name_order(tmp_path):
    write_libero(tmp_path / LIBERO_NAME)
    write_libero(tmp_path / "pick_up_the_bowl_demo.hdf5")
    (tmp_path / "notes.txt").write_text("x")
    eps = list(read_libero_folder(tmp_path))
    assert [e.id for e in eps] == [
        "KITCHEN_SCENE3_turn_on_the_stove_0",
        "KITCHEN_SCENE3_turn_on_the_stove_1",
        "pick_up_the_bowl_0",
        "pick_up_the_bowl_1",
    ]
    assert eps[2].instruction == "pick up the bowl"
    with pytest.raises(ValueError, match=r"no \.hdf5 files"):
        list(read_libero_folder(tmp_path / "empty"))
