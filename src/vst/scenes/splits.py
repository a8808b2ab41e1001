"""Benchmark-leakage guard: which scenes evaluation benchmarks use.

Training data must not come from scenes an evaluation benchmark tests on. A
:class:`BenchmarkRegistry` maps ``(dataset, scene_id)`` to the benchmarks that use that scene.
Scene ids are spelled as their datasets spell them: ``scene0251_00`` (ScanNet), 10-digit hex ids
such as ``7b6477cb95`` (ScanNet++), numeric video ids as strings such as ``41069025``
(ARKitScenes); SUN RGB-D test images in both spellings: image folders such as
``kv1/NYUdata/NYU0001`` (:func:`sunrgbd_scene_id`, ``sunrgbd_test_folders.json``) and 1-based
SUNRGBDMeta image ids zero-padded to 6 digits such as ``000001`` (``sunrgbd_test.json``;
:func:`normalize_scene_id` pads digit-only SUN RGB-D ids).

vst ships benchmark lists as JSON files in ``vst/scenes/data/`` (see :func:`shipped_benchmark_lists`
for their sources): VSI-Bench's 288 scenes (``benchmark_scenes.json``), the ARKitScenes 3DOD
validation fold, ScanNet v2 val, ScanNet++ ``nvs_sem_val`` and the SUN RGB-D test split.
:meth:`BenchmarkRegistry.load_default` reads every shipped file (sorted by name; the union of all
of them) and, when the shared data folder is present, also the VSI-Bench metadata the VSI-Bench
file was copied from (union, so the guard never shrinks). The shared folder is found, in order,
from an explicit argument, the environment variable ``VST_SHARED_DATA``, or ``shared/data`` next
to the repository. ``benchmarks=`` / ``exclude=`` (or :meth:`BenchmarkRegistry.only` /
:meth:`BenchmarkRegistry.without`) choose which benchmarks guard, e.g. to train on ScanNet val
for an evaluation that does not use it.

User lists (:meth:`BenchmarkRegistry.load_user_list`) add more scenes: a text file with one id
per line (``#`` comments; ``dataset id`` or ``dataset,id`` lines name the dataset) or a JSON file
(a list of ids, a list of ``{"scene_id", "dataset", "benchmark"}`` records, or an object with a
``"scenes"`` list as in the shipped files). An entry without a dataset matches that id in every
dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ANY_DATASET",
    "BENCHMARK_DATA_DIR",
    "BENCHMARK_SCENES_FILE",
    "SHARED_DATA_ENV",
    "VSIBENCH",
    "VSIBENCH_DATASETS",
    "BenchmarkRegistry",
    "benchmark_file_payload",
    "default_shared_data_dir",
    "normalize_dataset",
    "normalize_scene_id",
    "shipped_benchmark_files",
    "shipped_benchmark_lists",
    "sunrgbd_scene_id",
    "vsibench_meta_dir",
    "vsibench_scene_records",
]

SHARED_DATA_ENV = "VST_SHARED_DATA"
"""Environment variable naming the shared data folder (the one holding ``vsibench-meta/``)."""

BENCHMARK_DATA_DIR = Path(__file__).resolve().parent / "data"
"""Folder of the benchmark lists shipped with vst (every ``*.json`` in it is loaded)."""

BENCHMARK_SCENES_FILE = BENCHMARK_DATA_DIR / "benchmark_scenes.json"
"""The shipped VSI-Bench list (regenerate with :func:`benchmark_file_payload`)."""

VSIBENCH = "vsibench"
VSIBENCH_DATASETS = ("scannet", "scannetpp", "arkitscenes")
"""Datasets of VSI-Bench, in the order of their metadata files."""

VSIBENCH_SOURCE = (
    "vision-x-nyu/thinking-in-space, data/meta_info/{scannet,scannetpp,arkitscenes}"
    "_meta_info_val.json (Apache-2.0), copied from shared/data/vsibench-meta"
)

ANY_DATASET = "*"
"""Dataset of entries that match a scene id in every dataset (user lists without a dataset)."""

_DATASET_ALIASES = {
    "scannet++": "scannetpp",
    "scannet_pp": "scannetpp",
    "scannetplusplus": "scannetpp",
    "arkit": "arkitscenes",
    "arkit_scenes": "arkitscenes",
    "any": ANY_DATASET,
    "": ANY_DATASET,
}


def normalize_dataset(dataset: str | None) -> str:
    """Canonical dataset name: lower case, aliases resolved (``scannet++`` -> ``scannetpp``);
    None or ``"*"`` -> :data:`ANY_DATASET`."""
    if dataset is None:
        return ANY_DATASET
    name = str(dataset).strip().lower()
    return _DATASET_ALIASES.get(name, name)


SUNRGBD = "sunrgbd"
_SUNRGBD_ID_DIGITS = 6
_SUNRGBD_SUBFOLDERS = frozenset(
    {
        "image",
        "depth",
        "depth_bfx",
        "fullres",
        "annotation",
        "annotation2Dfinal",
        "annotation3Dfinal",
        "annotation3Dlayout",
        "extrinsics",
    }
)


def normalize_scene_id(scene_id: Any, dataset: str | None = None) -> str:
    """A scene id as a stripped string (ARKitScenes ids may come as ints). For SUN RGB-D
    (``dataset`` ``"sunrgbd"``) a digit-only id is a 1-based SUNRGBDMeta image id and is
    zero-padded to 6 digits (``17`` -> ``"000017"``). Raises ValueError for an empty id, a float,
    or anything that is neither a string nor an int."""
    if isinstance(scene_id, bool) or not isinstance(scene_id, str | int):
        raise ValueError(f"scene id must be a string or an int, got {scene_id!r}")
    text = str(scene_id).strip()
    if not text:
        raise ValueError("scene id must not be empty")
    if dataset is not None and normalize_dataset(dataset) == SUNRGBD and text.isdigit():
        text = text.zfill(_SUNRGBD_ID_DIGITS)
    return text


def sunrgbd_scene_id(path: str) -> str:
    """The SUN RGB-D image folder relative to the ``SUNRGBD`` root, from any path inside it:
    ``"SUNRGBD/kv1/NYUdata/NYU0001/image/NYU0001.jpg"`` -> ``"kv1/NYUdata/NYU0001"``.

    Leading folders up to ``SUNRGBD/`` and a trailing ``image/``, ``depth/``, ``depth_bfx/`` ...
    file part are dropped (the folder is the one holding ``image/``). This is the id to use for
    lists of SUN RGB-D paths (e.g. ``sunrgbd_testing_images.txt`` of ankurhanda/sunrgbd-meta-data,
    shipped as ``sunrgbd_test_folders.json``; ``sunrgbd_test.json`` holds the same images as
    SUNRGBDMeta image ids)."""
    parts = [p for p in str(path).replace("\\", "/").strip().split("/") if p]
    if "SUNRGBD" in parts:
        parts = parts[len(parts) - parts[::-1].index("SUNRGBD") :]
    if len(parts) >= 2 and "." in parts[-1]:
        parts = parts[:-1]  # <folder>/image/<file>.jpg -> <folder>/image
    if parts and parts[-1] in _SUNRGBD_SUBFOLDERS:
        parts = parts[:-1]
    if not parts:
        raise ValueError(f"no SUN RGB-D image folder in {path!r}")
    return "/".join(parts)


def default_shared_data_dir(shared_data: str | Path | None = None) -> Path | None:
    """The shared data folder: ``shared_data`` if given, else ``$VST_SHARED_DATA``, else
    ``shared/data`` next to the repository. None if the chosen folder does not exist."""
    if shared_data is not None:
        path = Path(shared_data)
    elif os.environ.get(SHARED_DATA_ENV):
        path = Path(os.environ[SHARED_DATA_ENV])
    else:
        import vst

        # src/vst/__init__.py -> parents[2] is the repository; shared/ lives next to it.
        path = Path(vst.__file__).resolve().parents[2].parent / "shared" / "data"
    return path if path.is_dir() else None


def vsibench_meta_dir(shared_data: str | Path | None = None) -> Path | None:
    """The ``vsibench-meta`` folder (holding ``*_meta_info_val.json``), or None if absent.

    ``shared_data`` may name the shared data folder or the ``vsibench-meta`` folder itself."""
    if shared_data is not None and Path(shared_data).is_dir():
        given = Path(shared_data)
        if any(given.glob("*_meta_info_val.json")):
            return given
    base = default_shared_data_dir(shared_data)
    if base is None:
        return None
    meta = base / "vsibench-meta"
    return meta if any(meta.glob("*_meta_info_val.json")) else None


def vsibench_scene_records(meta_dir: str | Path) -> list[dict[str, str]]:
    """``{"scene_id", "dataset", "benchmark"}`` for every scene of the VSI-Bench metadata files in
    ``meta_dir``, sorted by dataset (in :data:`VSIBENCH_DATASETS` order) then scene id.

    The dataset is each entry's ``dataset`` field (the file name's prefix if missing). Raises
    FileNotFoundError if the folder holds no metadata file, ValueError for an unreadable one."""
    from vst.scenes.sources.vsibench_meta import dataset_of, read_meta_files

    seen: set[tuple[str, str]] = set()
    for path, data in read_meta_files(Path(meta_dir)):
        for scene_id in data:
            seen.add((dataset_of(data[scene_id], path), normalize_scene_id(scene_id)))
    order = {d: i for i, d in enumerate(VSIBENCH_DATASETS)}
    keys = sorted(seen, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    return [{"scene_id": s, "dataset": d, "benchmark": VSIBENCH} for d, s in keys]


def benchmark_file_payload(meta_dir: str | Path) -> dict[str, Any]:
    """The content of the shipped ``benchmark_scenes.json``, derived from ``meta_dir``.

    Regenerate the file with::

        json.dump(benchmark_file_payload(meta_dir), open(BENCHMARK_SCENES_FILE, "w"), indent=1)
    """
    records = vsibench_scene_records(meta_dir)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["dataset"]] = counts.get(r["dataset"], 0) + 1
    return {
        "description": (
            "Scenes used by evaluation benchmarks; vst excludes them from training data "
            "(vst.scenes.splits.BenchmarkRegistry)."
        ),
        "source": VSIBENCH_SOURCE,
        "benchmarks": {
            VSIBENCH: {
                "split": "val",
                "scenes_per_dataset": counts,
                "url": "https://github.com/vision-x-nyu/thinking-in-space",
                "license": "Apache-2.0",
            }
        },
        "scenes": records,
    }


def shipped_benchmark_files() -> list[Path]:
    """The benchmark lists shipped with vst (``vst/scenes/data/*.json``), sorted by name."""
    return sorted(BENCHMARK_DATA_DIR.glob("*.json"))


def _read_registry_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read benchmark registry {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("scenes"), list):
        raise ValueError(f"{path}: expected an object with a 'scenes' list")
    if not isinstance(data.get("benchmarks", {}), dict):
        raise ValueError(f"{path}: 'benchmarks' must be an object of benchmark descriptions")
    return data


def shipped_benchmark_lists() -> list[dict[str, Any]]:
    """One summary per shipped file, sorted by file name: ``{"file", "path", "description",
    "source", "benchmarks": {name: description}, "scenes": number of entries}``. The benchmark
    descriptions hold ``split``, ``scenes_per_dataset``, ``url``, ``license`` and, for the newer
    lists, ``id_format`` and ``used_by``."""
    out = []
    for path in shipped_benchmark_files():
        data = _read_registry_file(path)
        out.append(
            {
                "file": path.name,
                "path": str(path),
                "description": data.get("description", ""),
                "source": data.get("source", ""),
                "benchmarks": data.get("benchmarks", {}),
                "scenes": len(data["scenes"]),
            }
        )
    return out


def _names(names: str | Iterable[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    out = [str(n).strip() for n in names]
    if any(not n for n in out):
        raise ValueError("benchmark names must not be empty")
    return out


class BenchmarkRegistry:
    """Scenes used by evaluation benchmarks: ``(dataset, scene_id) -> {benchmark, ...}``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], set[str]] = {}
        self._by_id: dict[str, set[str]] = {}  # scene id -> datasets having it
        self._info: dict[str, dict[str, Any]] = {}  # benchmark -> description from its file
        self.sources: list[str] = []
        """Where the entries came from (files), in load order."""

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def load_default(
        cls,
        shared_data: str | Path | None = None,
        *,
        use_shared: bool = True,
        benchmarks: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
    ) -> BenchmarkRegistry:
        """Every shipped list (:func:`shipped_benchmark_files`, union of all), plus the VSI-Bench
        metadata in the shared data folder when it is found (``shared_data``,
        ``$VST_SHARED_DATA`` or ``shared/data`` next to the repo) and ``use_shared`` is true.

        ``benchmarks`` keeps only the named benchmarks (None: all); ``exclude`` drops the named
        ones (e.g. ``exclude=["scannet-val"]`` to train on ScanNet val for an evaluation that does
        not use it). Files and shared metadata of unselected benchmarks are not read. Unknown
        names raise ValueError listing the shipped ones."""
        files = {path: _read_registry_file(path) for path in shipped_benchmark_files()}
        known: dict[str, list[Path]] = {}
        for path, data in files.items():
            names = set(data.get("benchmarks", {}))
            names |= {
                str(r.get("benchmark", "")).strip() for r in data["scenes"] if isinstance(r, dict)
            }
            for name in sorted(names - {""}):
                known.setdefault(name, []).append(path)
        wanted = set(known) if benchmarks is None else set(_names(benchmarks))
        dropped = set() if exclude is None else set(_names(exclude))
        unknown = sorted((wanted | dropped) - set(known))
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; shipped benchmarks: {sorted(known)}")
        selected = wanted - dropped
        reg = cls()
        for path, data in files.items():
            if any(path in known[name] for name in selected):
                reg._add_file_data(path, data)
        if use_shared and VSIBENCH in selected:
            meta = vsibench_meta_dir(shared_data)
            if meta is not None:
                reg.add_records(vsibench_scene_records(meta))
                reg.sources.append(str(meta))
        return reg if selected == set(reg.benchmarks) else reg.only(sorted(selected))

    @classmethod
    def from_vsibench_meta(cls, meta_dir: str | Path) -> BenchmarkRegistry:
        """A registry of the VSI-Bench scenes listed by the metadata files in ``meta_dir``."""
        reg = cls()
        reg.add_records(vsibench_scene_records(meta_dir))
        reg.sources.append(str(meta_dir))
        return reg

    def add(self, dataset: str | None, scene_id: Any, benchmark: str) -> None:
        """Record that ``benchmark`` uses scene ``scene_id`` of ``dataset`` (None: any dataset)."""
        ds = normalize_dataset(dataset)
        sid = normalize_scene_id(scene_id, ds)
        bench = str(benchmark).strip()
        if not bench:
            raise ValueError(f"benchmark name must not be empty (scene {sid!r})")
        self._entries.setdefault((ds, sid), set()).add(bench)
        self._by_id.setdefault(sid, set()).add(ds)

    def add_records(self, records: Iterable[dict[str, Any]], benchmark: str = "user") -> int:
        """Add ``{"scene_id", "dataset"?, "benchmark"?}`` records; returns how many."""
        n = 0
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or "scene_id" not in rec:
                raise ValueError(f"record {i} must be an object with a 'scene_id', got {rec!r}")
            self.add(rec.get("dataset"), rec["scene_id"], rec.get("benchmark") or benchmark)
            n += 1
        return n

    def load_file(self, path: str | Path) -> int:
        """Add the scenes of a registry JSON file (an object with a ``"scenes"`` list and an
        optional ``"benchmarks"`` object describing them, as the shipped files). Returns how many
        entries were read."""
        path = Path(path)
        return self._add_file_data(path, _read_registry_file(path))

    def _add_file_data(self, path: Path, data: dict[str, Any]) -> int:
        try:
            n = self.add_records(data["scenes"])
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        for name, desc in data.get("benchmarks", {}).items():
            info = dict(desc) if isinstance(desc, dict) else {"description": str(desc)}
            info.setdefault("source", data.get("source", ""))
            info["file"] = str(path)
            self._info.setdefault(str(name), info)
        self.sources.append(str(path))
        return n

    def load_user_list(
        self, path: str | Path, benchmark: str = "user", dataset: str | None = None
    ) -> int:
        """Add the scene ids of a text or JSON file under ``benchmark`` (records in a JSON file
        may name their own). ``dataset`` applies to ids that name none (default: any dataset).

        Text: one id per line, blank lines and ``#`` comments ignored; a line ``dataset id`` or
        ``dataset,id`` names the dataset. JSON: a list of ids or records, or an object with a
        ``"scenes"`` list. Returns how many entries were added."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read scene list {path}: {exc}") from exc
        entries: list[dict[str, Any]] = []
        stripped = text.lstrip()
        if path.suffix.lower() == ".json" or stripped.startswith(("[", "{")):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: invalid JSON: {exc}") from exc
            if isinstance(data, dict):
                data = data.get("scenes")
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a list of scene ids or a 'scenes' list")
            for item in data:
                if isinstance(item, dict):
                    entries.append({"dataset": dataset, **item})
                else:
                    entries.append({"scene_id": item, "dataset": dataset})
        else:
            for lineno, raw in enumerate(text.splitlines(), 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = [p for p in line.replace(",", " ").split() if p]
                if len(parts) == 1:
                    entries.append({"scene_id": parts[0], "dataset": dataset})
                elif len(parts) == 2:
                    entries.append({"dataset": parts[0], "scene_id": parts[1]})
                else:
                    raise ValueError(
                        f"{path}:{lineno}: expected 'id' or 'dataset id', got {raw.strip()!r}"
                    )
        try:
            n = self.add_records(entries, benchmark=benchmark)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        for rec in entries:
            name = str(rec.get("benchmark") or benchmark).strip()
            self._info.setdefault(name, {"source": str(path), "file": str(path)})
        self.sources.append(str(path))
        return n

    def only(self, names: str | Iterable[str]) -> BenchmarkRegistry:
        """A new registry with just the named benchmarks' entries (names not present are
        ignored; ``load_default(benchmarks=...)`` checks names against the shipped lists)."""
        keep = set(_names(names))
        return self._filtered(lambda bench: bench in keep)

    def without(self, names: str | Iterable[str]) -> BenchmarkRegistry:
        """A new registry without the named benchmarks' entries: a scene stays guarded while
        another benchmark still uses it (e.g. ``without("scannet-val")`` keeps VSI-Bench's 88
        ScanNet scenes)."""
        drop = set(_names(names))
        return self._filtered(lambda bench: bench not in drop)

    def _filtered(self, keep: Any) -> BenchmarkRegistry:
        reg = type(self)()
        for (ds, sid), benches in self._entries.items():
            for bench in sorted(benches):
                if keep(bench):
                    reg._entries.setdefault((ds, sid), set()).add(bench)
                    reg._by_id.setdefault(sid, set()).add(ds)
        reg._info = {k: dict(v) for k, v in self._info.items() if k in set(reg.benchmarks)}
        reg.sources = list(self.sources)
        return reg

    # -- queries ----------------------------------------------------------------------------
    def lookup(self, scene_id: Any, dataset: str | None = None) -> list[str]:
        """Sorted names of the benchmarks using ``scene_id`` ([] if none). With ``dataset``,
        only entries of that dataset (or of any dataset) count; without, every dataset's do."""
        wanted = None if dataset is None else normalize_dataset(dataset)
        try:
            raw = normalize_scene_id(scene_id)
            sid = normalize_scene_id(scene_id, wanted)  # SUN RGB-D ids get their padding
        except ValueError:
            return []
        if wanted is None or wanted == ANY_DATASET:
            keys = {(ds, raw) for ds in self._by_id.get(raw, set())}
        else:
            keys = {(wanted, sid), (ANY_DATASET, sid), (ANY_DATASET, raw)}
        found_in = keys & self._entries.keys()
        found: set[str] = set()
        for key in found_in:
            found |= self._entries[key]
        return sorted(found)

    def is_benchmark_scene(self, scene: Any, dataset: str | None = None) -> bool:
        """Whether a benchmark uses this scene: a scene id (with optional ``dataset``) or a
        :class:`~vst.scenes.Scene` (its ``id``, and ``attributes["native_id"]`` when readers set
        it, looked up in the dataset ``source``)."""
        if hasattr(scene, "id") and hasattr(scene, "source"):
            ds = dataset if dataset is not None else scene.source
            attrs = getattr(scene, "attributes", None)
            native = attrs.get("native_id") if isinstance(attrs, dict) else None
            ids = [scene.id] + ([native] if native not in (None, "", scene.id) else [])
            return any(self.lookup(i, ds) for i in ids)
        return bool(self.lookup(scene, dataset))

    def scenes(
        self, benchmark: str | None = None, dataset: str | None = None
    ) -> list[tuple[str, str]]:
        """Sorted ``(dataset, scene_id)`` pairs, optionally of one benchmark and/or dataset."""
        ds = None if dataset is None else normalize_dataset(dataset)
        return sorted(
            key
            for key, benches in self._entries.items()
            if (benchmark is None or benchmark in benches) and (ds is None or key[0] == ds)
        )

    def counts(self, benchmark: str | None = None) -> dict[str, int]:
        """Number of scenes per dataset (sorted by dataset), optionally of one benchmark."""
        out: dict[str, int] = {}
        for ds, _ in self.scenes(benchmark):
            out[ds] = out.get(ds, 0) + 1
        return out

    @property
    def benchmarks(self) -> list[str]:
        """Sorted names of every benchmark in the registry."""
        return sorted(set().union(*self._entries.values())) if self._entries else []

    def benchmark_info(self, name: str | None = None) -> dict[str, Any]:
        """What is known about the benchmarks in the registry: ``{name: {"scenes_per_dataset",
        "scenes", "source", "file", ...}}`` (sorted by name) with the description from the
        benchmark's file (``split``, ``url``, ``license``, ``id_format``, ``used_by`` for the
        shipped lists) and the counts of this registry; with ``name``, that benchmark's entry.
        Raises KeyError for a name not in the registry."""
        out: dict[str, Any] = {}
        for bench in self.benchmarks:
            info = dict(self._info.get(bench, {}))
            per_dataset = self.counts(bench)
            info["scenes_per_dataset"] = per_dataset
            info["scenes"] = sum(per_dataset.values())
            out[bench] = info
        if name is None:
            return out
        if name not in out:
            raise KeyError(f"no benchmark {name!r} in the registry; have {self.benchmarks}")
        return out[name]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.scenes())

    def __contains__(self, scene_id: object) -> bool:
        return bool(self.lookup(scene_id))

    def __repr__(self) -> str:
        return f"BenchmarkRegistry({len(self)} scenes, benchmarks={self.benchmarks})"
