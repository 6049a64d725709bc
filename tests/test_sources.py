"""Footage sources against ffmpeg's own view of the same files.

Real clips come from ``../shared/footage`` (beside the checkout); phone-style variants
(rotation metadata, variable frame rate, truncation, damage) are made with the ffmpeg
command-line tools inside pytest's temporary folders, and every timestamp and picture
is checked against what ffprobe/ffmpeg report for the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mocap.sources as sources
from mocap.errors import CameraError, FootageError, UsageError
from mocap.sources import Frame, open_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FOOTAGE = SHARED / "footage"
PORTRAIT = "liveportrait_s13_fullbody_posing.mp4"  # 720x1080, 25 fps, 103 frames
LANDSCAPE = "mpsamples_hand_reach.mp4"  # 640x360, 25 fps
STILL = "mpsamples_pose_woman_sitting_fullbody.jpg"  # 960x640


# -- helpers --------------------------------------------------------------------------


def _footage(name: str) -> Path:
    p = FOOTAGE / name
    if not p.is_file():
        pytest.skip(f"../shared/footage not present: {p} is missing")
    return p


def _need_ffmpeg() -> None:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")


def _run(*args: str | Path) -> str:
    cmd = [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr}"
    return r.stdout


def _ffmpeg(*args: str | Path) -> None:
    _run("ffmpeg", "-nostdin", "-v", "error", "-y", *args)


def _probe_times(path: Path) -> np.ndarray:
    """ffprobe's presentation time of every decoded video frame, seconds."""
    out = _run("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "frame=best_effort_timestamp_time,pts_time", "-of", "json", path)
    frames = json.loads(out)["frames"]
    return np.array([float(f.get("best_effort_timestamp_time", f.get("pts_time"))) for f in frames])


def _probe_rotation(path: Path) -> int | None:
    """ffprobe's display-matrix ``rotation`` (counter-clockwise degrees), if any."""
    out = _run("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "stream_side_data=rotation", "-of", "json", path)
    for s in json.loads(out).get("streams", []):
        for sd in s.get("side_data_list", []):
            if "rotation" in sd:
                return int(sd["rotation"])
    return None


def _ffmpeg_rgb(path: Path, shape: tuple[int, ...], n: int = 1) -> np.ndarray:
    """The first ``n`` frames as the ffmpeg player path shows them (autorotated rgb24)."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-frames:v", str(n),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(n, *shape)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"{a.shape} != {b.shape}"
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def _read_all(spec, **kw) -> tuple[list[Frame], object]:
    with open_source(spec, **kw) as src:
        frames = list(src)
    return frames, src


# -- derived clips (made once per test module) -----------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Short re-encodes: a portrait clip (faststart, 320x480) and a landscape one (320x180)."""
    _need_ffmpeg()
    portrait, landscape = _footage(PORTRAIT), _footage(LANDSCAPE)
    d = tmp_path_factory.mktemp("clips")
    enc = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    _ffmpeg("-i", portrait, "-t", "1.5", "-vf", "scale=320:-2", *enc, "-movflags", "+faststart",
            d / "portrait.mp4")
    _ffmpeg("-i", landscape, "-t", "1.5", "-vf", "scale=320:-2", *enc, d / "landscape.mp4")
    return {"dir": d, "portrait": d / "portrait.mp4", "landscape": d / "landscape.mp4"}


# -- 1. a real clip, frame by frame -------------------------------------------------------


def test_video_frame_count_and_timestamps_match_ffprobe():
    _need_ffmpeg()
    path = _footage(PORTRAIT)
    with open_source(path) as src:
        info = src.info
        assert (info.kind, info.width, info.height, info.rotation_deg) == ("video", 720, 1080, 0)
        assert info.codec == "h264" and info.nominal_fps == pytest.approx(25.0)
        assert info.reported_frames == 103 and info.variable_frame_rate is False
        assert info.duration_s == pytest.approx(4.12, abs=0.05)
        assert info.intrinsics is None
        frames = list(src)
    ref = _probe_times(path)
    ts = np.array([f.t for f in frames])
    assert len(frames) == len(ref) == 103
    np.testing.assert_allclose(ts, ref, atol=1e-4, rtol=0)
    assert [f.index for f in frames] == list(range(103))
    first = frames[0].rgb
    assert first.shape == (1080, 720, 3) and first.dtype == np.uint8 and first.flags.c_contiguous
    # the picture is the one ffmpeg itself decodes (same colour conversion)
    assert _mad(first, _ffmpeg_rgb(path, first.shape)[0]) < 1.0
    assert src.notes == []


@pytest.mark.parametrize("ext, codec", [("mkv", "copy"), ("mov", "copy"), ("avi", "mpeg4"),
                                        ("webm", "libvpx-vp9")])
def test_other_containers_match_ffprobe(clips, tmp_path, ext, codec):
    """The ending does not matter; the timestamps are ffprobe's in every container."""
    out = tmp_path / f"clip.{ext}"
    extra = ["-deadline", "realtime", "-cpu-used", "8"] if codec == "libvpx-vp9" else []
    _ffmpeg("-i", clips["landscape"], "-c:v", codec, *extra, out)
    frames, src = _read_all(out)
    ref = _probe_times(out)
    assert len(frames) == len(ref) > 30
    np.testing.assert_allclose([f.t for f in frames], ref, atol=1e-4)
    assert [f.index for f in frames] == list(range(len(ref)))
    assert (src.info.width, src.info.height) == (320, 180) and src.notes == []


def test_transport_stream_keeps_its_start_offset_and_size_change_is_scaled(clips, tmp_path):
    """MPEG-TS starts at 1.4 s: the times are the file's, not shifted to zero. Its second
    half is 160x90; those frames are scaled to the first frame's size, with a note."""
    enc = ["-c:v", "libx264", "-preset", "veryfast", "-f", "mpegts"]
    _ffmpeg("-i", clips["landscape"], "-t", "0.5", *enc, tmp_path / "a.ts")
    _ffmpeg("-i", clips["landscape"], "-ss", "0.5", "-t", "0.5", "-vf", "scale=160:90",
            "-output_ts_offset", "0.52", *enc, tmp_path / "b.ts")
    ts = tmp_path / "ab.ts"
    ts.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    frames, src = _read_all(ts)
    ref = _probe_times(ts)
    assert ref[0] > 1.0 and len(frames) == len(ref)
    np.testing.assert_allclose([f.t for f in frames], ref, atol=1e-4)
    assert {f.rgb.shape for f in frames} == {(180, 320, 3)}
    assert any("size changes from 320x180 to 160x90" in n for n in src.notes), src.notes


@pytest.mark.parametrize("cut", [1.0, 0.6], ids=["intact", "cut-to-60%"])
def test_frame_threading_does_not_change_output(clips, tmp_path, monkeypatch, cut):
    """Also for a file that ends in a damaged packet, where frame threading alone would
    lose the frames still inside the decoder threads (the tail is decoded again)."""
    data = clips["portrait"].read_bytes()
    path = tmp_path / "clip.mp4"
    path.write_bytes(data[: int(len(data) * cut)])

    def digest() -> tuple[str, list[tuple[float, int]], list[str]]:
        h = hashlib.sha1()
        frames, src = _read_all(path)
        for f in frames:
            h.update(f.rgb.tobytes())
        return h.hexdigest(), [(f.t, f.index) for f in frames], src.notes

    threaded = digest()
    monkeypatch.setattr(sources, "_THREAD_TYPE", "NONE")
    assert digest() == threaded


# -- 2. variable frame rate ---------------------------------------------------------------


def test_variable_frame_rate_timestamps_are_the_files_not_index_over_fps(clips, tmp_path):
    vfr = tmp_path / "vfr.mp4"
    # every frame but each third one is pushed 13 ms late: intervals of 53, 40, 27 ms
    _ffmpeg("-i", clips["landscape"], "-vf", "setpts='(N/25+0.013*gt(mod(N,3),0))/TB'",
            "-fps_mode", "passthrough", "-enc_time_base", "1/12800",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", vfr)
    ref = _probe_times(vfr)
    assert np.ptp(np.diff(ref)) > 0.02, f"ffmpeg did not make a VFR clip: {np.diff(ref)[:6]}"
    frames, src = _read_all(vfr)
    ts = np.array([f.t for f in frames])
    assert len(ts) == len(ref)
    np.testing.assert_allclose(ts, ref, atol=1e-4, rtol=0)
    index_over_fps = np.arange(len(ts)) / src.info.nominal_fps
    assert np.max(np.abs(ts - index_over_fps)) > 0.01
    assert src.info.variable_frame_rate is True


# -- 3. rotation metadata -----------------------------------------------------------------


ROTATIONS = [
    # (pixels turned with, "rotate" tag, ffprobe's rotation, our clockwise rotation_deg, codec, ext)
    pytest.param("transpose=1", "90", 90, 270, "libx264", "mp4", id="clockwise-pixels-mp4"),
    pytest.param("transpose=2", "270", -90, 90, "libx264", "mp4", id="counterclockwise-pixels-mp4"),
    pytest.param("transpose=2", "270", -90, 90, "libx265", "mov", id="phone-style-hevc-mov"),
]


@pytest.mark.parametrize("turn, tag, probe_rot, cw_deg, codec, ext", ROTATIONS)
def test_rotated_clip_comes_out_upright(clips, tmp_path, turn, tag, probe_rot, cw_deg, codec, ext):
    if codec == "libx265" and "libx265" not in _run("ffmpeg", "-hide_banner", "-encoders"):
        pytest.skip("this ffmpeg has no libx265 encoder")
    stored = tmp_path / f"stored.{ext}"
    tagged = tmp_path / f"tagged.{ext}"
    extra = ["-tag:v", "hvc1", "-x265-params", "log-level=error"] if codec == "libx265" else []
    _ffmpeg("-i", clips["landscape"], "-vf", turn, "-c:v", codec, "-preset", "veryfast", "-crf", "16",
             *extra, stored)
    _ffmpeg("-i", stored, "-c", "copy", "-metadata:s:v:0", f"rotate={tag}", tagged)
    assert _probe_rotation(tagged) == probe_rot, "ffmpeg did not write the display matrix we expect"

    upright, ref_src = _read_all(clips["landscape"])
    got, src = _read_all(tagged)
    assert src.info.rotation_deg == cw_deg
    assert (src.info.width, src.info.height) == (320, 180)  # landscape, as displayed
    assert len(got) == len(upright)
    np.testing.assert_allclose([f.t for f in got], [f.t for f in upright], atol=1e-4)
    for g, u in zip(got, upright):
        assert g.rgb.shape == (180, 320, 3) and g.rgb.flags.c_contiguous
        assert _mad(g.rgb, u.rgb) < 3.0
    # the check has teeth: the picture turned the other way round is far off
    assert _mad(np.rot90(got[0].rgb, 2), upright[0].rgb) > 10.0


def _with_tkhd_matrix(data: bytes, m: tuple[int, ...]) -> bytes:
    """Write a display matrix (9 ints, 16.16 / 2.30 fixed point) into an MP4's track header."""
    i = data.find(b"tkhd")
    version = data[i + 4]
    # after version/flags, times + track id + duration, 8 reserved, layer/group/volume/reserved
    off = i + 8 + (32 if version == 1 else 20) + 8 + 8
    assert struct.unpack(">9i", data[off:off + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    return data[:off] + struct.pack(">9i", *m) + data[off + 36:]


@pytest.mark.parametrize("a, b, c, d", [(1, 0, 0, 1), (0, 1, -1, 0), (-1, 0, 0, -1), (0, -1, 1, 0),
                                        (-1, 0, 0, 1), (1, 0, 0, -1), (0, 1, 1, 0), (0, -1, -1, 0)])
def test_every_axis_aligned_display_matrix_matches_ffmpeg(clips, tmp_path, a, b, c, d):
    """All four rotations and the four mirrored variants come out as ffmpeg displays them."""
    one = 1 << 16
    path = tmp_path / "matrix.mp4"
    path.write_bytes(_with_tkhd_matrix(clips["landscape"].read_bytes(),
                                       (a * one, b * one, 0, c * one, d * one, 0, 0, 0, 1 << 30)))
    with open_source(path) as src:
        first = next(iter(src))
    assert first.rgb.shape == (src.info.height, src.info.width, 3)
    assert (src.info.width, src.info.height) == ((180, 320) if a == 0 else (320, 180))
    assert _mad(first.rgb, _ffmpeg_rgb(path, first.rgb.shape)[0]) < 0.5
    probe = _probe_rotation(path) or 0
    assert src.info.rotation_deg == (-probe) % 360
    assert any("mirror" in n for n in src.notes) == (a * d - b * c < 0)


# -- 4. truncated and damaged files --------------------------------------------------------


def test_truncated_file_keeps_the_frames_before_the_cut(clips, tmp_path):
    full, _ = _read_all(clips["portrait"])
    data = clips["portrait"].read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "expected a faststart file"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    kept, src = _read_all(cut)
    assert 0 < len(kept) < len(full)
    assert any("ends early" in n and f"decoded {len(kept)} of {len(full)}" in n for n in src.notes), src.notes
    np.testing.assert_allclose([f.t for f in kept], _probe_times(cut), atol=1e-4)
    # what is kept is the intact clip's opening, frame for frame; only the last one or two
    # (B-frames decoded before the broken packet, shown after it) may follow a gap
    intact = {f.t: f for f in full}
    assert all(k.t in intact for k in kept)
    prefix = next((i for i, (k, f) in enumerate(zip(kept, full)) if (k.t, k.index) != (f.t, f.index)),
                  len(kept))
    assert prefix >= len(kept) - 2 and prefix > len(full) // 3
    for k in kept:
        assert np.array_equal(k.rgb, intact[k.t].rgb)


def test_truncated_file_without_frame_count_is_noticed_from_its_duration(clips, tmp_path):
    mkv = tmp_path / "clip.mkv"
    _ffmpeg("-i", clips["portrait"], "-c", "copy", mkv)
    data = mkv.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    kept, src = _read_all(cut)
    assert src.info.reported_frames is None  # Matroska keeps no frame count
    np.testing.assert_allclose([f.t for f in kept], _probe_times(cut), atol=1e-4)
    assert 0 < len(kept) < 38
    assert any("ends early" in n for n in src.notes), src.notes


def test_damaged_packets_are_skipped_like_ffmpeg_does(clips, tmp_path):
    data = bytearray(clips["portrait"].read_bytes())
    at = int(len(data) * 0.3)
    data[at:at + 50_000] = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    full, _ = _read_all(clips["portrait"])
    got, src = _read_all(bad)
    ref = _probe_times(bad)
    assert 0 < len(got) < len(full)
    assert len(got) == len(ref), "we should keep every frame ffmpeg can decode"
    np.testing.assert_allclose([f.t for f in got], ref, atol=1e-4)
    assert any("skipped" in n and "damaged" in n for n in src.notes), src.notes


def test_container_without_frame_data_is_an_error(clips, tmp_path):
    data = clips["portrait"].read_bytes()
    head = tmp_path / "header_only.mp4"
    head.write_bytes(data[: data.find(b"mdat") + 100])
    with pytest.raises(FootageError, match="no frame could be decoded") as e:
        open_source(head)
    assert str(head) in str(e.value)


def test_interrupted_recording_without_index_is_explained(clips, tmp_path):
    no_index = tmp_path / "interrupted.mp4"
    data = clips["landscape"].read_bytes()  # not faststart: the index (moov) is at the end
    assert data.find(b"mdat") < data.find(b"moov")
    no_index.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(FootageError, match="moov") as e:
        open_source(no_index)
    assert str(no_index) in str(e.value)


# -- 5. errors -----------------------------------------------------------------------------


def _make_bad(kind: str, d: Path) -> str:
    if kind == "missing":
        return str(d / "nope.mp4")
    if kind == "text":
        (d / "notes.mp4").write_text("this is a shopping list, not a video\n")
        return str(d / "notes.mp4")
    if kind == "empty":
        (d / "empty.mp4").write_bytes(b"")
        return str(d / "empty.mp4")
    if kind == "audio":
        _need_ffmpeg()
        _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", d / "tone.m4a")
        return str(d / "tone.m4a")
    if kind == "empty_folder":
        (d / "nothing").mkdir()
        return str(d / "nothing")
    if kind == "glob":
        return str(d / "frame_*.png")
    if kind == "bad_still":
        (d / "photo.jpg").write_text("not a jpeg")
        return str(d / "photo.jpg")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, words", [
    ("missing", "no such file"),
    ("text", "is not a video file ffmpeg can read"),
    ("empty", "empty (0 bytes)"),
    ("audio", "no video stream (only audio)"),
    ("empty_folder", "no images in"),
    ("glob", "no images in"),
    ("bad_still", "not an image"),
])
def test_unreadable_footage_raises_footage_error_naming_the_path(tmp_path, kind, words):
    spec = _make_bad(kind, tmp_path)
    with pytest.raises(FootageError) as e:
        open_source(spec)
    msg = str(e.value)
    assert spec in msg and words in msg
    assert "\n" not in msg


@pytest.mark.parametrize("spec", [7, "7", "/dev/video9"])
def test_camera_that_cannot_be_opened(spec):
    with pytest.raises(CameraError, match=f"cannot open camera {spec}"):
        open_source(spec)
    assert issubclass(CameraError, FootageError)


def test_bad_arguments_are_usage_errors(clips):
    with pytest.raises(UsageError):
        open_source(clips["portrait"], fps=0)
    with pytest.raises(UsageError):
        open_source(clips["portrait"], resolution=(640,))
    with open_source(clips["portrait"]) as src, pytest.raises(UsageError, match="after start"):
        src.frames(start=1.0, end=0.5)


# -- 6. image sequences ----------------------------------------------------------------------


def _write_png(path: Path, value: int, size: tuple[int, int] = (64, 48)) -> None:
    import cv2

    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = value  # red carries the frame number
    rgb[..., 1] = 100
    rgb[..., 2] = 200
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def sequence(tmp_path):
    d = tmp_path / "seq"
    d.mkdir()
    for i in np.random.default_rng(0).permutation(12) + 1:  # written in random order
        _write_png(d / f"f{i}.png", 10 * int(i))
    (d / "README.txt").write_text("not an image")
    (d / "._f3.png").write_bytes(b"\x00junk")  # macOS resource fork: hidden, skipped
    return d


def test_image_sequence_natural_order_and_timing(sequence):
    frames, src = _read_all(sequence, fps=24)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [10 * i for i in range(1, 13)]  # f2 before f10
    assert frames[0].rgb[0, 0].tolist() == [10, 100, 200]  # RGB, not BGR
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.t for f in frames], np.arange(12) / 24.0)
    assert (src.info.kind, src.info.width, src.info.height) == ("images", 64, 48)
    assert src.info.nominal_fps == 24 and src.info.reported_frames == 12
    assert any("24 fps" in n for n in src.notes) and any("non-image" in n for n in src.notes)
    window = list(open_source(sequence, fps=24).frames(start=0.1, end=0.3))
    assert [f.index for f in window] == [3, 4, 5, 6, 7]


def test_image_sequence_from_glob(sequence):
    frames, src = _read_all(str(sequence / "f1*.png"))  # f1, f10, f11, f12
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [10, 100, 110, 120]
    np.testing.assert_allclose([f.t for f in frames], np.arange(4) / 30.0)  # default fps
    assert src.info.nominal_fps == 30.0


def test_image_sequence_of_mixed_sizes_is_an_error(sequence):
    _write_png(sequence / "f5.png", 50, size=(32, 48))
    with pytest.raises(FootageError, match="f5.png is 32x48"):
        list(open_source(sequence))


def test_image_sequence_stops_at_an_unreadable_image(sequence):
    (sequence / "f7.png").write_text("truncated upload")
    frames, src = _read_all(sequence)
    assert len(frames) == 6
    assert any("f7.png" in n and "kept 6 frames" in n for n in src.notes), src.notes
    (sequence / "f1.png").write_text("broken too")
    with pytest.raises(FootageError, match="f1.png"):
        open_source(sequence)


def test_exif_orientation_is_applied(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    frames, src = _read_all(tmp_path / "turned.jpg")
    img = frames[0].rgb
    assert img.shape == (40, 20, 3) and (src.info.width, src.info.height) == (20, 40)
    assert img[:20, :, 0].mean() > 200 and img[20:, :, 0].mean() < 50  # the red side is on top


# -- 7. a still image -------------------------------------------------------------------------


def test_still_image_is_one_frame_at_zero():
    path = _footage(STILL)
    frames, src = _read_all(path)
    assert len(frames) == 1
    f = frames[0]
    assert (f.t, f.index) == (0.0, 0)
    assert f.rgb.shape == (640, 960, 3) and f.rgb.dtype == np.uint8 and f.rgb.flags.c_contiguous
    assert (src.info.kind, src.info.width, src.info.height) == ("image", 960, 640)
    import cv2

    assert np.array_equal(f.rgb, cv2.imread(str(path))[..., ::-1])
    with open_source(path) as again:
        assert list(again.frames(start=0.5)) == []


# -- 8. time windows -----------------------------------------------------------------------------


def test_start_end_window_matches_the_full_iteration(clips):
    full, _ = _read_all(clips["portrait"])
    with open_source(clips["portrait"]) as src:
        window = list(src.frames(start=0.5, end=1.0))
        tail = list(src.frames(start=1.2))
        head = list(src.frames(end=0.2))
    expect = [f for f in full if 0.5 <= f.t < 1.0]
    assert len(expect) == 12  # 25 fps: 0.52 ... 0.96 s
    assert [(f.t, f.index) for f in window] == [(f.t, f.index) for f in expect]
    assert window[0].index == 13 and window[0].t == pytest.approx(0.52)
    for w, e in zip(window, expect):
        assert np.array_equal(w.rgb, e.rgb)
    assert [f.index for f in tail] == [f.index for f in full if f.t >= 1.2]
    assert [f.index for f in head] == [0, 1, 2, 3, 4]
    assert src.notes == []  # a window is not "truncation"


def test_stopping_early_and_iterating_again(clips):
    with open_source(clips["portrait"]) as src:
        for f in src:
            if f.index == 3:
                break
        again = list(src)
    assert len(again) == len(_probe_times(clips["portrait"]))


def test_importing_sources_does_not_load_av_or_cv2():
    code = "import sys, mocap.sources; print(sorted({'av', 'cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


class _FakeCapture:
    """Stands in for cv2.VideoCapture: a 64x48 camera that delivers ``n`` frames, then none."""

    n = 5

    def __init__(self, device, api=None):
        self.device, self.left, self.released = device, self.n, False

    def isOpened(self):
        return True

    def set(self, prop, value):
        return False

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48, cv2.CAP_PROP_FPS: 30}.get(prop, 0)

    def grab(self):
        self.left -= 1
        return self.left >= 0

    def retrieve(self):
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[..., 2] = 10 * (self.n - self.left)  # red in OpenCV's BGR order
        return True, bgr

    def release(self):
        self.released = True


def test_camera_frames_are_timed_by_the_clock_and_end_when_the_camera_stops(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture)
    with open_source(0, fps=30, resolution=(1280, 720)) as cam:
        assert (cam.info.kind, cam.info.path, cam.info.width, cam.info.height) == ("camera", "0", 64, 48)
        assert any("not the requested 1280x720" in n for n in cam.notes)
        frames = list(cam)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [10, 20, 30, 40, 50]  # RGB order
    ts = [f.t for f in frames]
    assert ts[0] == 0.0 and all(b >= a for a, b in zip(ts, ts[1:])) and ts[-1] < 1.0
    assert any("stopped delivering frames after 5 frames" in n for n in cam.notes)
    assert cam._cap.released

    monkeypatch.setattr(_FakeCapture, "n", 0)
    with open_source("/dev/video0") as cam, pytest.raises(CameraError, match="delivered no frames"):
        list(cam)
