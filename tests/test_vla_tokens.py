"""vst.vla: normalisation statistics (norm_stats.json), the gripper convention, action tokens."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vst.vla.action_tokens import ActionLogitsProcessor, ActionTokenizer, action_token
from vst.vla.norm_stats import (
    LIBERO_ENV_GRIPPER,
    OPENVLA_RLDS_GRIPPER,
    GripperConvention,
    compute_norm_stats,
    load_norm_stats,
    normalize,
    save_norm_stats,
    to_env_gripper,
    unnormalize,
)


def fixture_actions() -> np.ndarray:
    """101 transitions of 7-D LIBERO-like actions: dim 0 = 0, 1, .., 100 (so q01 = 1, q99 = 99
    exactly), dim 1 = -0.5 * dim 0, dim 2 constant 0.25, dims 3-5 seeded noise, dim 6 the raw
    LIBERO gripper: -1 (open) for the first 60 rows, +1 (close) after."""
    n = 101
    a = np.zeros((n, 7))
    a[:, 0] = np.arange(n, dtype=float)
    a[:, 1] = -0.5 * a[:, 0]
    a[:, 2] = 0.25
    a[:, 3:6] = np.random.default_rng(0).normal(0.0, 0.3, size=(n, 3))
    a[:, 6] = np.where(np.arange(n) < 60, -1.0, 1.0)
    return a


# --------------------------------------------------------------------------- statistics


def test_stats_hand_values_and_numpy():
    a = fixture_actions()
    s = compute_norm_stats(a, num_trajectories=3)
    # dim 0 = 0..100: hand-computed
    assert s.mean[0] == pytest.approx(50.0)
    assert s.std[0] == pytest.approx(math.sqrt((101**2 - 1) / 12))  # population std of 0..100
    assert (s.min[0], s.max[0]) == (0.0, 100.0)
    assert s.q01[0] == pytest.approx(1.0) and s.q99[0] == pytest.approx(99.0)
    assert s.q01[1] == pytest.approx(-49.5) and s.q99[1] == pytest.approx(-0.5)
    assert s.q01[2] == s.q99[2] == 0.25
    # gripper: 60 of 101 rows open (-1)
    assert s.mean[6] == pytest.approx((41 - 60) / 101)
    assert (s.min[6], s.max[6], s.q01[6], s.q99[6]) == (-1.0, 1.0, -1.0, 1.0)
    # every statistic against numpy on all dims
    np.testing.assert_allclose(s.mean, a.mean(0))
    np.testing.assert_allclose(s.std, a.std(0))
    np.testing.assert_allclose(s.q01, np.quantile(a, 0.01, axis=0, method="linear"))
    np.testing.assert_allclose(s.q99, np.quantile(a, 0.99, axis=0, method="linear"))
    assert s.mask.tolist() == [True] * 6 + [False]
    assert (s.num_transitions, s.num_trajectories, s.gripper_dim) == (101, 3, 6)


def test_normalize_hand_values_clip_and_constant_dim():
    s = compute_norm_stats(fixture_actions())
    rows = np.array(
        [
            [50.0, -25.0, 0.25, 0.0, 0.0, 0.0, -1.0],
            [1.0, -0.5, 0.25, 0.0, 0.0, 0.0, 1.0],
            [0.0, 10.0, 3.0, 0.0, 0.0, 0.0, 1.0],  # outside q01/q99 -> clipped
            [25.5, -49.5, 0.25, 0.0, 0.0, 0.0, -1.0],
        ]
    )
    n = normalize(rows, s)
    assert n[0, :3].tolist() == pytest.approx([0.0, 0.0, 0.0])  # constant dim -> 0
    assert n[1, :2].tolist() == pytest.approx([-1.0, 1.0])
    assert n[2, :3].tolist() == pytest.approx([-1.0, 1.0, 0.0])
    assert n[3, :2].tolist() == pytest.approx([-0.5, -1.0])
    assert n[:, 6].tolist() == [-1.0, 1.0, 1.0, -1.0]
    # a single (D,) action keeps its shape
    assert normalize(rows[0], s).shape == (7,)
    # inverse on masked dims; the constant dim comes back as its q01
    back = unnormalize(n, s)
    np.testing.assert_allclose(back[[0, 1, 3]], rows[[0, 1, 3]], atol=1e-12)
    assert back[2, :3].tolist() == pytest.approx([1.0, -0.5, 0.25])  # the clipped values


def test_round_trip_within_q01_q99_on_the_fixture():
    a = fixture_actions()
    s = compute_norm_stats(a)
    inside = np.all((a >= s.q01) & (a <= s.q99) | ~s.mask, axis=1)
    assert inside.sum() >= 90
    np.testing.assert_allclose(unnormalize(normalize(a[inside], s), s), a[inside], atol=1e-12)


def test_unmasked_dim_passes_through_clipped():
    a = fixture_actions()
    s = compute_norm_stats(a, gripper_dim=None)
    s.mask[3] = False
    n = normalize(
        np.array([[50.0, -25.0, 0.25, 0.4, 0.0, 0.0, 1.0], [50, -25, 0.25, 7.0, 0, 0, 1]]), s
    )
    assert n[:, 3].tolist() == [0.4, 1.0]
    assert unnormalize(n, s)[:, 3].tolist() == [0.4, 1.0]


def release_normalize(a: np.ndarray, q01: np.ndarray, q99: np.ndarray) -> np.ndarray:
    """The release's preprocess_libero.py formula, on all dims (mask ignored)."""
    return (a - q01) / (q99 - q01 + 1e-6) * 2 - 1


def test_libero_gripper_stays_pm1_where_the_release_made_minus_three():
    a = fixture_actions()
    s = compute_norm_stats(a)  # gripper_dim 6, GripperConvention("pm1")
    n = normalize(a, s)
    assert sorted(set(n[:, 6].tolist())) == [-1.0, 1.0]
    assert (n[:60, 6] == -1.0).all() and (n[60:, 6] == 1.0).all()
    # the release: raw -1/+1 gripper through OpenVLA's 0/1 gripper statistics
    q01 = s.q01.copy()
    q99 = s.q99.copy()
    q01[6], q99[6] = 0.0, 1.0
    rel = release_normalize(a, q01, q99)
    assert rel[0, 6] == pytest.approx(-3.0, abs=1e-5)  # "open" became -3
    assert rel[-1, 6] == pytest.approx(1.0, abs=1e-5)
    # back to LIBERO's environment: -1 open, +1 close
    back = unnormalize(n, s)
    assert to_env_gripper(back[[0, -1], 6]).tolist() == [-1.0, 1.0]


def test_gripper_conventions():
    g01 = GripperConvention("01")
    assert g01.to_unit([0.0, 1.0, 0.5]).tolist() == [-1.0, 1.0, 0.0]
    assert g01.from_unit([-1.0, 1.0]).tolist() == [0.0, 1.0]
    # OpenVLA RLDS: 0 = close, 1 = open -> unit +1 (close), -1 (open)
    assert OPENVLA_RLDS_GRIPPER.to_unit([0.0, 1.0]).tolist() == [1.0, -1.0]
    assert OPENVLA_RLDS_GRIPPER.from_unit([1.0, -1.0]).tolist() == [0.0, 1.0]
    # data stored 0/1 (1 = open) -> unit -> LIBERO env (-1 open)
    s = compute_norm_stats(
        np.array([[0.1] * 6 + [1.0], [0.2] * 6 + [0.0]]), gripper=OPENVLA_RLDS_GRIPPER
    )
    n = normalize(np.array([[0.1] * 6 + [1.0], [0.2] * 6 + [0.0]]), s)
    assert n[:, 6].tolist() == [-1.0, 1.0]
    assert to_env_gripper(n[:, 6], LIBERO_ENV_GRIPPER).tolist() == [-1.0, 1.0]
    assert unnormalize(n, s)[:, 6].tolist() == [1.0, 0.0]  # the data's own convention
    # binarize: decoded bin centres snap to -1/+1; 0 counts as close
    assert to_env_gripper([-0.2, 0.0, 0.996], binarize=True).tolist() == [-1.0, 1.0, 1.0]
    assert to_env_gripper([-0.996], g01).tolist() == pytest.approx([0.002])
    with pytest.raises(ValueError, match="kind must be"):
        GripperConvention("binary")  # type: ignore[arg-type]


def test_save_load_release_layout(tmp_path):
    s = compute_norm_stats(fixture_actions(), num_trajectories=3)
    path = save_norm_stats(s, tmp_path / "norm_stats.json")
    data = json.loads(path.read_text())
    body = data["norm_stats"]
    assert list(body) == ["action", "proprio", "num_transitions", "num_trajectories"]
    assert list(body["action"]) == ["mean", "std", "max", "min", "q01", "q99", "mask"]
    assert body["action"]["mask"] == [True] * 6 + [False]
    assert body["action"]["q99"][0] == pytest.approx(99.0)
    assert body["proprio"]["mean"] == [0.0] * 7
    assert (body["num_transitions"], body["num_trajectories"]) == (101, 3)
    assert data["vst_gripper"] == {"dim": 6, "kind": "pm1", "close_high": True}
    back = load_norm_stats(path)
    for key in ("mean", "std", "max", "min", "q01", "q99", "mask"):
        np.testing.assert_array_equal(getattr(back, key), getattr(s, key))
    assert (back.gripper_dim, back.gripper) == (6, LIBERO_ENV_GRIPPER)


def test_load_openvla_keyed_form_and_errors(tmp_path):
    stats = {
        "mean": [0.0] * 7,
        "std": [1.0] * 7,
        "max": [1.0] * 7,
        "min": [-1.0] * 7,
        "q01": [-0.5] * 6 + [0.0],
        "q99": [0.5] * 6 + [1.0],
        "mask": [True] * 6 + [False],
    }
    path = tmp_path / "dataset_statistics.json"
    path.write_text(
        json.dumps({"libero_spatial_no_noops": {"action": stats, "num_transitions": 5}})
    )
    s = load_norm_stats(path, gripper_dim=6, gripper=OPENVLA_RLDS_GRIPPER)
    assert s.q99.tolist() == [0.5] * 6 + [1.0] and s.num_transitions == 5
    assert normalize(np.array([0.25] * 6 + [0.0]), s).tolist() == [0.5] * 6 + [1.0]
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"a": {"action": stats}, "b": {"action": stats}}))
    with pytest.raises(ValueError, match=r"two.json: no statistics for dataset None"):
        load_norm_stats(two)
    assert load_norm_stats(two, dataset="b").dim == 7
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"norm_stats": {"action": {k: v for k, v in stats.items() if k != "q99"}}})
    )
    with pytest.raises(ValueError, match=r"bad.json: action statistics lack 'q99'"):
        load_norm_stats(bad)
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"norm_stats": {"action": {**stats, "q01": [0.0] * 6}}}))
    with pytest.raises(ValueError, match=r"short.json: action statistics of different lengths"):
        load_norm_stats(short)
    with pytest.raises(ValueError, match="gripper_dim 6 out of range for 3-D"):
        compute_norm_stats(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="episode_3: actions contain NaN"):
        compute_norm_stats(np.full((2, 7), np.nan), source="episode_3")
    with pytest.raises(ValueError, match=r"normalize: actions of shape \(5,\) for 7-D stats"):
        normalize(np.zeros(5), s)
    with pytest.raises(ValueError, match="unnormalize: actions contain NaN or inf"):
        unnormalize(np.full(7, np.inf), s)


# --------------------------------------------------------------------------- action tokens


@pytest.fixture
def tokenizer(tiny_model_dir):
    """A fresh tokenizer of the tiny checkpoint (adding tokens mutates it)."""
    from vst.models.processor import load_processor

    return load_processor(tiny_model_dir).tokenizer


def test_bins_hand_values():
    t = ActionTokenizer()
    width = 2 / 256
    values = [-1.0, -1 + width, -1 + width - 1e-9, 0.0, -1e-9, 1.0, 1 - 1e-9, -5.0, 5.0]
    assert t.bin_indices(values).tolist() == [0, 1, 0, 128, 127, 255, 255, 0, 255]
    assert t.centres[0] == pytest.approx(-1 + 1 / 256) and t.centres[255] == pytest.approx(
        1 - 1 / 256
    )
    assert t.bin_width == pytest.approx(width)
    with pytest.raises(ValueError, match="no tokenizer attached"):
        t.encode(np.zeros(7))


def test_added_vocabulary_on_the_tiny_tokenizer(tokenizer):
    before = len(tokenizer)
    t = ActionTokenizer(vocabulary="added")
    ids = t.add_to(tokenizer)
    assert ids == list(range(before, before + 256))
    assert len(tokenizer) == before + 256
    assert tokenizer.convert_tokens_to_ids("<|action_255|>") == before + 255
    assert action_token(7) not in tokenizer.all_special_tokens  # added, not special
    action = np.array([-1.0, 0.0, 1.0, 0.5, -0.5, 0.1, -1.0])
    enc = t.encode(action)
    assert enc == [before + b for b in (0, 128, 255, 192, 64, 140, 0)]
    text = t.text(action)
    assert text.startswith("<|action_0|><|action_128|><|action_255|>")
    # the training target re-tokenises to exactly these ids
    assert tokenizer(text, add_special_tokens=False).input_ids == enc
    assert t.allowed_ids() == ids
    # adding again reuses the tokens
    assert ActionTokenizer(tokenizer).allowed_ids() == ids
    with pytest.raises(ValueError, match="id 3 at 1 is not an action token"):
        t.decode([before, 3])
    # batched: (N, D) in, (N, D) out, same values as one at a time
    batch = np.stack([action, -action])
    ids2 = t.encode_batch(batch)
    assert ids2.shape == (2, 7) and ids2[0].tolist() == enc
    np.testing.assert_array_equal(t.decode_batch(ids2), np.stack([t.decode(r) for r in ids2]))
    with pytest.raises(ValueError, match=r"id 5 at \(1, 2\) is not an action token"):
        t.decode_batch([[before] * 3, [before, before, 5]])


def test_last_vocabulary_on_the_tiny_tokenizer(tokenizer):
    v = tokenizer.vocab_size  # 1024 for the tiny BPE
    t = ActionTokenizer(tokenizer, vocabulary="last")
    assert t.allowed_ids()[:2] == [v - 1, v - 2] and t.allowed_ids()[-1] == v - 256
    assert t.encode(np.array([-1.0, 1.0, 0.0])) == [v - 1, v - 256, v - 1 - 128]
    assert t.text(np.array([-1.0, 1.0])) == tokenizer.decode([v - 1, v - 256])


@pytest.mark.parametrize("vocabulary", ["added", "last"])
def test_round_trip_within_half_a_bin(tokenizer, vocabulary):
    t = ActionTokenizer(tokenizer, vocabulary=vocabulary)
    half = t.bin_width / 2

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.floats(min_value=-3.0, max_value=3.0, allow_nan=False), min_size=1, max_size=14)
    )
    def check(values):
        a = np.asarray(values)
        ids = t.encode(a)
        assert len(ids) == len(a) and set(ids) <= set(t.allowed_ids())
        back = t.decode(ids)
        assert np.all(np.abs(back - np.clip(a, -1.0, 1.0)) <= half + 1e-12)

    check()


def test_round_trip_through_normalisation_respects_the_mask(tokenizer):
    a = fixture_actions()
    s = compute_norm_stats(a)
    t = ActionTokenizer(tokenizer)
    half_bin = 1 / 256
    for row in a[::10]:
        n = normalize(row, s)
        back = unnormalize(t.decode(t.encode(n)), s)
        span = s.q99 - s.q01
        err = np.abs(back - np.clip(row, s.q01, s.q99))
        # masked dims: half a bin in normalised units, i.e. span / 2 * half_bin raw
        assert np.all(err[:6] <= span[:6] / 2 * half_bin + 1e-9)
        # the gripper (unmasked): the bin centre, sign kept
        assert (
            abs(back[6] - row[6]) <= half_bin and to_env_gripper(back[6], binarize=True) == row[6]
        )


def test_constrained_greedy_step_never_picks_a_non_action_id(tokenizer):
    import torch

    t = ActionTokenizer(tokenizer)
    allowed = set(t.allowed_ids())
    width = len(tokenizer)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.randn(4, width, generator=gen)
        scores[:, : width - 256] += 100.0  # non-action ids would win unconstrained
        assert not set(scores.argmax(-1).tolist()) & allowed
        picked = t.mask_logits(scores).argmax(-1).tolist()
        assert set(picked) <= allowed
        best = [t.allowed_ids()[int(i)] for i in scores[:, t.allowed_ids()].argmax(-1)]
        assert picked == best
    scores_np = np.random.default_rng(1).normal(size=(3, width))
    masked = t.mask_logits(scores_np)
    assert set(masked.argmax(-1).tolist()) <= allowed
    assert np.isneginf(masked[:, 0]).all()
    with pytest.raises(ValueError, match="scores of width 10 lack id"):
        t.mask_logits(np.zeros((1, 10)))


def test_constrained_generate_on_the_tiny_model(tokenizer, tiny_model_dir):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny_model_dir)).eval()
    t = ActionTokenizer(tokenizer, vocabulary="last")  # ids inside the embedding table
    assert isinstance(t.logits_processor(), ActionLogitsProcessor)
    ids = tokenizer("What action should the robot take to", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=7,
            min_new_tokens=7,
            do_sample=False,
            logits_processor=[t.logits_processor()],
        )
    new = out[0, ids.shape[1] :].tolist()
    assert len(new) == 7 and set(new) <= set(t.allowed_ids())
    assert t.decode(new).shape == (7,)
