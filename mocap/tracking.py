"""MediaPipe Holistic tracking: footage -> :class:`~mocap.take.Take`.

One legacy ``mp.solutions.holistic.Holistic`` tracker per clip, in video mode (it
follows the performer from frame to frame; a still image uses static mode), never
rebuilt per frame. Per frame it gives the 33 body landmarks in image and metric world
coordinates with visibility and presence, 21 landmarks per hand, the 478-point face
mesh with irises, and optionally the person mask.

Decoding runs in a background thread that fills a small queue while MediaPipe works on
the previous frame (``prefetch``); ``benchmarks/track_throughput.py`` measures the gain
against the sequential loop. MediaPipe's normalised, y-down, z-away coordinates are
converted here, at the edge, to pixels and to our camera frame (see
:mod:`mocap.glossary`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from .errors import TrackingError, UsageError
from .glossary import mp_norm_to_px, mp_world_to_camera
from .models import require_pose_model
from .take import MaskTrack, Take

__all__ = ["TrackOptions", "track", "prefetched"]


@dataclass
class TrackOptions:
    """Tracker settings, stored in the take's ``tracker`` section.

    ``model_complexity`` 0 (lite), 1 (full, bundled) or 2 (heavy); ``refine_face``
    adds the 10 iris points (478 in all); ``segmentation`` stores the person mask;
    ``smooth_landmarks`` is MediaPipe's own temporal smoothing; ``prefetch`` is the
    number of decoded frames queued ahead (0 = decode and track in one thread);
    ``hfov_deg`` overrides the assumed horizontal field of view of the camera.
    """

    model_complexity: int = 1
    refine_face: bool = True
    segmentation: bool = False
    smooth_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    prefetch: int = 4
    hfov_deg: float | None = None

    def check(self) -> None:
        if self.model_complexity not in (0, 1, 2):
            raise UsageError(f"--model-complexity must be 0, 1 or 2, got {self.model_complexity}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"{name} must be within 0..1, got {v}")
        if self.prefetch < 0:
            raise UsageError(f"prefetch must be >= 0, got {self.prefetch}")


_END = object()

# MediaPipe's C++ start-up chatter, written straight to file descriptor 2
_NATIVE_NOISE = re.compile(
    r"^(INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog"
    r"|[IW]0000 .*(inference_feedback_manager|gl_context|landmark_projection_calculator)"
    r"|[IW]0000 .*Feedback manager requires)")


@contextlib.contextmanager
def native_log_filter():
    """Hold back MediaPipe's known log lines on stderr (fd 2) and pass any other line
    through when the block ends, so users see real problems but not the noise.

    Yields a text stream on the real stderr for output that must appear at once (the
    progress bar)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by a non-file (e.g. pytest capture)
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    console = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield console
        finally:
            sys.stderr.flush()
            console.close()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NATIVE_NOISE.search(line):
                    print(line, file=sys.stderr)


def prefetched(frames: Iterator, depth: int) -> Iterator:
    """Run ``frames`` in a background thread, ``depth`` items ahead of the consumer.

    Exceptions raised by the producer are re-raised in the consumer; closing the
    generator (or a KeyboardInterrupt in the consumer) stops the producer.
    """
    if depth <= 0:
        yield from frames
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in frames:
                if not put(item):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer, re-raised there
            put(e)

    th = threading.Thread(target=produce, name="understudy-decode", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        th.join(timeout=5.0)


def _closing(stack: contextlib.ExitStack, obj):
    """Register ``obj.close`` on ``stack`` and return ``obj``."""
    stack.callback(obj.close)
    return obj


def _lm_array(lms, n: int, with_vis: bool = False):
    """Protobuf landmark list -> ``(n, 3)`` (and ``(n,)`` visibility, presence)."""
    pts = lms.landmark
    if len(pts) != n:
        raise TrackingError(f"MediaPipe returned {len(pts)} landmarks where {n} were expected")
    if with_vis:
        # legacy Holistic fills visibility only; presence stays unset (NaN = not reported)
        a = np.array([(p.x, p.y, p.z, p.visibility, p.presence if p.HasField("presence") else np.nan)
                      for p in pts], dtype=np.float64)
        return a[:, :3], a[:, 3], a[:, 4]
    return np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float64)


class _Grow:
    """Append-only buffer of fixed-shape rows, doubling as needed (no per-frame lists)."""

    def __init__(self, shape, dtype, fill):
        self.shape, self.dtype, self.fill = shape, dtype, fill
        self.a = np.full((256,) + shape, fill, dtype=dtype)
        self.n = 0

    def next(self) -> int:
        if self.n == len(self.a):
            b = np.full((2 * len(self.a),) + self.shape, self.fill, dtype=self.dtype)
            b[: self.n] = self.a
            self.a = b
        self.n += 1
        return self.n - 1

    def done(self) -> np.ndarray:
        return self.a[: self.n].copy()


def track(source, *, options: TrackOptions | None = None, start: float | None = None,
          end: float | None = None, progress: bool = True,
          on_frame: Callable[[float, np.ndarray, dict], None] | None = None) -> Take:
    """Track every frame of ``source`` (a :class:`mocap.sources.Source`) with Holistic.

    ``start``/``end`` (s, the source's own timestamps) limit the frames. ``on_frame``
    is called as ``on_frame(t, rgb, landmarks)`` after each frame (the preview writer
    uses it); ``landmarks`` holds the frame's pixel arrays (``pose``, ``visibility``,
    ``left_hand``, ``right_hand``, ``face``; None where absent).

    A KeyboardInterrupt stops tracking and returns the frames done so far as a take
    with ``complete=False`` and a note saying so. Raises :class:`TrackingError` when no
    person is found in any frame.
    """
    from .take import Intrinsics

    opts = options or TrackOptions()
    opts.check()
    require_pose_model(opts.model_complexity)
    import mediapipe as mp

    info = source.info
    W, H = info.width, info.height
    if opts.hfov_deg is not None:
        info.intrinsics = Intrinsics.from_hfov(W, H, opts.hfov_deg, source="user")
    elif info.intrinsics is None:
        info.intrinsics = Intrinsics.from_hfov(W, H)
    mshape = MaskTrack.mask_shape(W, H)
    nbits = (mshape[0] * mshape[1] + 7) // 8

    buf = {
        "t": _Grow((), np.float64, np.nan),
        "i": _Grow((), np.int64, -1),
        "pose_image": _Grow((33, 3), np.float32, np.nan),
        "pose_world": _Grow((33, 3), np.float32, np.nan),
        "pose_visibility": _Grow((33,), np.float32, 0.0),
        "pose_presence": _Grow((33,), np.float32, 0.0),
        "left_hand_image": _Grow((21, 3), np.float32, np.nan),
        "right_hand_image": _Grow((21, 3), np.float32, np.nan),
        "face_image": _Grow((478, 3), np.float32, np.nan),
        "mask": _Grow((nbits,), np.uint8, 0) if opts.segmentation else None,
    }
    flags = {p: _Grow((), bool, False) for p in ("pose", "left_hand", "right_hand", "face")}

    total = None
    if info.reported_frames and start is None and end is None:
        total = info.reported_frames
    elif info.duration_s and info.nominal_fps:
        lo = max(start or 0.0, 0.0)
        hi = min(end if end is not None else info.duration_s, info.duration_s)
        total = max(int(round((hi - lo) * info.nominal_fps)), 0) or None

    n_face = 478 if opts.refine_face else 468
    interrupted = None
    t_wall0 = time.perf_counter()
    stack = contextlib.ExitStack()
    console = stack.enter_context(native_log_filter())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = stack.enter_context(
            tqdm(total=total, unit="frame", desc="tracking", dynamic_ncols=True, leave=True, file=console))
    holistic = _closing(stack, mp.solutions.holistic.Holistic(
        static_image_mode=(info.kind == "image"),
        model_complexity=opts.model_complexity,
        smooth_landmarks=opts.smooth_landmarks,
        enable_segmentation=opts.segmentation,
        refine_face_landmarks=opts.refine_face,
        min_detection_confidence=opts.min_detection_confidence,
        min_tracking_confidence=opts.min_tracking_confidence,
    ))
    frames = _closing(stack, prefetched(source.frames(start=start, end=end), opts.prefetch))
    try:
        for t, rgb, idx in frames:
            rgb.flags.writeable = False
            res = holistic.process(rgb)
            k = buf["t"].next()
            buf["t"].a[k] = t
            buf["i"].next()
            buf["i"].a[k] = idx
            for name in ("pose_image", "pose_world", "pose_visibility", "pose_presence",
                         "left_hand_image", "right_hand_image", "face_image"):
                buf[name].next()
            for g in flags.values():
                g.next()
            drawn = {"pose": None, "visibility": None, "left_hand": None, "right_hand": None, "face": None}
            if res.pose_landmarks is not None:
                xyz, vis, pres = _lm_array(res.pose_landmarks, 33, with_vis=True)
                px = mp_norm_to_px(xyz, W, H)
                buf["pose_image"].a[k] = px
                buf["pose_visibility"].a[k] = vis
                buf["pose_presence"].a[k] = pres
                flags["pose"].a[k] = True
                drawn["pose"], drawn["visibility"] = px, vis
                if res.pose_world_landmarks is not None:
                    buf["pose_world"].a[k] = mp_world_to_camera(_lm_array(res.pose_world_landmarks, 33))
            for part in ("left_hand", "right_hand"):
                lms = getattr(res, f"{part}_landmarks")
                if lms is not None:
                    px = mp_norm_to_px(_lm_array(lms, 21), W, H)
                    buf[f"{part}_image"].a[k] = px
                    flags[part].a[k] = True
                    drawn[part] = px
            if res.face_landmarks is not None:
                px = mp_norm_to_px(_lm_array(res.face_landmarks, n_face), W, H)
                buf["face_image"].a[k, :n_face] = px
                flags["face"].a[k] = True
                drawn["face"] = px
            if buf["mask"] is not None:
                buf["mask"].next()
                m = res.segmentation_mask
                if m is not None:
                    import cv2

                    small = cv2.resize(m, (mshape[1], mshape[0]), interpolation=cv2.INTER_AREA)
                    buf["mask"].a[k] = MaskTrack.pack(small > 0.5)
            if on_frame is not None:
                on_frame(t, rgb, drawn)
            if bar is not None:
                bar.update(1)
                if k % 10 == 0:
                    n = k + 1
                    bar.set_postfix_str(
                        f"body {100 * flags['pose'].a[:n].mean():.0f}% "
                        f"hands {100 * (flags['left_hand'].a[:n] | flags['right_hand'].a[:n]).mean():.0f}% "
                        f"face {100 * flags['face'].a[:n].mean():.0f}%", refresh=False)
    except KeyboardInterrupt:
        interrupted = buf["t"].n
    finally:
        stack.close()
    wall = time.perf_counter() - t_wall0

    T = buf["t"].n
    notes = list(getattr(source, "notes", []))
    if T == 0:
        if interrupted is not None:
            raise KeyboardInterrupt
        raise TrackingError(f"{info.path}: no frames between start={start} and end={end}")
    present = {p: g.done() for p, g in flags.items()}
    if not any(v.any() for v in present.values()):
        raise TrackingError(f"{info.path}: no person found in any of the {T} frames "
                            "(no body, hands or face detected)")
    if interrupted is not None:
        notes.append(f"interrupted by the user after {T} frames (t = {buf['t'].a[T - 1]:.3f} s); "
                     "the take holds the frames tracked so far")
    tracker = {"name": "mediapipe.solutions.holistic", "mediapipe_version": mp.__version__,
               **asdict(opts), "start_s": start, "end_s": end,
               "wall_time_s": round(wall, 3), "fps_processed": round(T / wall, 2) if wall > 0 else None}
    mask = MaskTrack(bits=buf["mask"].done(), shape=mshape) if buf["mask"] is not None else None
    take = Take(
        timestamps=buf["t"].done(),
        frame_index=buf["i"].done(),
        pose_image=buf["pose_image"].done(),
        pose_world=buf["pose_world"].done(),
        pose_visibility=buf["pose_visibility"].done(),
        pose_presence=buf["pose_presence"].done(),
        left_hand_image=buf["left_hand_image"].done(),
        right_hand_image=buf["right_hand_image"].done(),
        face_image=buf["face_image"].done(),
        present=present,
        source=info,
        tracker=tracker,
        notes=notes,
        complete=interrupted is None,
        mask=mask,
    )
    take.validate()
    return take
