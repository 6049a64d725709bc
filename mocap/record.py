"""Live capture: camera (or a video played in real time) -> tracking -> One Euro cleanup ->
per-frame solve -> preview, VMC stream and crash-safe takes.

The loop
--------
A capture thread reads the source and keeps only the **latest** frame: when tracking
falls behind, older frames are dropped, as a real camera drops them (a video file given
as ``--camera FILE`` is played at its own frame rate, the same way). Dropped frames are
counted. The main thread hands each frame it gets to a free tracker of a
:class:`TrackerPool` (MediaPipe Holistic in video mode; two graphs on alternate frames
with two or more cores, ``--trackers``), takes the tracked frames back in capture order
and hands them to the solve thread (:class:`_Sink`; MediaPipe releases the GIL, so all
of them overlap), which lifts it (as :func:`mocap.root.lift_take` on the one frame, in the world
frame fixed by the first frame with a body), cleans it causally
(:class:`mocap.cleanup.LiveCleaner`: swap chain, spike gate, hold, One Euro, bone
lengths), solves it (:class:`LivePose`: what :func:`mocap.solve.solve_motion` gives on the
last 3 frames, computed per frame by :mod:`mocap.live_solve`; bone lengths frozen after the
first ``calib_s`` seconds), turns the face into ARKit curves
(:class:`LiveFace`), streams the result over VMC (:mod:`mocap.vmc`) and records it.
``latency`` is the time from the frame's capture to its solved pose.

Takes on disk, safe against crashes
-----------------------------------
Each take is a folder ``OUT/take_NNN`` (numbered from the highest existing one; an
existing folder is never reused). While recording it holds::

    journal.jsonl          one JSON line per event: start (source, tracker), chunk, segment, stop
    chunks/lm_000001.npz   landmarks of the frames since the previous chunk, written to a
                           temporary file and renamed (atomic), at least every ``flush_s``
    video/seg_000001.mkv   the raw frames tracked, MJPEG in Matroska, one file per
                           ``segment_s`` seconds (every finished segment is a complete file)

On stop the chunks become a regular take (``take.json`` + ``landmarks.npz``, the
:mod:`mocap.take` format, ``take.json`` written last) plus ``live.npz`` (per-frame
capture-to-pose latency and its parts, dropped frames, the live-solved pose and face
curves) and the ``video/``
segments. A take folder without ``take.json`` is an interrupted one: the process was
killed, the machine went down. :func:`recover_take` (``understudy recover``) turns it
into a valid take from the chunks on disk, losing at most the frames of the last
``flush_s`` seconds.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CameraError, TakeFormatError, TrackingError, UnderstudyError, UsageError
from .take import PART_SIZES, Intrinsics, SourceInfo, Take

__all__ = [
    "RECORDING_SCHEMA",
    "RecordOptions",
    "LatestFrame",
    "LiveTracker",
    "TrackerPool",
    "SeamFilter",
    "LivePose",
    "LiveFace",
    "TakeRecorder",
    "Recorder",
    "next_take_dir",
    "recover_take",
    "recover_all",
    "parse_resolution",
]

RECORDING_SCHEMA = "understudy.recording"
RECORDING_SCHEMA_VERSION = 1
_TAKE_RE = re.compile(r"^take_(\d{3,})$")
_LM_ARRAYS = ("pose_image", "pose_world", "pose_visibility", "pose_presence", "left_hand_image",
              "right_hand_image", "face_image")


def parse_resolution(spec: str | None) -> tuple[int, int] | None:
    """``"640x480"`` -> ``(640, 480)``; None stays None."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", spec)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise UsageError(f"--resolution must look like 640x480, got {spec!r}")
    return int(m.group(1)), int(m.group(2))


def next_take_dir(out: Path, *, after: int = 0) -> Path:
    """Create and return ``out/take_NNN``, one past the highest existing number and past
    ``after`` (the recorder passes its last number, so a discarded take's number is not
    given to the next one either). An existing folder is never reused."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = max([after] + [int(m.group(1)) for p in out.iterdir() if (m := _TAKE_RE.match(p.name))])
    while True:
        n += 1
        d = out / f"take_{n:03d}"
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue


# -- capture ----------------------------------------------------------------------------


@dataclass
class Captured:
    """A frame handed to the tracker: ``t`` source time (s), ``rgb`` ``(H, W, 3)``,
    ``index`` in the source, ``wall`` ``time.monotonic()`` when it was captured (for a
    played file: when it was due), ``dropped`` frames dropped since the previous one;
    ``track_start``/``track_end`` (monotonic s), ``tracker`` (which graph of the
    :class:`TrackerPool`) and ``solve_ms`` are filled on the way."""

    t: float
    rgb: np.ndarray
    index: int
    wall: float
    dropped: int
    track_start: float = 0.0
    track_end: float = 0.0
    tracker: int = 0
    solve_ms: float = float("nan")


class LatestFrame:
    """Reads ``source`` in a thread and keeps only the newest frame.

    A video file is paced at its own timestamps (``realtime=True``); a camera paces
    itself. :meth:`get` waits for a frame newer than the last one taken; frames replaced
    before being taken are counted in ``dropped``. When the source ends, ``ended`` is
    set and ``error`` holds the :class:`UnderstudyError` if it failed mid-stream.
    """

    def __init__(self, source, *, realtime: bool, resize: tuple[int, int] | None = None,
                 loop: bool = False) -> None:
        self.source = source
        self.realtime = realtime
        self.loop = loop
        self.resize = resize
        self._slot: Captured | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.ended = False
        self.error: BaseException | None = None
        self.delivered = 0
        self.dropped = 0
        self._pending_drops = 0
        self._th = threading.Thread(target=self._run, name="understudy-capture", daemon=True)

    def start(self) -> LatestFrame:
        self._th.start()
        return self

    def _run(self) -> None:
        try:
            import cv2

            t0_wall = t0_src = None
            for fr in self._looped():
                if self._stop.is_set():
                    break
                now = time.monotonic()
                if self.realtime:
                    if t0_wall is None:
                        t0_wall, t0_src = now, fr.t
                    due = t0_wall + (fr.t - t0_src)
                    while not self._stop.is_set() and (wait := due - time.monotonic()) > 0:
                        self._stop.wait(min(wait, 0.05))
                    now = max(due, now)
                rgb = fr.rgb
                if self.resize is not None and (rgb.shape[1], rgb.shape[0]) != self.resize:
                    rgb = cv2.resize(rgb, self.resize, interpolation=cv2.INTER_AREA)
                with self._cond:
                    if self._slot is not None:
                        self.dropped += 1
                        self._pending_drops += 1
                    self._slot = Captured(float(fr.t), rgb, int(fr.index), now, self._pending_drops)
                    self.delivered += 1
                    self._cond.notify_all()
        except UnderstudyError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001 - a camera unplugged mid-stream surfaces as anything from OpenCV/ffmpeg
            self.error = CameraError(f"{self.source.info.path}: the source failed mid-stream: {type(e).__name__}: {e}")
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _looped(self):
        """The source's frames; with ``loop`` the file again and again, timestamps and
        indices continuing (each pass one frame step after the previous one)."""
        from .sources import Frame

        base_t, base_i = 0.0, 0
        while True:
            first = last = None
            n = 0
            for fr in self.source.frames():
                if first is None:
                    first = fr.t
                last = fr.t
                n += 1
                yield Frame(fr.t - first + base_t if self.loop else fr.t, fr.rgb, fr.index + base_i)
                if self._stop.is_set():
                    return
            if not self.loop or n < 2:
                return
            step = (last - first) / (n - 1)
            base_t += last - first + step
            base_i += n

    def get(self, timeout: float = 0.5) -> Captured | None:
        """The newest frame not yet taken (waits up to ``timeout`` s); None if none came
        (check ``ended``)."""
        with self._cond:
            if self._slot is None and not self.ended:
                self._cond.wait(timeout)
            item, self._slot = self._slot, None
            if item is not None:
                # drops are counted when a frame is replaced; the taken frame carries them
                item.dropped = self._pending_drops
                self._pending_drops = 0
            return item

    def stop(self) -> None:
        self._stop.set()
        self._th.join(timeout=5.0)


# -- tracking ---------------------------------------------------------------------------


class LiveTracker:
    """MediaPipe Holistic in video mode, one frame at a time.

    :meth:`process` returns a dict of the frame's arrays in the take's units (pixels of
    the frame, metres in the camera frame): ``pose_image (33, 3)``, ``pose_world``,
    ``pose_visibility (33,)``, ``pose_presence``, ``left_hand_image (21, 3)``,
    ``right_hand_image``, ``face_image (478, 3)`` (NaN where absent) and ``present``
    (part -> bool).
    """

    def __init__(self, *, model_complexity: int = 1, refine_face: bool = True,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        from .models import require_pose_model

        require_pose_model(model_complexity)
        import mediapipe as mp

        self.settings = {"model_complexity": model_complexity, "refine_face": refine_face,
                         "smooth_landmarks": True, "min_detection_confidence": min_detection_confidence,
                         "min_tracking_confidence": min_tracking_confidence}
        self.version = mp.__version__
        self.n_face = 478 if refine_face else 468
        self._h = mp.solutions.holistic.Holistic(
            static_image_mode=False, model_complexity=model_complexity, smooth_landmarks=True,
            enable_segmentation=False, refine_face_landmarks=refine_face,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)

    def process(self, rgb: np.ndarray) -> dict[str, Any]:
        from .glossary import mp_norm_to_px, mp_world_to_camera
        from .tracking import _lm_array

        H, W = rgb.shape[:2]
        rgb.flags.writeable = False
        res = self._h.process(rgb)
        out: dict[str, Any] = {
            "pose_image": np.full((33, 3), np.nan, np.float32), "pose_world": np.full((33, 3), np.nan, np.float32),
            "pose_visibility": np.zeros(33, np.float32), "pose_presence": np.zeros(33, np.float32),
            "left_hand_image": np.full((21, 3), np.nan, np.float32),
            "right_hand_image": np.full((21, 3), np.nan, np.float32),
            "face_image": np.full((478, 3), np.nan, np.float32),
            "present": {p: False for p in PART_SIZES},
        }
        if res.pose_landmarks is not None:
            xyz, vis, pres = _lm_array(res.pose_landmarks, 33, with_vis=True)
            out["pose_image"][:] = mp_norm_to_px(xyz, W, H)
            out["pose_visibility"][:] = vis
            out["pose_presence"][:] = pres
            out["present"]["pose"] = True
            if res.pose_world_landmarks is not None:
                out["pose_world"][:] = mp_world_to_camera(_lm_array(res.pose_world_landmarks, 33))
        for part in ("left_hand", "right_hand"):
            lms = getattr(res, f"{part}_landmarks")
            if lms is not None:
                out[f"{part}_image"][:] = mp_norm_to_px(_lm_array(lms, 21), W, H)
                out["present"][part] = True
        if res.face_landmarks is not None:
            out["face_image"][: self.n_face] = mp_norm_to_px(_lm_array(res.face_landmarks, self.n_face), W, H)
            out["present"]["face"] = True
        return out

    def close(self) -> None:
        self._h.close()


class TrackerPool:
    """``n`` trackers (:class:`LiveTracker`), each in its own thread; results leave in
    capture order; a second tracker is used only while overlapping pays.

    One Holistic graph runs its models partly in parallel and keeps about 1.3 of two
    cores busy, so at 640x480 a frame takes about as long as a 30 fps frame lasts and a
    single tracker falls behind (frames wait for it, the camera drops them). A second
    graph can start the next frame while the first is busy: on an otherwise idle two-core
    machine each overlapped frame takes ~1.4x as long but two run at once, so the rate
    rises to the camera's. When other programs already use the cores, overlapping
    only makes every frame slower: then one tracker at a time is better for both rate
    and latency. So the pool measures it: the running mean time of a frame tracked
    alone (``alone_ms``) and of one that overlapped another (``overlap_ms``); a frame
    may start beside a busy tracker only while ``overlap_ms < max_ratio x alone_ms``
    (with ``max_ratio`` 1.8, two overlapped frames then finish in less time than two
    alone would, with a margin). Every ``probe_s`` seconds the mode not chosen runs for
    ``probe_frames`` frames, whose times replace the old mean (``probe_ema``), and a
    graph's first ``warmup_frames`` are left out, so both means stay current and the
    pool follows the machine's load. Each
    tracker sees an increasing subset of the frames (video mode, its own landmark
    smoothing and region-of-interest tracking); :class:`SeamFilter` removes the offset
    between two trackers taking turns.

    :meth:`submit` hands a frame to tracker 0 when it is free, else to the idle tracker
    (call it only when :meth:`can_submit`). Finished frames leave in capture order, never
    one whose predecessor is still being tracked: the tracker thread that completes the
    sequence calls ``on_result(item, lm)`` at once (a frame must not wait for the main
    loop to wake up). An exception from a tracker or from the callback stops the
    hand-over, after the frames before it, and is kept in ``error``; :meth:`drain` waits
    for the frames in flight; :meth:`wait` blocks until a frame may be submitted.
    """

    def __init__(self, trackers: list[LiveTracker], *, on_result=None, adaptive: bool = True, max_ratio: float = 1.8,
                 probe_s: float = 5.0, probe_frames: int = 8, ema: float = 0.1, probe_ema: float = 0.35,
                 warmup_frames: int = 3) -> None:
        if not trackers:
            raise UsageError("at least one tracker is needed")
        self.trackers = trackers
        self.on_result = on_result
        self.error: BaseException | None = None
        self._emit_lock = threading.Lock()
        self.adaptive = adaptive
        self.max_ratio = max_ratio
        self.probe_s = probe_s
        self.probe_frames = probe_frames
        self.ema = ema
        self.probe_ema = probe_ema
        self.warmup_frames = warmup_frames
        self.alone_ms: float | None = None
        self.overlap_ms: float | None = None
        self.overlapped_frames = 0
        self._cond = threading.Condition()
        self._busy = [False] * len(trackers)
        self._overlapped = [False] * len(trackers)
        self._probe_job = [False] * len(trackers)
        self._tracked = [0] * len(trackers)
        self._jobs: list[tuple[int, Captured] | None] = [None] * len(trackers)
        self._done: dict[int, tuple[Captured, dict[str, Any] | BaseException]] = {}
        self._seq_in = 0
        self._seq_out = 0
        self._closing = False
        self._n_alone = self._n_overlap = 0
        self._last_probe = time.monotonic()
        self._probe_left = 0  # frames left in a probe of the mode not chosen
        self._probe_overlap = False
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"understudy-track-{i}", daemon=True)
                         for i in range(len(trackers))]
        for th in self._threads:
            th.start()

    def __len__(self) -> int:
        return len(self.trackers)

    def _overlap_pays(self) -> bool:
        """With the lock held: may a frame start beside a busy tracker?"""
        if not self.adaptive:
            return True
        if self._probe_left > 0:
            return self._probe_overlap
        pays = (self.overlap_ms is None or self.alone_ms is None
                or self.overlap_ms < self.max_ratio * self.alone_ms)
        now = time.monotonic()
        if self._n_alone < 3 <= self._n_overlap:
            probe = True  # always overlapped so far: measure a few frames alone once
        else:
            probe = now - self._last_probe >= self.probe_s  # measure the other way again: the load may change
        if probe:
            self._last_probe = now
            self._probe_overlap = not pays if self._n_alone >= 3 else False
            self._probe_left = self.probe_frames
            return self._probe_overlap
        return pays

    def _can_submit(self) -> bool:
        if all(self._busy):
            return False
        return not any(self._busy) or self._overlap_pays()

    def can_submit(self) -> bool:
        """A tracker is free and may start now."""
        with self._cond:
            return self._can_submit()

    def submit(self, item: Captured) -> None:
        with self._cond:
            if self.on_result is None:
                raise RuntimeError("TrackerPool.submit before on_result is set")
            if all(self._busy):  # (whether to overlap was decided by can_submit, which may probe)
                raise RuntimeError("TrackerPool.submit with every tracker busy")
            i = 0 if not self._busy[0] else self._busy.index(False)
            others = any(self._busy)
            self._probe_job[i] = self._probe_left > 0
            self._probe_left = max(0, self._probe_left - 1)
            if others:
                for k, b in enumerate(self._busy):
                    if b:
                        self._overlapped[k] = True
            self._busy[i] = True
            self._overlapped[i] = others
            self._jobs[i] = (self._seq_in, item)
            self._seq_in += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self._cond:
            if not self._can_submit() and self.error is None:
                self._cond.wait(timeout)

    def _run(self, i: int) -> None:
        tracker = self.trackers[i]
        while True:
            with self._cond:
                while self._jobs[i] is None and not self._closing:
                    self._cond.wait()
                if self._jobs[i] is None:
                    return
                seq, item = self._jobs[i]
            item.track_start = time.monotonic()
            item.tracker = i
            try:
                res: dict[str, Any] | BaseException = tracker.process(item.rgb)
            except BaseException as e:  # noqa: BLE001 - handed to the main loop, which stops and saves
                res = e
            item.track_end = time.monotonic()
            ms = 1000.0 * (item.track_end - item.track_start)
            with self._cond:
                self._tracked[i] += 1
                # a probe's few frames replace the old mean; a graph's first frames (model
                # start-up, first detection) are not typical and are left out
                w = self.probe_ema if self._probe_job[i] else self.ema
                if self._overlapped[i]:
                    self.overlapped_frames += 1
                if self._tracked[i] > self.warmup_frames:
                    if self._overlapped[i]:
                        self._n_overlap += 1
                        self.overlap_ms = ms if self.overlap_ms is None else self.overlap_ms + w * (ms - self.overlap_ms)
                    else:
                        self._n_alone += 1
                        self.alone_ms = ms if self.alone_ms is None else self.alone_ms + w * (ms - self.alone_ms)
                self._done[seq] = (item, res)
            self._emit()  # this tracker counts as busy meanwhile (the solve, when not pipelined)
            with self._cond:
                self._jobs[i] = None
                self._busy[i] = False
                self._cond.notify_all()

    def _emit(self) -> None:
        """Hand every finished frame that is next in capture order to ``on_result``, from
        the tracker thread that finished it (no wait for the main loop to wake up)."""
        with self._emit_lock:
            while True:
                with self._cond:
                    if self._seq_out not in self._done or self.error is not None:
                        return
                    item, lm = self._done.pop(self._seq_out)
                    self._seq_out += 1
                if isinstance(lm, BaseException):
                    self.error = lm
                    return
                try:
                    self.on_result(item, lm)
                except BaseException as e:  # noqa: BLE001 - handed to the main loop, which stops and saves
                    self.error = e
                    return
                finally:
                    with self._cond:
                        self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> None:
        """With ``on_result``: wait until every submitted frame has been handed over (or a
        tracker failed)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._seq_out < self._seq_in and self.error is None:
                left = end - time.monotonic()
                if left <= 0:
                    raise TrackingError(f"a tracker did not finish frame {self._seq_out} within {timeout:g} s")
                self._cond.wait(left)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for th in self._threads:
            th.join(timeout=10.0)
        for tr in self.trackers:
            tr.close()


class SeamFilter:
    """Removes the seam between two trackers' outputs when they take turns.

    Each Holistic graph crops the person from its own previous result and smooths its own
    landmarks, so two graphs tracking alternate frames disagree by a slowly changing
    offset of a few pixels: interleaved, the stream zig-zags at half the frame rate
    (second difference of the visible body landmarks, thumbs-up clip at 640x480: one
    graph 0.16 px median, two graphs 2.4 px). For frame ``k`` from graph A between
    frames ``k-2`` (also A) and ``k-1`` (the other graph), the offset at ``k-1`` is A's
    linear interpolation at ``t[k-1]`` minus frame ``k-1``; half of it is taken off
    frame ``k`` (its partner's frames get the other half the other way), so the stream
    runs midway between the two graphs. Exact on straight-line motion (no lag), zero
    gain on the zig-zag; on noise it is the 3-tap filter ``3/4, 1/2, -1/4`` at a steady
    rate. With it the zig-zag drops to 0.30 px and the live pose's frame-to-frame
    jitter from 0.28 to 0.14 deg (one graph: 0.13). Frames are passed through
    unchanged when the three do not alternate (a dropped frame, one tracker) or are
    more than ``max_span_s`` apart.

    :meth:`__call__` corrects, in place, the landmark arrays of ``lm`` (a
    :meth:`LiveTracker.process` dict) for frame time ``t`` from graph ``tracker``.
    """

    PARTS = ("pose_image", "pose_world", "left_hand_image", "right_hand_image", "face_image")

    def __init__(self, *, max_span_s: float = 0.2) -> None:
        self.max_span_s = max_span_s
        self._hist: collections.deque = collections.deque(maxlen=2)  # (t, tracker, {part: raw array})

    def __call__(self, t: float, tracker: int, lm: dict[str, Any]) -> bool:
        raw = {p: np.array(lm[p], dtype=np.float64) for p in self.PARTS}
        applied = False
        if len(self._hist) == 2:
            (t2, g2, x2), (t1, g1, x1) = self._hist
            if g2 == tracker != g1 and t2 < t1 < t and t - t2 <= self.max_span_s:
                w = (t1 - t2) / (t - t2)
                for p in self.PARTS:
                    d = (1.0 - w) * x2[p] + w * raw[p] - x1[p]
                    lm[p][:] = np.where(np.isfinite(d), raw[p] - 0.5 * d, raw[p])
                applied = True
        self._hist.append((t, tracker, raw))
        return applied


# -- per-frame solve --------------------------------------------------------------------


class LivePose:
    """Landmarks of one frame -> a solved pose on the canonical skeleton, causally.

    ``push(t, lm)`` returns ``(rotations (52, 4) wxyz local, root (3,) m, offsets (52, 3))``
    or None while no body has been seen. The world frame (floor, up, heading) is the first
    body frame's until ``calib_s`` seconds of body frames have been seen, then the one
    :func:`mocap.root.lift_take` finds over all of them (floor and up from many frames),
    fixed from then on (the cleanup restarts at that switch). Bone lengths are the
    per-frame fit during the first ``calib_s`` seconds, then the median of those, frozen.

    ``fast=True`` (the default) lifts with :class:`mocap.live_solve.LiveLift` (after the
    first frame) and solves with :class:`mocap.live_solve.LiveSolver`: the same rotations
    as ``fast=False``, the reference (``lift_take`` per frame and ``solve_motion`` on the
    window of the last 3 cleaned frames), in ~3 ms instead of ~20 ms a frame.
    """

    WINDOW = 3

    def __init__(self, source: SourceInfo, *, calib_s: float = 1.0, limits: bool = True,
                 fast: bool = True) -> None:
        import scipy.ndimage  # noqa: F401 - lift_take's smoothing imports it: now, not in the first frame

        from . import live_solve, root, solve  # noqa: F401 - likewise
        from .cleanup import LiveCleaner

        self.source = source
        self.fast = bool(fast)
        self._fast = None  # the mocap.live_solve.LiveSolver, made at the first frame
        self._lift = None  # the mocap.live_solve.LiveLift, made at the first frame
        self.calib_s = float(calib_s)
        self.limits = limits
        self._T0: np.ndarray | None = None
        self._world_fixed = False
        self._world_buf: list[Take] = []
        self._t_body: float | None = None
        self._cleaner_cls = LiveCleaner
        self._cleaner = None
        self._lengths: dict[str, float] | None = None
        self._calib: list[dict[str, float]] = []
        self._t_first: float | None = None
        self.joint_names: tuple[str, ...] | None = None
        self._window: collections.deque = collections.deque(maxlen=self.WINDOW)
        self.timings: dict[str, float] = collections.defaultdict(float)

    def _one(self, t: float, lm: dict[str, Any]) -> Take:
        """The frame as a one-frame take."""
        return Take(
            timestamps=np.array([t]), frame_index=np.array([0]),
            **{k: lm[k][None] for k in _LM_ARRAYS},
            present={p: np.array([bool(lm["present"][p])]) for p in PART_SIZES},
            source=self.source)

    def _fix_world(self) -> None:
        """The world frame from every body frame seen so far, fixed from now on."""
        from .errors import SolveError
        from .root import lift_take

        buf, self._world_buf = self._world_buf, []
        self._world_fixed = True
        calib = Take(
            timestamps=np.concatenate([o.timestamps for o in buf]), frame_index=np.arange(len(buf)),
            **{k: np.concatenate([getattr(o, k) for o in buf]) for k in _LM_ARRAYS},
            present={p: np.concatenate([o.present[p] for o in buf]) for p in PART_SIZES},
            source=self.source)
        try:
            _, info = lift_take(calib)
        except SolveError:
            return  # keep the first frame's world
        self._T0 = np.asarray(info["T_world_from_camera"], float)
        self._cleaner = None  # the points jump to the new frame: restart the filters
        self._window.clear()
        if self._fast is not None:
            self._fast.reset()

    def push(self, t: float, lm: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        from .errors import SolveError
        from .root import lift_take

        if not lm["present"]["pose"]:
            return None
        c0 = time.perf_counter()
        if self.fast and self._T0 is not None:
            # the world frame is known: place the frame in the camera and compose
            # (mocap.live_solve.LiveLift mirrors lift_take's placement; the per-frame
            # floor that lift_take also finds cancels out: world_i -> camera -> world_0)
            got = self._lift.lift(lm)
            if got is None:
                return None
            P_cam, conf0 = got
            names = self._lift.names
            if not self._world_fixed:
                self._world_buf.append(self._one(t, lm))
                if t - self._t_body >= self.calib_s and len(self._world_buf) >= 5:
                    self._fix_world()
            P = P_cam @ self._T0[:3, :3].T + self._T0[:3, 3]
        else:
            one = self._one(t, lm)
            try:
                mk, info = lift_take(one, smooth_s=0.0)
            except SolveError:
                return None
            names, conf0 = mk.names, mk.confidence[0]
            T_i = np.asarray(info["T_world_from_camera"], float)
            if self._T0 is None:
                self._T0 = T_i
                self._t_body = t
                if self.fast:
                    from .live_solve import LiveLift

                    self._lift = LiveLift(info["intrinsics"])
                    if self._lift.names != tuple(names):  # pragma: no cover - the two list the same markers
                        raise SolveError("internal: LiveLift's markers differ from lift_take's")
            if not self._world_fixed:
                self._world_buf.append(one)
                if t - self._t_body >= self.calib_s and len(self._world_buf) >= 5:
                    self._fix_world()
            # this frame's world -> camera -> the fixed world (rigid: the inverse is R^T, -R^T t)
            R_i, t_i = T_i[:3, :3], T_i[:3, 3]
            R = self._T0[:3, :3] @ R_i.T
            P = mk.points[0] @ R.T + (self._T0[:3, 3] - R @ t_i)
        c1 = time.perf_counter()
        if self._cleaner is None:
            self._cleaner = self._cleaner_cls(names)
        P, conf = self._cleaner.push(P, t, conf0)
        c2 = time.perf_counter()
        # the solver judges a hinge's bend plane on runs of 3 frames, so it gets the last
        # 3 cleaned frames (all causal) and we keep its answer for the newest
        self._window.append((t, P, conf))
        win = list(self._window)
        while len(win) < self.WINDOW:  # the first frames: the earliest repeated, 1/30 s apart
            win.insert(0, (win[0][0] - 1.0 / 30.0, win[0][1], win[0][2]))
        if self._t_first is None:
            self._t_first = t
        if self.fast:
            pose = self._solve_fast(t, names, win, P, conf)
        else:
            pose = self._solve_window(t, names, win)
        c3 = time.perf_counter()
        self.timings["lift"] += c1 - c0
        self.timings["clean"] += c2 - c1
        self.timings["solve"] += c3 - c2
        return pose

    def _calibrate(self, t: float, lengths: dict[str, float]) -> None:
        """Collect the per-frame bone lengths for the first ``calib_s`` s, then freeze
        their median."""
        if self._lengths is None:
            self._calib.append(lengths)
            if t - self._t_first >= self.calib_s and len(self._calib) >= 5:
                keys = self._calib[0].keys()
                self._lengths = {k: float(np.median([c[k] for c in self._calib if k in c])) for k in keys}

    def _solve_fast(self, t: float, names, win: list, P: np.ndarray, conf: np.ndarray):
        """The newest frame with :class:`mocap.live_solve.LiveSolver` (the same rotations as
        ``solve_motion`` on the window, without its per-call numpy overhead)."""
        from .live_solve import LiveSolver

        if self._fast is None:
            self._fast = LiveSolver(names, limits=self.limits)
        fs = self._fast
        if self._lengths is None:  # calibrating: the lengths solve_motion fits on the window
            self._calibrate(t, fs.fit_lengths(np.stack([w[1] for w in win]), np.stack([w[2] for w in win]),
                                              np.array([w[0] for w in win])))
        else:
            fs.set_lengths(self._lengths)
        got = fs.solve(P, conf)
        if got is None:
            return None
        self.joint_names = fs.joint_names
        return got[0], got[1], fs.offsets

    def _solve_window(self, t: float, names, win: list):
        """The reference: :func:`mocap.solve.solve_motion` on the window, its newest frame."""
        from .errors import SolveError
        from .markers import Markers
        from .solve import solve_motion

        markers = Markers(names=names, points=np.stack([w[1] for w in win]),
                          timestamps=np.array([w[0] for w in win]), confidence=np.stack([w[2] for w in win]),
                          frame="world", meta={"fps": self.source.nominal_fps or 30.0})
        try:
            motion = solve_motion(markers, bone_lengths=self._lengths, limits=self.limits)
        except SolveError:
            return None
        self._calibrate(t, motion.meta["bone_lengths"])
        self.joint_names = motion.skeleton.names
        return motion.rotations[-1], motion.root_positions[-1], np.asarray(motion.skeleton.offsets)


class LiveFace:
    """ARKit-52 curves for each frame from the face landmarks, causally, with the
    geometric solver of :mod:`mocap.face`: the first ``calib_s`` seconds with a face
    give the template of the rigid points and the neutral face (the performer should
    rest their face then, looking at the camera); after that each frame is fitted onto
    the template, measured against the neutral, and One Euro filtered.

    ``push(t, lm)`` returns ``(52,)`` values 0..1 (columns :data:`mocap.face.ARKIT_SHAPES`)
    or None (no face, or still calibrating). ``calibrated`` says whether it is ready.
    """

    def __init__(self, *, calib_s: float = 2.0, min_frames: int = 10, neutral_share: float = 0.5) -> None:
        from .filters import OneEuroFilter

        self.calib_s = calib_s
        self.min_frames = min_frames
        self.neutral_share = neutral_share
        self._calib: list[np.ndarray] = []
        self._t_first: float | None = None
        self._template = None
        self._neutral = None
        self._filter = OneEuroFilter(min_cutoff=1.5, beta=2.0, d_cutoff=1.0)

    @property
    def calibrated(self) -> bool:
        return self._template is not None

    def push(self, t: float, lm: dict[str, Any]) -> np.ndarray | None:
        from .face import coefficients, face_features, face_points, find_neutral, rigid_fit

        if not lm["present"]["face"]:
            return None
        P = face_points(np.asarray(lm["face_image"], dtype=float)[None])
        if self._template is None:
            if self._t_first is None:
                self._t_first = t
            self._calib.append(P[0])
            if t - self._t_first >= self.calib_s and len(self._calib) >= self.min_frames:
                Pc = np.stack(self._calib)
                valid = np.ones(len(Pc), bool)
                C, _, _, _, self._template = rigid_fit(Pc, valid)
                self._neutral = find_neutral(face_features(C), valid, share=self.neutral_share)
                self._calib = []
            return None
        C = rigid_fit(P, np.array([True]), self._template)[0]
        curves, _ = coefficients(face_features(C), self._neutral)
        return np.clip(self._filter(curves[0], t), 0.0, 1.0)


# -- safe writing -----------------------------------------------------------------------


def _fsync_write(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _SegmentWriter:
    """MJPEG-in-Matroska video, one file per ``segment_s`` seconds, encoded in a thread."""

    def __init__(self, folder: Path, *, segment_s: float, on_segment) -> None:
        import queue

        self.folder = folder
        self.segment_s = segment_s
        self.on_segment = on_segment
        self.q: queue.Queue = queue.Queue(maxsize=240)
        self.frames = 0
        self.dropped = 0
        self.error: str | None = None
        self._th = threading.Thread(target=self._run, name="understudy-video", daemon=True)
        self._th.start()

    def put(self, t: float, rgb: np.ndarray) -> None:
        import queue

        try:
            self.q.put_nowait((t, rgb))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        from fractions import Fraction

        import av

        container = stream = None
        seg = 0
        seg_t0 = t0 = None
        seg_frames = 0
        last_pts = -1

        def close():
            nonlocal container, seg_frames
            if container is not None:
                for p in stream.encode():
                    container.mux(p)
                container.close()
                self.on_segment(seg, seg_frames)
                container = None
                seg_frames = 0

        try:
            while True:
                item = self.q.get()
                if item is None:
                    break
                t, rgb = item
                if t0 is None:
                    t0 = t
                if container is None or t - seg_t0 >= self.segment_s:
                    close()
                    seg += 1
                    seg_t0 = t
                    container = av.open(str(self.folder / f"seg_{seg:06d}.mkv"), mode="w")
                    stream = container.add_stream("mjpeg", rate=30)
                    stream.width, stream.height = rgb.shape[1] - rgb.shape[1] % 2, rgb.shape[0] - rgb.shape[0] % 2
                    stream.pix_fmt = "yuvj420p"
                    stream.time_base = Fraction(1, 1000)
                    stream.options = {"q:v": "4"}
                h, w = stream.height, stream.width
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
                pts = max(int(round((t - t0) * 1000)), last_pts + 1)
                last_pts = pts
                frame.pts = pts
                for p in stream.encode(frame):
                    container.mux(p)
                seg_frames += 1
                self.frames += 1
        except Exception as e:  # noqa: BLE001 - video is best effort; the landmarks are the take
            self.error = f"{type(e).__name__}: {e}"
            while self.q.get() is not None:  # drain so put() never blocks the loop
                pass
        finally:
            try:
                close()
            except Exception as e:  # noqa: BLE001
                self.error = self.error or f"{type(e).__name__}: {e}"

    def close(self) -> None:
        self.q.put(None)
        self._th.join(timeout=30.0)


def _source_json(info: SourceInfo) -> dict[str, Any]:
    return info.to_json()


class TakeRecorder:
    """One take being recorded into ``folder`` (see the module docstring for the layout).

    ``add`` buffers a frame and writes a chunk whenever ``flush_s`` has passed since the
    last one; ``finish`` turns the chunks into the take; ``discard`` deletes the folder.
    """

    def __init__(self, folder: Path, source: SourceInfo, tracker: dict[str, Any], *,
                 flush_s: float = 0.5, segment_s: float = 1.0, video: bool = True) -> None:
        self.folder = Path(folder)
        self.source = source
        self.tracker = tracker
        self.flush_s = float(flush_s)
        (self.folder / "chunks").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the journal is written from the video thread too
        self._journal = open(self.folder / "journal.jsonl", "a", encoding="utf-8")
        self._log({"event": "start", "schema": RECORDING_SCHEMA, "schema_version": RECORDING_SCHEMA_VERSION,
                   "source": _source_json(source), "tracker": tracker, "unix_time": time.time(),
                   "flush_s": self.flush_s, "segment_s": segment_s})
        self._buf: dict[str, list] = collections.defaultdict(list)
        self._n_chunks = 0
        self._last_flush = time.monotonic()
        self.frames = 0
        self.dropped = 0
        self.video = None
        if video:
            (self.folder / "video").mkdir(exist_ok=True)
            self.video = _SegmentWriter(self.folder / "video", segment_s=segment_s, on_segment=self._segment_done)

    def _log(self, rec: dict[str, Any]) -> None:
        with self._lock:
            self._journal.write(json.dumps(rec) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())

    def _segment_done(self, seg: int, frames: int) -> None:
        self._log({"event": "segment", "file": f"video/seg_{seg:06d}.mkv", "frames": frames})

    def add(self, cap: Captured, lm: dict[str, Any], *, latency_s: float,
            pose: tuple[np.ndarray, np.ndarray, np.ndarray] | None, face: np.ndarray | None = None) -> None:
        b = self._buf
        b["timestamps"].append(cap.t)
        b["frame_index"].append(cap.index)
        for k in _LM_ARRAYS:
            b[k].append(lm[k])
        for p in PART_SIZES:
            b[f"{p}_present"].append(bool(lm["present"][p]))
        b["latency_ms"].append(1000.0 * latency_s)
        # where the latency goes: waiting for the tracker, tracking, waiting for the solver, solving
        b["wait_ms"].append(1000.0 * max(cap.track_start - cap.wall, 0.0))
        b["track_ms"].append(1000.0 * (cap.track_end - cap.track_start))
        b["solve_ms"].append(cap.solve_ms)
        b["tracker_id"].append(cap.tracker)
        b["capture_s"].append(cap.wall)
        b["dropped_before"].append(cap.dropped if self.frames > 0 else 0)
        rot = pose[0] if pose is not None else np.full((52, 4), np.nan)
        root = pose[1] if pose is not None else np.full(3, np.nan)
        b["live_rotations"].append(np.asarray(rot, np.float32))
        b["live_root"].append(np.asarray(root, np.float32))
        b["live_face"].append(np.asarray(face if face is not None else np.full(52, np.nan), np.float32))
        self.frames += 1
        if self.frames > 1:
            self.dropped += cap.dropped
        if self.video is not None:
            self.video.put(cap.t, cap.rgb)
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buf["timestamps"]:
            return
        arrays = {k: np.asarray(v) for k, v in self._buf.items()}
        self._buf = collections.defaultdict(list)
        self._n_chunks += 1
        name = f"lm_{self._n_chunks:06d}.npz"
        _fsync_write(self.folder / "chunks" / name, lambda f: np.savez(f, **arrays))
        self._log({"event": "chunk", "file": f"chunks/{name}", "frames": int(len(arrays["timestamps"])),
                   "t_last": float(arrays["timestamps"][-1])})

    def _close_streams(self) -> list[str]:
        notes = []
        self.flush()
        if self.video is not None:
            self.video.close()
            if self.video.error:
                notes.append(f"raw video stopped early: {self.video.error}")
            if self.video.dropped:
                notes.append(f"raw video: {self.video.dropped} frames not written (the encoder fell behind)")
        return notes

    def finish(self, *, notes: list[str] | None = None, complete: bool = True) -> Take:
        more = self._close_streams()
        self._log({"event": "stop", "frames": self.frames, "unix_time": time.time()})
        self._journal.close()
        take = _install(self.folder, notes=list(notes or []) + more, complete=complete)
        return take

    def discard(self) -> None:
        self._close_streams()
        self._journal.close()
        shutil.rmtree(self.folder, ignore_errors=False)


def _read_journal(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    jf = folder / "journal.jsonl"
    if not jf.is_file():
        raise TakeFormatError(f"{folder}: no journal.jsonl, so it is not a recording of `understudy record`")
    recs = []
    for i, line in enumerate(jf.read_text(encoding="utf-8", errors="replace").splitlines()):
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            if i == 0:
                raise TakeFormatError(f"{jf}: the first line is not JSON") from None
            break  # a line cut by the crash: everything before it stands
    if not recs or recs[0].get("event") != "start" or recs[0].get("schema") != RECORDING_SCHEMA:
        raise TakeFormatError(f"{jf}: does not start with an {RECORDING_SCHEMA} start record")
    if recs[0].get("schema_version") != RECORDING_SCHEMA_VERSION:
        raise TakeFormatError(f"{jf}: recording schema_version {recs[0].get('schema_version')!r} is not supported")
    return recs[0], recs[1:]


def _load_chunks(folder: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Concatenate every readable chunk (in order). Returns arrays and notes."""
    notes: list[str] = []
    files = sorted((folder / "chunks").glob("lm_*.npz")) if (folder / "chunks").is_dir() else []
    parts: list[dict[str, np.ndarray]] = []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        except (ValueError, OSError, EOFError) as e:
            notes.append(f"{f.name} unreadable, skipped ({e})")
    if not parts:
        return {}, notes
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}, notes


def _install(folder: Path, *, notes: list[str], complete: bool) -> Take:
    """Build the take from the chunks and write take.json + landmarks.npz + live.npz into
    ``folder`` (take.json last), then delete the chunks."""
    from .take import save_take

    start, _ = _read_journal(folder)
    arrays, more = _load_chunks(folder)
    notes = notes + more
    if not arrays or len(arrays["timestamps"]) == 0:
        raise TakeFormatError(f"{folder}: no frames were recorded (no landmark chunk on disk)")
    src = SourceInfo.from_json(start["source"])
    ts = np.asarray(arrays["timestamps"], float)
    keep = np.concatenate([[True], np.diff(ts) > 0])  # defensive: strictly increasing
    if not keep.all():
        notes.append(f"{int((~keep).sum())} frames with repeated timestamps dropped")
        arrays = {k: v[keep] for k, v in arrays.items()}
        ts = ts[keep]
    lat = np.asarray(arrays["latency_ms"], float)
    T = len(ts)
    dropped = int(np.asarray(arrays["dropped_before"]).sum())
    tracker = dict(start.get("tracker") or {})
    span = int(arrays["frame_index"][-1] - arrays["frame_index"][0] + 1)
    tracker["live"] = {
        "frames": T, "dropped": dropped, "source_frames_spanned": span,
        "processed_share": round(T / span, 4) if span else None,
        "latency_ms_median": round(float(np.median(lat)), 2), "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "fps_processed": round((T - 1) / (ts[-1] - ts[0]), 2) if T > 1 and ts[-1] > ts[0] else None,
    }
    take = Take(
        timestamps=ts, frame_index=np.asarray(arrays["frame_index"], np.int64),
        **{k: np.asarray(arrays[k], np.float32) for k in _LM_ARRAYS},
        present={p: np.asarray(arrays[f"{p}_present"], bool) for p in PART_SIZES},
        source=src, tracker=tracker, notes=notes, complete=complete)
    take.validate()
    tmp = folder / ".take-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_take(take, tmp)
    live = {k: arrays[k] for k in ("latency_ms", "capture_s", "dropped_before", "live_rotations", "live_root",
                                   "wait_ms", "track_ms", "solve_ms", "tracker_id", "live_face") if k in arrays}
    _fsync_write(folder / "live.npz", lambda f: np.savez(f, **live))
    os.replace(tmp / "landmarks.npz", folder / "landmarks.npz")
    os.replace(tmp / "take.json", folder / "take.json")  # last: its presence marks a finished take
    shutil.rmtree(tmp)
    shutil.rmtree(folder / "chunks", ignore_errors=True)
    return take


def _video_frames(path: Path) -> int:
    """Frames decodable from a (possibly truncated) video segment."""
    import av

    n = 0
    try:
        with av.open(str(path)) as c:
            for _ in c.decode(video=0):
                n += 1
    except (av.error.FFmpegError, OSError, ValueError):
        pass  # a segment cut by the crash: the frames decoded so far count
    return n


def recover_take(folder: str | os.PathLike) -> dict[str, Any]:
    """Turn an interrupted recording (a take folder with ``journal.jsonl`` and no
    ``take.json``) into a valid take, in place. Returns what was kept: ``frames``,
    ``duration_s``, ``t_last`` (source time of the last frame kept), ``video_frames``,
    ``video_segments``, ``notes``. Raises :class:`TakeFormatError` when nothing can be
    recovered, :class:`UsageError` when the take is already complete."""
    folder = Path(folder)
    if (folder / "take.json").is_file():
        raise UsageError(f"{folder} is a complete take already (it has take.json); nothing to recover")
    start, events = _read_journal(folder)
    journal_frames = sum(int(e.get("frames", 0)) for e in events if e.get("event") == "chunk")
    segs = sorted((folder / "video").glob("seg_*.mkv")) if (folder / "video").is_dir() else []
    vframes = sum(_video_frames(s) for s in segs)
    note = (f"recovered from an interrupted recording by `understudy recover` on "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}; frames after the last flushed chunk were lost")
    take = _install(folder, notes=[note], complete=False)
    with open(folder / "journal.jsonl", "a", encoding="utf-8") as j:
        j.write(json.dumps({"event": "recovered", "frames": len(take), "unix_time": time.time()}) + "\n")
    return {"folder": str(folder), "frames": len(take), "duration_s": take.duration_s,
            "t_last": float(take.timestamps[-1]), "journal_frames": journal_frames,
            "video_segments": len(segs), "video_frames": vframes, "notes": take.notes,
            "flush_s": float(start.get("flush_s", 0.5))}


def recover_all(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Recover ``path`` if it is an interrupted take, else every interrupted
    ``take_NNN`` inside it. Raises :class:`UsageError` when there is nothing to recover."""
    p = Path(path)
    if not p.is_dir():
        raise UsageError(f"{p} is not a folder")
    if (p / "journal.jsonl").is_file():
        return [recover_take(p)]
    todo = sorted(d for d in p.iterdir() if d.is_dir() and _TAKE_RE.match(d.name)
                  and (d / "journal.jsonl").is_file() and not (d / "take.json").is_file())
    if not todo:
        raise UsageError(f"{p}: no interrupted take in it (a take_NNN folder with journal.jsonl and no take.json)")
    return [recover_take(d) for d in todo]


# -- the recorder -----------------------------------------------------------------------


@dataclass
class RecordOptions:
    """Settings of ``understudy record`` (see its ``--help``)."""

    camera: str = "0"
    out: str = "takes"
    resolution: tuple[int, int] | None = None
    fps: float | None = None
    headless: bool = False
    vmc: tuple[str, int] | None = None
    countdown_s: float | None = None
    autostart: bool = False
    model_complexity: int = 1
    refine_face: bool = True
    flush_s: float = 0.5
    segment_s: float = 1.0
    video: bool = True
    status_every_s: float = 0.5
    solve: bool = True
    pipeline: bool = True
    loop: bool = False
    face: bool = True
    fast_solve: bool = True  # False: the reference per-frame solve (solve_motion on the window), for benchmarks
    trackers: int | None = None  # Holistic graphs on alternate frames; None: 2 with 2+ cores, else 1

    def n_trackers(self) -> int:
        if self.trackers is not None:
            return self.trackers
        return 2 if (os.cpu_count() or 1) >= 2 else 1

    def check(self) -> None:
        if self.countdown_s is not None and self.countdown_s < 0:
            raise UsageError(f"--countdown must be >= 0, got {self.countdown_s}")
        if not 0 < self.flush_s <= 1.0:
            raise UsageError(f"flush interval must be within (0, 1] s, got {self.flush_s}")
        if self.model_complexity not in (0, 1, 2):
            raise UsageError(f"--model-complexity must be 0, 1 or 2, got {self.model_complexity}")
        if self.trackers is not None and not 1 <= self.trackers <= 4:
            raise UsageError(f"--trackers must be 1 to 4, got {self.trackers}")


class _Sink:
    """The stage after tracking, in its own thread: solve, stream, record. MediaPipe
    releases the GIL while it infers, so tracking frame k+1 overlaps solving frame k.
    Frames keep their order; when a frame is already waiting behind the one at hand,
    the one at hand is recorded without a live pose (so the pose never lags behind)."""

    def __init__(self, rec: Recorder, ctx: dict) -> None:
        import queue

        self.rec = rec
        self.ctx = ctx
        self.q: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.skipped = 0
        self._th = threading.Thread(target=self._run, name="understudy-solve", daemon=True)
        self._th.start()

    def put(self, item: Captured, lm: dict) -> None:
        self.q.put((item, lm))

    def _run(self) -> None:
        while True:
            job = self.q.get()
            if job is None:
                return
            if self.error is not None:
                continue
            solve = self.q.qsize() == 0
            if not solve:
                self.skipped += 1
            try:
                self.rec._after_tracking(job[0], job[1], self.ctx, solve=solve)
            except BaseException as e:  # handed to the main loop, which stops and saves
                self.error = e

    def close(self) -> None:
        self.q.put(None)
        self._th.join(timeout=30.0)


@dataclass
class _Stats:
    frames: int = 0
    t_last: float = 0.0
    latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=60))
    walls: collections.deque = field(default_factory=lambda: collections.deque(maxlen=60))

    def fps(self) -> float:
        if len(self.walls) < 2 or self.walls[-1] <= self.walls[0]:
            return 0.0
        return (len(self.walls) - 1) / (self.walls[-1] - self.walls[0])

    def latency_ms(self) -> float:
        return 1000.0 * float(np.median(self.latency)) if self.latency else 0.0


class Recorder:
    """The ``understudy record`` loop. ``run()`` returns the exit code; ``saved`` lists
    the finished takes. Commands (``start``, ``stop``, ``toggle``, ``discard``,
    ``quit``) come from keys in the preview window, stdin lines in headless mode, and
    signals (SIGUSR1 toggles; SIGINT/SIGTERM stop, save and quit)."""

    KEYS = {ord(" "): "toggle", ord("r"): "toggle", ord("s"): "stop", ord("d"): "discard",
            ord("q"): "quit", 27: "quit"}

    def __init__(self, options: RecordOptions, *, out=print) -> None:
        options.check()
        self.o = options
        self.say = out
        self.commands: collections.deque[str] = collections.deque()
        self.saved: list[Path] = []
        self.discarded: list[Path] = []
        self.rec: TakeRecorder | None = None
        self.countdown_until: float | None = None
        self._quit = False
        self._sigint = 0
        self._lock = threading.RLock()
        self._last_number = 0

    # commands -----------------------------------------------------------------------
    def _stdin_reader(self) -> None:
        for line in sys.stdin:
            cmd = line.strip().lower()
            if cmd:
                self.commands.append(cmd)
        # EOF: nothing more will come; the loop keeps running until the source ends or a signal

    def _install_signals(self) -> dict:
        old = {}

        def stop_handler(signum, frame):
            self._sigint += 1
            self.commands.append("quit")
            if self._sigint >= 3:
                raise KeyboardInterrupt

        def toggle_handler(signum, frame):
            self.commands.append("toggle")

        for sig, h in ((signal.SIGINT, stop_handler), (signal.SIGTERM, stop_handler),
                       (getattr(signal, "SIGUSR1", None), toggle_handler)):
            if sig is None:
                continue
            try:
                old[sig] = signal.signal(sig, h)
            except ValueError:  # not the main thread
                pass
        return old

    def _start(self, now: float) -> None:
        if self.rec is not None or self.countdown_until is not None:
            return
        cd = self.o.countdown_s if self.o.countdown_s is not None else (0.0 if self.o.headless else 3.0)
        self.countdown_until = now + cd
        if cd > 0:
            self.say(f"recording starts in {cd:g} s")

    def _begin(self, source: SourceInfo, tracker: dict) -> None:
        folder = next_take_dir(Path(self.o.out), after=self._last_number)
        self._last_number = int(_TAKE_RE.match(folder.name).group(1))
        self.rec = TakeRecorder(folder, source, tracker, flush_s=self.o.flush_s, segment_s=self.o.segment_s,
                                video=self.o.video)
        self.countdown_until = None
        self.say(f"recording {folder.name} into {folder}")

    def _stop(self, notes: list[str] | None = None) -> None:
        self.countdown_until = None
        if self.rec is None:
            return
        rec, self.rec = self.rec, None
        if rec.frames == 0:
            rec.discard()
            self.say(f"{rec.folder.name}: no frame was recorded; folder removed")
            return
        take = rec.finish(notes=notes)
        live = take.tracker.get("live", {})
        self.saved.append(rec.folder)
        self.say(f"saved {rec.folder.name}: {len(take)} frames, {take.duration_s:.2f} s, {live.get('dropped', 0)} "
                 f"dropped, latency median {live.get('latency_ms_median')} ms, p95 {live.get('latency_ms_p95')} ms "
                 f"-> {rec.folder}")

    def _discard(self) -> None:
        if self.countdown_until is not None and self.rec is None:
            self.countdown_until = None
            self.say("countdown cancelled")
            return
        if self.rec is None:
            return
        rec, self.rec = self.rec, None
        rec.discard()
        self.discarded.append(rec.folder)
        self.say(f"discarded {rec.folder.name} ({rec.frames} frames)")

    def _handle(self, cmd: str, now: float) -> None:
        if cmd == "toggle":
            cmd = "stop" if (self.rec is not None or self.countdown_until is not None) else "start"
        if cmd == "start":
            self._start(now)
        elif cmd == "stop":
            self._stop()
        elif cmd == "discard":
            self._discard()
        elif cmd == "quit":
            self._quit = True
        else:
            self.say(f"unknown command {cmd!r}; use start, stop, discard or quit")

    # the loop -------------------------------------------------------------------------
    def run(self) -> int:
        from .overlay import draw_landmarks
        from .sources import open_source
        from .tracking import native_log_filter

        o = self.o
        spec: Any = o.camera
        is_camera = (isinstance(spec, int) or str(spec).isdigit() or str(spec).startswith("/dev/video"))
        src = open_source(spec, fps=o.fps if is_camera else None, resolution=o.resolution if is_camera else None)
        if src.info.kind not in ("camera", "video"):
            src.close()
            raise UsageError(f"--camera must be a webcam or a video file, got {src.info.kind} {spec}")
        W, H = src.info.width, src.info.height
        resize = None
        if not is_camera and o.resolution is not None and o.resolution != (W, H):
            resize = o.resolution
            W, H = resize
        info = SourceInfo(kind=src.info.kind, path=src.info.path, width=W, height=H,
                          nominal_fps=src.info.nominal_fps, reported_frames=src.info.reported_frames,
                          duration_s=src.info.duration_s, codec=src.info.codec,
                          intrinsics=Intrinsics.from_hfov(W, H))
        vmc = None
        if o.vmc is not None:
            from .vmc import VmcSender

            vmc = VmcSender(*o.vmc)
        stdin_thread = None
        if o.headless:
            stdin_thread = threading.Thread(target=self._stdin_reader, name="understudy-stdin", daemon=True)
            stdin_thread.start()
        old_signals = self._install_signals()
        window = None if o.headless else "understudy record"
        exit_code = 0
        failure: str | None = None
        with native_log_filter():
            pool = TrackerPool([LiveTracker(model_complexity=o.model_complexity, refine_face=o.refine_face)
                                for _ in range(o.n_trackers())])
        tracker = pool.trackers[0]
        tracker_meta = {"name": "mediapipe.solutions.holistic", "mediapipe_version": tracker.version,
                        **tracker.settings, "live": True, "realtime_file": not is_camera,
                        "resized_to": list(resize) if resize else None, "looped": bool(o.loop),
                        "trackers": len(pool), "seam_filter": len(pool) > 1}
        solver = LivePose(info, fast=o.fast_solve) if o.solve else None
        if o.loop and is_camera:
            raise UsageError("--loop is for a video file given as --camera FILE, not a webcam")
        cap = LatestFrame(src, realtime=not is_camera, resize=resize, loop=o.loop).start()
        stats = _Stats()
        rate = f"{info.nominal_fps:g} fps" if info.nominal_fps else "camera rate"
        self.say(f"ready: {info.kind} {info.path} at {W}x{H}, {rate}"
                 + (f"; VMC to {o.vmc[0]}:{o.vmc[1]}" if o.vmc else "")
                 + ("; commands on stdin: start, stop, discard, quit" if o.headless
                    else "; keys: space start/stop, d discard, q quit"))
        if o.autostart:
            self.commands.append("start")
        face = None
        face_names: tuple[str, ...] = ()
        if o.solve and o.face:
            from .face import ARKIT_SHAPES

            face, face_names = LiveFace(), ARKIT_SHAPES
        ctx = {"info": info, "tracker_meta": tracker_meta, "solver": solver, "vmc": vmc, "stats": stats,
               "cap": cap, "last_status": 0.0, "face": face, "face_names": face_names,
               "seam": SeamFilter() if len(pool) > 1 else None}
        sink = _Sink(self, ctx) if o.pipeline else None
        pool.on_result = lambda item, lm: self._tracked(item, lm, ctx, sink)
        # MediaPipe hands its results to Python callbacks, which need the GIL: while the
        # solve thread runs pure-Python maths they would wait up to the interpreter's
        # switch interval (5 ms) per callback; a 0.5 ms interval lets them in at once
        switch = sys.getswitchinterval()
        if sink is not None:
            sys.setswitchinterval(min(switch, 0.0005))
        try:
            while not self._quit:
                now = time.monotonic()
                with self._lock:
                    while self.commands:
                        self._handle(self.commands.popleft(), now)
                if self._quit:
                    break
                if sink is not None and sink.error is not None:
                    raise sink.error
                if pool.error is not None:
                    raise pool.error
                if window is not None and ctx.get("latest") is not None:
                    item, lm = ctx.pop("latest")
                    self._show(window, item, lm, stats, draw_landmarks)
                poll = 0.03 if window is not None else 0.2  # the window's keys are read between frames
                if not pool.can_submit():
                    pool.wait(timeout=poll)
                    continue
                item = cap.get(timeout=poll)
                if item is None:
                    if cap.ended:
                        break  # the frames still being tracked are handed over below
                    continue
                pool.submit(item)
            pool.drain()
            if pool.error is not None:
                raise pool.error
        except KeyboardInterrupt:
            self.say("interrupted: saving")
        finally:
            if sink is not None:
                sink.close()
                sys.setswitchinterval(switch)
            cap.stop()
            src.close()
            if cap.error is not None:
                failure = str(cap.error)
            elif cap.ended and is_camera:
                failure = f"camera {spec} stopped delivering frames"
            notes = [f"source ended: {failure}"] if failure else None
            try:
                if self.rec is not None:
                    self._stop(notes=notes)
            finally:
                pool.close()
                if vmc is not None:
                    vmc.close()
                if window is not None:
                    import cv2

                    cv2.destroyAllWindows()
                for sig, h in old_signals.items():
                    signal.signal(sig, h)
        if len(pool) > 1 and stats.frames:
            alone, over = (("-" if v is None else f"{v:.0f} ms") for v in (pool.alone_ms, pool.overlap_ms))
            self.say(f"trackers: {len(pool)}; {100 * pool.overlapped_frames / stats.frames:.0f}% of frames tracked beside "
                     f"another (a frame alone {alone}, overlapped {over}, running means)")
        self.say(f"processed {stats.frames} frames, dropped {cap.dropped} of {cap.delivered} delivered; "
                 f"takes saved: {len(self.saved)}" + (f", discarded: {len(self.discarded)}" if self.discarded else ""))
        if failure:
            self.say(f"understudy: {failure}")
            exit_code = 1
        elif self._sigint:
            exit_code = 0
        return exit_code

    def _tracked(self, item: Captured, lm: dict, ctx: dict, sink: _Sink | None) -> None:
        """A tracked frame, in capture order, in the tracker thread that finished it: the
        trackers' seam removed (several trackers), to the solve thread (or solved here),
        and left for the preview window (the main thread draws the newest)."""
        if ctx["seam"] is not None:
            ctx["seam"](item.t, item.tracker, lm)
        if sink is not None:
            sink.put(item, lm)
        else:
            self._after_tracking(item, lm, ctx, solve=True)
        ctx["latest"] = (item, lm)

    def _after_tracking(self, item: Captured, lm: dict, ctx: dict, *, solve: bool) -> None:
        """Solve, stream, record and report one tracked frame (in the sink thread when
        pipelined). ``solve=False`` records the landmarks without a live pose."""
        solver, vmc, stats = ctx["solver"], ctx["vmc"], ctx["stats"]
        solve_start = time.monotonic()
        pose = solver.push(item.t, lm) if (solver is not None and solve) else None
        face = ctx["face"].push(item.t, lm) if (ctx["face"] is not None and solve) else None
        done = time.monotonic()
        item.solve_ms = 1000.0 * (done - solve_start) if pose is not None else np.nan
        latency = done - item.wall
        stats.frames += 1
        stats.t_last = item.t
        stats.latency.append(latency)
        stats.walls.append(done)
        if vmc is not None and pose is not None:
            blend = dict(zip(ctx["face_names"], (float(v) for v in face))) if face is not None else None
            vmc.send_pose(solver.joint_names, pose[0], pose[1], offsets=pose[2], t=item.t, blendshapes=blend)
        with self._lock:
            if self.countdown_until is not None and done >= self.countdown_until:
                self._begin(ctx["info"], ctx["tracker_meta"])
            if self.rec is not None:
                self.rec.add(item, lm, latency_s=latency, pose=pose, face=face)
        if self.o.headless and done - ctx["last_status"] >= self.o.status_every_s:
            ctx["last_status"] = done
            self._status(stats, ctx["cap"])

    def _status(self, stats: _Stats, cap: LatestFrame) -> None:
        if self.rec is not None:
            r = self.rec
            self.say(f"rec {r.folder.name}: frames={r.frames} dropped={r.dropped} t={stats.t_last:.3f} "
                     f"fps={stats.fps():.1f} latency_ms={stats.latency_ms():.0f}")
        else:
            self.say(f"idle: frames={stats.frames} dropped={cap.dropped} fps={stats.fps():.1f} "
                     f"latency_ms={stats.latency_ms():.0f}")

    def _show(self, window: str, item: Captured, lm: dict, stats: _Stats, draw) -> None:
        import cv2

        img = draw(item.rgb, pose=lm["pose_image"] if lm["present"]["pose"] else None,
                   visibility=lm["pose_visibility"],
                   left_hand=lm["left_hand_image"] if lm["present"]["left_hand"] else None,
                   right_hand=lm["right_hand_image"] if lm["present"]["right_hand"] else None,
                   face=lm["face_image"] if lm["present"]["face"] else None,
                   text=f"{stats.fps():4.1f} fps  {stats.latency_ms():3.0f} ms")
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        now = time.monotonic()
        if self.rec is not None:
            cv2.circle(bgr, (bgr.shape[1] - 20, 20), 8, (0, 0, 255), -1)
            cv2.putText(bgr, f"REC {self.rec.folder.name} {self.rec.frames}", (10, bgr.shape[0] - 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
        elif self.countdown_until is not None:
            left = max(0.0, self.countdown_until - now)
            cv2.putText(bgr, f"{int(np.ceil(left))}", (bgr.shape[1] // 2 - 20, bgr.shape[0] // 2),
                        cv2.FONT_HERSHEY_SIMPLEX, 3.0, (0, 255, 255), 5)
        if not getattr(self, "_window_made", False):
            cv2.namedWindow(window, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            self._window_made = True
        cv2.imshow(window, bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in self.KEYS:
            self.commands.append(self.KEYS[key])
        try:
            visible = cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            visible = 0
        if visible < 1:
            self.say("preview window closed: stopping")
            self.commands.append("quit")


def run_record(options: RecordOptions) -> tuple[int, Recorder]:
    """Run the recorder with ``options``; returns ``(exit code, recorder)``."""
    r = Recorder(options, out=lambda s: print(s, flush=True))
    return r.run(), r

