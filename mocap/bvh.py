"""BVH (Biovision Hierarchy) import and export: text file <-> :class:`~mocap.motion.Motion`.

A BVH file is a ``HIERARCHY`` (joints, each with an ``OFFSET`` from its parent and a list
of ``CHANNELS``; leaves may end in an ``End Site``) followed by ``MOTION`` (a frame count,
a frame time, then one line of numbers per frame, the channels in the order the joints
appear in the hierarchy). How this module reads it:

* **Rotations.** A joint's rotation channels, in the order listed, are intrinsic Euler
  angles in degrees applied to column vectors: ``Zrotation Xrotation Yrotation`` means
  ``R = Rz @ Rx @ Ry`` (:func:`mocap.glossary.E2Q` with ``order="ZXY"``). Any order, and
  one to three rotation channels per joint, is accepted; a joint without rotation
  channels keeps the identity.
* **Positions.** Position channels *replace* the matching components of the joint's
  ``OFFSET`` (Blender's importer reads them so; for the usual root ``OFFSET 0 0 0`` it
  is the same as adding them). The root's become ``Motion.root_positions``. On any
  other joint they are kept as per-frame ``Motion.local_offsets`` **only if** they differ
  from the rest offset somewhere (by more than 1e-5 of the longest bone); many exporters
  write constant position channels on every joint, and those are dropped.
* **End Sites** are kept in ``Skeleton.end_sites``; a zero-length End Site carries no
  information and is dropped (:func:`save_bvh` writes one for each leaf that has none).
* **Axes.** BVH is +Y up like us; nothing is rotated on import. The facing direction
  varies between files and is **not** changed here (in frame 0 the CMU walk faces about
  +Z, the salsa +X); turning a motion to face +Z is the caller's choice.
* **Units.** BVH has none. ``load_bvh(scale=k)`` multiplies every length by ``k`` to get
  metres. With ``scale=None`` it guesses from the figure's size in the rest pose, see
  :func:`guess_scale`; the choice and the reason are in ``motion.meta["bvh_scale"]`` and
  ``motion.meta["bvh_scale_rule"]``.
* **Frame rate.** ``fps = 1 / Frame Time``, snapped to a whole number when the printed
  frame time is that rate rounded to its printed digits (``0.0083333`` -> 120, but
  ``0.0333667`` stays 29.97). The raw value is ``motion.meta["bvh_frame_time"]``.

Malformed files raise :class:`~mocap.errors.FileFormatError` naming the file, the line
and the problem, e.g. ``walk.bvh: line 12: expected '{' after ROOT Hips, found 'OFFSET'``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FileFormatError, UsageError
from .glossary import E2Q, Q2E
from .motion import Motion, Skeleton

__all__ = ["load_bvh", "save_bvh", "guess_scale", "UNIT_CANDIDATES"]

_AXES = "XYZ"
_CHANNELS = {f"{a}{kind}".lower(): (kind, a) for a in _AXES for kind in ("position", "rotation")}

METRES_MAX_SIZE = 3.0
"""A figure whose rest pose spans at most this many units (largest extent along X, Y or
Z, end sites included) is taken to be in metres already."""

HUMAN_SIZE_M = 1.7
"""The size a guessed unit aims for: a standing adult, or a T-pose's arm span."""

UNIT_CANDIDATES: tuple[tuple[str, float], ...] = (
    ("centimetres", 0.01),
    ("CMU cgspeed units (inch / 0.45)", 0.0254 / 0.45),
    ("inches", 0.0254),
    ("millimetres", 0.001),
)
"""Units :func:`guess_scale` chooses between for figures larger than
:data:`METRES_MAX_SIZE`, as (name, metres per unit). The CMU ASF files say
``:units length 0.45``, i.e. one unit is 1/0.45 inch, and the cgspeed BVH conversions
kept those units: 0.05644 m per unit."""

_PLAUSIBLE_M = (1.0, 2.5)


# -- unit guessing ------------------------------------------------------------------------


def guess_scale(skeleton: Skeleton) -> tuple[float, str]:
    """Metres per unit for a skeleton whose lengths are in unknown units, and why.

    The rule: take the figure's size ``s``, the largest extent along X, Y or Z of its rest
    pose (joints and end sites; a standing figure's height, a T-pose's height or arm
    span; independent of which axis is up).

    * ``s <= 3`` units: metres already, scale 1.
    * otherwise, of the units in :data:`UNIT_CANDIDATES` that make the figure 1.0-2.5 m,
      the one that brings ``s`` nearest to 1.7 m (by ratio). That reads 17.7-44.3 units
      as cgspeed CMU units, 44.3-98 as inches, 100-250 as centimetres and 1000-2500 as
      millimetres.
    * if no unit does (3-17.7, 98-100, 250-1000 or over 2500 units), the scale that makes
      ``s`` exactly 1.7 m; the reason says so.

    Example: the cgspeed CMU skeleton spans 24.2 units (legs slightly apart, arms
    down), so 0.05644 m per unit and a 1.37 m rest pose.
    """
    pts = [skeleton.rest_positions()]
    if skeleton.end_sites:
        pts.append(np.array(list(skeleton.rest_end_sites().values())))
    P = np.concatenate(pts)
    size = float(np.max(np.ptp(P, axis=0)))
    if size <= 0:
        raise FileFormatError("cannot guess the units of a skeleton whose rest pose is a single point")
    if size <= METRES_MAX_SIZE:
        return 1.0, f"metres: rest pose spans {size:.3g} units (<= {METRES_MAX_SIZE:g})"
    fits = [(n, k) for n, k in UNIT_CANDIDATES if _PLAUSIBLE_M[0] <= size * k <= _PLAUSIBLE_M[1]]
    if fits:
        name, k = min(fits, key=lambda c: abs(math.log(size * c[1] / HUMAN_SIZE_M)))
        return k, f"{name}: rest pose spans {size:.4g} units = {size * k:.3f} m"
    k = HUMAN_SIZE_M / size
    return k, (
        f"no usual unit makes a {size:.4g}-unit figure human-sized; scaled to {HUMAN_SIZE_M} m "
        f"({k:.6g} m per unit)"
    )


# -- parsing --------------------------------------------------------------------------------


@dataclass
class _Joint:
    name: str
    parent: int
    line: int
    offset: np.ndarray | None = None
    channels: list[tuple[str, str]] = field(default_factory=list)  # (kind, axis)
    end_site: np.ndarray | None = None


class _Parser:
    """Recursive descent over the HIERARCHY tokens, each tagged with its 1-based line."""

    def __init__(self, lines: list[str], where: str):
        self.where = where
        self.tokens: list[tuple[str, int]] = []
        self.motion_line = None  # index into lines of the MOTION keyword
        for i, line in enumerate(lines):
            parts = line.split()
            if parts and parts[0].upper() == "MOTION":
                self.motion_line = i
                break
            self.tokens.extend((t, i + 1) for t in parts)
        self.pos = 0
        self.joints: list[_Joint] = []
        self.last_line = len(lines)

    def fail(self, line: int, msg: str) -> FileFormatError:
        return FileFormatError(f"{self.where}: line {line}: {msg}")

    def peek(self) -> tuple[str | None, int]:
        if self.pos < len(self.tokens):
            return self.tokens[self.pos]
        line = self.motion_line + 1 if self.motion_line is not None else self.last_line
        return None, line

    def take(self, what: str) -> tuple[str, int]:
        tok, line = self.peek()
        if tok is None:
            end = "MOTION" if self.motion_line is not None else "the end of the file"
            raise self.fail(line, f"expected {what}, reached {end}")
        self.pos += 1
        return tok, line

    def expect(self, word: str, context: str) -> int:
        tok, line = self.take(f"'{word}' {context}")
        if tok.upper() != word.upper():
            raise self.fail(line, f"expected '{word}' {context}, found {tok!r}")
        return line

    def number(self, context: str) -> float:
        tok, line = self.take(f"a number {context}")
        try:
            v = float(tok)
        except ValueError:
            raise self.fail(line, f"expected a number {context}, found {tok!r}") from None
        if not math.isfinite(v):
            raise self.fail(line, f"{context}: {tok!r} is not a finite number")
        return v

    def vec3(self, context: str) -> np.ndarray:
        return np.array([self.number(context) for _ in range(3)])

    def name_after(self, keyword: str, line: int) -> str:
        """The rest of ``line`` after ROOT/JOINT (names may hold spaces), minus a '{'."""
        parts = []
        while self.pos < len(self.tokens) and self.tokens[self.pos][1] == line:
            if self.tokens[self.pos][0] == "{":
                break
            parts.append(self.tokens[self.pos][0])
            self.pos += 1
        if not parts:
            raise self.fail(line, f"{keyword} without a name")
        return " ".join(parts)

    def parse(self) -> list[_Joint]:
        tok, line = self.peek()
        if tok is None and self.motion_line is None:
            raise FileFormatError(f"{self.where}: empty file, not a BVH")
        if tok is None or tok.upper() != "HIERARCHY":
            raise FileFormatError(
                f"{self.where}: not a BVH file: line {line} should start with 'HIERARCHY', "
                f"found {tok or 'MOTION'!r}"
            )
        self.pos += 1
        tok, line = self.take("'ROOT'")
        if tok.upper() != "ROOT":
            raise self.fail(line, f"expected 'ROOT' after HIERARCHY, found {tok!r}")
        self.joint("ROOT", -1, line)
        tok, line = self.peek()
        if tok is not None:
            if tok.upper() == "ROOT":
                raise self.fail(line, "a second ROOT: only one skeleton per file is supported")
            raise self.fail(line, f"expected 'MOTION' after the ROOT's closing '}}', found {tok!r}")
        if self.motion_line is None:
            raise FileFormatError(f"{self.where}: no MOTION section after the HIERARCHY")
        return self.joints

    def joint(self, keyword: str, parent: int, line: int) -> None:
        name = self.name_after(keyword, line)
        for other in self.joints:
            if other.name == name:
                raise self.fail(line, f"duplicate joint name {name!r} (first at line {other.line})")
        j = len(self.joints)
        jt = _Joint(name, parent, line)
        self.joints.append(jt)
        self.expect("{", f"after {keyword} {name}")
        seen_offset = seen_channels = False
        while True:
            tok, tline = self.take(f"'}}' to close {keyword} {name} (opened on line {line})")
            up = tok.upper()
            if up == "OFFSET":
                if seen_offset:
                    raise self.fail(tline, f"second OFFSET in {name}")
                jt.offset = self.vec3(f"in the OFFSET of {name}")
                seen_offset = True
            elif up == "CHANNELS":
                if seen_channels:
                    raise self.fail(tline, f"second CHANNELS in {name}")
                seen_channels = True
                ntok, nline = self.take(f"the channel count of {name}")
                if not ntok.isdigit():
                    raise self.fail(nline, f"expected the channel count of {name}, found {ntok!r}")
                for _ in range(int(ntok)):
                    ctok, cline = self.take(f"{ntok} channel names for {name}")
                    ch = _CHANNELS.get(ctok.lower())
                    if ch is None:
                        raise self.fail(
                            cline,
                            f"unknown channel {ctok!r} in {name} (CHANNELS {ntok} declares {ntok} "
                            "of Xposition ... Zrotation)",
                        )
                    if ch in jt.channels:
                        raise self.fail(cline, f"channel {ctok} listed twice in {name}")
                    jt.channels.append(ch)
            elif up == "JOINT":
                self.require_offset(jt, tline)
                self.joint("JOINT", j, tline)
            elif up == "END":
                self.require_offset(jt, tline)
                self.expect("Site", "after End")
                if jt.end_site is not None:
                    raise self.fail(tline, f"second End Site in {name}")
                self.expect("{", "after End Site")
                self.expect("OFFSET", f"in the End Site of {name}")
                jt.end_site = self.vec3(f"in the End Site OFFSET of {name}")
                self.expect("}", f"to close the End Site of {name}")
            elif up == "}":
                self.require_offset(jt, tline)
                return
            else:
                raise self.fail(
                    tline, f"expected OFFSET, CHANNELS, JOINT, End Site or '}}' in {name}, found {tok!r}"
                )

    def require_offset(self, jt: _Joint, line: int) -> None:
        if jt.offset is None:
            raise self.fail(line, f"{jt.name} has no OFFSET")


def _snap_fps(tok: str) -> float:
    dt = float(tok)
    fps = 1.0 / dt
    r = round(fps)
    if r >= 1:
        m = re.fullmatch(r"[+]?\d*\.(\d+)", tok)
        tol = 0.5 * 10.0 ** -len(m.group(1)) if m else 1e-9 * dt
        if abs(dt - 1.0 / r) <= tol * (1 + 1e-9):
            return float(r)
    return fps


def _header_value(lines: list[str], i: int, label: str, where: str) -> tuple[str, int]:
    """``Frames: 994`` / ``Frame Time: 0.0083`` on line index ``i`` (skipping blanks)."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        raise FileFormatError(
            f"{where}: line {i}: expected '{label}:' after MOTION, reached the end of the file"
        )
    m = re.fullmatch(r"\s*" + label.replace(" ", r"\s+") + r"\s*:\s*(\S+)\s*", lines[i], flags=re.IGNORECASE)
    if not m:
        raise FileFormatError(
            f"{where}: line {i + 1}: expected '{label}: <value>', found {lines[i].strip()[:60]!r}"
        )
    return m.group(1), i + 1


def load_bvh(path: str | os.PathLike, *, scale: float | None = None) -> Motion:
    """Read a BVH file into a :class:`~mocap.motion.Motion` in metres.

    ``scale``: metres per file unit; ``None`` guesses it (:func:`guess_scale`). The
    skeleton's joints are in the file's (depth-first) order. ``motion.meta`` holds
    ``source``, ``bvh_scale``, ``bvh_scale_rule``, ``bvh_frame_time`` and
    ``bvh_rotation_orders`` (joint name -> e.g. ``"ZXY"``, as in the file). See the module
    docstring for how channels, units and End Sites are read.

    Raises :class:`~mocap.errors.FileFormatError` (file, line, problem) for anything
    malformed, and :class:`~mocap.errors.UsageError` for a bad ``scale``.
    """
    path = Path(path)
    where = path.name
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise UsageError(f"scale must be a positive number of metres per BVH unit, got {scale!r}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such BVH file") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\0" in raw[:4096]:
        raise FileFormatError(f"{where}: not a BVH file (binary data)")
    lines = raw.decode("utf-8", errors="replace").splitlines()

    parser = _Parser(lines, where)
    joints = parser.parse()
    J = len(joints)

    # -- MOTION header -------------------------------------------------------------------
    i = parser.motion_line + 1
    tok, i = _header_value(lines, i, "Frames", where)
    if not tok.isdigit():
        raise FileFormatError(f"{where}: line {i}: frame count must be a whole number, found {tok!r}")
    n_frames = int(tok)
    dt_tok, i = _header_value(lines, i, "Frame Time", where)
    try:
        dt = float(dt_tok)
    except ValueError:
        raise FileFormatError(f"{where}: line {i}: frame time must be a number, found {dt_tok!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise FileFormatError(f"{where}: line {i}: frame time must be positive, found {dt_tok!r}")
    fps = _snap_fps(dt_tok)

    # -- frame data ----------------------------------------------------------------------
    n_ch = sum(len(jt.channels) for jt in joints)
    rows, row_lines = [], []
    for k in range(i, len(lines)):
        parts = lines[k].split()
        if not parts:
            continue
        if len(parts) != n_ch:
            raise FileFormatError(
                f"{where}: line {k + 1}: expected {n_ch} values (the channels declared in HIERARCHY), "
                f"found {len(parts)}"
            )
        rows.append(parts)
        row_lines.append(k + 1)
    if len(rows) != n_frames:
        raise FileFormatError(f"{where}: MOTION says {n_frames} frames, found {len(rows)}")
    if n_frames == 0:
        raise FileFormatError(f"{where}: MOTION has 0 frames, nothing to load")
    try:
        data = np.array(rows, dtype=float).reshape(n_frames, n_ch)
    except ValueError:
        data = None
    if data is None or not np.all(np.isfinite(data)):
        for parts, ln in zip(rows, row_lines):
            for c, t in enumerate(parts):
                try:
                    ok = math.isfinite(float(t))
                except ValueError:
                    ok = False
                if not ok:
                    raise FileFormatError(f"{where}: line {ln}: value {c + 1} ({t!r}) is not a finite number")

    # -- to arrays (file units) ----------------------------------------------------------
    names = tuple(jt.name for jt in joints)
    parents = np.array([jt.parent for jt in joints], dtype=np.int64)
    offsets = np.array([jt.offset for jt in joints])
    T = n_frames
    rotations = np.zeros((T, J, 4))
    rotations[..., 0] = 1.0
    moved: dict[int, np.ndarray] = {}  # joint -> (T, 3) offset with position channels applied
    by_order: dict[str, tuple[list[int], list[list[int]]]] = {}
    orders: dict[str, str] = {}
    col = 0
    for j, jt in enumerate(joints):
        rot_cols, order = [], ""
        for kind, axis in jt.channels:
            if kind == "rotation":
                rot_cols.append(col)
                order += axis
            else:
                if j not in moved:
                    moved[j] = np.tile(offsets[j], (T, 1))
                moved[j][:, _AXES.index(axis)] = data[:, col]
            col += 1
        if order:
            orders[jt.name] = order
            js, cols = by_order.setdefault(order, ([], []))
            js.append(j)
            cols.append(rot_cols)
    for order, (js, cols) in by_order.items():
        E = np.deg2rad(data[:, np.array(cols)])  # (T, n_joints, len(order))
        rotations[:, js] = E2Q(E, order)

    root_positions = moved.get(0, np.tile(offsets[0], (T, 1)))
    bone = np.linalg.norm(offsets[1:], axis=1).max() if J > 1 else 1.0
    tol = 1e-5 * max(bone, 1e-12)
    animated = [j for j, track in moved.items() if j > 0 and np.max(np.abs(track - offsets[j])) > tol]
    local_offsets = None
    if animated:
        local_offsets = np.broadcast_to(offsets, (T, J, 3)).copy()
        for j in animated:
            local_offsets[:, j] = moved[j]

    ends = {jt.name: jt.end_site for jt in joints if jt.end_site is not None and np.any(jt.end_site != 0)}
    try:
        skeleton = Skeleton(names, parents, offsets, ends)
    except UsageError as e:  # pragma: no cover - the parser checks names and order itself
        raise FileFormatError(f"{where}: {e}") from None

    if scale is None:
        try:
            scale, rule = guess_scale(skeleton)
        except FileFormatError as e:
            raise FileFormatError(f"{where}: {e}; pass scale= (metres per unit) explicitly") from None
    else:
        rule = "given"
    scale = float(scale)
    meta = {
        "source": str(path),
        "bvh_scale": scale,
        "bvh_scale_rule": rule,
        "bvh_frame_time": dt,
        "bvh_rotation_orders": orders,
    }
    if animated:
        meta["bvh_animated_offsets"] = [names[j] for j in animated]
    try:
        return Motion(
            skeleton=skeleton.scaled(scale),
            rotations=rotations,
            root_positions=root_positions * scale,
            fps=fps,
            local_offsets=None if local_offsets is None else local_offsets * scale,
            meta=meta,
        )
    except UsageError as e:  # pragma: no cover - values are checked above
        raise FileFormatError(f"{where}: {e}") from None


# -- writing --------------------------------------------------------------------------------


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)


def save_bvh(motion: Motion, path: str | os.PathLike, *, order: str = "ZXY", scale: float = 1.0) -> Path:
    """Write ``motion`` as a BVH file; returns the path.

    ``order``: the rotation channel order of every joint, intrinsic as listed (see
    :func:`mocap.glossary.E2Q`), e.g. ``"ZXY"`` (the usual one) or ``"ZYX"`` (cgspeed's).
    ``scale``: metres per file unit, as in :func:`load_bvh`: 1.0 writes metres, 0.01
    centimetres; ``load_bvh(path, scale=scale)`` reads the motion back.

    The root gets 6 channels (position, then rotation), other joints 3 rotation channels,
    or 6 when the motion animates their offsets (``local_offsets``). Angles are
    unwrapped over time (no jumps of 360 degrees). Leaves without an End Site get a
    zero-length one. Numbers are written with 6 decimals (1 micrometre in metres).

    The file is written to a temporary file in the same folder and renamed into place,
    so a failure never leaves a half-written BVH.
    """
    if not isinstance(motion, Motion):
        raise UsageError(f"save_bvh needs a Motion, got {type(motion).__name__}")
    up = order.upper() if isinstance(order, str) else ""
    if len(up) != 3 or set(up) != set(_AXES):
        raise UsageError(f"order must be a permutation of XYZ such as 'ZXY', got {order!r}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise UsageError(f"scale must be a positive number of metres per BVH unit, got {scale!r}")
    sk = motion.skeleton
    for n in sk.names:
        if not n or any(c.isspace() for c in n) or n in "{}":
            raise UsageError(f"joint name {n!r} cannot be written to BVH (empty, whitespace or a brace)")
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")

    k = 1.0 / float(scale)
    J, T = len(sk), len(motion)
    kids: list[list[int]] = [[] for _ in range(J)]
    for j in range(1, J):
        kids[int(sk.parents[j])].append(j)
    animated = np.zeros(J, bool)
    if motion.local_offsets is not None:
        diff = np.abs(motion.local_offsets - sk.offsets[None]).max(axis=(0, 2))
        animated[1:] = diff[1:] > 1e-9
    rot_names = " ".join(f"{a}rotation" for a in up)
    pos_names = "Xposition Yposition Zposition"

    out = io.StringIO()
    out.write("HIERARCHY\n")
    dfs: list[int] = []

    def write_joint(j: int, depth: int) -> None:
        dfs.append(j)
        ind = "\t" * depth
        out.write(f"{ind}{'ROOT' if j == 0 else 'JOINT'} {sk.names[j]}\n{ind}{{\n")
        out.write(f"{ind}\tOFFSET {_fmt(sk.offsets[j] * k)}\n")
        if j == 0 or animated[j]:
            out.write(f"{ind}\tCHANNELS 6 {pos_names} {rot_names}\n")
        else:
            out.write(f"{ind}\tCHANNELS 3 {rot_names}\n")
        for c in kids[j]:
            write_joint(c, depth + 1)
        end = sk.end_sites.get(sk.names[j])
        if end is not None or not kids[j]:
            end = np.zeros(3) if end is None else end
            out.write(f"{ind}\tEnd Site\n{ind}\t{{\n{ind}\t\tOFFSET {_fmt(end * k)}\n{ind}\t}}\n")
        out.write(f"{ind}}}\n")

    write_joint(0, 0)
    out.write(f"MOTION\nFrames: {T}\nFrame Time: {1.0 / motion.fps:.10g}\n")

    E = np.rad2deg(Q2E(motion.rotations, up))  # (T, J, 3), angles in the order of `up`
    E = np.unwrap(E, axis=0, period=360.0)
    cols = []
    for j in dfs:
        if j == 0:
            cols.append(motion.root_positions * k)
        elif animated[j]:
            cols.append(motion.local_offsets[:, j] * k)
        cols.append(E[:, j])
    np.savetxt(out, np.concatenate(cols, axis=1), fmt="%.6f", delimiter=" ")

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(out.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
