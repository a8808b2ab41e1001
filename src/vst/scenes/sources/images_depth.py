"""Plain images plus depth maps (and optional COCO instance annotations) -> single-frame scenes.

This is how the VST paper turns COCO into depth-based single-image samples: every image gets a
depth map (given, or pseudo-labelled by a depth model, :mod:`.depth_estimation`) and each
annotated object gets a pseudo 3D box lifted from its mask and depth. Layout (``path`` is the
folder; the sub-paths are options)::

    root/
      images/            <name>.jpg | .jpeg | .png
      depth/             <stem>.npy (float, metres) | <stem>.npz (key "depth", metres)
                         | <stem>.png (uint16, millimetres); first found in that order
      annotations.json   optional, COCO instances format (images / annotations / categories)
      intrinsics.json    optional: {"fov_x_deg": 60, "images": {"<stem or file name>":
                                    {"K": [[fx,0,cx],[0,fy,cy],[0,0,1]]} | {"fov_x_deg": 70}}}

Conventions (see docs/sources/images.md):

* One scene per image, one frame. Scene id ``<dataset>-<native id>`` (safe), native id = the
  file stem (or the COCO image id with ``native_id="image_id"``).
* Depth is z-depth in metres, 0 = unknown (non-finite and negative values become 0).
* Intrinsics: the image's ``K`` from ``intrinsics.json``, else a pinhole with a horizontal FoV of
  ``fov_x_deg`` (default 60 degrees, ASSUMED: recorded as ``attributes["intrinsics"] =
  "assumed"``), ``fx = fy = W / (2 tan(fov / 2))``, principal point at the image centre
  ``((W - 1) / 2, (H - 1) / 2)`` (OpenCV pixel-centre convention).
* World frame = the camera frame re-axed to Z up: world X = camera X (right), world Y = camera Z
  (forward), world Z = -camera Y (the camera's up); camera at the origin. World Z is the
  camera's up, NOT gravity (the camera's pitch and roll are unknown).
* Objects: each non-crowd annotation's mask (polygons rasterised pixel-centre-inside, RLE decoded)
  goes into one instance mask, larger masks painted first so smaller ones stay on top. The
  object's mask pixels with depth are lifted to world points, trimmed to the
  [``trim_percent``, 100 - ``trim_percent``] percentiles along each world axis, and their
  axis-aligned box is the object's PSEUDO box (``attributes["box_kind"] =
  "pseudo_aabb_from_depth"``): it spans the visible surface only, and sides thinner than
  ``min_box_size`` are widened to it (a face seen head-on has no depth extent).
* Skipped with a reason: images without depth (and no ``depth_model``), images whose depth or
  annotated size does not match the image, crowd annotations, annotations without a usable
  segmentation (unless ``bbox_masks``), unknown categories, objects with fewer than
  ``min_depth_pixels`` mask pixels with depth.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vst.geometry.cameras import focal_from_fov
from vst.geometry.conventions import from_aabb
from vst.scenes.annotate import annotate_frame
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import load_array, open_image, read_json
from vst.scenes.model import Frame, Object3D, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)
from vst.scenes.sources.depth_estimation import IMAGE_SUFFIXES, DepthKind

__all__ = [
    "CAM_TO_WORLD",
    "DEFAULT_FOV_X_DEG",
    "ImagesDepthOptions",
    "ImagesDepthReader",
    "decode_rle",
    "encode_rle_string",
    "intrinsics_from_fov",
    "polygons_to_mask",
    "read_depth_file",
    "segmentation_to_mask",
]

DEFAULT_FOV_X_DEG = 60.0
"""Horizontal field of view (degrees) assumed for images without intrinsics."""

CAM_TO_WORLD = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
"""Camera (X right, Y down, Z forward) -> world (X right, Y forward, Z camera-up), camera at 0."""

DEPTH_SUFFIXES = (".npy", ".npz", ".png")
"""Depth files looked for per image stem, in this order."""


# -- intrinsics ------------------------------------------------------------------------------
def intrinsics_from_fov(width: int, height: int, fov_x_deg: float) -> np.ndarray:
    """Pinhole K with square pixels, ``fx = fy = W / (2 tan(fov_x / 2))`` and the principal point
    at the image centre ``((W - 1) / 2, (H - 1) / 2)``."""
    f = focal_from_fov(width, fov_x_deg)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


# -- depth files -----------------------------------------------------------------------------
def read_depth_file(path: str | Path) -> np.ndarray:
    """Float32 (H, W) z-depth in metres, 0 unknown, from ``.npy`` (metres), ``.npz`` (key
    ``depth``, metres) or ``.png`` (uint16 millimetres). Raises SceneFormatError naming the file
    if it cannot be read or is not a depth map."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".npy", ".npz"):
            arr = load_array(path, "depth")
        elif suffix == ".png":
            with open_image(path) as im:
                if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                    raise SceneFormatError(
                        f"depth file {path}: PNG mode {im.mode!r} is not a 16-bit depth map "
                        f"(uint16 millimetres)"
                    )
                arr = np.asarray(im).astype(np.float64) / 1000.0
        else:
            raise SceneFormatError(f"depth file {path}: unknown depth file type {suffix!r}")
    except (OSError, ValueError) as exc:
        raise SceneFormatError(f"cannot read depth file {path}: {exc}") from exc
    arr = np.squeeze(np.asarray(arr))
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise SceneFormatError(
            f"depth file {path}: expected a 2D numeric array, got {arr.dtype} {arr.shape}"
        )
    out = arr.astype(np.float32)
    out[~np.isfinite(out) | (out < 0)] = 0.0
    return out


# -- COCO masks ------------------------------------------------------------------------------
def polygons_to_mask(polygons: list[list[float]], width: int, height: int) -> np.ndarray:
    """Boolean (H, W) union of COCO polygons (flat ``[x0, y0, x1, y1, ...]`` in COCO pixel
    coordinates, where the top-left pixel spans ``[0, 1] x [0, 1]``): a pixel is in when its
    centre ``(c + 0.5, r + 0.5)`` lies inside a polygon (matplotlib's point-in-path test). This
    agrees with pycocotools' rasteriser to within a few boundary pixels (PIL's polygon fill adds
    the boundary pixels, ~5 % more on small objects). Polygons with < 3 points are ignored."""
    from matplotlib.path import Path as MplPath

    mask = np.zeros((height, width), dtype=bool)
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1)
        if len(pts) < 6 or len(pts) % 2 or not np.all(np.isfinite(pts)):
            continue
        xy = pts.reshape(-1, 2)
        c0 = max(int(np.floor(xy[:, 0].min() - 0.5)), 0)
        c1 = min(int(np.ceil(xy[:, 0].max() - 0.5)), width - 1)
        r0 = max(int(np.floor(xy[:, 1].min() - 0.5)), 0)
        r1 = min(int(np.ceil(xy[:, 1].max() - 0.5)), height - 1)
        if c1 < c0 or r1 < r0:
            continue
        cols, rows = np.meshgrid(np.arange(c0, c1 + 1), np.arange(r0, r1 + 1))
        centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
        inside = MplPath(xy).contains_points(centres).reshape(cols.shape)
        mask[r0 : r1 + 1, c0 : c1 + 1] |= inside
    return mask


def _rle_string_to_counts(s: str) -> list[int]:
    """Run lengths of COCO's compressed RLE string (6-bit chars from 48, 5 value bits, a
    continuation bit 0x20, sign bit 0x10 in the last char; counts after the second are
    stored as differences to the count two places back)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("truncated RLE string")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid RLE character {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE string of run lengths (inverse of the decoder above)."""
    chars = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Boolean (H, W) mask of a COCO RLE ``{"size": [H, W], "counts": ...}``: counts a list
    (uncompressed) or a string (compressed); runs alternate 0 / 1 starting with 0, over the
    pixels in column-major (Fortran) order. ValueError if malformed."""
    size = rle.get("size")
    if not isinstance(size, list | tuple) or len(size) != 2:
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    h, w = int(size[0]), int(size[1])
    raw = rle.get("counts")
    if isinstance(raw, bytes):
        raw = raw.decode("ascii")
    counts = _rle_string_to_counts(raw) if isinstance(raw, str) else [int(c) for c in raw]
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {h} x {w} = {h * w}")
    flat = np.zeros(h * w, dtype=bool)
    pos = 0
    for i, c in enumerate(counts):
        if i % 2:
            flat[pos : pos + c] = True
        pos += c
    return flat.reshape(w, h).T


def segmentation_to_mask(segmentation: Any, width: int, height: int) -> tuple[np.ndarray, str]:
    """``(mask, kind)`` of a COCO ``segmentation`` (polygon list -> ``"polygon"``, RLE dict ->
    ``"rle"``). ValueError (with the reason) if it is empty or unusable."""
    if isinstance(segmentation, list):
        if not segmentation:
            raise ValueError("empty segmentation")
        if all(isinstance(v, int | float) for v in segmentation):  # a single flat polygon
            segmentation = [segmentation]
        mask = polygons_to_mask(segmentation, width, height)
        if not mask.any():
            raise ValueError("segmentation polygons cover no pixel centre")
        return mask, "polygon"
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise ValueError(
                f"RLE size {list(mask.shape)} does not match the image {height} x {width}"
            )
        return mask, "rle"
    raise ValueError(f"no segmentation (got {type(segmentation).__name__})")


def _bbox_mask(bbox: Any, width: int, height: int) -> np.ndarray:
    """Pixels whose centres lie in a COCO ``[x, y, w, h]`` box (corner coordinates)."""
    x, y, bw, bh = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, bw, bh)) or bw <= 0 or bh <= 0:
        raise ValueError(f"invalid bbox {bbox!r}")
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    return ((rows >= y) & (rows <= y + bh))[:, None] & ((cols >= x) & (cols <= x + bw))[None, :]


def _annotation_order(ann: dict) -> tuple:
    """Sort key: integer annotation ids numerically, then any other ids as text (stable)."""
    aid = ann.get("id")
    if isinstance(aid, int) and not isinstance(aid, bool):
        return (0, aid, "")
    return (1, 0, str(aid))


# -- the reader ------------------------------------------------------------------------------
class ImagesDepthOptions(ReaderOptions):
    """Options of the ``images`` reader (``frame_stride`` / ``max_frames`` do not apply)."""

    dataset: str = Field("coco", min_length=1, description="Dataset name of the scenes.")
    split: str = Field("train", min_length=1, description="Split recorded on the scenes.")
    native_id: Literal["stem", "image_id"] = Field(
        "stem", description="Native scene id: the image file stem or the COCO image id."
    )
    images_dir: str = Field("images", description="Image folder, relative to the root.")
    depth_dir: str = Field("depth", description="Depth folder, relative to the root.")
    annotations: str = Field(
        "annotations.json", description="COCO instances file, relative to the root (optional)."
    )
    intrinsics: str = Field(
        "intrinsics.json", description="Intrinsics file, relative to the root (optional)."
    )
    fov_x_deg: float = Field(
        DEFAULT_FOV_X_DEG, gt=0, lt=180, description="Assumed horizontal FoV without intrinsics."
    )
    trim_percent: float = Field(
        5.0, ge=0, lt=50, description="Percentile trimmed at each end of each axis."
    )
    min_depth_pixels: int = Field(
        50, ge=1, description="Objects with fewer mask pixels with depth are skipped."
    )
    min_box_size: float = Field(0.02, gt=0, description="Smallest pseudo-box side (metres).")
    bbox_masks: bool = Field(
        False, description="Use the bbox rectangle for annotations without a segmentation."
    )
    depth_model: str | None = Field(
        None, description="Local depth model directory run for images without a depth file."
    )
    depth_kind: DepthKind = Field(
        "relative-inverse", description="What the depth model predicts (metric|relative-inverse)."
    )
    depth_scale: float = Field(1.0, gt=0, description="Scale applied to the model's prediction.")
    estimated_depth_dir: str | None = Field(
        None, description="Where estimated depth is cached (default <root>/depth_estimated)."
    )


class ImagesDepthReader(SceneReader):
    """Images + depth maps (+ COCO instances) -> one single-frame scene per image."""

    format: ClassVar[str] = "images"
    description: ClassVar[str] = (
        "Plain images with depth maps (given or estimated) and optional COCO instance "
        "annotations; objects get pseudo 3D boxes lifted from mask + depth."
    )
    Options: ClassVar[type[ReaderOptions]] = ImagesDepthOptions

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        super().__init__(path, options)
        self._coco: dict[str, Any] | None = None
        self._coco_loaded = False
        self._intrinsics: dict[str, Any] | None = None
        self._estimator: Any = None

    # -- files ---------------------------------------------------------------------------------
    @property
    def images_dir(self) -> Path:
        return self.path / self.options.images_dir

    @property
    def depth_dir(self) -> Path:
        return self.path / self.options.depth_dir

    @property
    def estimated_dir(self) -> Path:
        d = self.options.estimated_depth_dir
        return Path(d) if d and Path(d).is_absolute() else self.path / (d or "depth_estimated")

    def _load_json(self, path: Path) -> Any:
        return read_json(path)

    def _coco_index(self) -> dict[str, Any] | None:
        """Parsed annotations.json: images by id, annotations by image id, categories."""
        if self._coco_loaded:
            return self._coco
        self._coco_loaded = True
        path = self.path / self.options.annotations
        if not path.is_file():
            return None
        data = self._load_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise SceneFormatError(f"{path}: not a COCO file (no 'images' list)")
        images: dict[Any, dict] = {}
        for im in data["images"]:
            if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
                raise SceneFormatError(f"{path}: image entry without id / file_name: {im!r}")
            images[im["id"]] = im
        anns: dict[Any, list[dict]] = {}
        orphans = []
        for ann in data.get("annotations") or []:
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise SceneFormatError(f"{path}: annotation without image_id: {ann!r}")
            if ann["image_id"] in images:
                anns.setdefault(ann["image_id"], []).append(ann)
            else:
                orphans.append(ann)
        cats = {c["id"]: str(c.get("name", "")) for c in data.get("categories") or []}
        self._coco = {"path": path, "images": images, "anns": anns, "cats": cats,
                      "orphans": orphans}  # fmt: skip
        return self._coco

    def _intrinsics_file(self) -> dict[str, Any]:
        if self._intrinsics is None:
            path = self.path / self.options.intrinsics
            data = self._load_json(path) if path.is_file() else {}
            if not isinstance(data, dict):
                raise SceneFormatError(f"{path}: expected a JSON object")
            self._intrinsics = data
        return self._intrinsics

    # -- listing -------------------------------------------------------------------------------
    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        if not self.images_dir.is_dir():
            raise SceneFormatError(f"{self.path}: no image folder {self.images_dir}")
        on_disk = sorted(
            p.relative_to(self.images_dir).as_posix()
            for p in self.images_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        coco = self._coco_index()
        refs: list[SceneRef] = []
        ds = self.options.dataset
        if coco is None:
            for rel in on_disk:
                stem = Path(rel).stem
                refs.append(SceneRef(safe_scene_id(f"{ds}-{stem}"), ds, stem, {"file": rel}))
        else:
            listed = set()
            for image_id, im in coco["images"].items():
                rel = str(im["file_name"])
                listed.add(rel)
                native = Path(rel).stem if self.options.native_id == "stem" else str(image_id)
                loc = {"file": rel, "image_id": image_id}
                refs.append(SceneRef(safe_scene_id(f"{ds}-{native}"), ds, native, loc))
            for rel in on_disk:
                if rel not in listed:
                    report.skip("file", f"image {rel}", f"not listed in {self.options.annotations}")
            for ann in coco["orphans"]:
                report.skip(
                    "object",
                    f"annotation {ann.get('id')}",
                    f"image_id {ann['image_id']!r} is not an image of {self.options.annotations}",
                )
        refs.sort(key=lambda r: r.id)
        seen: dict[str, SceneRef] = {}
        unique = []
        for ref in refs:
            if ref.id in seen:
                report.skip(
                    "scene",
                    f"image {ref.locator['file']}",
                    f"scene id {ref.id} already used by image {seen[ref.id].locator['file']}",
                )
                continue
            seen[ref.id] = ref
            unique.append(ref)
        return unique

    # -- reading -------------------------------------------------------------------------------
    def _camera(self, stem: str, rel: str, width: int, height: int) -> tuple[np.ndarray, dict]:
        """K and the attributes saying where it came from; ValueError if the entry is bad."""
        data = self._intrinsics_file()
        per_image = data.get("images") or {}
        entry = per_image.get(stem, per_image.get(rel))
        if entry is not None and "K" in entry:
            K = np.asarray(entry["K"], dtype=np.float64)
            if K.shape == (9,):
                K = K.reshape(3, 3)
            if (
                K.shape != (3, 3)
                or not np.all(np.isfinite(K))
                or K[0, 0] <= 0
                or K[1, 1] <= 0
                or not np.allclose(K[2], [0, 0, 1])
                or K[1, 0] != 0
                or not (0 <= K[0, 2] <= width and 0 <= K[1, 2] <= height)
            ):
                raise ValueError(f"invalid K {entry['K']!r} in {self.options.intrinsics}")
            return K, {"intrinsics": "given"}
        if entry is not None and "fov_x_deg" in entry:
            fov, how = float(entry["fov_x_deg"]), "given_fov"
        elif "fov_x_deg" in data:
            fov, how = float(data["fov_x_deg"]), "given_fov"
        else:
            fov, how = self.options.fov_x_deg, "assumed"
        if not (0 < fov < 180):
            raise ValueError(f"fov_x_deg {fov!r} is not in (0, 180)")
        return intrinsics_from_fov(width, height, fov), {"intrinsics": how, "fov_x_deg": fov}

    def _depth_for(self, stem: str, image_path: Path) -> tuple[np.ndarray, str] | None:
        for suffix in DEPTH_SUFFIXES:
            p = self.depth_dir / f"{stem}{suffix}"
            if p.is_file():
                return read_depth_file(p), "file"
        cached = self.estimated_dir / f"{stem}.npy"
        if cached.is_file():
            return read_depth_file(cached), "estimated"
        if self.options.depth_model is None:
            return None
        if self._estimator is None:
            from vst.scenes.sources.depth_estimation import DepthEstimator

            model = Path(self.options.depth_model)
            if not model.is_absolute() and not model.is_dir():
                model = self.path / model
            self._estimator = DepthEstimator(
                model, kind=self.options.depth_kind, scale=self.options.depth_scale
            )
        with open_image(image_path) as im:
            depth = self._estimator(im)
        self.estimated_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.estimated_dir / f".{stem}.tmp.npy"
        np.save(tmp, depth)
        tmp.replace(cached)
        return depth, "estimated"

    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        rel = ref.locator["file"]
        stem = Path(rel).stem
        where = f"scene {ref.id} (image {rel})"
        try:
            image_path = self.inside(rel, self.images_dir)
        except SceneFormatError as exc:
            report.skip("scene", where, f"image file_name {exc}")
            return None
        if not image_path.is_file():
            report.skip("scene", where, f"image file {image_path} does not exist")
            return None
        try:
            with open_image(image_path) as im:
                width, height = im.size
                im.verify()
        except (OSError, ValueError) as exc:
            raise SceneFormatError(f"cannot read image {image_path}: {exc}") from exc
        coco = self._coco_index()
        coco_image = None if coco is None else coco["images"][ref.locator["image_id"]]
        if (
            coco_image is not None
            and "width" in coco_image
            and "height" in coco_image
            and (int(coco_image["width"]), int(coco_image["height"])) != (width, height)
        ):
            report.skip(
                "scene",
                where,
                f"{self.options.annotations} says {coco_image['width']}x"
                f"{coco_image['height']}, the image file is {width}x{height}",
            )
            return None
        try:
            K, cam_attrs = self._camera(stem, rel, width, height)
        except (ValueError, TypeError) as exc:
            report.skip("scene", where, str(exc))
            return None
        got = self._depth_for(stem, image_path)
        if got is None:
            report.skip(
                "scene",
                where,
                f"no depth file {self.options.depth_dir}/{stem}.{{npy,npz,png}} and no "
                f"depth_model option to estimate one",
            )
            return None
        depth, depth_source = got
        if depth.shape != (height, width):
            report.skip(
                "scene",
                where,
                f"depth map is {depth.shape[1]}x{depth.shape[0]}, the image is {width}x{height}",
            )
            return None
        if not (depth > 0).any():
            report.skip("scene", where, "depth map has no valid (> 0) value")
            return None

        frame = Frame(
            id=safe_scene_id(stem),
            K=K,
            width=width,
            height=height,
            cam_to_world=CAM_TO_WORLD.copy(),
            image=image_path.resolve(),
            depth=depth,
        )
        objects, mask = self._objects(coco, coco_image, frame, depth, where, report)
        if coco is not None:
            frame.mask = mask
        annotate_frame(frame, objects, mask if coco is not None else None)
        attributes: dict[str, Any] = {
            "native_id": ref.native_id,
            "format": self.format,
            "image_file": rel,
            "world_frame": "camera_z_up",
            "depth_source": depth_source,
            **cam_attrs,
        }
        if depth_source == "estimated":
            attributes["depth_kind"] = self.options.depth_kind
            if self.options.depth_model is not None:
                attributes["depth_model"] = Path(self.options.depth_model).name
        if coco_image is not None:
            attributes["coco_image_id"] = coco_image["id"]
        return Scene(
            id=ref.id,
            source=ref.dataset,
            split=self.options.split,
            frames=[frame],
            objects=objects,
            attributes=attributes,
        )

    def _objects(
        self,
        coco: dict[str, Any] | None,
        coco_image: dict | None,
        frame: Frame,
        depth: np.ndarray,
        where: str,
        report: SourceReport,
    ) -> tuple[list[Object3D], np.ndarray]:
        """Objects with pseudo boxes and the instance mask (ids 1..N in annotation-id order)."""
        W, H = frame.width, frame.height
        mask = np.zeros((H, W), dtype=np.int32)
        if coco is None or coco_image is None:
            return [], mask
        anns = sorted(coco["anns"].get(coco_image["id"], []), key=_annotation_order)
        candidates = []  # (ann, label, mask, kind)
        for ann in anns:
            item = f"{where}, annotation {ann.get('id')}"
            if ann.get("iscrowd", 0):
                report.skip("object", item, "crowd region (iscrowd=1), not a single object")
                continue
            label = coco["cats"].get(ann.get("category_id"))
            if not label:
                report.skip("object", item, f"unknown category_id {ann.get('category_id')!r}")
                continue
            seg = ann.get("segmentation")
            try:
                m, kind = segmentation_to_mask(seg, W, H)
            except (ValueError, TypeError) as exc:
                if not self.options.bbox_masks or "bbox" not in ann:
                    report.skip(
                        "object", item, f"no usable segmentation ({exc}); bbox_masks is off"
                    )
                    continue
                try:
                    m, kind = _bbox_mask(ann["bbox"], W, H), "bbox"
                except (ValueError, TypeError) as exc2:
                    report.skip("object", item, f"no usable segmentation or bbox ({exc2})")
                    continue
            if not m.any():
                report.skip("object", item, "mask covers no pixel")
                continue
            candidates.append((ann, label, m, kind))
        # Paint larger masks first so smaller (usually nearer / contained) ones stay on top.
        order = sorted(range(len(candidates)), key=lambda i: (-int(candidates[i][2].sum()), i))
        for i in order:
            mask[candidates[i][2]] = i + 1
        K = frame.K
        R = frame.cam_to_world[:3, :3]
        lo_q, hi_q = self.options.trim_percent, 100.0 - self.options.trim_percent
        objects: list[Object3D] = []
        final = np.zeros_like(mask)
        for i, (ann, label, _, kind) in enumerate(candidates):
            item = f"{where}, annotation {ann.get('id')} ({label})"
            rows, cols = np.nonzero((mask == i + 1) & (depth > 0))
            if len(rows) < self.options.min_depth_pixels:
                report.skip(
                    "object",
                    item,
                    f"{len(rows)} visible mask pixels with depth < min_depth_pixels "
                    f"{self.options.min_depth_pixels}",
                )
                continue
            z = depth[rows, cols].astype(np.float64)
            cam = np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], 1)
            world = cam @ R.T
            lo = np.percentile(world, lo_q, axis=0)
            hi = np.percentile(world, hi_q, axis=0)
            centre = (lo + hi) / 2.0
            half = np.maximum(hi - lo, self.options.min_box_size) / 2.0
            box = from_aabb(centre - half, centre + half)
            oid = len(objects) + 1
            final[mask == i + 1] = oid
            objects.append(
                Object3D(
                    id=oid,
                    label=label,
                    box=box,
                    attributes={
                        "coco_annotation_id": ann.get("id"),
                        "category_id": ann.get("category_id"),
                        "box_kind": "pseudo_aabb_from_depth",
                        "mask_source": kind,
                        "depth_points": len(rows),
                    },
                )
            )
        return objects, final
