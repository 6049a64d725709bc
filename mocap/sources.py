"""Footage sources: a video file, an image sequence, a still image or a live camera,
all read through one iterator of upright RGB frames with presentation times.

>>> with open_source("clip.mov") as src:          # doctest: +SKIP
...     print(src.info.width, src.info.height, src.info.rotation_deg)
...     for frame in src.frames(start=1.0, end=3.0):
...         frame.t, frame.index, frame.rgb.shape  # seconds, int, (H, W, 3) uint8

What a :class:`Frame` holds
---------------------------
``t``      seconds. For a video: the frame's **presentation time as stored in the file**
           (``pts * time_base``), exactly what ``ffprobe -show_entries frame=pts_time``
           prints, so a variable-frame-rate phone clip keeps its real timing. It is *not*
           shifted to start at zero (a stream whose first ``pts`` is 0.2 s starts at 0.2)
           and never ``index / fps``. Image sequences: ``i / fps`` (said in ``notes``).
           Still image: 0. Camera: ``time.monotonic()`` at each grab, relative to the
           first frame delivered.
``rgb``    ``(H, W, 3)`` uint8 RGB, C-contiguous, **upright**: the file's display
           matrix (a phone's rotation, and the rare mirror) is applied exactly as
           ffmpeg's player-side autorotation applies it, and JPEG EXIF orientation is
           applied by OpenCV. ``H, W`` are ``info.height, info.width``.
``index``  0-based position of the frame among all frames decoded from the start of the
           source, also when ``frames(start=...)`` skips some (they are decoded and
           discarded so the count stays exact).

Damaged files
-------------
A video is decoded packet by packet, so every frame ffmpeg can decode is kept. A packet
the decoder rejects is skipped, as ffmpeg's own tools do, and a note says so; if the
container itself cannot be read any further, decoding stops with a note; if the
container announced more frames (or a longer duration) than was decoded, a note says
the source ends early. Only when *no* frame decodes is a
:class:`~mocap.errors.FootageError` raised. Opening a source decodes its first frame
(to learn the display matrix and to fail early on undecodable files).

``av`` and ``cv2`` are imported inside the functions that need them.
"""

from __future__ import annotations

import glob
import math
import os
import re
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import CameraError, FootageError, UsageError
from .take import SourceInfo

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_SEQUENCE_FPS",
    "Frame",
    "Source",
    "VideoSource",
    "ImageSequenceSource",
    "StillImageSource",
    "CameraSource",
    "open_source",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings read as images (case-insensitive); any other file is handed to ffmpeg."""

DEFAULT_SEQUENCE_FPS = 30.0
"""Frame rate assumed for an image sequence when none is given."""

_GLOB_CHARS = "*?["
_THREAD_TYPE = "AUTO"
"""PyAV decoder threading ("AUTO" = frame + slice threads). Frames, timestamps and notes
are identical to one-thread decoding, also for damaged files (see :class:`VideoSource`;
tests/test_sources.py checks both); only the speed differs."""


class Frame(NamedTuple):
    """One upright frame: ``t`` seconds, ``rgb`` ``(H, W, 3)`` uint8, ``index`` int."""

    t: float
    rgb: np.ndarray
    index: int


# -- opening --------------------------------------------------------------------------


def open_source(spec: Any, *, fps: float | None = None,
                resolution: tuple[int, int] | None = None) -> Source:
    """Open footage and read its metadata (nothing is iterated yet).

    ``spec`` is one of:

    * an ``int`` or a string of digits: a webcam index (``0`` is the default camera);
    * ``"/dev/videoN"``: a webcam device path;
    * an existing folder: an image sequence of the images in it (natural order,
      ``frame2`` before ``frame10``; other files are skipped);
    * a string with ``*``, ``?`` or ``[``: an image sequence of the matching images;
    * an image file (``.png .jpg .jpeg .bmp .tif .tiff .webp``): one still frame at t=0;
    * any other existing file: a video, read with ffmpeg (PyAV) whatever its ending.

    ``fps`` sets the timing of an image sequence (default :data:`DEFAULT_SEQUENCE_FPS`)
    and is requested from a camera; a video's timing always comes from the file.
    ``resolution`` ``(width, height)`` is requested from a camera.

    Raises :class:`~mocap.errors.FootageError` (a :class:`~mocap.errors.CameraError`
    for cameras) naming the path when the footage cannot be read, and
    :class:`~mocap.errors.UsageError` for a malformed ``fps`` or ``resolution``.
    """
    if fps is not None:
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            raise UsageError(f"fps must be a number, got {fps!r}") from None
        if not (math.isfinite(fps) and fps > 0):
            raise UsageError(f"fps must be a positive number, got {fps!r}")
    if resolution is not None:
        try:
            w, h = (int(v) for v in resolution)
        except (TypeError, ValueError):
            raise UsageError(f"resolution must be (width, height), got {resolution!r}") from None
        if w <= 0 or h <= 0:
            raise UsageError(f"resolution must be positive, got {resolution!r}")
        resolution = (w, h)

    if isinstance(spec, bool):
        raise UsageError(f"not a footage source: {spec!r}")
    if isinstance(spec, int):
        return CameraSource(spec, fps=fps, resolution=resolution)
    try:
        s = os.fspath(spec)
    except TypeError:
        raise UsageError(f"footage must be a path, a glob pattern or a camera index, got {spec!r}") from None
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    if not s:
        raise UsageError("footage path is empty")
    if s.isascii() and s.isdigit():
        return CameraSource(int(s), fps=fps, resolution=resolution)
    if s.startswith("/dev/video"):
        return CameraSource(s, fps=fps, resolution=resolution)

    path = Path(s).expanduser()
    notes: list[str] = []
    if resolution is not None:
        notes.append(f"resolution {resolution[0]}x{resolution[1]} ignored: it is only requested from cameras")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        return ImageSequenceSource(files, str(path), fps=fps, notes=notes)
    if path.exists():
        if fps is not None and path.suffix.lower() not in IMAGE_EXTENSIONS:
            notes.append(f"fps {fps:g} ignored: a video's timestamps come from the file")
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            return StillImageSource(path, notes=notes)
        return VideoSource(path, notes=notes)
    if any(c in s for c in _GLOB_CHARS):
        pattern = os.path.expanduser(s)
        files = [Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        return ImageSequenceSource(files, s, fps=fps, notes=notes)
    raise FootageError(f"no such file or folder: {s}")


# -- the common interface -------------------------------------------------------------


class Source:
    """Footage opened by :func:`open_source`: ``info`` (a
    :class:`~mocap.take.SourceInfo`, filled on open), ``notes`` (human-readable
    remarks, some added while iterating), :meth:`frames`, iteration, and ``close``
    (also via ``with``)."""

    info: SourceInfo

    def __init__(self, notes: list[str] | None = None) -> None:
        self.notes: list[str] = list(notes or [])
        self._closed = False

    def frames(self, start: float | None = None, end: float | None = None) -> Iterator[Frame]:
        """Frames with ``start <= t < end`` (seconds on the source's own clock, see
        :class:`Frame`), in order. Either bound may be ``None``."""
        start, end = _check_window(start, end)
        if self._closed:
            raise UsageError(f"{self.info.path}: the source is closed")
        return self._frames(start, end)

    def _frames(self, start: float | None, end: float | None) -> Iterator[Frame]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)

    def __repr__(self) -> str:
        i = self.info
        return f"<{type(self).__name__} {i.path!r} {i.width}x{i.height}>"


def _check_window(start: Any, end: Any) -> tuple[float | None, float | None]:
    out = []
    for name, v in (("start", start), ("end", end)):
        if v is None:
            out.append(None)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise UsageError(f"{name} must be a time in seconds, got {v!r}") from None
        if math.isnan(f):
            raise UsageError(f"{name} must be a time in seconds, got NaN")
        out.append(f)
    if out[0] is not None and out[1] is not None and out[1] <= out[0]:
        raise UsageError(f"end ({out[1]:g} s) must be after start ({out[0]:g} s)")
    return out[0], out[1]


# -- video ----------------------------------------------------------------------------


class _Orientation(NamedTuple):
    """How to make a decoded picture upright: transpose, then mirror columns, then rows."""

    transpose: bool
    flip_h: bool
    flip_v: bool

    def apply(self, a: np.ndarray) -> np.ndarray:
        if self.transpose:
            a = a.transpose(1, 0, 2)
        if self.flip_h:
            a = a[:, ::-1]
        if self.flip_v:
            a = a[::-1]
        return np.ascontiguousarray(a)


_UPRIGHT = _Orientation(False, False, False)


def _orientation_from_matrix(m: np.ndarray | None) -> tuple[_Orientation, int, list[str]]:
    """Read an ffmpeg display matrix (9 int32: ``a b u c d v x y w``, 16.16 fixed point).

    The matrix maps a stored pixel ``(p, q)`` (x right, y down) to the displayed one:
    ``p' = a p + c q``, ``q' = b p + d q`` (plus a translation). For the eight
    axis-aligned matrices the result equals ffmpeg's autorotation. Returns the
    orientation, the clockwise rotation in degrees (``-av_display_rotation_get``,
    i.e. ffprobe's ``rotation`` with the sign flipped, modulo 360) and notes.
    """
    if m is None:
        return _UPRIGHT, 0, []
    a, b, c, d = (float(m[i]) / 65536.0 for i in (0, 1, 3, 4))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0.0 or s1 == 0.0:
        return _UPRIGHT, 0, ["the file's display matrix is degenerate; ignored"]
    notes = []
    cw = math.degrees(math.atan2(b / s1, a / s0))
    rot = int(round(cw / 90.0)) * 90 % 360
    if abs(cw - round(cw / 90.0) * 90) > 1.0:
        notes.append(f"the file asks for a display rotation of {cw % 360:.1f} deg; "
                     f"the nearest quarter turn ({rot} deg) was applied")
    if abs(a) + abs(d) >= abs(b) + abs(c):
        orient = _Orientation(False, a < 0, d < 0)
    else:
        orient = _Orientation(True, c < 0, b < 0)
    if a * d - b * c < 0:
        notes.append("the file's display matrix mirrors the picture; the mirror was applied, as players do")
    return orient, rot, notes


def _display_matrix(frame: Any) -> np.ndarray | None:
    from av.sidedata.sidedata import Type

    for sd in frame.side_data:
        if sd.type == Type.DISPLAYMATRIX:
            m = np.frombuffer(memoryview(sd), dtype=np.int32)
            return m[:9].copy() if m.size >= 9 else None
    return None


def _looks_like_mp4(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp"


def _av_reason(e: BaseException) -> str:
    return str(getattr(e, "strerror", None) or e)


class _DecodeLog:
    """What went wrong while decoding one pass, for the notes."""

    def __init__(self) -> None:
        self.skipped = 0
        self.first_skip: tuple[float | None, str] | None = None
        self.ok_after_skip = 0  # packets decoded fine after the first skipped one
        self.stop_reason: str | None = None
        self.errors: list[str] = []


class _Progress:
    """Frames handed out so far in one ``frames()`` call (across both passes)."""

    def __init__(self) -> None:
        self.index = -1
        self.times: list[float] = []
        self.last_ticks: int | None = None


class _SeekOvershotError(Exception):
    """The tail pass's seek landed after the last frame already handed out."""


class VideoSource(Source):
    """A video file decoded with PyAV (ffmpeg); see the module docstring for timing,
    rotation and damaged files.

    Decoding uses ffmpeg's frame threading. Its output is identical to one-thread
    decoding except in one case: when a file *ends* in a damaged packet, PyAV stops
    collecting frames at the error and the last few frames still inside the decoder
    threads are lost. So when a pass ends with fewer frames than the container
    reports (or the container reports no count, or errors were seen), the last stretch
    is decoded again on one thread, from the keyframe before the last frame handed
    out, and any frames after it are handed out too.
    """

    def __init__(self, path: str | os.PathLike, *, notes: list[str] | None = None) -> None:
        super().__init__(notes)
        self.path = Path(path)
        self._containers: set[Any] = set()
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise FootageError(f"{self.path} is empty (0 bytes)")
        with self._open() as container:
            stream = self._video_stream(container)
            info = self._stream_info(container, stream)
            log = _DecodeLog()
            decoded = self._decode(container, stream, log)
            first = next(decoded, None)
            decoded.close()
            if first is None:
                why = f" ({log.errors[-1]})" if log.errors else ""
                raise FootageError(f"{self.path} has a video stream but no frame could be decoded{why}")
            self._ticks(first)  # raises if the file carries no timestamps
            orient, rot, orient_notes = _orientation_from_matrix(_display_matrix(first))
        self._orient = orient
        self._stored_size = (int(first.width), int(first.height))
        self._reformatter = None  # made on the first frame (see _rgb)
        info["width"], info["height"] = self._stored_size
        if orient.transpose:
            info["width"], info["height"] = info["height"], info["width"]
        self.info = SourceInfo(kind="video", path=str(self.path), rotation_deg=rot, **info)
        for n in orient_notes:
            self._note(n)

    # -- opening --
    def _open(self) -> Any:
        import av

        try:
            return av.open(str(self.path), mode="r", metadata_errors="ignore")
        except av.error.FileNotFoundError:
            raise FootageError(f"no such file: {self.path}") from None
        except av.error.PermissionError as e:
            raise FootageError(f"cannot read {self.path}: permission denied") from e
        except av.error.FFmpegError as e:
            hint = ""
            if _looks_like_mp4(self.path):
                hint = ("; it starts like an MP4/MOV, so its index (moov atom) is probably missing, "
                        "e.g. a recording that was interrupted")
            raise FootageError(
                f"{self.path} is not a video file ffmpeg can read ({_av_reason(e)}){hint}") from e

    def _video_stream(self, container: Any) -> Any:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            has = f"only {' and '.join(kinds)}" if kinds else "no streams at all"
            raise FootageError(f"{self.path} has no video stream ({has})")
        stream = container.streams.best("video")  # ffmpeg's choice: skips e.g. cover art
        return stream if stream is not None else container.streams.video[0]

    @staticmethod
    def _stream_info(container: Any, stream: Any) -> dict[str, Any]:
        ctx = stream.codec_context
        avg = stream.average_rate
        base = stream.base_rate
        nominal = float(avg) if avg else (float(stream.guessed_rate) if stream.guessed_rate else None)
        vfr = None
        if avg and base:  # r_frame_rate vs the average rate
            vfr = abs(float(base) - float(avg)) > 0.01 * float(avg)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000.0
        else:
            duration = None
        return dict(width=int(ctx.width), height=int(ctx.height), nominal_fps=nominal,
                    reported_frames=int(stream.frames) if stream.frames else None,
                    duration_s=duration, codec=ctx.name, variable_frame_rate=vfr)

    def _ticks(self, frame: Any) -> int:
        """The frame's presentation time in stream time-base ticks (``pts``, else ``dts``)."""
        ticks = frame.pts if frame.pts is not None else frame.dts
        if ticks is None:
            raise FootageError(
                f"{self.path} has frames without timestamps (a bare elementary stream?); "
                f"put it in a container first, e.g. ffmpeg -r 30 -i {self.path.name} -c copy out.mp4")
        return int(ticks)

    # -- decoding --
    @staticmethod
    def _decode(container: Any, stream: Any, log: _DecodeLog, *, threads: str = _THREAD_TYPE,
                ignore_errors_until: int | None = None) -> Iterator[Any]:
        """Decoded frames, packet by packet. A packet the decoder rejects is skipped
        (counted in ``log``, unless its pts is at or before ``ignore_errors_until``);
        a container that cannot be read further ends the iteration (``log.stop_reason``)."""
        import av

        stream.thread_type = threads
        tb = stream.time_base
        demux = container.demux(stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                log.errors.append(_av_reason(e))
                log.stop_reason = _av_reason(e)
                return
            try:
                decoded = stream.decode(packet)
            except av.error.FFmpegError as e:
                log.errors.append(_av_reason(e))
                if ignore_errors_until is not None and (packet.pts is None or packet.pts <= ignore_errors_until):
                    continue
                log.skipped += 1
                if log.first_skip is None:
                    at = float(packet.pts * tb) if packet.pts is not None and tb else None
                    log.first_skip = (at, _av_reason(e))
                continue
            if log.skipped and packet.size:
                log.ok_after_skip += 1
            yield from decoded

    def _pass(self, start: float | None, end: float | None, log: _DecodeLog, st: _Progress, *,
              threads: str, resume_after: int | None = None,
              seek: bool = False) -> Generator[Frame, None, bool]:
        """One decoding pass; returns True if it stopped at ``end``. With ``resume_after``
        (ticks) only frames after it are handed out (the tail pass)."""
        container = self._open()
        self._containers.add(container)
        try:
            stream = self._video_stream(container)
            tb = stream.time_base
            if seek and resume_after is not None:
                import av

                try:
                    container.seek(resume_after, backward=True, any_frame=False, stream=stream)
                except av.error.FFmpegError:
                    pass  # decode from the start instead
            frames = self._decode(container, stream, log, threads=threads, ignore_errors_until=resume_after)
            seen_before = False
            try:
                for av_frame in frames:
                    ticks = self._ticks(av_frame)
                    if resume_after is not None:
                        if ticks <= resume_after:
                            seen_before = True
                            continue
                        if seek and not seen_before:
                            raise _SeekOvershotError
                    t = float(ticks * tb)
                    st.index += 1
                    if st.times and t <= st.times[-1]:
                        self._note(f"timestamps do not increase at frame {st.index} "
                                   f"({t:.6f} s after {st.times[-1]:.6f} s)")
                    st.times.append(t)
                    st.last_ticks = ticks
                    if end is not None and t >= end:
                        return True
                    if start is not None and t < start:
                        continue
                    yield Frame(t, self._orient.apply(self._rgb(av_frame, st.index)), st.index)
            finally:
                frames.close()
            return False
        finally:
            self._containers.discard(container)
            container.close()

    def _rgb(self, av_frame: Any, index: int) -> np.ndarray:
        """The stored picture as RGB, scaled to the first frame's size if it changed.

        One :class:`av.video.reformatter.VideoReformatter` per source keeps libswscale's
        context between frames: ``VideoFrame.to_ndarray(format=...)`` builds a new one per
        frame, which cost ~2 ms of a 720x1080 frame's 4 ms here (same pixels either way)."""
        w, h = self._stored_size
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        if (av_frame.width, av_frame.height) == (w, h):
            return self._reformatter.reformat(av_frame, format="rgb24").to_ndarray()
        if not any(n.startswith("the picture size changes") for n in self.notes):
            self._note(f"the picture size changes from {w}x{h} to {av_frame.width}x{av_frame.height} "
                       f"at frame {index}; such frames are scaled to {w}x{h}")
        return self._reformatter.reformat(av_frame, width=w, height=h, format="rgb24").to_ndarray()

    def _frames(self, start: float | None, end: float | None) -> Iterator[Frame]:
        log = _DecodeLog()
        st = _Progress()
        if (yield from self._pass(start, end, log, st, threads=_THREAD_TYPE)):
            return
        reported = self.info.reported_frames
        n = len(st.times)
        if (_THREAD_TYPE in ("AUTO", "FRAME") and n and st.last_ticks is not None
                and (log.errors or reported is None or n < reported)):
            tail = _DecodeLog()
            try:
                cut = yield from self._pass(start, end, tail, st, threads="NONE",
                                            resume_after=st.last_ticks, seek=True)
            except _SeekOvershotError:
                tail = _DecodeLog()
                cut = yield from self._pass(start, end, tail, st, threads="NONE",
                                            resume_after=st.last_ticks)
            if cut:
                return
            log.skipped += tail.skipped
            log.first_skip = log.first_skip or tail.first_skip
            log.ok_after_skip += tail.ok_after_skip
            log.stop_reason = tail.stop_reason
            log.errors += tail.errors

        n = len(st.times)
        if log.skipped:
            at = f" (the first at {log.first_skip[0]:.2f} s)" if log.first_skip and log.first_skip[0] is not None else ""
            why = log.first_skip[1] if log.first_skip else "decoder error"
            self._note(f"skipped {log.skipped} damaged packet{'s' if log.skipped > 1 else ''}{at}: {why}")
        if log.stop_reason is not None:
            where = f"{st.times[-1]:.2f} s" if st.times else "the start"
            self._note(f"decoding stopped at {where} (after frame {n}): {log.stop_reason}; kept {n} frames")
        if n == 0:
            raise FootageError(f"{self.path} has a video stream but no frame could be decoded"
                               + (f" ({log.errors[-1]})" if log.errors else ""))
        if reported and reported - n > max(1, reported // 200):
            if log.skipped and log.ok_after_skip:
                self._note(f"decoded {n} of {reported} frames the container reports "
                           f"(damaged packets were skipped)")
            else:
                self._note(f"source ends early: decoded {n} of {reported} frames the container "
                           f"reports (file truncated?)")
        elif not reported and self.info.duration_s and n >= 2:
            span = st.times[-1] - st.times[0]
            step = span / (n - 1)
            if self.info.duration_s - (span + step) > max(0.5, 0.05 * self.info.duration_s):
                self._note(f"source ends early: frames span {span + step:.2f} s of the {self.info.duration_s:.2f} s "
                           f"the container reports (file truncated?)")
        if n >= 3:
            dt = np.diff(np.asarray(st.times))
            med = float(np.median(dt))
            if med > 0:
                self.info.variable_frame_rate = bool(np.max(np.abs(dt - med)) > max(0.002, 0.02 * med))
        if start is not None and st.times[-1] < start:
            self._note(f"no frames at or after {start:g} s (the last is at {st.times[-1]:.3f} s)")

    def close(self) -> None:
        for c in list(self._containers):
            c.close()
        self._containers.clear()
        super().close()


# -- images ---------------------------------------------------------------------------


def _natural_key(p: Path) -> tuple[list[Any], str]:
    s = str(p)
    parts: list[Any] = [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]
    return parts, s


def _read_image(path: Path) -> np.ndarray | None:
    """RGB uint8 ``(H, W, 3)`` with EXIF orientation applied, or ``None`` if unreadable."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


class ImageSequenceSource(Source):
    """Images as frames, in natural order, timed ``i / fps``; all must share one size."""

    def __init__(self, files: list[Path], spec: str, *, fps: float | None = None,
                 notes: list[str] | None = None) -> None:
        super().__init__(notes)
        images = [Path(f) for f in files if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        others = len(files) - len(images)
        if not images:
            extra = f" (only {others} other file{'s' if others != 1 else ''})" if others else ""
            raise FootageError(f"no images in {spec}{extra}; images end in {' '.join(IMAGE_EXTENSIONS)}")
        images.sort(key=_natural_key)
        self.files = images
        first = _read_image(images[0])
        if first is None:
            raise FootageError(f"{images[0]} is not an image OpenCV can read")
        self._first = first
        self.fps = float(fps) if fps is not None else DEFAULT_SEQUENCE_FPS
        h, w = first.shape[:2]
        self.info = SourceInfo(
            kind="images", path=spec, width=int(w), height=int(h), nominal_fps=self.fps,
            reported_frames=len(images), duration_s=len(images) / self.fps,
            codec=images[0].suffix.lower().lstrip("."), variable_frame_rate=False)
        how = "given" if fps is not None else "default; pass fps= to change it"
        self._note(f"image sequence: timestamps are frame number / {self.fps:g} fps ({how})")
        if others:
            self._note(f"skipped {others} non-image file{'s' if others != 1 else ''} in {spec}")

    def _frames(self, start: float | None, end: float | None) -> Iterator[Frame]:
        W, H = self.info.width, self.info.height
        for i, f in enumerate(self.files):
            t = i / self.fps
            if end is not None and t >= end:
                return
            if start is not None and t < start:
                continue
            rgb = self._first.copy() if i == 0 else _read_image(f)
            if rgb is None:
                self._note(f"stopped at {f} (frame {i}): not an image OpenCV can read; kept {i} frames")
                return
            if rgb.shape[:2] != (H, W):
                raise FootageError(
                    f"{f} is {rgb.shape[1]}x{rgb.shape[0]} but {self.files[0].name}, the first image, "
                    f"is {W}x{H}; all images of a sequence must have the same size")
            yield Frame(t, rgb, i)


class StillImageSource(Source):
    """One image as a one-frame source at t = 0."""

    def __init__(self, path: str | os.PathLike, *, notes: list[str] | None = None) -> None:
        super().__init__(notes)
        self.path = Path(path)
        rgb = _read_image(self.path)
        if rgb is None:
            raise FootageError(f"{self.path} is not an image OpenCV can read")
        self._rgb = rgb
        h, w = rgb.shape[:2]
        self.info = SourceInfo(kind="image", path=str(self.path), width=int(w), height=int(h),
                               reported_frames=1, codec=self.path.suffix.lower().lstrip("."))

    def _frames(self, start: float | None, end: float | None) -> Iterator[Frame]:
        if (start is None or start <= 0.0) and (end is None or end > 0.0):
            yield Frame(0.0, self._rgb.copy(), 0)


# -- cameras --------------------------------------------------------------------------


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing a camera; our error says it better."""
    import cv2

    try:
        old = cv2.getLogLevel()
        cv2.setLogLevel(0)
    except (AttributeError, cv2.error):
        old = None
    try:
        yield
    finally:
        if old is not None:
            cv2.setLogLevel(old)


class CameraSource(Source):
    """A live camera through OpenCV. Timestamps are ``time.monotonic()`` at each grab,
    relative to the first frame delivered; iteration ends when ``end`` is reached, the
    source is closed, or the camera stops delivering frames."""

    def __init__(self, device: int | str, *, fps: float | None = None,
                 resolution: tuple[int, int] | None = None, notes: list[str] | None = None) -> None:
        super().__init__(notes)
        import cv2

        self.device = device
        linux = sys.platform.startswith("linux")
        api = cv2.CAP_V4L2 if linux else cv2.CAP_ANY
        with _quiet_opencv():
            cap = cv2.VideoCapture(device, api)
            if not cap.isOpened() and api != cv2.CAP_ANY:
                cap.release()
                cap = cv2.VideoCapture(device, cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera {device} (no such device, in use by another "
                              f"program, or no permission)")
        self._cap = cap
        if resolution is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, resolution[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, resolution[1])
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w <= 0 or h <= 0:  # some backends know the size only after a grab
            ok, bgr = cap.read()
            if not ok or bgr is None:
                cap.release()
                raise CameraError(f"camera {device} opened but delivered no frames")
            h, w = bgr.shape[:2]
        got_fps = cap.get(cv2.CAP_PROP_FPS)
        if resolution is not None and (w, h) != tuple(resolution):
            self._note(f"camera {device} gives {w}x{h}, not the requested {resolution[0]}x{resolution[1]}")
        if fps is not None and got_fps and got_fps > 0 and abs(got_fps - fps) > 0.5:
            self._note(f"camera {device} reports {got_fps:g} fps, not the requested {fps:g}")
        self.info = SourceInfo(kind="camera", path=str(device), width=w, height=h,
                               nominal_fps=float(got_fps) if got_fps and got_fps > 0 else None)
        self._t0: float | None = None
        self._next_index = 0

    def _frames(self, start: float | None, end: float | None) -> Iterator[Frame]:
        import cv2

        cap = self._cap
        while not self._closed:
            ok = cap.grab()
            now = time.monotonic()
            bgr = cap.retrieve()[1] if ok else None
            if bgr is None:
                if self._next_index == 0:
                    raise CameraError(f"camera {self.device} opened but delivered no frames")
                t = now - self._t0 if self._t0 is not None else 0.0
                self._note(f"camera {self.device} stopped delivering frames after "
                           f"{self._next_index} frames ({t:.2f} s)")
                return
            if self._t0 is None:
                self._t0 = now
            t = now - self._t0
            index = self._next_index
            self._next_index += 1
            if end is not None and t >= end:
                return
            if start is not None and t < start:
                continue
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            yield Frame(t, rgb, index)

    def close(self) -> None:
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()
        super().close()
