"""Motion on disk: ``motion.npz`` (schema ``understudy.motion`` version 1), no pickle.

A solved take keeps its motion beside the landmarks (``TAKE/motion.npz``). Arrays:

===================  ===================  ==========================================
``names``            ``(J,)`` str         joint names
``parents``          ``(J,)`` int64       parent index, -1 for the root, sorted
``offsets``          ``(J, 3)`` f8        rest offsets from the parent, metres
``rotations``        ``(T, J, 4)`` f4     local rotations, wxyz
``root_positions``   ``(T, 3)`` f8        world position of the root joint, metres
``timestamps``       ``(T,)`` f8          seconds
``end_names``        ``(E,)`` str         joints that carry an end site
``end_offsets``      ``(E, 3)`` f8        their end-site offsets
``contacts_<name>``  ``(T,)`` bool        optional per-foot contact flags
``header``           0-d str              JSON: schema, version, fps, units, axes, meta
===================  ===================  ==========================================

Writes are atomic (temporary file + rename). Loading validates and raises
:class:`~mocap.errors.FileFormatError` naming the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileFormatError, UsageError
from .motion import Motion, Skeleton

__all__ = ["SCHEMA", "SCHEMA_VERSION", "save_motion", "load_motion"]

SCHEMA = "understudy.motion"
SCHEMA_VERSION = 1


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def save_motion(motion: Motion, path: str | os.PathLike, *, contacts: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``motion`` (and optional per-foot ``contacts``) to ``path`` atomically."""
    path = Path(path)
    sk = motion.skeleton
    header = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "fps": float(motion.fps),
        "frames": int(motion.n_frames),
        "units": {"length": "m", "time": "s"},
        "axes": "+Y up, character faces +Z, right-handed; quaternions wxyz, local to the parent",
        "meta": _json_safe(dict(motion.meta)),
    }
    ends = sk.end_sites or {}
    arrays = {
        "names": np.array(sk.names, dtype=str),
        "parents": np.asarray(sk.parents, dtype=np.int64),
        "offsets": np.asarray(sk.offsets, dtype=np.float64),
        "rotations": np.asarray(motion.rotations, dtype=np.float32),
        "root_positions": np.asarray(motion.root_positions, dtype=np.float64),
        "timestamps": np.asarray(motion.timestamps, dtype=np.float64),
        "end_names": np.array(list(ends.keys()), dtype=str),
        "end_offsets": np.array([ends[k] for k in ends], dtype=np.float64).reshape(-1, 3),
        "header": np.array(json.dumps(header)),
    }
    for name, flags in (contacts or {}).items():
        flags = np.asarray(flags, dtype=bool)
        if flags.shape != (motion.n_frames,):
            raise FileFormatError(f"contacts {name!r} must have shape ({motion.n_frames},), got {flags.shape}")
        arrays[f"contacts_{name}"] = flags
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_motion(path: str | os.PathLike) -> tuple[Motion, dict[str, np.ndarray]]:
    """Read a ``motion.npz``; returns ``(motion, contacts)``."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"no motion file at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise FileFormatError(f"{path}: not a readable motion archive ({e})") from None
    if "header" not in data:
        raise FileFormatError(f"{path}: no header; not an Understudy motion file")
    try:
        header = json.loads(str(data["header"]))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}: malformed header ({e})") from None
    if header.get("schema") != SCHEMA or header.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{path}: expected {SCHEMA} version {SCHEMA_VERSION}, got "
                              f"{header.get('schema')!r} version {header.get('schema_version')!r}")
    need = ["names", "parents", "offsets", "rotations", "root_positions", "timestamps"]
    missing = [k for k in need if k not in data]
    if missing:
        raise FileFormatError(f"{path}: missing arrays {missing}")
    ends = {str(n): data["end_offsets"][i] for i, n in enumerate(data.get("end_names", []))}
    try:
        sk = Skeleton(names=tuple(str(n) for n in data["names"]), parents=data["parents"],
                      offsets=data["offsets"], end_sites=ends)
        motion = Motion(skeleton=sk, rotations=data["rotations"].astype(np.float64),
                        root_positions=data["root_positions"], fps=float(header["fps"]),
                        timestamps=data["timestamps"], meta=dict(header.get("meta") or {}))
    except (UsageError, KeyError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: inconsistent motion ({e})") from None
    contacts = {k[len("contacts_"):]: v.astype(bool) for k, v in data.items() if k.startswith("contacts_")}
    return motion, contacts
