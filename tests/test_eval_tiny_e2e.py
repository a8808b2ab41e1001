"""Every benchmark end to end on the tiny checkpoint: fixtures in the benchmarks' real formats,
the transformers backend, and the same model served by `vst models serve` and asked through the
openai backend: every item answered and judged, the same predictions both ways (videos aside:
their frames travel as JPEG), and the run's report."""

from __future__ import annotations

import json
import shutil

import pytest

from vst.eval.harness import predictions_path, run_benchmark
from vst.eval.registry import BENCHMARKS, get_benchmark
from vst.eval.report import write_report
from vst.testing.bench_fixtures_3dsr import write_3dsr_tsv
from vst.testing.bench_fixtures_blink import write_blink
from vst.testing.bench_fixtures_cvbench import write_cvbench
from vst.testing.bench_fixtures_mmsi import write_mmsi_parquet
from vst.testing.bench_fixtures_vsibench import write_vsibench
from vst.testing.omni3d_fixture import write_omni3d_fixture

PUBLIC = ("cvbench", "blink", "3dsrbench", "mmsi", "vsibench", "det3d-sunrgbd")


def _data_root(tmp_path):
    root = tmp_path / "data"
    write_cvbench(root / "cvbench")
    write_blink(root / "blink")
    write_3dsr_tsv(root / "3dsrbench")
    write_mmsi_parquet(root / "mmsi")
    write_vsibench(root / "vsibench")
    fx = write_omni3d_fixture(tmp_path / "omni")
    ark = fx.image_root / "ARKitScenes/test/90000001"
    shutil.copy(ark / "90000001_100.000.jpg", ark / "90000001_101.000.jpg")
    (root / "det3d-sunrgbd").symlink_to(fx.image_root)
    return root


@pytest.mark.slow
def test_every_benchmark_runs_on_the_tiny_model_locally_and_served(tiny_model_dir, tmp_path):
    from vst.models.backends import open_backend
    from vst.models.backends.openai import OpenAIBackend
    from vst.models.server import ServerThread, create_app

    assert set(PUBLIC) < set(BENCHMARKS)
    root = _data_root(tmp_path)
    local = open_backend(tiny_model_dir, batch_size=4)
    try:
        with ServerThread(create_app(local, "tiny")) as server:
            client = OpenAIBackend(server.url, timeout=300.0)
            for name in PUBLIC:
                bench = get_benchmark(name)
                a = run_benchmark(bench, local, root, tmp_path / "local", limit=3)
                b = run_benchmark(bench, client, root, tmp_path / "served", limit=3)
                assert a.items == b.items > 0 and not a.failed and not b.failed, name
                assert a.score.variants and "official" in a.score.variants, name
                la = predictions_path(tmp_path / "local", name).read_text().splitlines()
                lb = predictions_path(tmp_path / "served", name).read_text().splitlines()
                for x, y in zip(map(json.loads, la), map(json.loads, lb), strict=True):
                    assert x["id"] == y["id"] and set(x["scores"]) == set(y["scores"])
                    if name != "vsibench":  # video frames travel as JPEG over HTTP
                        assert (x["request"], x["text"], x["scores"]) == (
                            y["request"],
                            y["text"],
                            y["scores"],
                        ), name
            client.close()
    finally:
        local.close()
    md, _, png = write_report(tmp_path / "local")
    text = md.read_text()
    assert all(f"| {name} |" in text for name in PUBLIC) and png.is_file()
