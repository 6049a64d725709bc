"""The README's first command, end to end on the footage the project ships.

``understudy demo`` with no input: the shipped clip (a generated actor performing the
project's own walk-in + wave) -> track -> solve -> retarget onto another generated
character -> replacement shot + side-by-side video. Rendered small and over a third of
the clip so the test stays well under 90 s.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bpy", reason="the demo renders with Blender (pip install 'understudy[blender]')")
cv2 = pytest.importorskip("cv2")

W, H = 160, 120


def _video(path):
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_shipped_footage_is_small_and_made_by_the_project():
    from mocap.bvh import load_bvh
    from mocap.cli import DEMO_FOOTAGE, DEMO_FOOTAGE_DIR

    clip = DEMO_FOOTAGE_DIR / DEMO_FOOTAGE
    assert clip.is_file() and clip.stat().st_size < 2_000_000
    motion = load_bvh(DEMO_FOOTAGE_DIR / "walk_wave.bvh")  # the authored performance it shows
    assert motion.n_frames == 90 and abs(motion.fps - 30.0) < 1e-6
    # walks in about 1.45 m along +X, then stands
    hips = motion.root_positions
    assert 1.3 < hips[-1, 0] - hips[0, 0] < 1.6
    assert np.ptp(hips[60:, 0]) < 0.01


def test_demo_end_to_end(tmp_path, capsys):
    from mocap.cli import main
    from mocap.take import load_take

    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--resolution", f"{W}x{H}", "--samples", "4", "--frames", "45:75", "-q"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for n in range(1, 5):
        assert f"[{n}/4]" in printed  # one line per stage
    for name in ("shot.mp4", "side_by_side.mp4", "overlay.mp4"):
        assert str(out / name) in printed
    take = load_take(out / "take")
    assert len(take) == 90
    assert take.coverage()["pose"] >= 0.95  # MediaPipe finds the synthetic performer
    assert take.mask is not None
    shot = _video(out / "shot.mp4")
    sbs = _video(out / "side_by_side.mp4")
    assert shot.shape == (30, H, W, 3)
    assert sbs.shape == (30, H, 2 * W, 3)
    assert np.abs(sbs[:, :, W:].astype(int) - shot.astype(int)).mean() < 3  # right half = the shot
    # the performer is replaced: the halves differ on the performer, agree far from them
    k = 20  # take frame 65: facing the camera, waving
    mask = take.mask.frame_resized(45 + k, W, H)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    diff = np.abs(sbs[k, :, :W].astype(int) - sbs[k, :, W:].astype(int)).mean(axis=-1)
    assert diff[mask].mean() > 20, diff[mask].mean()
    assert diff[~near].mean() < 6, diff[~near].mean()


def test_webcam_recording_stops_on_ctrl_c(tmp_path, monkeypatch):
    """--webcam records until Ctrl-C and keeps what was recorded (then the demo runs on
    the file); a camera that gives nothing is an error, not an empty video."""
    import mocap.sources
    from mocap.cli import _record_webcam
    from mocap.errors import UsageError
    from mocap.sources import Frame

    class FakeCamera:
        def __init__(self, n):
            self.n = n
            self.info = type("Info", (), {"nominal_fps": 25.0})()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            for i in range(self.n):
                yield Frame(t=i / 25.0, rgb=np.full((48, 64, 3), 10 * i, np.uint8), index=i)
            raise KeyboardInterrupt  # the user presses Ctrl-C

    monkeypatch.setattr(mocap.sources, "open_source", lambda spec, fps=None: FakeCamera(5))
    path = _record_webcam(0, tmp_path / "webcam.mp4", None)
    v = _video(path)
    assert v.shape == (5, 48, 64, 3)
    assert abs(int(v[3].mean()) - 30) <= 3
    monkeypatch.setattr(mocap.sources, "open_source", lambda spec, fps=None: FakeCamera(0))
    with pytest.raises(UsageError, match="no frame"):
        _record_webcam(0, tmp_path / "none.mp4", None)
    assert not (tmp_path / "none.mp4").exists()
