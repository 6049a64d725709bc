"""Readers for the files the add-on imports: ``motion.npz`` (a solved take), BVH, and
Live Link Face CSV. numpy and the standard library only.

They follow the project's readers (``mocap.motion_io.load_motion``, ``mocap.bvh.load_bvh``)
and are tested against them; differences are listed on each function. Everything comes
out in Understudy's conventions: metres, seconds, +Y up, facing +Z, quaternions wxyz.
Malformed input raises :class:`~.errors.FileFormatError` naming the file and the problem.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import quat
from .arkit import ARKIT_NAMES, arkit_key  # noqa: F401  (ARKIT_NAMES re-exported)
from .errors import FileFormatError

MOTION_SCHEMA = "understudy.motion"
MOTION_SCHEMA_VERSION = 1


@dataclass
class Motion:
    """A skeletal motion as arrays: ``names`` ``(J,)``, ``parents`` ``(J,)`` (-1 for the
    root, parents first), ``offsets`` ``(J, 3)`` rest offsets (m), ``rotations``
    ``(T, J, 4)`` local wxyz, ``root_positions`` ``(T, 3)`` m, ``timestamps`` ``(T,)`` s,
    ``fps``. Identity rotations are the rest pose (world-aligned skeleton)."""

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    rotations: np.ndarray
    root_positions: np.ndarray
    timestamps: np.ndarray
    fps: float
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        """World rest positions ``(J, 3)`` with the root at the origin."""
        P = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            if p >= 0:
                P[j] = P[p] + self.offsets[j]
        return P

    def fk(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions ``(T, J, 3)`` and global rotations ``(T, J, 4)``."""
        return quat.fk(self.parents, self.offsets, self.rotations, self.root_positions)


def _check_motion(m: Motion, where: str) -> Motion:
    J = len(m.names)
    if len(set(m.names)) != J:
        raise FileFormatError(f"{where}: joint names are not unique")
    if m.parents.shape != (J,) or m.offsets.shape != (J, 3):
        raise FileFormatError(f"{where}: parents/offsets do not match the {J} joint names")
    if J == 0 or m.parents[0] != -1 or np.any(m.parents[1:] < 0) or np.any(m.parents >= np.arange(J)):
        raise FileFormatError(f"{where}: joints must be sorted parents first with one root")
    T = m.rotations.shape[0] if m.rotations.ndim == 3 else -1
    if m.rotations.shape != (T, J, 4) or T < 1:
        raise FileFormatError(f"{where}: rotations must be (frames, {J}, 4), got {m.rotations.shape}")
    if m.root_positions.shape != (T, 3) or m.timestamps.shape != (T,):
        raise FileFormatError(f"{where}: root_positions/timestamps do not have {T} frames")
    for name, a in (("rotations", m.rotations), ("root_positions", m.root_positions), ("offsets", m.offsets)):
        if not np.all(np.isfinite(a)):
            raise FileFormatError(f"{where}: {name} contain NaN or infinite values")
    if not (math.isfinite(m.fps) and m.fps > 0):
        raise FileFormatError(f"{where}: frame rate must be positive, got {m.fps}")
    m.rotations = quat.unit(m.rotations)
    return m


def load_motion_npz(path: str | os.PathLike) -> Motion:
    """Read a ``motion.npz`` (schema ``understudy.motion`` version 1; a take folder
    holds one as ``TAKE/motion.npz``). Contacts and end sites are not needed and not read."""
    path = Path(path)
    if path.is_dir():
        if not (path / "motion.npz").is_file():
            raise FileFormatError(f"{path} has no motion.npz: solve the take first (`understudy solve {path}`)")
        path = path / "motion.npz"
    if not path.is_file():
        raise FileFormatError(f"no motion file at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise FileFormatError(f"{path.name}: not a readable motion archive ({e})") from None
    if "header" not in data:
        raise FileFormatError(f"{path.name}: no header; not an Understudy motion file")
    try:
        header = json.loads(str(data["header"]))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path.name}: malformed header ({e})") from None
    if header.get("schema") != MOTION_SCHEMA or header.get("schema_version") != MOTION_SCHEMA_VERSION:
        raise FileFormatError(f"{path.name}: expected {MOTION_SCHEMA} version {MOTION_SCHEMA_VERSION}, got "
                              f"{header.get('schema')!r} version {header.get('schema_version')!r}")
    missing = [k for k in ("names", "parents", "offsets", "rotations", "root_positions", "timestamps")
               if k not in data]
    if missing:
        raise FileFormatError(f"{path.name}: missing arrays {missing}")
    try:
        fps = float(header["fps"])
    except (KeyError, TypeError, ValueError):
        raise FileFormatError(f"{path.name}: header has no frame rate") from None
    m = Motion(names=tuple(str(n) for n in data["names"]), parents=np.asarray(data["parents"], dtype=np.int64),
               offsets=np.asarray(data["offsets"], dtype=float), rotations=np.asarray(data["rotations"], dtype=float),
               root_positions=np.asarray(data["root_positions"], dtype=float),
               timestamps=np.asarray(data["timestamps"], dtype=float), fps=fps,
               meta={"source": str(path), **(header.get("meta") or {})})
    return _check_motion(m, path.name)


# -- BVH -----------------------------------------------------------------------------------

METRES_MAX_SIZE = 3.0
HUMAN_SIZE_M = 1.7
UNIT_CANDIDATES = (("centimetres", 0.01), ("CMU cgspeed units (inch / 0.45)", 0.0254 / 0.45),
                   ("inches", 0.0254), ("millimetres", 0.001))


def guess_scale(points: np.ndarray) -> tuple[float, str]:
    """Metres per BVH unit from the rest pose's points ``(N, 3)`` (joints and end sites):
    the rule of ``mocap.bvh.guess_scale`` (size <= 3 units: metres; else the usual unit
    making the figure 1.0-2.5 m nearest 1.7 m; else scaled to 1.7 m)."""
    size = float(np.max(np.ptp(points, axis=0)))
    if size <= 0:
        raise FileFormatError("cannot guess the units of a skeleton whose rest pose is a single point")
    if size <= METRES_MAX_SIZE:
        return 1.0, f"metres: rest pose spans {size:.3g} units"
    fits = [(n, k) for n, k in UNIT_CANDIDATES if 1.0 <= size * k <= 2.5]
    if fits:
        name, k = min(fits, key=lambda c: abs(math.log(size * c[1] / HUMAN_SIZE_M)))
        return k, f"{name}: rest pose spans {size:.4g} units = {size * k:.3f} m"
    k = HUMAN_SIZE_M / size
    return k, f"no usual unit fits a {size:.4g}-unit figure; scaled to {HUMAN_SIZE_M} m"


def _snap_fps(tok: str) -> float:
    dt = float(tok)
    fps = 1.0 / dt
    r = round(fps)
    digits = len(tok.split(".")[1]) if "." in tok else 0
    if r > 0 and f"{1.0 / r:.{digits}f}" == f"{dt:.{digits}f}":
        return float(r)
    return fps


def load_bvh(path: str | os.PathLike, *, scale: float | None = None) -> Motion:
    """Read a BVH file in metres (``scale`` metres per unit; None guesses it).

    As ``mocap.bvh.load_bvh``: rotation channels are intrinsic Euler angles in the
    listed order (``Zrotation Xrotation Yrotation`` = ``Rz Rx Ry``), position channels
    replace the offset's components and the root's become the root path, the frame rate
    is snapped to a whole number when the frame time is one rounded. Difference:
    position channels on non-root joints are ignored (constant in the files we know)."""
    path = Path(path)
    where = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such BVH file") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\0" in raw[:4096]:
        raise FileFormatError(f"{where}: not a BVH file (binary data)")
    text = raw.decode("utf-8", errors="replace")
    head, sep, body = text.partition("MOTION")
    if not sep or not head.lstrip().startswith("HIERARCHY"):
        raise FileFormatError(f"{where}: not a BVH file (expected HIERARCHY ... MOTION)")
    tokens = head.split()[1:]
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    ends: dict[int, np.ndarray] = {}
    channels: list[list[str]] = []
    stack: list[int] = []
    i = 0
    last = -1

    def need(k: int) -> None:
        if i + k > len(tokens):
            raise FileFormatError(f"{where}: HIERARCHY ends early")

    try:
        while i < len(tokens):
            t = tokens[i]
            if t in ("ROOT", "JOINT"):
                need(2)
                if t == "ROOT" and names:
                    raise FileFormatError(f"{where}: more than one ROOT")
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                last = len(names) - 1
                i += 2
            elif t == "End":
                need(2)
                last = -2  # an end site of stack[-1]
                i += 2
            elif t == "{":
                stack.append(last)
                i += 1
            elif t == "}":
                if not stack:
                    raise FileFormatError(f"{where}: unbalanced '}}' in HIERARCHY")
                stack.pop()
                i += 1
            elif t == "OFFSET":
                need(4)
                v = [float(x) for x in tokens[i + 1:i + 4]]
                if stack and stack[-1] == -2:
                    ends[stack[-2]] = np.array(v)
                elif stack:
                    offsets[stack[-1]] = v
                i += 4
            elif t == "CHANNELS":
                need(2)
                n = int(tokens[i + 1])
                need(2 + n)
                chans = tokens[i + 2:i + 2 + n]
                for c in chans:
                    if c.lower() not in {f"{a}{k}" for a in "xyz" for k in ("position", "rotation")}:
                        raise FileFormatError(f"{where}: unknown channel {c!r}")
                channels[stack[-1]] = chans
                i += 2 + n
            else:
                raise FileFormatError(f"{where}: unexpected {t!r} in HIERARCHY")
    except ValueError as e:
        raise FileFormatError(f"{where}: bad number in HIERARCHY ({e})") from None
    if not names or stack:
        raise FileFormatError(f"{where}: HIERARCHY has no joints or unbalanced braces")
    lines = body.splitlines()
    k = 0
    hdr = {}
    while k < len(lines) and len(hdr) < 2:
        s = lines[k].strip()
        k += 1
        if not s:
            continue
        m = re.match(r"^(Frames|Frame Time)\s*:\s*(\S+)$", s)
        if not m:
            raise FileFormatError(f"{where}: expected 'Frames:' and 'Frame Time:' after MOTION, found {s!r}")
        hdr[m.group(1)] = m.group(2)
    try:
        n_frames = int(hdr["Frames"])
        dt = float(hdr["Frame Time"])
    except (KeyError, ValueError):
        raise FileFormatError(f"{where}: MOTION needs a whole frame count and a frame time") from None
    if not (math.isfinite(dt) and dt > 0) or n_frames < 1:
        raise FileFormatError(f"{where}: MOTION needs at least one frame and a positive frame time")
    n_ch = sum(len(c) for c in channels)
    rows = [ln.split() for ln in lines[k:] if ln.strip()]
    if len(rows) != n_frames:
        raise FileFormatError(f"{where}: MOTION says {n_frames} frames, found {len(rows)}")
    bad = [r for r, row in enumerate(rows) if len(row) != n_ch]
    if bad:
        raise FileFormatError(f"{where}: frame {bad[0] + 1} has {len(rows[bad[0]])} values, expected {n_ch}")
    try:
        data = np.array(rows, dtype=float)
    except ValueError:
        raise FileFormatError(f"{where}: MOTION holds a value that is not a number") from None
    if not np.all(np.isfinite(data)):
        raise FileFormatError(f"{where}: MOTION holds NaN or infinite values")

    J, T = len(names), n_frames
    offsets_a = np.array(offsets, dtype=float)
    rot = np.zeros((T, J, 4))
    rot[..., 0] = 1.0
    root = np.tile(offsets_a[0], (T, 1))
    col = 0
    for j, chans in enumerate(channels):
        order, cols = "", []
        for c in chans:
            axis, kind = c[0].upper(), c[1:].lower()
            if kind == "rotation":
                order += axis
                cols.append(col)
            elif j == 0:
                root[:, "XYZ".index(axis)] = data[:, col]
            col += 1
        if order:
            rot[:, j] = quat.from_euler(np.deg2rad(data[:, cols]), order)
    rest = np.zeros((J, 3))
    for j, p in enumerate(parents):
        if p >= 0:
            rest[j] = rest[p] + offsets_a[j]
    pts = [rest] + [rest[j] + e for j, e in ends.items()]
    if scale is None:
        scale, rule = guess_scale(np.vstack([p.reshape(-1, 3) for p in pts]))
    else:
        rule = "given"
    m = Motion(names=tuple(names), parents=np.array(parents, dtype=np.int64), offsets=offsets_a * scale,
               rotations=rot, root_positions=root * scale, timestamps=np.arange(T) * dt, fps=_snap_fps(hdr["Frame Time"]),
               meta={"source": str(path), "bvh_scale": scale, "bvh_scale_rule": rule})
    m.timestamps = np.arange(T) / m.fps
    return _check_motion(m, where)


# -- Live Link Face CSV --------------------------------------------------------------------

@dataclass
class FaceCurves:
    """Face animation: ``names`` ARKit names ``(K,)``, ``values`` ``(T, K)`` in 0..1,
    ``timestamps`` ``(T,)`` s from the first row."""

    names: tuple[str, ...]
    values: np.ndarray
    timestamps: np.ndarray
    fps: float
    notes: list[str] = field(default_factory=list)


def _timecode_s(tc: str, fps: float) -> float:
    """``HH:MM:SS:FF(.fff)`` -> seconds, frames at ``fps``."""
    m = re.match(r"^(\d+):(\d+):(\d+)[:;](\d+(?:\.\d+)?)$", tc.strip())
    if not m:
        raise ValueError(tc)
    h, mi, s, f = int(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4))
    return h * 3600 + mi * 60 + s + f / fps


def read_live_link_csv(path: str | os.PathLike, *, fps: float = 60.0) -> FaceCurves:
    """Read a Live Link Face CSV: a ``Timecode`` column (``HH:MM:SS:FF.fff``, frames at
    ``fps``), optionally ``BlendShapeCount``, then one column per ARKit blendshape
    (values 0..1); head and eye rotation columns are not blendshapes and are skipped.

    Reads the same times and curves as ``mocap.face_csv.read_live_link_csv`` (tested),
    without importing it."""
    path = Path(path)
    where = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such CSV file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{where}: cannot read as text CSV ({e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise FileFormatError(f"{where}: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if not header or header[0].lower() != "timecode":
        raise FileFormatError(f"{where}: not a Live Link Face CSV (first column must be 'Timecode', "
                              f"found {header[0] if header else ''!r})")
    cols = [(c, arkit_key(h)) for c, h in enumerate(header) if c > 0 and arkit_key(h)]
    if not cols:
        raise FileFormatError(f"{where}: no ARKit blendshape columns (e.g. 'EyeBlinkLeft') in the header")
    T, K = len(rows) - 1, len(cols)
    vals = np.empty((T, K))
    times = np.empty(T)
    for r, row in enumerate(rows[1:], start=2):
        if len(row) < len(header):
            raise FileFormatError(f"{where}: row {r} has {len(row)} values, the header {len(header)}")
        try:
            times[r - 2] = _timecode_s(row[0], fps)
            vals[r - 2] = [float(row[c]) for c, _ in cols]
        except ValueError:
            raise FileFormatError(f"{where}: row {r}: bad timecode or value") from None
    if not np.all(np.isfinite(vals)):
        raise FileFormatError(f"{where}: blendshape values contain NaN or infinite values")
    notes = []
    if T > 1 and np.any(np.diff(times) <= 0):
        times = np.arange(T) / fps
        notes.append(f"{where}: timecodes repeat or go back (midnight?); rows are placed at {fps:g} fps instead")
    return FaceCurves(names=tuple(n for _, n in cols), values=vals, timestamps=times - times[0], fps=fps,
                      notes=notes)
