"""Drawing landmarks on frames, and writing H.264 MP4 files (the tracking preview).

:class:`VideoWriter` keeps each frame's presentation time, so a variable-frame-rate
source gives a preview with the same timing. It writes to a temporary file beside the
target and renames it into place on :meth:`VideoWriter.close`, so an interrupted run
never leaves a broken MP4 under the requested name.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import landmarks as L
from .errors import UsageError

__all__ = ["VideoWriter", "draw_landmarks"]

# BGR-free: colours are RGB because frames are RGB everywhere in Understudy
_LEFT = (255, 140, 0)     # performer's left: orange
_RIGHT = (0, 160, 255)    # performer's right: blue
_CENTRE = (240, 240, 240)
_FACE = (120, 255, 120)

_POSE_IDX = {n: i for i, n in enumerate(L.POSE)}
_HAND_IDX = {n: i for i, n in enumerate(L.HAND)}
_POSE_EDGES_IDX = [(_POSE_IDX[a], _POSE_IDX[b]) for a, b in L.POSE_EDGES]
_HAND_EDGES_IDX = [(_HAND_IDX[a], _HAND_IDX[b]) for a, b in L.HAND_EDGES]


def _side_colour(name_a: str, name_b: str):
    if name_a.startswith("left") and name_b.startswith("left"):
        return _LEFT
    if name_a.startswith("right") and name_b.startswith("right"):
        return _RIGHT
    return _CENTRE


_POSE_EDGE_COLOURS = [_side_colour(a, b) for a, b in L.POSE_EDGES]


def draw_landmarks(rgb: np.ndarray, *, pose=None, visibility=None, left_hand=None, right_hand=None,
                   face=None, text: str | None = None) -> np.ndarray:
    """Draw pixel landmarks (``(N, 3)`` arrays, NaN = absent) on a copy of ``rgb`` ``(H, W, 3)``.

    The performer's left side is orange, the right side blue, the face green.
    """
    import cv2

    img = np.ascontiguousarray(rgb).copy()
    h, w = img.shape[:2]
    thick = max(1, round(min(h, w) / 240))

    def ok(p):
        return np.all(np.isfinite(p[:2]))

    def pt(p):
        return (int(round(p[0])), int(round(p[1])))

    if face is not None:
        for p in np.asarray(face)[::2]:
            if ok(p):
                cv2.circle(img, pt(p), max(1, thick // 2), _FACE, -1, lineType=cv2.LINE_AA)
    for hand, col in ((left_hand, _LEFT), (right_hand, _RIGHT)):
        if hand is None:
            continue
        hand = np.asarray(hand)
        for a, b in _HAND_EDGES_IDX:
            if ok(hand[a]) and ok(hand[b]):
                cv2.line(img, pt(hand[a]), pt(hand[b]), col, thick, lineType=cv2.LINE_AA)
        for p in hand:
            if ok(p):
                cv2.circle(img, pt(p), thick + 1, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    if pose is not None:
        pose = np.asarray(pose)
        vis = np.ones(len(pose)) if visibility is None else np.asarray(visibility)
        for (a, b), col in zip(_POSE_EDGES_IDX, _POSE_EDGE_COLOURS):
            if ok(pose[a]) and ok(pose[b]) and min(vis[a], vis[b]) > 0.3:
                cv2.line(img, pt(pose[a]), pt(pose[b]), col, thick * 2, lineType=cv2.LINE_AA)
        for i, p in enumerate(pose):
            if ok(p) and vis[i] > 0.3:
                cv2.circle(img, pt(p), thick * 2, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    if text:
        scale = max(0.4, h / 720)
        cv2.putText(img, text, (8, int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thick + 2, cv2.LINE_AA)
        cv2.putText(img, text, (8, int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick, cv2.LINE_AA)
    return img


class VideoWriter:
    """H.264 MP4 writer that keeps per-frame timestamps (seconds).

    >>> with VideoWriter("out.mp4", fps=30) as w:   # doctest: +SKIP
    ...     w.write(rgb, t=0.0)
    """

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0, crf: int = 23):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            raise UsageError(f"video output must end in .mp4, .mov or .mkv, got {self.path.name!r}")
        self.fps = float(fps)
        self.crf = crf
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._container = None
        self._stream = None
        self._t0: float | None = None
        self._last_pts = -1
        self.frames = 0

    def _open(self, w: int, h: int):
        import av

        self._container = av.open(str(self._tmp), mode="w")
        rate = Fraction(self.fps).limit_denominator(1001)
        s = self._container.add_stream("libx264", rate=rate)
        s.width, s.height = w - w % 2, h - h % 2
        s.pix_fmt = "yuv420p"
        s.time_base = self.TIME_BASE
        s.options = {"crf": str(self.crf), "preset": "veryfast"}
        self._stream = s

    def write(self, rgb: np.ndarray, t: float | None = None) -> None:
        """Append an RGB frame ``(H, W, 3)`` uint8 shown at time ``t`` s (default: frame/fps)."""
        import av

        if self._container is None:
            self._open(rgb.shape[1], rgb.shape[0])
        s = self._stream
        if rgb.shape[0] != s.height or rgb.shape[1] != s.width:
            rgb = rgb[: s.height, : s.width]
        if t is None:
            t = self.frames / self.fps
        if self._t0 is None:
            self._t0 = t
        pts = int(round((t - self._t0) / self.TIME_BASE))
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        frame.time_base = self.TIME_BASE
        for packet in s.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place. Returns its path (None if no frames)."""
        if self._container is None:
            self._tmp.unlink(missing_ok=True)
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close()
        else:
            self.abort()
