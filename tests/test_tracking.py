"""Tracking real footage of real people (../shared/footage), through the API and the CLI.

Derived clips (rotated, variable frame rate, truncated, scaled down to keep CI short)
are made with ffmpeg inside temporary folders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mocap.errors import FootageError, ModelFileError, TrackingError
from mocap.sources import open_source
from mocap.take import load_take
from mocap.tracking import TrackOptions, track

from .conftest import need_ffmpeg, shared_file

pytestmark = pytest.mark.slow

UNDERSTUDY = [sys.executable, "-m", "mocap.cli"]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def ffprobe_times(path: Path) -> np.ndarray:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts_time", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return np.array([float(x.strip().rstrip(",")) for x in out.split() if x.strip()])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Small derived copies of the full-body clip (s13: woman in a blue dress, 720x1080)."""
    need_ffmpeg()
    src = shared_file("footage/liveportrait_s13_fullbody_posing.mp4")
    d = tmp_path_factory.mktemp("clips")
    small = d / "small.mp4"  # 2 s, 360x540, 25 fps
    ffmpeg("-i", str(src), "-t", "2", "-vf", "scale=360:540", "-an", "-c:v", "libx264", "-crf", "18",
           "-movflags", "+faststart", str(small))
    # a phone-style portrait clip: sensor pixels stored sideways plus a display rotation tag
    sideways = d / "sideways.mp4"
    ffmpeg("-i", str(small), "-vf", "transpose=2", "-c:v", "libx264", "-crf", "18", str(sideways))
    phone = d / "phone.mp4"
    ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(phone))
    # variable frame rate: every third frame arrives 13 ms late
    vfr = d / "vfr.mp4"
    ffmpeg("-i", str(small), "-vf", "setpts='(N/25+0.013*eq(mod(N,3),1))/TB'", "-fps_mode",
           "passthrough", "-enc_time_base", "1/12800", "-c:v", "libx264", "-crf", "18", str(vfr))
    # truncated: the first 55% of the bytes of a fast-start file
    data = small.read_bytes()
    cut = d / "truncated.mp4"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    return {"small": small, "phone": phone, "vfr": vfr, "truncated": cut}


@pytest.fixture(scope="module")
def small_take(clips):
    with open_source(clips["small"]) as s:
        return track(s, options=TrackOptions(segmentation=True), progress=False)


def test_full_body_found_and_timestamps_match_ffprobe(clips, small_take):
    take = small_take
    truth = ffprobe_times(clips["small"])
    assert len(take) == len(truth) == 50
    np.testing.assert_allclose(take.timestamps, truth, atol=1e-4)
    np.testing.assert_array_equal(take.frame_index, np.arange(50))
    assert take.coverage()["pose"] >= 0.9
    assert take.coverage()["face"] >= 0.9


def test_left_is_the_performers_left(small_take):
    """She faces the camera, so her left wrist is on the image's right."""
    take = small_take
    lw = take.landmark("pose", "left_wrist")[:, 0]
    rw = take.landmark("pose", "right_wrist")[:, 0]
    assert np.nanmedian(lw - rw) > 60  # px, at 360 px width
    # metric landmarks agree: left is +x, the head is above the hips (+y up), metres
    world = take.pose_world
    assert np.nanmedian(take.landmark("pose", "left_shoulder", "world")[:, 0]) > 0.05
    head_y = np.nanmedian(take.landmark("pose", "nose", "world")[:, 1])
    assert 0.4 < head_y < 0.9
    assert np.nanmax(np.abs(world)) < 2.0
    # Holistic's left hand is the one at the pose's left wrist
    both = take.present["left_hand"] & take.present["pose"]
    d = np.linalg.norm(take.left_hand_image[both, 0, :2] - take.pose_image[both, 15, :2], axis=1)
    assert np.median(d) < 15  # px


def test_person_mask_covers_the_performer(small_take):
    take = small_take
    assert take.mask is not None and len(take.mask) == len(take)
    h, w = take.mask.shape
    k = len(take) // 2
    m = take.mask.frame_resized(k, take.source.width, take.source.height)
    hip = take.pose_image[k, 23:25, :2].mean(axis=0)
    assert m[int(hip[1]), int(hip[0])]
    assert not m[:20, :20].any() and not m[:20, -20:].any()
    assert 0.05 < m.mean() < 0.6


def test_phone_rotation_comes_out_upright_with_the_same_landmarks(clips, small_take):
    with open_source(clips["phone"]) as s:
        assert (s.info.width, s.info.height) == (360, 540) and s.info.rotation_deg in (90, 270)
        take = track(s, progress=False)
    assert take.source.rotation_deg in (90, 270)
    both = take.present["pose"] & small_take.present["pose"]
    assert both.mean() > 0.9
    d = np.linalg.norm(take.pose_image[both, :25, :2] - small_take.pose_image[both, :25, :2], axis=-1)
    assert np.median(d) < 4.0  # px: same landmarks as the upright original (codec noise only)


def test_variable_frame_rate_keeps_presentation_times(clips):
    truth = ffprobe_times(clips["vfr"])
    dt = np.diff(truth)
    assert dt.max() - dt.min() > 0.02  # the copy really is variable
    with open_source(clips["vfr"]) as s:
        take = track(s, progress=False)
    assert len(take) == len(truth)
    np.testing.assert_allclose(take.timestamps, truth, atol=1e-4)


def test_truncated_file_keeps_the_frames_before_the_cut(clips, tmp_path):
    full = ffprobe_times(clips["small"])
    out = tmp_path / "t"
    r = subprocess.run(UNDERSTUDY + ["track", str(clips["truncated"]), "-o", str(out), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    take = load_take(out)
    assert 5 <= len(take) < len(full)
    np.testing.assert_allclose(take.timestamps, full[: len(take)], atol=1e-4)
    assert any("truncated" in n or "stopped" in n or "ends early" in n for n in take.notes)
    assert "note:" in r.stdout


def test_start_end_window(clips):
    with open_source(clips["small"]) as s:
        take = track(s, start=0.5, end=1.0, progress=False)
    assert len(take) == 12  # 25 fps: frames at 0.52, 0.56 .. 0.96 s
    assert take.timestamps[0] >= 0.5 and take.timestamps[-1] < 1.0
    np.testing.assert_array_equal(take.frame_index, np.round(take.timestamps * 25).astype(int))


def test_two_people_take_follows_one_performer(tmp_path):
    need_ffmpeg()
    src = shared_file("footage/mmhuman3d_two_people_fullbody.mp4")
    small = tmp_path / "two.mp4"
    ffmpeg("-i", str(src), "-vf", "scale=360:640", "-c:v", "libx264", "-crf", "18", str(small))
    with open_source(small) as s:
        take = track(s, progress=False)
    assert take.coverage()["pose"] >= 0.9
    hips = take.pose_image[:, 23:25, :2].mean(axis=1)
    ok = take.present["pose"]
    jumps = np.linalg.norm(np.diff(hips[ok], axis=0), axis=1)
    # 12 fps footage: a real hip moves well under 10% of the frame width between frames
    assert jumps.max() < 0.1 * 360, f"hip jumped {jumps.max():.0f} px between frames"


def test_still_image_full_body():
    img = shared_file("footage/facerec_biden_fullbody_standing.jpg")
    with open_source(img) as s:
        take = track(s, progress=False)
    assert len(take) == 1 and take.present["pose"][0] and take.present["face"][0]
    assert (take.source.width, take.source.height) == (970, 2204)
    ankle_y = take.landmark("pose", "left_ankle")[0, 1]
    nose_y = take.landmark("pose", "nose")[0, 1]
    assert ankle_y - nose_y > 0.6 * 2204  # standing, head to ankles spans most of the picture


def test_cli_track_preview_and_info(clips, tmp_path):
    out, prev = tmp_path / "take", tmp_path / "overlay.mp4"
    r = subprocess.run(UNDERSTUDY + ["track", str(clips["small"]), "-o", str(out), "--preview", str(prev),
                                     "--end", "1.0"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "25 frames" in r.stdout and "found: pose" in r.stdout
    assert "tracking" in r.stderr  # the progress bar
    times = ffprobe_times(prev)
    assert len(times) == 25
    np.testing.assert_allclose(times - times[0], np.arange(25) / 25, atol=2e-3)
    info = subprocess.run(UNDERSTUDY + ["info", str(out)], capture_output=True, text=True, check=True)
    assert "25 frames" in info.stdout and "default_hfov_60" in info.stdout
    meta = json.loads(subprocess.run(UNDERSTUDY + ["info", str(out), "--json"], capture_output=True, text=True,
                                     check=True).stdout)
    assert meta["schema_version"] == 1 and meta["tracker"]["mediapipe_version"] == "0.10.21"


def test_ctrl_c_leaves_a_valid_take_of_the_frames_done(clips, tmp_path):
    long = tmp_path / "long.mp4"  # 10 s, long enough to interrupt mid-way
    ffmpeg("-stream_loop", "4", "-i", str(clips["small"]), "-c", "copy", str(long))
    out = tmp_path / "take"
    p = subprocess.Popen(UNDERSTUDY + ["track", str(long), "-o", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # wait until some frames are tracked (the progress bar counts them on stderr)
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline:
        seen += p.stderr.read(1)
        if "/250" in seen and any(f" {n}/250" in seen for n in range(20, 250)):
            break
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    take = load_take(out)
    assert not take.complete and 20 <= len(take) < 250
    assert any("interrupted" in n for n in take.notes)
    assert "interrupted" in stderr


def test_no_person_is_an_error_and_writes_nothing(tmp_path):
    need_ffmpeg()
    blank = tmp_path / "wall.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=320x240:d=1:r=10", "-c:v", "libx264", str(blank))
    r = subprocess.run(UNDERSTUDY + ["track", str(blank), "-o", str(tmp_path / "t"), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no person found in any of the 10 frames" in r.stderr
    assert not (tmp_path / "t").exists()
    with open_source(blank) as s, pytest.raises(TrackingError, match="no person"):
        track(s, progress=False)


@pytest.mark.parametrize("case", ["missing", "text", "empty_folder"])
def test_cli_bad_footage_is_one_line_and_no_take(tmp_path, case):
    if case == "missing":
        arg = str(tmp_path / "nope.mp4")
    elif case == "text":
        arg = str(tmp_path / "notes.mp4")
        Path(arg).write_text("this is not a video\n")
    else:
        (tmp_path / "frames").mkdir()
        arg = str(tmp_path / "frames")
    r = subprocess.run(UNDERSTUDY + ["track", arg, "-o", str(tmp_path / "t"), "-q"], capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("understudy: error:") and Path(arg).name in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()


def test_missing_optional_model_says_how_to_get_it(monkeypatch, tmp_path):
    import mocap.models as M

    monkeypatch.setattr(M, "pose_model_dir", lambda: tmp_path)
    with pytest.raises(ModelFileError, match="pose_landmark_heavy.tflite.*npm pack @mediapipe/pose"):
        M.require_pose_model(2)


def test_models_install_verifies_checksums(tmp_path):
    import mocap.models as M

    lite = shared_file("models/pose_landmark_lite.tflite")
    src = tmp_path / "src"
    src.mkdir()
    (src / "pose_landmark_lite.tflite").write_bytes(lite.read_bytes())
    dest = tmp_path / "dest"
    installed = M.install_pose_models(src, dest=dest)
    assert [p.name for p in installed] == ["pose_landmark_lite.tflite"]
    assert (dest / "pose_landmark_lite.tflite").stat().st_size == lite.stat().st_size
    (src / "pose_landmark_lite.tflite").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="sha256"):
        M.install_pose_models(src, dest=tmp_path / "dest2")


def test_footage_error_for_zero_frames(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(FootageError):
        open_source(p)


def test_demo_writes_take_and_overlay(clips, tmp_path):
    r = subprocess.run(UNDERSTUDY + ["demo", "--input", str(clips["small"]), "-o", str(tmp_path / "demo"), "-q",
                                     "--end", "0.6"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(load_take(tmp_path / "demo" / "take")) == 15
    assert len(ffprobe_times(tmp_path / "demo" / "overlay.mp4")) == 15


def test_demo_with_missing_footage_is_one_clear_line(tmp_path):
    # (the demo's shipped default footage is tested end to end in tests/test_demo.py)
    r = subprocess.run(UNDERSTUDY + ["demo", "--input", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "demo")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "nope.mp4" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "demo" / "take" / "take.json").exists()
