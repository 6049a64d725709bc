"""Live Link Face CSV: write a :class:`~mocap.face.FaceTrack` the way Epic's iPhone app
exports a take, and read such files back (pure Python + numpy, for the Blender add-on).

The layout (one header line, one row per frame)::

    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:00:01:07.500,61,0.0123,...

* names are ARKit's in PascalCase, in **Live Link Face's column order**, which is
  Apple's except that ``JawRight`` comes before ``JawLeft`` and ``MouthRight`` before
  ``MouthLeft`` (:data:`LIVE_LINK_COLUMNS`);
* ``BlendShapeCount`` is 61: 52 shapes + head yaw/pitch/roll + each eye's yaw/pitch/roll;
* ``Timecode`` is ``HH:MM:SS:FF.fff``: hours, minutes, seconds, then the frame within
  the second at the timecode rate (``rate``, 60 by default as in the app) with its
  fraction, so a row at 1.125 s and 60 fps is ``00:00:01:07.500``;
* head and eye angles in radians; ours are yaw positive towards the performer's left,
  pitch positive down for the head (up for the eyes), roll positive when the left ear
  rises (:mod:`mocap.face`). Eye roll is 0.

:func:`read_live_link_csv` reads files from the app too (any subset of the columns,
extra columns ignored, names matched case-insensitively) and returns plain arrays.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .errors import FileFormatError, UsageError
from .face import ARKIT_SHAPES

__all__ = ["LIVE_LINK_SHAPES", "LIVE_LINK_COLUMNS", "LIVE_LINK_HEADER", "write_live_link_csv",
           "read_live_link_csv", "format_timecode", "parse_timecode"]


def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


_LL_ORDER = list(ARKIT_SHAPES)
for _a, _b in (("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")):
    _i, _j = _LL_ORDER.index(_a), _LL_ORDER.index(_b)
    _LL_ORDER[_i], _LL_ORDER[_j] = _LL_ORDER[_j], _LL_ORDER[_i]
LIVE_LINK_SHAPES: tuple[str, ...] = tuple(_pascal(n) for n in _LL_ORDER)
"""The 52 shape columns as Live Link Face names and orders them."""
POSE_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw",
                "RightEyePitch", "RightEyeRoll")
LIVE_LINK_COLUMNS: tuple[str, ...] = ("Timecode", "BlendShapeCount") + LIVE_LINK_SHAPES + POSE_COLUMNS
LIVE_LINK_HEADER = ",".join(LIVE_LINK_COLUMNS)
"""The exact header line."""

_TC = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[:;](\d+(?:\.\d+)?)\s*$")


def format_timecode(t: float, rate: float = 60.0) -> str:
    """``HH:MM:SS:FF.fff`` for ``t`` seconds at ``rate`` frames per second."""
    if not (np.isfinite(t) and t >= 0):
        raise UsageError(f"timecode needs a time >= 0 s, got {t}")
    ms_frames = round((t % 1.0) * rate * 1000)  # thousandths of a frame
    whole = int(t)
    if ms_frames >= rate * 1000:
        whole, ms_frames = whole + 1, 0
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    ff, frac = divmod(int(ms_frames), 1000)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{frac:03d}"


def parse_timecode(tc: str, rate: float = 60.0) -> float:
    """Seconds from ``HH:MM:SS:FF`` or ``HH:MM:SS:FF.fff`` at ``rate`` fps."""
    m = _TC.match(tc)
    if not m:
        raise FileFormatError(f"timecode {tc!r} is not HH:MM:SS:FF(.fff)")
    h, mi, s, f = int(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4))
    return h * 3600 + mi * 60 + s + f / rate


def write_live_link_csv(track, path: str | os.PathLike, *, rate: float = 60.0, start_s: float | None = None) -> Path:
    """Write ``track`` (a :class:`~mocap.face.FaceTrack`) as a Live Link Face CSV,
    atomically. Timecodes count from ``start_s`` (default: the first timestamp, so the
    file starts at ``00:00:00:00.000``) at ``rate`` fps. Values are written with 9
    significant digits (float32 round-trips exactly)."""
    if not rate > 0:
        raise UsageError(f"timecode rate must be positive, got {rate}")
    ts = np.asarray(track.timestamps, dtype=float)
    t0 = ts[0] if (start_s is None and len(ts)) else (start_s or 0.0)
    col = [ARKIT_SHAPES.index(n[0].lower() + n[1:]) for n in LIVE_LINK_SHAPES]
    curves = np.asarray(track.curves, dtype=np.float32)[:, col]
    euler = track.head_euler() if len(ts) else np.zeros((0, 3))
    eyes = np.asarray(track.eye_angles, dtype=float)
    buf = io.StringIO()
    buf.write(LIVE_LINK_HEADER + "\n")
    for k in range(len(ts)):
        pose = [euler[k, 0], euler[k, 1], euler[k, 2], eyes[k, 0], eyes[k, 1], 0.0, eyes[k, 2], eyes[k, 3], 0.0]
        vals = [f"{float(v):.9g}" for v in curves[k]] + [f"{float(v):.9g}" for v in pose]
        buf.write(f"{format_timecode(ts[k] - t0, rate)},{len(LIVE_LINK_SHAPES) + 9}," + ",".join(vals) + "\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_live_link_csv(path: str | os.PathLike, *, rate: float = 60.0) -> dict:
    """Read a Live Link Face CSV (ours or the app's).

    Returns a dict of plain arrays: ``times`` ``(T,)`` seconds from the first row,
    ``names`` the 52 ARKit names (camelCase, :data:`~mocap.face.ARKIT_SHAPES` order),
    ``curves`` ``(T, 52)`` float32 (0 for a shape the file lacks), ``head`` ``(T, 3)``
    yaw/pitch/roll, ``eyes`` ``(T, 6)`` left yaw/pitch/roll, right yaw/pitch/roll
    (radians; zeros when absent), ``timecodes`` the raw strings and ``missing`` the
    shapes not in the file. Raises :class:`FileFormatError` naming the line at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError(f"no CSV at {path}") from None
    except (UnicodeDecodeError, OSError) as e:
        raise FileFormatError(f"{path}: cannot read it as text ({e})") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise FileFormatError(f"{path}: empty file, expected a Live Link Face header")
    header = [h.strip() for h in rows[0]]
    low = {h.lower(): i for i, h in enumerate(header)}
    if "timecode" not in low:
        raise FileFormatError(f"{path}: the first line has no 'Timecode' column; not a Live Link Face CSV "
                              f"(it starts {','.join(header[:3])!r})")
    shape_cols = {n: low.get(n.lower()) for n in ARKIT_SHAPES}
    if all(v is None for v in shape_cols.values()):
        raise FileFormatError(f"{path}: no ARKit blendshape columns (e.g. EyeBlinkLeft) in the header")
    T = len(rows) - 1
    curves = np.zeros((T, len(ARKIT_SHAPES)), dtype=np.float32)
    head = np.zeros((T, 3))
    eyes = np.zeros((T, 6))
    times = np.zeros(T)
    tcs = []
    for k, r in enumerate(rows[1:]):
        line = k + 2
        if len(r) < len(header):
            raise FileFormatError(f"{path}, line {line}: {len(r)} fields for {len(header)} columns")
        tc = r[low["timecode"]].strip()
        tcs.append(tc)
        try:
            times[k] = parse_timecode(tc, rate)
        except FileFormatError as e:
            raise FileFormatError(f"{path}, line {line}: {e}") from None
        try:
            for j, n in enumerate(ARKIT_SHAPES):
                c = shape_cols[n]
                if c is not None:
                    curves[k, j] = float(r[c])
            for j, n in enumerate(POSE_COLUMNS[:3]):
                if n.lower() in low:
                    head[k, j] = float(r[low[n.lower()]])
            for j, n in enumerate(POSE_COLUMNS[3:]):
                if n.lower() in low:
                    eyes[k, j] = float(r[low[n.lower()]])
        except ValueError as e:
            raise FileFormatError(f"{path}, line {line}: not a number ({e})") from None
    if T:
        times = times - times[0]
    return {"times": times, "names": ARKIT_SHAPES, "curves": curves, "head": head, "eyes": eyes,
            "timecodes": tcs, "missing": [n for n, c in shape_cols.items() if c is None]}
