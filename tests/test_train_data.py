"""Training data sources, the deterministic mix and the VST-release export, on fixtures written
in each real format (vst shards, LLaVA JSON/JSONL + image folder, HF parquet, release parquet)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.engine.export_release import RELEASE_COLUMNS, export_release
from vst.engine.imaging import decode_image, encode_image
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import ShardWriter, list_shards, sample_row, write_shard
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT
from vst.train.data import DataSource, load_source, mix, open_source, source_from_dict
from vst.train.sources import ItemError

# -- fixtures --------------------------------------------------------------------------------


def _pic(w: int, h: int, seed: int) -> Image.Image:
    """A distinct noise picture (so images are told apart by their pixels)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _png(im: Image.Image) -> bytes:
    return encode_image(im, "PNG")


def txt(text: str) -> dict:
    return {"type": "text", "text": text}


IMG, VID = {"type": "image"}, {"type": "video"}


def _samples() -> list[Sample]:
    """Single image, multi-image (items between texts), a video, multi-turn, and a det3d one."""
    reward = {"mode": "exact", "ground_truth": "x"}
    single = Sample(
        "si_distance",
        "single_image",
        [user(_pic(56, 56, 1), "How far?"), assistant("2.5")],
        [_pic(56, 56, 1)],
        "2.5",
        reward,
        {"k": 1},
    )
    multi = Sample(
        "mi_correspondence",
        "multi_image",
        [user("Image 1:", None, "Image 2:", None, "Which?"), assistant("B")],
        [_pic(84, 56, 2), _pic(56, 84, 3)],
        "B",
        reward,
    )
    frames = [_pic(56, 56, 10 + t) for t in range(4)]
    video = Sample(
        "video_count",
        "video",
        [user(frames, "How many chairs?"), assistant("3")],
        [],
        "3",
        reward,
        {"video_fps": 2.0},
        videos=[frames],
    )
    turns = Sample(
        "si_measurement",
        "single_image",
        [user(None, "Q1?"), assistant("A1"), user("Q2?"), assistant("A2")],
        [_pic(56, 56, 4)],
        "A2",
        reward,
    )
    det = Sample(
        "si_det3d",
        "single_image",
        [user(None, "Find the chair."), assistant('```json\n[{"label": "chair"}]\n```')],
        [_pic(56, 56, 5)],
        "[]",
        reward,
    )
    return [single, multi, video, turns, det]


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    """A vst data folder: the five samples plus one row with undecodable image bytes."""
    out = tmp_path_factory.mktemp("shards") / "data"
    out.mkdir()
    write_shard(out / "shard-00000-aaaaaaaaaaaa.parquet", _samples())
    bad = sample_row(_samples()[0])
    bad["id"] = "broken"
    bad["images"] = [{"bytes": b"not an image", "path": None}]
    with ShardWriter(out / "shard-00001-bbbbbbbbbbbb.parquet") as w:
        w.write(bad)
        w.close()
    return out


# -- vst shards ------------------------------------------------------------------------------


def test_vst_source_whole_chat_pictures_and_skip(shard_dir):
    src = open_source(source_from_dict({"kind": "vst", "path": str(shard_dir)}, "cfg"))
    assert len(src) == 6
    got = {ex.id: ex for ex in src.examples()}
    samples = {s.id: s for s in _samples()}
    assert set(got) == set(samples)
    for sid, s in samples.items():
        ex = got[sid]
        # the whole chat, answer turns included, as the sample has it
        assert ex.messages == s.messages
        assert [m["role"] for m in ex.messages] == [m["role"] for m in s.messages]
        assert ex.meta["task"] == s.task and ex.source == src.name
        # pixels: exactly the stored (encoded) pictures, decoded
        stored = sample_row(s)
        for im, row_im in zip(ex.images, stored["images"], strict=True):
            assert im.tobytes() == decode_image(row_im["bytes"]).tobytes()
    multi = next(ex for ex in got.values() if ex.meta["task"] == "mi_correspondence")
    assert multi.messages[0]["content"] == [
        txt("Image 1:"),
        IMG,
        txt("Image 2:"),
        IMG,
        txt("Which?"),
    ]
    assert [im.size for im in multi.images] == [(84, 56), (56, 84)]
    video = next(ex for ex in got.values() if ex.meta["task"] == "video_count")
    assert len(video.videos) == 1 and len(video.videos[0].frames) == 4
    assert video.videos[0].fps == 2.0 and video.meta["video_fps"] == 2.0
    turns = next(ex for ex in got.values() if ex.meta["task"] == "si_measurement")
    assert [m["role"] for m in turns.messages] == ["user", "assistant", "user", "assistant"]
    assert turns.messages[3]["content"] == [txt("A2")]
    # the broken row is skipped with a reason naming the shard and the sample
    assert len(src.skipped) == 1
    skip = src.skipped[0]
    assert skip.id == "broken" and "shard-00001-bbbbbbbbbbbb.parquet" in skip.reason
    assert "cannot be decoded" in skip.reason


def test_vst_source_split_filter_keeps_only_those_scene_splits(tmp_path):
    reward = {"mode": "exact", "ground_truth": "x"}

    def sample(split: str | None) -> Sample:
        meta = {} if split is None else {"split": split}
        return Sample(
            "si_distance",
            "single_image",
            [user(None, f"Q {split}?"), assistant("2.5")],
            [_pic(56, 56, 1)],
            "2.5",
            reward,
            meta,
        )

    out = tmp_path / "data"
    out.mkdir()
    write_shard(
        out / "shard-00000-cccccccccccc.parquet",
        [sample("train"), sample("test"), sample("train"), sample(None), sample("val")],
    )

    def questions(d: dict) -> list[str]:
        cfg = source_from_dict({"kind": "vst", "path": str(out), **d}, "cfg")
        return [ex.messages[0]["content"][-1]["text"] for ex in load_source(cfg)]

    assert questions({"splits": ["train"]}) == ["Q train?", "Q train?"]
    assert questions({"splits": ["test", "val"]}) == ["Q test?", "Q val?"]
    assert len(questions({})) == 5  # no filter: every row, with or without a split
    with pytest.raises(ValueError, match=r"^cfg: splits: applies to kind vst only$"):
        source_from_dict({"kind": "llava", "path": "x", "splits": ["train"]}, "cfg")


def test_vst_source_task_filter_and_think_system(shard_dir):
    cfg = source_from_dict({"kind": "vst", "path": str(shard_dir), "tasks": ["si_*"]}, "cfg")
    tasks = sorted(ex.meta["task"] for ex in load_source(cfg))
    assert tasks == ["si_det3d", "si_distance", "si_measurement"]
    # CoT data: system think puts the thinking prompt first and requires <think> answers;
    # the fixture's answers have none, so every example is skipped with that reason
    cot = open_source(
        source_from_dict({"kind": "vst", "path": str(shard_dir), "system": "think"}, "cfg")
    )
    assert list(cot.examples()) == []
    reasons = sorted("<think>...</think> answer" in k.reason for k in cot.skipped)
    assert reasons == [False] + [True] * 5  # five without think tags, one undecodable


def test_cot_jsonl_think_prompt(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(_pic(56, 56, 1)))
    recs = [
        {
            "id": "ok",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nHow far?"},
                {"from": "gpt", "value": "<think>It is near the door.</think> 2.5"},
            ],
        },
        {
            "id": "no-think",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nHow far?"},
                {"from": "gpt", "value": "2.5"},
            ],
        },
    ]
    path = tmp_path / "cot.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    src = open_source(
        source_from_dict({"kind": "llava", "path": str(path), "system": "think"}, "c")
    )
    (ex,) = list(src.examples())
    assert ex.id == "ok" and ex.meta["system"] == "think"
    assert ex.messages[0] == {"role": "system", "content": [txt(THINK_SYSTEM_PROMPT)]}
    assert [s.id for s in src.skipped] == ["no-think"]
    assert "<think>...</think> answer" in src.skipped[0].reason


# -- LLaVA -----------------------------------------------------------------------------------


@pytest.fixture
def llava(tmp_path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for k in range(3):
        (root / f"sub/{k}.png").write_bytes(_png(_pic(56, 56, 20 + k)))
    (root / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (tmp_path / "secret.png").write_bytes(_png(_pic(56, 56, 99)))
    for t in range(3):
        (root / f"v{t}.jpg").write_bytes(encode_image(_pic(56, 56, 30 + t)))

    def conv(*turns):
        return [{"from": f, "value": v} for f, v in turns]

    records = [
        {
            "id": "inplace",
            "image": ["sub/0.png", "sub/1.png"],
            "conversations": conv(
                ("human", "Left: <image> right: <image>\nSame object?"),
                ("gpt", "Yes"),
                ("human", "Sure?"),
                ("gpt", "Sure."),
            ),
        },
        {
            "id": "nomarker",
            "image": "sub/2.png",
            "conversations": conv(("human", "What is this?"), ("gpt", "A chair.")),
        },
        {"id": 7, "conversations": conv(("human", "Text only?"), ("gpt", "Yes."))},
        {
            "id": "video",
            "video": ["v0.jpg", "v1.jpg", "v2.jpg"],
            "fps": 4,
            "conversations": conv(("human", "<video>\nWhat moves?"), ("gpt", "Nothing.")),
        },
        {
            "id": "escape",
            "image": "../secret.png",
            "conversations": conv(("human", "<image>\nHi"), ("gpt", "Hi")),
        },
        {
            "id": "absolute",
            "image": str(tmp_path / "secret.png"),
            "conversations": conv(("human", "<image>\nHi"), ("gpt", "Hi")),
        },
        {
            "id": "missing",
            "image": "sub/nope.png",
            "conversations": conv(("human", "<image>\nHi"), ("gpt", "Hi")),
        },
        {
            "id": "count",
            "image": ["sub/0.png"],
            "conversations": conv(("human", "<image> and <image>"), ("gpt", "Hi")),
        },
        {
            "id": "role",
            "image": "sub/0.png",
            "conversations": conv(("human", "<image>"), ("robot", "Hi")),
        },
        {
            "id": "garbage",
            "image": "garbage.png",
            "conversations": conv(("human", "<image>\nHi"), ("gpt", "Hi")),
        },
    ]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records))
    return path


def test_llava_json_placement_paths_and_skips(llava):
    src = open_source(
        source_from_dict(
            {"kind": "llava", "path": str(llava), "images": str(llava.parent / "images")}, "c"
        )
    )
    # indexing skips what it can see without decoding: escapes, missing files, bad structure
    skipped = {s.id: s.reason for s in src.skipped}
    assert set(skipped) == {"escape", "absolute", "missing", "count", "role"}
    assert "outside" in skipped["escape"] and "outside" in skipped["absolute"]
    assert "missing file sub/nope.png" in skipped["missing"]
    assert "2 <image>" in skipped["count"] and "1 image(s)" in skipped["count"]
    assert "robot" in skipped["role"]
    assert all(str(llava) in r for r in skipped.values())
    got = {ex.id: ex for ex in src.examples()}
    assert set(got) == {"inplace", "nomarker", "7", "video"}
    assert "garbage" in src.skipped[-1].id and "cannot read image" in src.skipped[-1].reason
    assert got["inplace"].messages == [
        {"role": "user", "content": [txt("Left:"), IMG, txt("right:"), IMG, txt("Same object?")]},
        {"role": "assistant", "content": [txt("Yes")]},
        {"role": "user", "content": [txt("Sure?")]},
        {"role": "assistant", "content": [txt("Sure.")]},
    ]
    expected = [_pic(56, 56, 20).tobytes(), _pic(56, 56, 21).tobytes()]
    assert [im.tobytes() for im in got["inplace"].images] == expected
    assert got["nomarker"].messages[0]["content"] == [IMG, txt("What is this?")]
    assert got["7"].images == () and got["7"].messages[0]["content"] == [txt("Text only?")]
    v = got["video"]
    assert v.messages[0]["content"] == [VID, txt("What moves?")]
    assert len(v.videos[0].frames) == 3 and v.videos[0].fps == 4.0 and v.meta["video_fps"] == 4.0


def test_llava_jsonl_bad_line_and_default_image_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(_pic(56, 56, 1)))
    good = {
        "id": "g",
        "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>Q"}, {"from": "gpt", "value": "A"}],
    }
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n\n")
    src = open_source(source_from_dict({"kind": "llava", "path": str(path)}, "c"))
    assert [ex.id for ex in src.examples()] == ["g"]
    assert len(src.skipped) == 1 and src.skipped[0].id == "d.jsonl:line 2"
    assert "not JSON" in src.skipped[0].reason


# -- HF parquet ------------------------------------------------------------------------------


def test_hf_parquet_messages_and_images(tmp_path):
    a, b = _pic(56, 56, 40), _pic(84, 56, 41)
    rows = [
        {
            "id": "r0",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "text": None}, {"type": "text", "text": "Q?"}],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "A"}]},
            ],
            "images": [{"bytes": _png(a), "path": "a.png"}],
        },
        {
            "id": None,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Both?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Yes"}]},
            ],
            "images": [{"bytes": _png(a), "path": None}, {"bytes": _png(b), "path": None}],
        },
        {
            "id": "bad",
            "messages": [
                {"role": "user", "content": [{"type": "image", "text": None}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A"}]},
            ],
            "images": [{"bytes": b"junk", "path": "/etc/passwd"}],
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train-0.parquet")
    src = open_source(source_from_dict({"kind": "hf_parquet", "path": str(tmp_path)}, "c"))
    got = list(src.examples())
    assert [ex.id for ex in got] == ["r0", "train-0.parquet:1"]
    assert got[0].messages[0]["content"] == [IMG, txt("Q?")]
    assert got[0].images[0].tobytes() == a.tobytes()
    # no image item: the images go first in the first user turn (TRL's rule)
    assert got[1].messages[0]["content"] == [IMG, IMG, txt("Both?")]
    assert [im.size for im in got[1].images] == [(56, 56), (84, 56)]
    assert [s.id for s in src.skipped] == ["bad"] and "row 2" in src.skipped[0].reason


def test_parquet_folder_with_broken_files(tmp_path):
    """A corrupt file or one without the format's columns is skipped with its reason; the
    other files of the folder are read."""
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 garbage")
    pq.write_table(pa.Table.from_pylist([{"text": "x"}]), tmp_path / "c.parquet")
    src = open_source(source_from_dict({"kind": "hf_parquet", "path": str(tmp_path)}, "c"))
    assert [ex.id for ex in src.examples()] == ["a.parquet:0"]
    reasons = {k.id: k.reason for k in src.skipped}
    assert set(reasons) == {"b.parquet", "c.parquet"}
    assert "not a readable Parquet file" in reasons["b.parquet"]
    assert "no column messages" in reasons["c.parquet"]
    rel = open_source(source_from_dict({"kind": "vst_release", "path": str(tmp_path)}, "c"))
    assert len(rel) == 0 and {k.id for k in rel.skipped} == {"a.parquet", "b.parquet", "c.parquet"}


def test_hf_parquet_string_content(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    (ex,) = load_source(
        source_from_dict({"kind": "hf_parquet", "path": str(tmp_path / "t.parquet")}, "c")
    )
    assert ex.messages == [
        {"role": "user", "content": [txt("Hi")]},
        {"role": "assistant", "content": [txt("Yo")]},
    ]


# -- the release's parquet -------------------------------------------------------------------


def _release_rows() -> list[dict]:
    p = [_png(_pic(56, 56, 50 + k)) for k in range(3)]
    info = json.dumps([{"resized_width": -1, "resized_height": -1, "width": 56, "height": 56}])

    def c(*turns):
        return [{"from": f, "value": v} for f, v in turns]

    return [
        {
            "conversations": c(
                ("human", "<|image_pad|>\nWhat?"),
                ("gpt", "A"),
                ("human", "And <|image_pad|>?"),
                ("gpt", "B"),
            ),
            "id": "flags",
            "data_source": "si",
            "images": [{"bytes": p[0], "path": "x"}, {"bytes": p[1], "path": "y"}],
            "type": "mm_qa",
            "meta_info": info,
        },
        {
            "conversations": c(("human", "<image>\nLegacy?"), ("gpt", "Yes")),
            "id": "legacy",
            "data_source": "llava",
            "images": [{"bytes": p[2], "path": "z"}],
            "type": "unknow",
            "meta_info": info,
        },
        {
            "conversations": c(
                ("gpt", "Hello"), ("human", "Why?"), ("gpt", "<think>Since.</think> So.")
            ),
            "id": "thought",
            "data_source": "cot",
            "images": [{"bytes": b"", "path": ""}],
            "type": "thought_text",
            "meta_info": "[]",
        },
        {
            "conversations": c(
                ("human", "<|video_pad|>These are frames of a video.\nQ"), ("gpt", "A")
            ),
            "id": "mp4",
            "data_source": "video",
            "images": [{"bytes": b"\x00\x00\x00\x18ftypmp42", "path": "/abs/v.mp4"}],
            "type": "video",
            "meta_info": "[]",
        },
        {
            "conversations": c(("human", "<|image_pad|><|image_pad|>Two?"), ("gpt", "A")),
            "id": "mismatch",
            "data_source": "si",
            "images": [{"bytes": p[0], "path": "x"}],
            "type": "mm_qa",
            "meta_info": info,
        },
    ]


def test_vst_release_reader(tmp_path):
    pq.write_table(pa.Table.from_pylist(_release_rows()), tmp_path / "part_0.parquet")
    src = open_source(source_from_dict({"kind": "vst_release", "path": str(tmp_path)}, "c"))
    got = {ex.id: ex for ex in src.examples()}
    plain = {"role": "system", "content": [txt(PLAIN_SYSTEM_PROMPT)]}
    assert got["flags"].messages == [
        plain,
        {"role": "user", "content": [IMG, txt("What?")]},
        {"role": "assistant", "content": [txt("A")]},
        {"role": "user", "content": [txt("And"), IMG, txt("?")]},
        {"role": "assistant", "content": [txt("B")]},
    ]
    assert got["flags"].meta["system"] == "plain" and got["flags"].meta["data_source"] == "si"
    assert [im.tobytes() for im in got["flags"].images] == [
        _pic(56, 56, 50).tobytes(),
        _pic(56, 56, 51).tobytes(),
    ]
    assert got["legacy"].messages[1]["content"] == [IMG, txt("Legacy?")]
    # 'thought' -> thinking prompt; 'text' -> the dummy picture is ignored; a leading gpt turn
    # is dropped as the release does
    th = got["thought"]
    assert th.meta["system"] == "think" and th.images == ()
    assert th.messages == [
        {"role": "system", "content": [txt(THINK_SYSTEM_PROMPT)]},
        {"role": "user", "content": [txt("Why?")]},
        {"role": "assistant", "content": [txt("<think>Since.</think> So.")]},
    ]
    skipped = {s.id: s.reason for s in src.skipped}
    assert "do not match" in skipped["mismatch"]
    try:
        import av  # noqa: F401
    except ImportError:
        assert "needs PyAV" in skipped["mp4"]
    else:
        assert "cannot be decoded" in skipped["mp4"]
    assert set(got) == {"flags", "legacy", "thought"}


def _solid(t: int) -> Image.Image:
    return Image.new("RGB", (64, 48), (t * 12, 255 - t * 12, 100))


def test_release_video_file_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(20):  # 2 s at 10 fps, frame t in its own colour
            for packet in stream.encode(av.VideoFrame.from_image(_solid(t))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    row = {
        "conversations": [
            {"from": "human", "value": "<|video_pad|>Q"},
            {"from": "gpt", "value": "A"},
        ],
        "id": "v",
        "data_source": "d",
        "images": [{"bytes": buf.getvalue(), "path": "v.mp4"}],
        "type": "video",
        "meta_info": "[]",
    }
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "v.parquet")

    def frames_at(fps: float, max_frames: int):
        cfg = {"kind": "vst_release", "path": str(tmp_path), "video_fps": fps}
        (ex,) = load_source(source_from_dict({**cfg, "max_frames": max_frames}, "c"))
        assert ex.messages[1]["content"] == [VID, txt("Q")]
        (video,) = ex.videos
        colours = [np.asarray(f).reshape(-1, 3).mean(0) for f in video.frames]
        picked = [
            int(np.argmin([np.abs(c - _solid(t).getpixel((0, 0))).sum() for t in range(20)]))
            for c in colours
        ]
        return picked, video.fps

    # 2 frames per second: the frames at 0, 0.5, 1.0 and 1.5 s
    assert frames_at(2, 64) == ([0, 5, 10, 15], 2.0)
    # capped at 2 frames: evenly over the 2 s clip, at 1 frame per second
    assert frames_at(2, 2) == ([0, 10], 1.0)


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "needle"),
    [
        ({"kind": "vst", "path": "x", "wieght": 2}, "cfg.yaml data[1]: wieght: unknown field"),
        (
            {"kind": "llava", "path": "x", "tasks": ["a"]},
            "cfg.yaml data[1]: tasks: applies to kind vst only",
        ),
        ({"kind": "vst", "path": "x", "weight": -1}, "cfg.yaml data[1]: weight:"),
        ({"kind": "csv", "path": "x"}, "cfg.yaml data[1]: kind:"),
        ({"path": "x"}, "cfg.yaml data[1]: kind: Field required"),
        ({"kind": "vst", "path": "x", "system": "cot"}, "cfg.yaml data[1]: system:"),
        ("vst", "cfg.yaml data[1]: a data source must be a mapping"),
    ],
)
def test_source_from_dict_errors_name_file_and_field(d, needle):
    with pytest.raises(ValueError) as exc:
        source_from_dict(d, "cfg.yaml data[1]")
    assert str(exc.value).startswith(needle), str(exc.value)
    assert "\n" not in str(exc.value)


def test_source_from_dict_paths_under_base(tmp_path):
    cfg = source_from_dict({"kind": "llava", "path": "d.json", "images": "im"}, "c", base=tmp_path)
    assert cfg.path == tmp_path / "d.json" and cfg.images == tmp_path / "im"
    assert (
        isinstance(cfg, DataSource)
        and cfg.weight == 1.0
        and cfg.label == f"llava:{tmp_path / 'd.json'}"
    )
    with pytest.raises(ValueError, match="does not exist"):
        open_source(cfg)


# -- mixing ----------------------------------------------------------------------------------


def _text_source(tmp_path: Path, name: str, n: int) -> DataSource:
    rows = [
        {
            "id": f"{name}{k}",
            "messages": [
                {"role": "user", "content": f"q{k}"},
                {"role": "assistant", "content": f"a{k}"},
            ],
        }
        for k in range(n)
    ]
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return DataSource(kind="hf_parquet", path=path, name=name)


def test_mix_counts_without_total_weights_scale_each_source(tmp_path):
    a, b, c = (_text_source(tmp_path, n, k) for n, k in (("a", 10), ("b", 7), ("c", 5)))
    mixed, report = mix([a, b, c], weights=[1.0, 0.5, 2.0], seed=3)
    ids = [ex.id for ex in mixed]
    # a: 10 once; b: floor(3.5 + 0.5) = 4 distinct; c: every example exactly twice
    assert len(ids) == 10 + 4 + 10 == report.total
    assert sorted(i for i in ids if i.startswith("a")) == sorted(f"a{k}" for k in range(10))
    bs = [i for i in ids if i.startswith("b")]
    assert len(bs) == len(set(bs)) == 4
    cs = [i for i in ids if i.startswith("c")]
    assert sorted(cs) == sorted([f"c{k}" for k in range(5)] * 2)
    assert [(s.name, s.available, s.drawn, s.unique) for s in report.sources] == [
        ("a", 10, 10, 10),
        ("b", 7, 4, 4),
        ("c", 5, 10, 5),
    ]
    md = report.to_markdown()
    assert "| b | hf_parquet | 0.5 | 7 | 4 | 16.7% | 4 | 0 |" in md
    # interleaved, not one source after another
    assert len({i[0] for i in ids[:10]}) == 3


def test_mix_total_relative_weights_and_determinism(tmp_path):
    a, b = _text_source(tmp_path, "a", 4), _text_source(tmp_path, "b", 50)
    mixed, report = mix([a, b], weights=[3, 1], seed=11, total=10)
    ids = [ex.id for ex in mixed]
    assert sum(i.startswith("a") for i in ids) == 8 and sum(i.startswith("b") for i in ids) == 2
    # 8 draws from 4 examples: two full passes, each example exactly twice
    assert sorted(i for i in ids if i.startswith("a")) == sorted([f"a{k}" for k in range(4)] * 2)
    again, _ = mix([a, b], weights=[3, 1], seed=11, total=10)
    assert [ex.id for ex in again] == ids and again.plan() == mixed.plan()
    # a DataLoader worker gets a pickled copy: same examples, same order
    assert [ex.id for ex in pickle.loads(pickle.dumps(mixed))] == ids
    other, _ = mix([a, b], weights=[3, 1], seed=12, total=10)
    assert [ex.id for ex in other] != ids
    assert [(s.drawn, s.unique) for s in report.sources] == [(8, 4), (2, 2)]
    with pytest.raises(ValueError, match="unique"):
        mix([a, a])


def test_mix_replaces_and_reports_an_example_that_fails_to_decode(shard_dir, tmp_path):
    vst = DataSource(kind="vst", path=shard_dir, name="vst")
    mixed, report = mix([vst], seed=0)
    assert report.total == 6
    got = [ex.id for ex in mixed]
    assert "broken" not in got and len(got) == 6
    (s,) = report.sources
    assert [k.id for k in s.skipped] == ["broken"]
    assert "Skipped from vst:" in report.to_markdown() and "broken" in report.to_markdown()
    assert json.loads(json.dumps(report.to_dict()))["sources"][0]["skipped"] == 1


def test_mix_refuses_a_source_with_nothing_usable(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "x", "image": "gone.png", "conversations": []}]))
    with pytest.raises(ValueError, match=r"data source only: no usable examples, 1 skipped"):
        mix([DataSource(kind="llava", path=path, name="only")])


def test_item_error_carries_id_and_reason():
    e = ItemError("s1", "bad")
    assert (e.id, e.reason, str(e)) == ("s1", "bad", "s1: bad")


# -- export to the release's parquet ---------------------------------------------------------


def test_export_release_columns_flags_types_and_round_trip(shard_dir, tmp_path):
    out = tmp_path / "release"
    result = export_release(list_shards(shard_dir), out)
    # the row whose image bytes are no picture is skipped with the reason
    assert result.rows == 5
    assert result.skipped == [
        ("shard-00001-bbbbbbbbbbbb.parquet", "broken", "image 0 is not a readable picture")
    ]
    table = pq.read_table(result.files[0])
    assert tuple(table.column_names) == RELEASE_COLUMNS
    rows = table.to_pylist()
    by_id = {r["id"]: r for r in rows}
    samples = {s.id: s for s in _samples()}
    for sid, s in samples.items():
        r = by_id[sid]
        text = "".join(c["value"] for c in r["conversations"])
        info = json.loads(r["meta_info"])
        assert len(info) == len(r["images"])
        if s.videos:
            assert r["type"] == "video" and text.count("<|video_pad|>") == 1
            assert len(r["images"]) == 4 and [d["frame_index"] for d in info] == [0, 1, 2, 3]
            assert {d["fps"] for d in info} == {2.0}
        else:
            assert text.count("<|image_pad|>") == len(r["images"]) == len(s.images)
            assert [(d["width"], d["height"]) for d in info] == [im.size for im in s.images]
        assert r["type"] == {"si_det3d": "bbox_3d", "video_count": "video"}.get(s.task, "mm_qa")
        assert r["data_source"] == s.task
        assert [c["from"] for c in r["conversations"]] == [
            {"user": "human", "assistant": "gpt"}[m["role"]] for m in s.messages
        ]
    assert by_id[_samples()[1].id]["conversations"][0]["value"] == (
        "Image 1:\n<|image_pad|>\nImage 2:\n<|image_pad|>\nWhich?"
    )
    # round trip: the release reader gives the same conversations and the same pixels
    back = open_source(DataSource(kind="vst_release", path=out, name="back"))
    orig = open_source(DataSource(kind="vst", path=shard_dir, name="orig"))
    first = {ex.id: ex for ex in orig.examples()}
    again = {ex.id: ex for ex in back.examples()}
    assert set(again) == set(first) and back.skipped == [] and len(again) == 5
    for sid, ex in first.items():
        assert again[sid].messages == [
            {"role": "system", "content": [txt(PLAIN_SYSTEM_PROMPT)]},
            *ex.messages,
        ]
        assert [im.tobytes() for im in again[sid].images] == [im.tobytes() for im in ex.images]
        assert [(len(v.frames), v.fps) for v in again[sid].videos] == [
            (len(v.frames), v.fps) for v in ex.videos
        ]


def test_export_release_skips_a_corrupt_shard(shard_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = list_shards(shard_dir)[0]
    (data / good.name).write_bytes(good.read_bytes())
    (data / "shard-00009-dddddddddddd.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    result = export_release(list_shards(data), tmp_path / "out")
    assert result.rows == 5 and [f.name for f in result.files] == [good.name]
    ((shard, sid, reason),) = result.skipped
    assert (shard, sid) == ("shard-00009-dddddddddddd.parquet", "*")
    assert reason.startswith("cannot read the shard")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [good.name]  # no temporaries


def test_export_release_think_prefix_and_custom_system_skip(tmp_path):
    reward = {"mode": "exact", "ground_truth": "x"}
    sys_turn = {"role": "system", "content": [txt(THINK_SYSTEM_PROMPT)]}
    think = Sample(
        "si_distance",
        "single_image",
        [sys_turn, user(None, "Q"), assistant("<think>r</think> 1")],
        [_pic(56, 56, 1)],
        "1",
        reward,
    )
    custom = Sample(
        "si_distance",
        "single_image",
        [{"role": "system", "content": [txt("Be terse.")]}, user(None, "Q"), assistant("1")],
        [_pic(56, 56, 2)],
        "1",
        reward,
    )
    data = tmp_path / "data"
    data.mkdir()
    write_shard(data / "shard-00000-cccccccccccc.parquet", [think, custom])
    result = export_release(list_shards(data), tmp_path / "out")
    (row,) = pq.read_table(result.files[0]).to_pylist()
    assert row["type"] == "thought_mm_qa" and [c["from"] for c in row["conversations"]] == [
        "human",
        "gpt",
    ]
    assert [(s[1], "custom system prompt" in s[2]) for s in result.skipped] == [(custom.id, True)]
    (ex,) = load_source(DataSource(kind="vst_release", path=tmp_path / "out"))
    assert ex.meta["system"] == "think" and ex.messages[0] == sys_turn


def test_cli_export_vst_release(shard_dir, tmp_path):
    from vst.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app, ["data", "export", str(shard_dir), "--format", "vst-release", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "wrote 5 samples" in res.output and "1 skipped" in res.output
    files = sorted(out.glob("*.parquet"))
    # the second shard holds only the unreadable row: no empty file is written for it
    assert [f.name for f in files] == ["shard-00000-aaaaaaaaaaaa.parquet"]
    res = CliRunner().invoke(
        app, ["data", "export", str(shard_dir), "--format", "nope", "--out", str(out)]
    )
    assert res.exit_code == 2 and "vst-release" in res.output


@pytest.mark.slow
def test_engine_run_exports_and_reads_back_every_task(all_tasks_run, tmp_path):
    """Every task of a real engine run: the release export reads back to the same chats."""
    result = export_release(list_shards(all_tasks_run), tmp_path / "rel")
    assert result.skipped == []
    back = {ex.id: ex for ex in load_source(DataSource(kind="vst_release", path=tmp_path / "rel"))}
    n = 0
    for ex in load_source(DataSource(kind="vst", path=all_tasks_run)):
        assert back[ex.id].messages[1:] == ex.messages
        assert len(back[ex.id].images) == len(ex.images)
        assert [len(v.frames) for v in back[ex.id].videos] == [len(v.frames) for v in ex.videos]
        n += 1
    assert n == result.rows == len(back) > 100
