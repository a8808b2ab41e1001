"""VLAPolicy (constrained action decoding on the tiny checkpoint) and its HTTP server."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.models.vision import fit_image
from vst.vla.cli import vla_app
from vst.vla.convert import prompt_for
from vst.vla.norm_stats import GripperConvention, NormStats, save_norm_stats
from vst.vla.policy import VLAPolicy
from vst.vla.server import PolicyServerThread, decode_image

D = 7


def _stats() -> NormStats:
    """q01 -2 / q99 +2 on dims 0-5 (so unnormalize(x) = 2x), the gripper (dim 6) unmasked,
    stored -1/+1."""
    z = np.zeros(D)
    return NormStats(
        mean=z,
        std=np.ones(D),
        max=np.full(D, 2.0),
        min=np.full(D, -2.0),
        q01=np.array([-2.0] * 6 + [-1.0]),
        q99=np.array([2.0] * 6 + [1.0]),
        mask=np.array([True] * 6 + [False]),
        num_transitions=10,
        num_trajectories=1,
        gripper_dim=6,
    )


def _image(seed: int, size: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _b64(image: np.ndarray, fmt: str = "PNG", uri: bool = False) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    text = base64.b64encode(buf.getvalue()).decode()
    return f"data:image/{fmt.lower()};base64,{text}" if uri else text


@pytest.fixture(scope="module")
def policy(tiny_model_dir: Path) -> VLAPolicy:
    return VLAPolicy(tiny_model_dir, _stats(), vocabulary="last")


class _Spy:
    """Wraps a processor, recording the images of every call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.images: list[Image.Image] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.images.extend(kwargs.get("images") or [])
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# ------------------------------------------------------------------ the policy


def test_added_vocabulary_needs_the_tokens_in_the_checkpoint(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks 256 of the 256 action tokens.*<\|action_0\|>"):
        VLAPolicy(tiny_model_dir, _stats(), vocabulary="added")


def _with_added_tokens(tiny: Path, out: Path, resize: bool) -> Path:
    """A copy of the tiny checkpoint whose tokenizer holds the 256 action tokens (and, with
    ``resize``, whose embeddings have rows for them)."""
    import shutil

    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from vst.vla.action_tokens import ActionTokenizer

    shutil.copytree(tiny, out)
    tok = AutoTokenizer.from_pretrained(str(tiny))
    ActionTokenizer(tok, vocabulary="added")
    tok.save_pretrained(str(out))
    if resize:
        model = AutoModelForImageTextToText.from_pretrained(str(tiny))
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        model.save_pretrained(str(out))
    return out


def test_added_vocabulary_decodes_to_the_added_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    ckpt = _with_added_tokens(tiny_model_dir, tmp_path / "added", resize=True)
    pol = VLAPolicy(ckpt, _stats())  # vocabulary "added" by default
    base = len(pol.processor.tokenizer) - 256  # the tokens come after the tiny vocabulary
    assert pol.action_tokenizer.allowed_ids() == list(range(base, base + 256))
    ids = pol.generate_ids([_image(0), _image(1)], ["go", "pick up the bowl"])
    assert ((ids >= base) & (ids < base + 256)).all()
    action = pol.act(_image(0), "go")
    np.testing.assert_array_equal(action, pol.actions_from_ids(ids[:1])[0])
    assert action[6] in (-1.0, 1.0)


def test_added_tokens_beyond_the_embeddings_are_an_error(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    ckpt = _with_added_tokens(tiny_model_dir, tmp_path / "added", resize=False)
    rows = json.loads((tiny_model_dir / "config.json").read_text())["text_config"]["vocab_size"]
    with pytest.raises(ValueError, match=rf"action id {rows + 255} is beyond the model's {rows} "):
        VLAPolicy(ckpt, _stats())


def test_not_a_checkpoint_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no config\.json"):
        VLAPolicy(tmp_path, _stats(), vocabulary="last")


def test_norm_stats_path_is_read(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = save_norm_stats(_stats(), tmp_path / "norm_stats.json")
    pol = VLAPolicy(tiny_model_dir, path, vocabulary="last")
    assert pol.stats.gripper_dim == 6
    np.testing.assert_array_equal(pol.stats.q99, _stats().q99)


def test_generated_ids_are_action_ids(policy: VLAPolicy) -> None:
    vocab = policy.processor.tokenizer.vocab_size
    images = [_image(k) for k in range(3)]
    ids = policy.generate_ids(images, ["pick up the bowl", "open the drawer", "turn it on"])
    assert ids.shape == (3, D)
    # "last" vocabulary: bin b is id vocab_size - 1 - b
    assert set(ids.ravel().tolist()) <= set(range(vocab - 256, vocab))
    assert set(ids.ravel().tolist()) <= set(policy.action_tokenizer.allowed_ids())


def test_unconstrained_model_would_leave_the_action_ids(policy: VLAPolicy) -> None:
    """The constraint matters: the tiny model's own greedy choice is not an action id."""
    import torch

    from vst.models.processor import model_inputs

    batch = model_inputs(policy.processor, policy.requests([_image(0)], ["pick up the bowl"]))
    with torch.inference_mode():
        logits = policy.model(**batch).logits[0, -1]
    allowed = set(policy.action_tokenizer.allowed_ids())
    assert int(logits.argmax()) not in allowed
    first = int(policy.generate_ids([_image(0)], ["pick up the bowl"])[0, 0])
    masked = logits.clone()
    masked[[i for i in range(masked.shape[0]) if i not in allowed]] = float("-inf")
    assert first == int(masked.argmax())


def test_decoding_ignores_the_generation_config_penalties(
    tiny_model_dir: Path, tmp_path: Path, policy: VLAPolicy
) -> None:
    """A checkpoint's generation_config (Qwen2.5-VL ships repetition_penalty 1.05, sampling
    on) does not change the policy's plain greedy decoding. A penalty of 0.001 would make the
    tiny model repeat its first action token (checked: without the override the ids differ)."""
    import shutil

    copy = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, copy)
    config = json.loads((copy / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=5.0, top_k=50, repetition_penalty=0.001)
    (copy / "generation_config.json").write_text(json.dumps(config))
    penalised = VLAPolicy(copy, _stats(), vocabulary="last")
    images = [_image(3), _image(11)]
    texts = ["pick up the bowl", "open the drawer"]
    np.testing.assert_array_equal(
        penalised.generate_ids(images, texts), policy.generate_ids(images, texts)
    )


def test_actions_from_ids_by_hand(policy: VLAPolicy) -> None:
    vocab = policy.processor.tokenizer.vocab_size
    bins = np.array([[0, 255, 128, 127, 64, 191, 0], [10, 20, 30, 40, 50, 60, 255]])
    ids = vocab - 1 - bins
    got = policy.actions_from_ids(ids)
    centre = -1.0 + (bins + 0.5) / 128.0  # 256 bins on [-1, 1]
    np.testing.assert_allclose(got[:, :6], 2.0 * centre[:, :6])  # q01 -2, q99 2
    assert got[0, 0] == pytest.approx(-2.0 + 1.0 / 128.0)
    assert got[0, 1] == pytest.approx(2.0 - 1.0 / 128.0)
    # gripper: bin 0 (centre < 0) -> open -1, bin 255 -> close +1
    assert got[:, 6].tolist() == [-1.0, 1.0]


def test_gripper_goes_to_the_env_convention(tiny_model_dir: Path) -> None:
    pol = VLAPolicy(
        tiny_model_dir,
        _stats(),
        vocabulary="last",
        env_gripper=GripperConvention("01", close_high=False),
    )
    vocab = pol.processor.tokenizer.vocab_size
    ids = vocab - 1 - np.array([[128] * 6 + [0], [128] * 6 + [255], [128] * 6 + [128]])
    # unit -1 (open) -> 1, unit +1 (close) -> 0; bin 128 (centre +1/256) snaps to close
    assert pol.actions_from_ids(ids)[:, 6].tolist() == [1.0, 0.0, 0.0]


def test_act_gives_seven_finite_values_and_a_binary_gripper(policy: VLAPolicy) -> None:
    image = _image(1)
    action = policy.act(image, "put the bowl on the plate")
    assert action.shape == (D,)
    assert np.isfinite(action).all()
    assert action[6] in (-1.0, 1.0)
    ids = policy.generate_ids([image], ["put the bowl on the plate"])
    np.testing.assert_array_equal(action, policy.actions_from_ids(ids)[0])
    assert np.all(np.abs(action[:6]) <= 2.0)


def test_act_is_deterministic_and_takes_pil(policy: VLAPolicy) -> None:
    image = _image(2)
    a = policy.act(image, "open the drawer")
    b = policy.act(image.copy(), "open the drawer")
    c = policy.act(Image.fromarray(image), "open the drawer")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_batch_equals_one_by_one(policy: VLAPolicy) -> None:
    images = [_image(3), _image(4, size=224), _image(5)]
    texts = ["pick up the black bowl between the plate and the ramekin", "go", "open it"]
    batch_ids = policy.generate_ids(images, texts)
    single_ids = np.concatenate(
        [policy.generate_ids([i], [t]) for i, t in zip(images, texts, strict=True)]
    )
    np.testing.assert_array_equal(batch_ids, single_ids)
    assert len({tuple(row) for row in batch_ids.tolist()}) == 3  # rows differ: a real check
    batch = policy.act_batch(images, texts)
    single = np.stack([policy.act(i, t) for i, t in zip(images, texts, strict=True)])
    np.testing.assert_array_equal(batch, single)
    assert policy.act_batch([], []).shape == (0, D)


def test_rotation_and_fit_reach_the_processor(tiny_model_dir: Path) -> None:
    image = _image(6)
    seen = {}
    for rotate in (True, False):
        pol = VLAPolicy(tiny_model_dir, _stats(), vocabulary="last", rotate=rotate)
        spy = _Spy(pol.processor)
        pol.processor = spy
        pol.act(image, "turn on the stove")
        [fed] = spy.images
        assert fed.size == (252, 252)  # smart resize of 256 x 256
        seen[rotate] = np.asarray(fed)
    want_rot = np.asarray(fit_image(Image.fromarray(image[::-1, ::-1].copy()), 56 * 56, 1003520))
    want_raw = np.asarray(fit_image(Image.fromarray(image), 56 * 56, 1003520))
    np.testing.assert_array_equal(seen[True], want_rot)
    np.testing.assert_array_equal(seen[False], want_raw)
    assert not np.array_equal(seen[True], seen[False])


def test_chat_is_one_user_turn_with_the_training_prompt(policy: VLAPolicy) -> None:
    [request] = policy.requests([_image(0)], ["  pick up\nthe bowl "])
    assert request.messages == [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "What action should the robot take to pick up the bowl?"},
            ],
        }
    ]
    assert prompt_for("pick up the bowl") == request.messages[0]["content"][1]["text"]


def test_chat_text_has_the_default_system_turn_as_in_training(policy: VLAPolicy) -> None:
    [request] = policy.requests([_image(0)], ["pick up the bowl"])
    text = policy.processor.apply_chat_template(
        request.messages, tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "What action should the robot take to pick up the bowl?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_bad_inputs_are_value_errors(policy: VLAPolicy) -> None:
    with pytest.raises(ValueError, match=r"images\[0\]: expected an \(H, W, 3\) uint8"):
        policy.act(np.zeros((8, 8), np.uint8), "go")
    with pytest.raises(ValueError, match=r"images\[0\]"):
        policy.act(np.zeros((8, 8, 3), np.float32), "go")
    with pytest.raises(ValueError, match=r"instructions\[0\]: expected a non-empty string"):
        policy.act(_image(0), "  ")
    with pytest.raises(ValueError, match="2 images for 1 instructions"):
        policy.act_batch([_image(0), _image(1)], ["go"])


# ------------------------------------------------------------------ the server


@pytest.fixture(scope="module")
def server(policy: VLAPolicy):
    with PolicyServerThread(policy, max_image_pixels=300 * 300, max_batch=4) as srv:
        yield srv


def _post(server: PolicyServerThread, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/act", content=content, timeout=60)


def test_server_binds_loopback_and_reports_health(server: PolicyServerThread) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    reply = httpx.get(f"{server.url}/health", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"ok": True, "model": "tiny"}


def test_server_act_matches_the_policy(server: PolicyServerThread, policy: VLAPolicy) -> None:
    image = _image(7)
    want = policy.act(image, "close the microwave").tolist()
    for encoded in (_b64(image), _b64(image, uri=True)):
        reply = _post(server, {"image": encoded, "instruction": "close the microwave"})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"action": want}


def test_server_batch_matches_act_batch(server: PolicyServerThread, policy: VLAPolicy) -> None:
    images = [_image(8), _image(9)]
    texts = ["pick up the ketchup", "put the bowl in the drawer"]
    want = policy.act_batch(images, texts).tolist()
    reply = _post(server, {"images": [_b64(i) for i in images], "instructions": texts})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"actions": want}


def test_server_concurrent_requests(server: PolicyServerThread, policy: VLAPolicy) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cases = [(_image(20 + k), f"task number {k}") for k in range(4)]
    want = [policy.act(i, t).tolist() for i, t in cases]
    with ThreadPoolExecutor(4) as pool:
        replies = list(
            pool.map(lambda c: _post(server, {"image": _b64(c[0]), "instruction": c[1]}), cases)
        )
    assert [r.json() for r in replies] == [{"action": w} for w in want]


def test_server_takes_jpeg(server: PolicyServerThread, policy: VLAPolicy) -> None:
    image = _image(10)
    jpeg = _b64(image, "JPEG", uri=True)
    decoded = decode_image(jpeg)
    assert decoded.shape == (256, 256, 3)
    reply = _post(server, {"image": jpeg, "instruction": "go"})
    assert reply.json() == {"action": policy.act(decoded, "go").tolist()}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body: not valid JSON"),
        ([1, 2], "body: expected a JSON object"),
        ({"instruction": "go"}, "image: required"),
        ({"image": "AAAA"}, "instruction: required"),
        ({"image": "@@not base64@@", "instruction": "go"}, "image: not valid base64"),
        (
            {"image": base64.b64encode(b"hello").decode(), "instruction": "go"},
            "image: cannot decode image (cannot identify image file)",
        ),
        ({"image": "data:image/png,abc", "instruction": "go"}, "image: a data URI must be"),
        ({"image": 5, "instruction": "go"}, "image: expected a base64 PNG or JPEG"),
        ({"image": "PNG", "instruction": 3}, "instruction: expected a non-empty string"),
        ({"images": [], "instructions": []}, "images: expected a non-empty list"),
        ({"images": ["a"], "instructions": "go"}, "instructions: expected a list"),
        ({"images": ["a", "b"], "instructions": ["go"]}, "instructions: 1 for 2 images"),
        ({"images": ["a"] * 5, "instructions": ["go"] * 5}, "images: at most 4 per request"),
        ({"images": ["!"], "instructions": ["go"]}, r"images[0]: not valid base64"),
    ],
)
def test_server_bad_requests_are_400(server: PolicyServerThread, body: Any, field: str) -> None:
    reply = _post(server, body)
    assert reply.status_code == 400
    assert reply.json()["error"].startswith(field)


def test_server_image_over_the_pixel_cap_is_400(server: PolicyServerThread) -> None:
    big = _b64(np.zeros((400, 400, 3), np.uint8))
    reply = _post(server, {"images": [_b64(_image(0)), big], "instructions": ["go", "go"]})
    assert reply.status_code == 400
    assert reply.json() == {
        "error": "images[1]: image of 400x400 pixels exceeds the limit of 90000 pixels "
        "(decompression bomb?)"
    }
    # the server is still up and answers
    assert _post(server, {"image": _b64(_image(0)), "instruction": "go"}).status_code == 200


def test_server_body_cap_is_413(policy: VLAPolicy) -> None:
    with PolicyServerThread(policy, max_body_bytes=1000) as srv:
        reply = _post(srv, {"image": "A" * 2000, "instruction": "go"})
    assert reply.status_code == 413
    assert reply.json() == {"error": "body: exceeds 1000 bytes"}


def test_decode_image_truncated_png() -> None:
    png = base64.b64decode(_b64(_image(0)))
    cut = base64.b64encode(png[: len(png) // 2]).decode()
    with pytest.raises(ValueError, match=r"^image: cannot decode image \(image file is truncated"):
        decode_image(cut)


def test_decode_image_byte_cap() -> None:
    with pytest.raises(ValueError, match="image: larger than 10 bytes"):
        decode_image(_b64(_image(0)), max_bytes=10)
    gif = io.BytesIO()
    Image.fromarray(_image(0, 8)).save(gif, format="GIF")
    with pytest.raises(ValueError, match="image: a GIF image, not PNG or JPEG"):
        decode_image(base64.b64encode(gif.getvalue()).decode())


def test_cli_serve_needs_norm_stats(tiny_model_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(vla_app, ["serve", str(tiny_model_dir), "--vocabulary", "last"])
    assert result.exit_code == 2
    assert "no norm stats (pass --norm-stats)" in " ".join(result.output.split())
    result = runner.invoke(vla_app, ["serve", str(tiny_model_dir), "--vocabulary", "first"])
    assert result.exit_code == 2
    assert "--vocabulary must be added or last" in " ".join(result.output.split())


def test_cli_serve_builds_the_policy_and_serves_it(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vst.vla.server as server_module

    stats = save_norm_stats(_stats(), tmp_path / "norm_stats.json")
    calls = []
    monkeypatch.setattr(
        server_module, "serve_policy", lambda policy, **kw: calls.append((policy, kw))
    )
    args = ["serve", str(tiny_model_dir), "--norm-stats", str(stats), "--vocabulary", "last"]
    result = CliRunner().invoke(vla_app, [*args, "--port", "8123", "--no-rotate"])
    assert result.exit_code == 0, result.output
    [(policy, kw)] = calls
    assert kw == {"host": "127.0.0.1", "port": 8123}
    assert isinstance(policy, VLAPolicy) and policy.rotate is False
    assert policy.vocabulary == "last" and policy.stats.gripper_dim == 6
    assert "http://127.0.0.1:8123/act" in " ".join(result.output.split())
