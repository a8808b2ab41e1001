"""Configuration of a data-engine run (``vst generate CONFIG``), loaded from YAML.

Example (``configs/demo.yaml``)::

    output: outputs/engine-demo      # shards in <output>/data, report in <output>/report.*
    seed: 0
    sources:
      - {kind: synthetic, num_scenes: 3, width: 320, height: 240}   # -> <output>/scenes
      - {kind: scenes, path: data/my_scenes}                        # existing scene dirs
      - {kind: arkitscenes, path: /data/ARKitScenes/raw/Training,  # a dataset, imported into
         options: {frame_stride: 10}, limit: 50}                  #   <output>/scenes/<kind>-<i>
    benchmark_guard: {allow_benchmark_scenes: false}   # evaluation scenes stay out (default)
    samples_per_scene: 40            # split over tasks by weight (tasks without per_scene)
    tasks:
      - {name: "si_*", weight: 1.0}  # glob over registered task names
      - {name: si_det3d, per_scene: 8}   # an explicit entry overrides a glob match

Budgets: a task with ``per_scene`` gets exactly that many samples asked of it per scene. The
others share ``samples_per_scene`` in proportion to their ``weight``; a fractional share is
rounded per scene with a seeded draw (``floor`` or ``ceil``), so the mix holds on average and the
run stays deterministic. A task may yield fewer samples than asked when a scene cannot serve more.

Relative paths are taken from the current working directory. Errors name the YAML file and the
field (``configs/x.yaml: tasks.0.name: unknown task 'foo'; known tasks: ...``).

Loading is strict, so a config means what it says or fails at once: duplicate keys are an error
(YAML would keep the last), numbers must be finite (``.inf``, ``.nan`` are refused), integers
must be integers (``seed: true`` is refused), and :func:`load_config` checks that the source
paths and ``benchmark_guard.extra_lists`` files exist and that ``output`` is not a file.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vst.engine.context import EngineSettings
from vst.engine.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from vst.geometry.cameras import DEFAULT_UNIFIED_FOCAL


class ConfigError(ValueError):
    """A run configuration cannot be read or is invalid (the message names file and field)."""


_STRICT = {"strict": True}
"""Field options of integer fields: no bool or float coerced into them."""


class SyntheticSource(BaseModel):
    """Synthesise ``num_scenes`` MuJoCo rooms into ``<output>/scenes`` (resumable). Any other
    key is an option of :class:`vst.scenes.sources.synthetic.SynthConfig` (``width``,
    ``height``, ``single_views``, ``video_frames``, ...). ``seed`` defaults to the run seed."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    kind: Literal["synthetic"]
    num_scenes: int = Field(ge=1, **_STRICT)
    seed: int | None = Field(None, ge=0, **_STRICT)

    @model_validator(mode="after")
    def _check_options(self) -> SyntheticSource:
        self.synth_config(0)  # raises ValueError naming the bad option
        return self

    def synth_config(self, run_seed: int):
        """The :class:`SynthConfig` of this source (seed defaults to ``run_seed``)."""
        from vst.scenes.sources.base import format_option_errors
        from vst.scenes.sources.synthetic import SynthConfig

        options = dict(self.model_extra or {})
        options["num_scenes"] = self.num_scenes
        options["seed"] = run_seed if self.seed is None else self.seed
        try:
            return SynthConfig(**options)
        except ValidationError as exc:
            raise ValueError(f"invalid synthetic option(s): {format_option_errors(exc)}") from None


class ScenesSource(BaseModel):
    """Existing scene directories: ``path`` is a scene directory or a folder holding several
    (found recursively); ``scenes`` keeps only those (directory names or scene ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["scenes"]
    path: Path
    scenes: list[str] | None = Field(None, min_length=1)


def _format_names() -> tuple[str, ...]:
    from vst.scenes.sources.formats import format_names

    return tuple(format_names())


class DatasetSource(BaseModel):
    """A public dataset in its own on-disk format (``kind`` = a format of ``vst scenes import``:
    omni3d, embodiedscan, arkitscenes, scannetpp, hypersim, images, vsibench-meta), imported
    resumably into ``<output>/scenes/<kind>-<index>``. ``options`` are the reader's options,
    ``scenes`` selects scenes by id (an explicit choice: a benchmark scene there is an error
    unless ``benchmark_guard.allow_benchmark_scenes``), ``limit`` keeps the first N."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal[_format_names()]  # type: ignore[valid-type]
    path: Path
    options: dict[str, Any] = Field(default_factory=dict)
    scenes: list[str] | None = Field(None, min_length=1)
    limit: int | None = Field(None, ge=1, **_STRICT)

    @model_validator(mode="after")
    def _check_options(self) -> DatasetSource:
        from vst.scenes.sources.base import format_option_errors
        from vst.scenes.sources.formats import get_reader_class

        try:
            get_reader_class(self.kind).Options(**self.options)
        except ValidationError as exc:
            raise ValueError(
                f"invalid {self.kind} option(s): {format_option_errors(exc)}"
            ) from None
        return self

    def reader(self):
        """The :class:`~vst.scenes.sources.base.SceneReader` of this source."""
        from vst.scenes.sources.formats import get_reader_class

        return get_reader_class(self.kind)(self.path, self.options)


Source = Annotated[SyntheticSource | ScenesSource | DatasetSource, Field(discriminator="kind")]


class BenchmarkGuardConfig(BaseModel):
    """The benchmark-leakage guard (:mod:`vst.scenes.guard`): scenes of evaluation benchmarks
    found in a source are excluded and reported; naming one explicitly is an error unless
    ``allow_benchmark_scenes``. ``benchmarks`` restricts the guard to those benchmarks (None:
    all shipped ones); ``extra_lists`` adds user scene lists (text or JSON files)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    allow_benchmark_scenes: bool = Field(False, **_STRICT)
    benchmarks: list[str] | None = None
    extra_lists: list[Path] = Field(default_factory=list)

    def guard(self):
        """A fresh :class:`~vst.scenes.guard.BenchmarkGuard` with these settings."""
        from vst.scenes.guard import BenchmarkGuard

        return BenchmarkGuard.default(
            allow=self.allow_benchmark_scenes,
            benchmarks=self.benchmarks,
            extra_lists=list(self.extra_lists),
        )


class TaskSpec(BaseModel):
    """One task (or a glob over task names, e.g. ``si_*``) and its budget per scene."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    per_scene: int | None = Field(None, ge=0, description="Samples asked per scene.", **_STRICT)
    weight: float | None = Field(None, ge=0, description="Share of samples_per_scene.", **_STRICT)

    @model_validator(mode="after")
    def _one_budget(self) -> TaskSpec:
        if self.per_scene is not None and self.weight is not None:
            raise ValueError(f"task {self.name!r}: give per_scene or weight, not both")
        return self

    @property
    def is_pattern(self) -> bool:
        return any(ch in self.name for ch in "*?[")


class EngineConfig(BaseModel):
    """A data-engine run. See the module docstring for the budget rules."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    output: Path = Field(description="Run folder: data/ (shards), scenes/, report.json/md.")
    seed: int = Field(0, ge=0, description="Seed of every random choice.", **_STRICT)
    sources: list[Source] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    samples_per_scene: int | None = Field(
        None,
        ge=0,
        description="Samples per scene shared by weight among tasks w/o per_scene.",
        **_STRICT,
    )
    min_pixels: int = Field(DEFAULT_MIN_PIXELS, ge=28 * 28, **_STRICT)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=28 * 28, **_STRICT)
    unified_focal: float = Field(DEFAULT_UNIFIED_FOCAL, gt=0, **_STRICT)
    min_object_pixels: int = Field(EngineSettings.min_object_pixels, ge=1, **_STRICT)
    max_truncation: float = Field(EngineSettings.max_truncation, ge=0, le=1, **_STRICT)
    answer_style: Literal["paper", "letter"] = Field(
        "paper", description='Multiple-choice replies: "paper" ("B. northwest") or "letter" ("B").'
    )
    min_visible_fraction: float = Field(
        EngineSettings.min_visible_fraction,
        ge=0,
        le=1,
        description="Least share of an object's own silhouette a frame must show (not hidden "
        "behind other surfaces) for the object to be asked about, counted or detected.",
        **_STRICT,
    )
    min_floor_coverage: float = Field(
        EngineSettings.min_floor_coverage,
        ge=0,
        le=1,
        description="Least share of the room's floor a video clip must show for the room's area "
        "to be asked.",
        **_STRICT,
    )
    image_format: Literal["JPEG", "PNG"] = "JPEG"
    jpeg_quality: int = Field(95, ge=1, le=100, **_STRICT)
    scenes_per_shard: int = Field(16, ge=1, **_STRICT)
    workers: int = Field(1, ge=1, **_STRICT)
    strict: bool = Field(
        False, description="Fail on an invalid scene instead of skipping it.", **_STRICT
    )
    allow_outside_root: bool = Field(
        False,
        description="Follow image/depth/mask paths of scene directories that resolve outside "
        "them (absolute, '..' or symlinked); such frames are skipped by default.",
        **_STRICT,
    )
    benchmark_guard: BenchmarkGuardConfig = Field(default_factory=BenchmarkGuardConfig)

    @field_validator("image_format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if isinstance(v, str):
            up = v.upper()
            return "JPEG" if up == "JPG" else up
        return v

    @field_validator("tasks")
    @classmethod
    def _resolve_tasks(cls, specs: list[TaskSpec]) -> list[TaskSpec]:
        return resolve_task_specs(specs)

    @model_validator(mode="after")
    def _whole(self) -> EngineConfig:
        if self.min_pixels > self.max_pixels:
            raise ValueError(
                f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})"
            )
        shared = [t.name for t in self.tasks if t.per_scene is None]
        if shared and self.samples_per_scene is None:
            raise ValueError(
                f"tasks {shared} have no per_scene budget: set samples_per_scene (shared by "
                f"weight) or give each task per_scene"
            )
        if shared and sum(self.weight_of(n) for n in shared) <= 0:
            raise ValueError(f"the weights of tasks {shared} sum to 0")
        return self

    # -- derived -------------------------------------------------------------------------
    def weight_of(self, name: str) -> float:
        spec = self.task_spec(name)
        return 1.0 if spec.weight is None else float(spec.weight)

    def task_spec(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"task {name!r} is not in this run; its tasks: {self.task_names}")

    @property
    def task_names(self) -> list[str]:
        """The run's tasks (concrete names), sorted."""
        return sorted(t.name for t in self.tasks)

    def task_budgets(self) -> dict[str, float]:
        """Expected samples asked per scene for each task (fractional for weighted tasks)."""
        shared = [t for t in self.tasks if t.per_scene is None]
        total_w = sum(self.weight_of(t.name) for t in shared)
        out: dict[str, float] = {}
        for t in sorted(self.tasks, key=lambda s: s.name):
            if t.per_scene is not None:
                out[t.name] = float(t.per_scene)
            else:
                out[t.name] = (self.samples_per_scene or 0) * self.weight_of(t.name) / total_w
        return out

    def settings(self) -> EngineSettings:
        """The :class:`EngineSettings` every task reads."""
        return EngineSettings(
            unified_focal=self.unified_focal,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            min_object_pixels=self.min_object_pixels,
            max_truncation=self.max_truncation,
            answer_style=self.answer_style,
            min_visible_fraction=self.min_visible_fraction,
            min_floor_coverage=self.min_floor_coverage,
        )

    @property
    def data_dir(self) -> Path:
        """Where the shards go."""
        return self.output / "data"

    @property
    def scenes_dir(self) -> Path:
        """Where synthetic sources write their scenes."""
        return self.output / "scenes"

    def output_key(self) -> str:
        """Hash of every option that changes the samples (not output, sources, workers,
        strict, scenes_per_shard: those change where or how, not what)."""
        d = {
            "seed": self.seed,
            "budgets": self.task_budgets(),
            "image": [self.image_format, self.jpeg_quality],
            "settings": dataclasses.asdict(self.settings()),
        }
        if self.allow_outside_root:  # only when set: keys of existing runs stay the same
            d["allow_outside_root"] = True
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_overrides(
        self,
        *,
        output: Path | None = None,
        seed: int | None = None,
        workers: int | None = None,
        strict: bool | None = None,
        tasks: list[str] | None = None,
        allow_benchmark_scenes: bool | None = None,
        where: str = "overrides",
    ) -> EngineConfig:
        """A validated copy with command-line overrides. ``tasks`` (names or globs) keeps only
        those tasks, with their budgets from the config; a registered task that is not in the
        config gets weight 1. :class:`ConfigError` (naming ``where``) if the result is
        invalid."""
        data = self.model_dump(mode="python")
        if output is not None:
            data["output"] = output
        if seed is not None:
            data["seed"] = seed
        if workers is not None:
            data["workers"] = workers
        if strict is not None:
            data["strict"] = strict
        if allow_benchmark_scenes is not None:
            data["benchmark_guard"] = {
                **data["benchmark_guard"],
                "allow_benchmark_scenes": allow_benchmark_scenes,
            }
        if tasks is not None:
            known = {t["name"]: t for t in data["tasks"]}
            picked: dict[str, dict[str, Any]] = {}
            for name in tasks:
                matches = [n for n in known if fnmatch.fnmatchcase(n, name)]
                for n in sorted(matches) or [name]:
                    picked.setdefault(n, known.get(n, {"name": n}))
            data["tasks"] = list(picked.values())
        return parse_config(data, where)


def resolve_task_specs(specs: list[TaskSpec]) -> list[TaskSpec]:
    """Expand globs against the registry and check names (explicit entries win over globs;
    ValueError listing the known tasks otherwise)."""
    from vst.engine.registry import task_names

    known = task_names()
    explicit: dict[str, TaskSpec] = {}
    for i, spec in enumerate(specs):
        if spec.is_pattern:
            continue
        if spec.name not in known:
            raise ValueError(
                f"entry {i}: unknown task {spec.name!r}; known tasks: "
                f"{', '.join(known) or '(none registered)'}"
            )
        if spec.name in explicit:
            raise ValueError(f"entry {i}: task {spec.name!r} is listed twice")
        explicit[spec.name] = spec
    from_globs: dict[str, TaskSpec] = {}
    for i, spec in enumerate(specs):
        if not spec.is_pattern:
            continue
        matches = [n for n in known if fnmatch.fnmatchcase(n, spec.name)]
        if not matches:
            raise ValueError(
                f"entry {i}: pattern {spec.name!r} matches no registered task; known tasks: "
                f"{', '.join(known) or '(none registered)'}"
            )
        for n in matches:
            if n in explicit:
                continue
            if n in from_globs:
                raise ValueError(
                    f"entry {i}: task {n!r} is matched by two patterns "
                    f"({from_globs[n].name!r} and {spec.name!r})"
                )
            from_globs[n] = spec.model_copy(update={"name": n})
    merged = {**from_globs, **explicit}
    return [merged[n] for n in sorted(merged)]


def format_errors(exc: ValidationError) -> str:
    """A pydantic validation error as lines ``field.path: message`` (one per problem), for
    config errors that name the file and the field."""
    lines = []
    kinds = {"synthetic", "scenes", *_format_names()}
    for err in exc.errors():
        parts = [str(x) for x in err.get("loc", ()) if not str(x).startswith("function-")]
        # drop pydantic's union tag after the source index ("sources.0.synthetic.width" ->
        # "sources.0.width"), and only there: a field may share a kind's name ("scenes")
        if len(parts) >= 3 and parts[0] == "sources" and parts[2] in kinds:
            del parts[2]
        loc = ".".join(parts)
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, where: str = "config") -> EngineConfig:
    """Validate a config mapping; :class:`ConfigError` naming ``where`` and each field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    try:
        return EngineConfig.model_validate(data)
    except ValidationError as exc:
        text = format_errors(exc).replace("\n", f"\n{where}: ")
        raise ConfigError(f"{where}: {text}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if duplicate:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {line})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_yaml(path: Path) -> Any:
    """The YAML document of ``path``; :class:`ConfigError` naming the file when it is missing,
    unreadable, not UTF-8 text, not YAML, or repeats a key."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None


def check_paths(config: EngineConfig, where: str) -> None:
    """:class:`ConfigError` naming ``where`` and the field when a source path or an
    ``extra_lists`` file does not exist, or ``output`` is a file."""
    if config.output.exists() and not config.output.is_dir():
        raise ConfigError(f"{where}: output: {config.output} is a file, not a folder")
    for i, src in enumerate(config.sources):
        path = getattr(src, "path", None)
        if path is not None and not path.exists():
            raise ConfigError(f"{where}: sources.{i}.path: {path} does not exist")
    for i, p in enumerate(config.benchmark_guard.extra_lists):
        if not p.is_file():
            raise ConfigError(
                f"{where}: benchmark_guard.extra_lists.{i}: {p} does not exist or is not a file"
            )
    if config.benchmark_guard.extra_lists:
        try:  # the lists parse (read once more when the run starts)
            config.benchmark_guard.guard()
        except ValueError as exc:
            raise ConfigError(f"{where}: benchmark_guard.extra_lists: {_one_line(exc)}") from None


def load_config(path: str | Path) -> EngineConfig:
    """Read and validate a run configuration from a YAML file (see the module docstring)."""
    p = Path(path)
    config = parse_config(load_yaml(p), str(p))
    check_paths(config, str(p))
    return config
