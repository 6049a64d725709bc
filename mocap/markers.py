"""Markers: named 3D landmark tracks in metres, the solver's input.

A take stores what MediaPipe saw (pixels, and hip-centred metres for the body). Lifting
(:mod:`mocap.root`) places those points in the world: camera-space translation from the
2D/3D fit, then the floor frame (+Y up, floor at y = 0, metres). The result is a
:class:`Markers`: ``points (T, N, 3)`` with names like ``"pose.left_wrist"``,
``"left_hand.index_tip"``, ``"face.nose_tip"``, plus ``"pose.mid_hip"`` and
``"pose.mid_shoulder"`` (midpoints of the left/right landmarks). NaN marks a point not
seen in a frame; ``confidence (T, N)`` is 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import UsageError

__all__ = ["Markers", "save_markers", "load_markers"]


@dataclass
class Markers:
    """Named 3D point tracks.

    ``names`` ``(N,)`` str, ``points`` ``(T, N, 3)`` float64 metres, ``confidence``
    ``(T, N)`` 0..1, ``timestamps`` ``(T,)`` s, ``frame`` "world" (+Y up, floor at 0) or
    "camera" (the glTF camera frame of :mod:`mocap.glossary`).
    """

    names: tuple[str, ...]
    points: np.ndarray
    timestamps: np.ndarray
    confidence: np.ndarray | None = None
    frame: str = "world"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        self.points = np.asarray(self.points, dtype=float)
        self.timestamps = np.asarray(self.timestamps, dtype=float)
        T, N = len(self.timestamps), len(self.names)
        if self.points.shape != (T, N, 3):
            raise UsageError(f"marker points must be (T, N, 3) = ({T}, {N}, 3), got {self.points.shape}")
        if self.confidence is None:
            self.confidence = np.where(np.isfinite(self.points[..., 0]), 1.0, 0.0)
        self.confidence = np.asarray(self.confidence, dtype=float)
        if self.confidence.shape != (T, N):
            raise UsageError(f"marker confidence must be (T, N) = ({T}, {N}), got {self.confidence.shape}")
        if len(set(self.names)) != N:
            raise UsageError("marker names must be unique")
        if self.frame not in ("world", "camera"):
            raise UsageError(f"marker frame must be 'world' or 'camera', got {self.frame!r}")
        self._index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.timestamps)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no marker {name!r}") from None

    def get(self, name: str) -> np.ndarray:
        """``(T, 3)`` track of one marker (a view)."""
        return self.points[:, self.index(name)]

    def select(self, names) -> np.ndarray:
        """``(T, k, 3)`` tracks of several markers, in the order given."""
        return self.points[:, [self.index(n) for n in names]]

    def with_points(self, points: np.ndarray, **kw: Any) -> "Markers":
        """A copy with new points (and optionally other fields)."""
        d = {"names": self.names, "points": points, "timestamps": self.timestamps,
             "confidence": self.confidence, "frame": self.frame, "meta": dict(self.meta)}
        d.update(kw)
        return Markers(**d)


MARKERS_SCHEMA = "understudy.markers"
MARKERS_SCHEMA_VERSION = 1


def save_markers(markers: Markers, path):
    """Write markers to an ``.npz`` (schema ``understudy.markers`` v1, no pickle), atomically:
    ``names (N,)``, ``points (T, N, 3)`` metres, ``confidence (T, N)``, ``timestamps (T,)``,
    and a JSON ``header`` (schema, version, frame, units, axes)."""
    import json
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    header = {"schema": MARKERS_SCHEMA, "schema_version": MARKERS_SCHEMA_VERSION, "frame": markers.frame,
              "units": {"length": "m", "time": "s"},
              "axes": "world: +Y up, floor at y=0, right-handed; camera: +x right, +y up, +z towards the camera"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, names=np.array(markers.names, dtype=str), points=markers.points,
                            confidence=markers.confidence, timestamps=markers.timestamps,
                            header=np.array(json.dumps(header)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_markers(path) -> Markers:
    """Read a markers ``.npz`` written by :func:`save_markers`."""
    import json
    from pathlib import Path

    from .errors import FileFormatError

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileFormatError(f"no markers file at {path}") from None
    except (ValueError, OSError, EOFError) as e:
        raise FileFormatError(f"{path}: not a readable markers archive ({e})") from None
    try:
        header = json.loads(str(d["header"]))
    except (KeyError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: missing or malformed header ({e})") from None
    if header.get("schema") != MARKERS_SCHEMA or header.get("schema_version") != MARKERS_SCHEMA_VERSION:
        raise FileFormatError(f"{path}: expected {MARKERS_SCHEMA} version {MARKERS_SCHEMA_VERSION}")
    try:
        return Markers(names=tuple(str(n) for n in d["names"]), points=d["points"], timestamps=d["timestamps"],
                       confidence=d["confidence"], frame=header.get("frame", "world"))
    except (KeyError, UsageError) as e:
        raise FileFormatError(f"{path}: inconsistent markers ({e})") from None
