"""The take: one performance's per-frame body, hand and face landmarks, on disk and in memory.

On disk a take is a folder::

    TAKE/
      take.json        schema name + version, units, axes, landmark names, source
                       metadata (path, size, rotation, intrinsics), tracker settings,
                       frame count, notes (e.g. "interrupted", "source truncated")
      landmarks.npz    the arrays below, saved without pickle
      mask.npz         optional: the person mask per frame, bit-packed

Arrays (T frames; N landmarks of the part; NaN where the part was not found):

==========================  ===============  =============================================
``timestamps``              ``(T,)`` f8      presentation time of the source frame, s
``frame_index``             ``(T,)`` i8      index of the frame in the decoded source
``pose_image``              ``(T, 33, 3)``   x, y in pixels of the upright frame, z depth
                                             on the scale of x (MediaPipe's relative z)
``pose_world``              ``(T, 33, 3)``   metres, camera frame (+Y up, +Z to camera),
                                             origin between the hips (MediaPipe's)
``pose_visibility``         ``(T, 33)``      0..1, likely visible (not occluded)
``pose_presence``           ``(T, 33)``      0..1, likely inside the frame; NaN where the
                                             tracker does not report it (legacy Holistic)
``left_hand_image``         ``(T, 21, 3)``   as ``pose_image``, the performer's left hand
``right_hand_image``        ``(T, 21, 3)``   the performer's right hand
``face_image``              ``(T, 478, 3)``  468 mesh points + 10 iris points
``<part>_present``          ``(T,)`` bool    the part was found in that frame
==========================  ===============  =============================================

Every write goes to a temporary folder beside the target which is then renamed into
place, so a crash never leaves a half-written take. Loading checks everything and
raises :class:`~mocap.errors.TakeFormatError` naming the problem.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import landmarks as L
from .errors import TakeFormatError, UsageError

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Intrinsics",
    "SourceInfo",
    "MaskTrack",
    "Take",
    "load_take",
    "save_take",
]

SCHEMA = "understudy.take"
SCHEMA_VERSION = 1
DEFAULT_HFOV_DEG = 60.0
"""Horizontal field of view assumed when the footage carries no intrinsics: a typical
webcam (55-70 deg) or a phone's main camera in landscape (about 65 deg)."""

PART_SIZES = {"pose": 33, "left_hand": 21, "right_hand": 21, "face": 478}


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the upright frame, in pixels.

    ``source`` says where they came from: ``"metadata"``, ``"user"`` or
    ``"default_hfov_<deg>"`` (an assumed field of view, see :data:`DEFAULT_HFOV_DEG`).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    source: str

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG,
                  *, source: str | None = None) -> "Intrinsics":
        """Square pixels, principal point at the centre, horizontal FOV ``hfov_deg``."""
        if not (1.0 < hfov_deg < 179.0):
            raise UsageError(f"field of view must be between 1 and 179 degrees, got {hfov_deg}")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        src = source or f"default_hfov_{hfov_deg:g}"
        return cls(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0, source=src)

    @property
    def K(self) -> np.ndarray:
        """The 3x3 camera matrix (image +y down)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def hfov_deg(self, width: int) -> float:
        return math.degrees(2.0 * math.atan(0.5 * width / self.fx))


@dataclass
class SourceInfo:
    """Where the frames came from. ``width``/``height`` are of the upright frame,
    i.e. after ``rotation_deg`` (the clockwise display rotation from the file's
    metadata) was applied."""

    kind: str  # "video" | "images" | "image" | "camera"
    path: str
    width: int
    height: int
    rotation_deg: int = 0
    nominal_fps: float | None = None
    reported_frames: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    variable_frame_rate: bool | None = None
    intrinsics: Intrinsics | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SourceInfo":
        d = dict(d)
        intr = d.pop("intrinsics", None)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise TakeFormatError(f"take.json: unknown source fields {sorted(unknown)}")
        for req in ("kind", "path", "width", "height"):
            if req not in d:
                raise TakeFormatError(f"take.json: source lacks {req!r}")
        return cls(**d, intrinsics=Intrinsics(**intr) if intr else None)


@dataclass
class MaskTrack:
    """Person masks, one per frame, stored bit-packed.

    ``bits`` is ``(T, ceil(h*w/8))`` uint8 (``np.packbits`` of the row-major boolean
    mask), ``shape`` the mask's ``(h, w)``. MediaPipe computes the mask at 256x256 and
    upsamples it, so masks are kept at most 512 px on the long side (the frame's aspect
    ratio); :meth:`frame` returns one as booleans, :meth:`frame_resized` at any size.
    """

    bits: np.ndarray
    shape: tuple[int, int]

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    def frame(self, i: int) -> np.ndarray:
        h, w = self.shape
        return np.unpackbits(self.bits[i], count=h * w).reshape(h, w).astype(bool)

    def frame_resized(self, i: int, width: int, height: int) -> np.ndarray:
        import cv2

        m = self.frame(i).astype(np.uint8) * 255
        return cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) >= 128

    @staticmethod
    def mask_shape(width: int, height: int, long_side: int = 512) -> tuple[int, int]:
        s = min(1.0, long_side / max(width, height))
        return (max(1, round(height * s)), max(1, round(width * s)))

    @staticmethod
    def pack(mask: np.ndarray) -> np.ndarray:
        return np.packbits(np.asarray(mask, dtype=bool).ravel())


def _empty(T: int, n: int, k: int | None = 3) -> np.ndarray:
    shape = (T, n) if k is None else (T, n, k)
    return np.full(shape, np.nan, dtype=np.float32)


@dataclass
class Take:
    """One performance, as arrays (see the module docstring for shapes and units)."""

    timestamps: np.ndarray
    frame_index: np.ndarray
    pose_image: np.ndarray
    pose_world: np.ndarray
    pose_visibility: np.ndarray
    pose_presence: np.ndarray
    left_hand_image: np.ndarray
    right_hand_image: np.ndarray
    face_image: np.ndarray
    present: dict[str, np.ndarray]
    source: SourceInfo
    tracker: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    mask: MaskTrack | None = None

    # -- construction -------------------------------------------------------------
    @classmethod
    def empty(cls, T: int, source: SourceInfo, **kw: Any) -> "Take":
        """A take of T frames with nothing found (all NaN, all absent)."""
        return cls(
            timestamps=np.zeros(T),
            frame_index=np.arange(T, dtype=np.int64),
            pose_image=_empty(T, 33),
            pose_world=_empty(T, 33),
            pose_visibility=np.zeros((T, 33), np.float32),
            pose_presence=np.zeros((T, 33), np.float32),
            left_hand_image=_empty(T, 21),
            right_hand_image=_empty(T, 21),
            face_image=_empty(T, 478),
            present={p: np.zeros(T, bool) for p in PART_SIZES},
            source=source,
            **kw,
        )

    # -- queries ------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def n_frames(self) -> int:
        return len(self)

    @property
    def fps(self) -> float:
        """Median frame rate from the timestamps (the nominal rate for a 1-frame take)."""
        if len(self) >= 2:
            dt = np.diff(self.timestamps)
            return float(1.0 / np.median(dt))
        return float(self.source.nominal_fps or 30.0)

    @property
    def duration_s(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0]) if len(self) else 0.0

    def image(self, part: str) -> np.ndarray:
        """``(T, N, 3)`` pixel landmarks of a part ('pose', 'left_hand', 'right_hand', 'face')."""
        if part not in PART_SIZES:
            raise KeyError(f"unknown part {part!r}; expected one of {sorted(PART_SIZES)}")
        return getattr(self, f"{part}_image")

    def landmark(self, part: str, name: str, space: str = "image") -> np.ndarray:
        """``(T, 3)`` track of one named landmark. ``space`` is 'image' (px) or 'world'
        (metres, camera frame; body only)."""
        i = L.index(part, name)
        if space == "image":
            return self.image(part)[:, i]
        if space == "world":
            if part != "pose":
                raise KeyError("only the body ('pose') has metric world landmarks")
            return self.pose_world[:, i]
        raise KeyError(f"space must be 'image' or 'world', got {space!r}")

    def coverage(self) -> dict[str, float]:
        """Share of frames (0..1) in which each part was found."""
        T = max(len(self), 1)
        return {p: float(np.count_nonzero(v)) / T for p, v in self.present.items()}

    def summary(self) -> str:
        cov = self.coverage()
        src = self.source
        lines = [
            f"{len(self)} frames, {self.duration_s:.2f} s, {self.fps:.2f} fps (median), "
            f"{src.width}x{src.height}" + (f", rotated {src.rotation_deg} deg" if src.rotation_deg else ""),
            "found: " + ", ".join(f"{p.replace('_', ' ')} {100 * cov[p]:.0f}%" for p in PART_SIZES),
        ]
        if self.mask is not None:
            lines.append(f"person mask: {self.mask.shape[1]}x{self.mask.shape[0]} per frame")
        if not self.complete:
            lines.append("INCOMPLETE take (see notes)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def validate(self) -> None:
        """Check shapes, dtypes and timestamps; raise :class:`TakeFormatError` if wrong."""
        T = len(self)
        ts = np.asarray(self.timestamps)
        if ts.ndim != 1:
            raise TakeFormatError(f"timestamps must be (T,), got shape {ts.shape}")
        if not np.all(np.isfinite(ts)):
            raise TakeFormatError("timestamps contain NaN or infinity")
        if T > 1 and np.any(np.diff(ts) <= 0):
            k = int(np.argmax(np.diff(ts) <= 0))
            raise TakeFormatError(
                f"timestamps must increase strictly: frame {k + 1} at {ts[k + 1]:.6f} s "
                f"follows {ts[k]:.6f} s")
        expect = {
            "frame_index": (T,),
            "pose_image": (T, 33, 3),
            "pose_world": (T, 33, 3),
            "pose_visibility": (T, 33),
            "pose_presence": (T, 33),
            "left_hand_image": (T, 21, 3),
            "right_hand_image": (T, 21, 3),
            "face_image": (T, 478, 3),
        }
        for name, shape in expect.items():
            a = np.asarray(getattr(self, name))
            if a.shape != shape:
                raise TakeFormatError(f"{name} must have shape {shape} for {T} frames, got {a.shape}")
        for part in PART_SIZES:
            if part not in self.present:
                raise TakeFormatError(f"missing presence flags for {part!r}")
            if np.asarray(self.present[part]).shape != (T,):
                raise TakeFormatError(f"{part}_present must have shape ({T},)")
        if self.mask is not None:
            h, w = self.mask.shape
            want = (T, (h * w + 7) // 8)
            if self.mask.bits.shape != want or self.mask.bits.dtype != np.uint8:
                raise TakeFormatError(f"mask bits must be uint8 {want}, got "
                                      f"{self.mask.bits.dtype} {self.mask.bits.shape}")

    def slice(self, start: int, stop: int) -> "Take":
        """Frames ``start:stop`` as a new take (arrays copied)."""
        sl = slice(start, stop)
        mask = None
        if self.mask is not None:
            mask = MaskTrack(bits=self.mask.bits[sl].copy(), shape=self.mask.shape)
        return Take(
            timestamps=self.timestamps[sl].copy(),
            frame_index=self.frame_index[sl].copy(),
            pose_image=self.pose_image[sl].copy(),
            pose_world=self.pose_world[sl].copy(),
            pose_visibility=self.pose_visibility[sl].copy(),
            pose_presence=self.pose_presence[sl].copy(),
            left_hand_image=self.left_hand_image[sl].copy(),
            right_hand_image=self.right_hand_image[sl].copy(),
            face_image=self.face_image[sl].copy(),
            present={k: v[sl].copy() for k, v in self.present.items()},
            source=self.source,
            tracker=dict(self.tracker),
            notes=list(self.notes),
            complete=self.complete,
            mask=mask,
        )


# -- on disk ---------------------------------------------------------------------------

_ARRAYS = ("timestamps", "frame_index", "pose_image", "pose_world", "pose_visibility",
           "pose_presence", "left_hand_image", "right_hand_image", "face_image")
_DTYPES = {"timestamps": np.float64, "frame_index": np.int64}


def _header(take: Take) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "units": {"time": "s", "image": "px", "world": "m"},
        "axes": {
            "image": "origin top-left of the upright frame, +x right, +y down; z = MediaPipe "
                     "relative depth scaled like x (smaller is nearer)",
            "world": "camera frame: +x image right, +y up, +z towards the camera; right-handed; "
                     "origin between the hips",
        },
        "frames": len(take),
        "fps_median": round(take.fps, 6) if len(take) else None,
        "complete": bool(take.complete),
        "notes": list(take.notes),
        "landmarks": {"pose": list(L.POSE), "hand": list(L.HAND), "face": "face_000..face_477"},
        "source": take.source.to_json(),
        "tracker": take.tracker,
        "mask": None if take.mask is None else {"file": "mask.npz", "height": take.mask.shape[0],
                                                 "width": take.mask.shape[1], "packing": "np.packbits row-major"},
        "coverage": {k: round(v, 4) for k, v in take.coverage().items()},
    }


def save_take(take: Take, path: str | os.PathLike) -> Path:
    """Write ``take`` to the folder ``path`` atomically and return the path.

    An existing take at ``path`` is replaced; an existing folder that is *not* a take
    (no ``take.json``) and is not empty is refused, so nothing unrelated is lost.
    """
    take.validate()
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{path} exists and is a file, not a take folder")
        if any(path.iterdir()) and not (path / "take.json").exists():
            raise UsageError(f"{path} is a non-empty folder that is not a take; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        arrays = {name: np.asarray(getattr(take, name)) for name in _ARRAYS}
        for name in _ARRAYS:
            arrays[name] = arrays[name].astype(_DTYPES.get(name, np.float32), copy=False)
        for part, flags in take.present.items():
            arrays[f"{part}_present"] = np.asarray(flags, dtype=bool)
        np.savez_compressed(tmp / "landmarks.npz", **arrays)
        if take.mask is not None:
            np.savez_compressed(tmp / "mask.npz", bits=take.mask.bits,
                                shape=np.asarray(take.mask.shape, dtype=np.int64))
        with open(tmp / "take.json", "w", encoding="utf-8") as f:
            json.dump(_header(take), f, indent=2)
            f.write("\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _load_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise TakeFormatError(f"{file.parent}: missing {file.name}") from None
    except (ValueError, OSError, EOFError) as e:
        raise TakeFormatError(f"{file}: not a readable npz archive ({e})") from None


def load_take(path: str | os.PathLike) -> Take:
    """Read and validate a take folder (or its ``take.json``)."""
    path = Path(path)
    if path.name == "take.json":
        path = path.parent
    if not path.exists():
        raise TakeFormatError(f"no take at {path}")
    meta_file = path / "take.json"
    if not meta_file.is_file():
        raise TakeFormatError(f"{path} is not a take: it has no take.json")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TakeFormatError(f"{meta_file}: malformed JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise TakeFormatError(f"{meta_file}: not an Understudy take (schema is "
                              f"{meta.get('schema') if isinstance(meta, dict) else None!r}, "
                              f"expected {SCHEMA!r})")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TakeFormatError(f"{meta_file}: schema_version {version!r} is not supported "
                              f"(this Understudy reads version {SCHEMA_VERSION})")
    lm = meta.get("landmarks", {})
    if lm.get("pose") != list(L.POSE) or lm.get("hand") != list(L.HAND):
        raise TakeFormatError(f"{meta_file}: landmark names differ from MediaPipe's order")
    z = _load_npz(path / "landmarks.npz")
    missing = [n for n in _ARRAYS if n not in z] + [f"{p}_present" for p in PART_SIZES
                                                     if f"{p}_present" not in z]
    if missing:
        raise TakeFormatError(f"{path / 'landmarks.npz'}: missing arrays {missing}")
    if "source" not in meta:
        raise TakeFormatError(f"{meta_file}: no source section")
    mask = None
    if meta.get("mask"):
        mz = _load_npz(path / "mask.npz")
        if "bits" not in mz or "shape" not in mz:
            raise TakeFormatError(f"{path / 'mask.npz'}: needs arrays 'bits' and 'shape'")
        mask = MaskTrack(bits=mz["bits"], shape=(int(mz["shape"][0]), int(mz["shape"][1])))
    take = Take(
        **{n: z[n] for n in _ARRAYS},
        present={p: z[f"{p}_present"].astype(bool) for p in PART_SIZES},
        source=SourceInfo.from_json(meta["source"]),
        tracker=dict(meta.get("tracker") or {}),
        notes=list(meta.get("notes") or []),
        complete=bool(meta.get("complete", True)),
        mask=mask,
    )
    take.validate()
    if int(meta.get("frames", -1)) != len(take):
        raise TakeFormatError(f"{meta_file}: says {meta.get('frames')} frames, arrays hold {len(take)}")
    return take
