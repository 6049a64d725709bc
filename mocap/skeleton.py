"""The canonical humanoid skeleton, loaded from ``assets/skeleton/canonical.toml``.

Its joints carry the VRM 1.0 humanoid bone names (hips, spine, chest, upperChest, neck,
head, left/right Shoulder, UpperArm, LowerArm, Hand, 15 finger joints per hand,
UpperLeg, LowerLeg, Foot, Toes: 52 joints), in a T-pose rest for an adult of 1.75 m,
metres, +Y up, facing +Z. Each joint may name the tracked landmark it follows
(``marker``), which is how the solver and the synthetic-take generator agree on what
MediaPipe's points mean. The file is data: see its header for the schema.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import FileFormatError
from .motion import Skeleton

__all__ = ["CANONICAL_PATH", "SkeletonSpec", "load_skeleton_spec", "canonical_spec", "canonical_skeleton"]

CANONICAL_PATH = Path(__file__).resolve().parent.parent / "assets" / "skeleton" / "canonical.toml"
SCHEMA = "understudy.skeleton"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SkeletonSpec:
    """A skeleton data file: the :class:`Skeleton` plus what each joint tracks.

    ``markers`` maps joint name -> landmark (``"pose.left_elbow"``, ``"left_hand.index_pip"``,
    ``"pose.mid_hip"``); ``end_markers`` maps a leaf joint -> the landmark its end site follows.
    """

    skeleton: Skeleton
    markers: dict[str, str]
    end_markers: dict[str, str]
    height_m: float
    name: str


def load_skeleton_spec(path: str | Path) -> SkeletonSpec:
    """Read and check a skeleton TOML file (schema ``understudy.skeleton`` version 1)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(f"no skeleton file at {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise FileFormatError(f"{path}: malformed TOML ({e})") from None
    if data.get("schema") != SCHEMA or data.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{path}: expected schema {SCHEMA!r} version {SCHEMA_VERSION}, got "
                              f"{data.get('schema')!r} version {data.get('schema_version')!r}")
    joints = data.get("joint")
    if not isinstance(joints, list) or not joints:
        raise FileFormatError(f"{path}: no [[joint]] entries")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    ends: dict[str, np.ndarray] = {}
    markers: dict[str, str] = {}
    end_markers: dict[str, str] = {}
    for k, jd in enumerate(joints):
        try:
            name = str(jd["name"])
            off = [float(v) for v in jd["offset"]]
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{path}: joint #{k + 1} needs a name and a 3-number offset ({e})") from None
        if len(off) != 3:
            raise FileFormatError(f"{path}: joint {name!r} offset must have 3 numbers")
        parent = jd.get("parent")
        if parent is None:
            if k != 0:
                raise FileFormatError(f"{path}: only the first joint may lack a parent ({name!r} does)")
            parents.append(-1)
        else:
            if parent not in names:
                raise FileFormatError(f"{path}: joint {name!r} names parent {parent!r}, which is not listed before it")
            parents.append(names.index(parent))
        names.append(name)
        offsets.append(off)
        if "end" in jd:
            ends[name] = np.asarray(jd["end"], dtype=float)
        if "marker" in jd:
            markers[name] = str(jd["marker"])
        if "end_marker" in jd:
            end_markers[name] = str(jd["end_marker"])
    skel = Skeleton(names=tuple(names), parents=np.asarray(parents), offsets=np.asarray(offsets),
                    end_sites=ends)
    return SkeletonSpec(skeleton=skel, markers=markers, end_markers=end_markers,
                        height_m=float(data.get("height_m", 0.0)), name=str(data.get("name", path.stem)))


@lru_cache(maxsize=1)
def canonical_spec() -> SkeletonSpec:
    """The shipped canonical skeleton spec (cached; treat as read-only)."""
    return load_skeleton_spec(CANONICAL_PATH)


def canonical_skeleton() -> Skeleton:
    """The canonical 52-joint humanoid skeleton in its T-pose rest (1.75 m)."""
    return canonical_spec().skeleton
