"""The accuracy round trip, fast subset: 2 s of the CMU walk on the MakeHuman character,
rendered at 320x240 from the front camera, tracked, solved and compared with the truth.

Thresholds are the numbers measured when this test was written plus a margin (about
15 %); docs/accuracy.md has the full benchmark. The full run is
``benchmarks/roundtrip/run.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_file

W, H = 320, 240
SECONDS = 2.0

# measured (2026-11-26, 320x240, mediapipe 0.10.21, complexity 1, with the depth pass of
# mocap.depth; without it: 60.3 / 106.6 / 11.2 / 6.2 / 9.2 / 252): see _measured() below.
# 2026-11-27: contacts judged across the view and cut into their still parts (mocap.contacts):
# skate 5.2 -> 3.9 cm, jitter 204 -> 221 (more plants, more blends), the rest unchanged
LIMITS = {
    "pa_mpjpe_mm": 61.0,  # measured 52.9 solved / 61.9 raw MediaPipe
    "mpjpe_mm": 106.0,  # measured 92.0 / 108.8
    "bone_direction_deg": 12.3,  # measured 10.7 / 11.3
    "root_path_percent": 6.7,  # measured 5.8 / 6.2 (of 0.53 m travelled)
    "skate_cm_per_contact": 4.5,  # measured 3.9 / 12.1 (target 1 cm; 1.1 over the full run, docs/accuracy.md)
    "jitter_m_s3": 245.0,  # measured 221 / 794 (truth 181; 204 before the 2026-11-27 contacts)
}
CONTACTS = {"found_percent": 80.0, "false_percent": 15.0}  # measured 91 found / 11 on a swinging foot


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    from mocap.roundtrip import (
        compare,
        load_character,
        place_cameras,
        pose_vertices,
        render_clip,
        save_truth,
        track_and_solve,
        tracker_diagnostics,
        truth_motion,
    )

    char = load_character(shared_file("characters/mh_male_casual_cmu31.glb"))
    truth = truth_motion(shared_file("mocap/cmu_131_01_walk.bvh"), char, seconds=SECONDS)
    posed = pose_vertices(char, truth)
    cams = place_cameras(np.concatenate([v[::5] for v in posed], axis=1), char.rig.facing(), width=W, height=H,
                         views={"front": 0.0})
    cam = cams["front"]
    d = tmp_path_factory.mktemp("roundtrip")
    video = render_clip(char, truth, cam, d / "walk_front.mp4", progress=False, still=d / "frame0.png")
    truth_file = save_truth(d / "truth.npz", truth, cam, bonemap=char.rig.bonemap.name, character="mh_casual_cmu31",
                            clip="walk")
    take, res = track_and_solve(video, hfov_deg=cam.hfov_deg, progress=False)
    metrics = compare(res, truth, truth_map=char.rig.bonemap.name)
    diag = tracker_diagnostics(take, truth, cam, truth_map=char.rig.bonemap.name)
    return {"truth": truth, "cam": cam, "video": video, "truth_file": truth_file, "take": take, "res": res,
            "metrics": metrics, "diag": diag, "dir": d, "char": char}


def _measured(m: dict) -> dict:
    return {
        "pa_mpjpe_mm": m["pa_mpjpe_mm"],
        "mpjpe_mm": m["mpjpe_mm"],
        "bone_direction_deg": m["bone_direction_deg"],
        "root_path_percent": m["root_path_percent"],
        "skate_cm_per_contact": m["skate_per_contact"]["mean_cm"],
        "jitter_m_s3": m["jitter"]["motion_m_s3"],
    }


def test_truth_file_round_trip(roundtrip):
    from mocap.errors import FileFormatError
    from mocap.roundtrip import TRUTH_SCHEMA, load_truth, truth_from_file

    header, arrays = load_truth(roundtrip["truth_file"])
    truth, cam = roundtrip["truth"], roundtrip["cam"]
    assert header["schema"] == TRUTH_SCHEMA and header["frames"] == 61 and header["fps"] == 30.0
    assert header["joint_names"][0] == "Hips" and len(header["joint_names"]) == 31
    assert arrays["positions"].shape == (61, 31, 3) and arrays["global_rotations"].shape == (61, 31, 4)
    # the camera: 60 deg field of view at 320 px -> f = 160 / tan(30 deg) = 277.1 px
    assert arrays["K"][0, 0] == pytest.approx(277.128, abs=0.01)
    assert np.allclose(arrays["camera_position"], cam.position)
    # contacts: the walk starts standing (a planted foot in frame 0), and each foot plants in 2 s
    c = arrays["contacts"]
    assert c.shape == (61, 2) and c[0].any() and c.any(axis=0).tolist() == [True, True]
    # the motion rebuilt from the file puts every joint where the truth has it (< 0.01 mm)
    back = truth_from_file(header, arrays)
    assert np.abs(back.positions() - truth.positions()).max() < 1e-5
    js = json.loads(roundtrip["truth_file"].with_suffix(".json").read_text())
    assert js["camera"]["width"] == W and js["bonemap"] == "cmu_motionbuilder"
    bad = roundtrip["dir"] / "bad.npz"
    np.savez(bad, positions=np.zeros(3))
    with pytest.raises(FileFormatError, match="header"):
        load_truth(bad)


def test_rendered_footage_shows_the_figure(roundtrip):
    import av

    truth, cam = roundtrip["truth"], roundtrip["cam"]
    with av.open(str(roundtrip["video"])) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        rate = float(s.average_rate)
    assert len(frames) == 61 and rate == 30.0 and frames[0].shape == (H, W, 3)
    # the pelvis of the truth, projected, lands on the figure (jeans: dark blue), not the grey floor
    from retarget.bonemap import builtin_profiles

    found = builtin_profiles()["cmu_motionbuilder"].resolve(truth.skeleton.names)
    P = truth.positions()
    for t in (0, 30, 60):
        knee = P[t, truth.skeleton.index(found["leftLowerLeg"])]
        (u, v), _ = cam.project(knee)
        r, g, b = frames[t][int(v), int(u)].astype(int)
        assert b > r + 15, f"frame {t}: pixel at the left knee is {r, g, b}, not the jeans"
    # the figure fills about 40-90 % of the image height in frame 0
    bg = np.abs(frames[0].astype(int) - frames[0][5, 5].astype(int)).sum(-1) > 60
    rows = np.flatnonzero(bg[: int(0.9 * H)].any(axis=1))
    assert rows.size and 0.3 * H < rows.max() - rows.min() < 0.95 * H


def test_tracker_sees_the_rendered_character(roundtrip):
    take, diag = roundtrip["take"], roundtrip["diag"]
    assert take.n_frames == 61
    assert take.coverage()["pose"] == 1.0
    # MediaPipe's 2D landmarks within ~3 px (at 320x240) of the projected truth joints (measured 2.3)
    assert diag["image_px"]["mean"] < 3.0
    # MediaPipe's metric figure is smaller than the 1.77 m character (measured 0.87)
    assert 0.8 < diag["world_cam"]["size_ratio"] < 0.95


def test_accuracy_within_measured_limits(roundtrip):
    solved = _measured(roundtrip["metrics"]["solved"])
    for k, limit in LIMITS.items():
        assert solved[k] is not None and solved[k] <= limit, f"{k}: {solved[k]:.1f} > {limit}"
    # the truth's own feet barely slide in contact (retargeted with foot IK; measured 0.0 cm here,
    # 0.3 cm over the whole walk): the floor of the measure
    assert roundtrip["metrics"]["solved"]["skate_per_contact_truth"]["mean_cm"] < 0.5


def test_contacts_agree_with_the_truth(roundtrip):
    """Most of the truth's contact frames are found, few contacts sit on a swinging foot."""
    c = roundtrip["metrics"]["contacts"]
    assert c["truth_frames"] > 40 and c["detected_frames"] > 40  # measured 55 / 72 (two feet, 61 frames)
    assert c["found_percent"] >= CONTACTS["found_percent"], c
    assert c["false_percent"] <= CONTACTS["false_percent"], c


def test_solved_not_worse_than_raw(roundtrip):
    solved = _measured(roundtrip["metrics"]["solved"])
    raw = _measured(roundtrip["metrics"]["raw"])
    # cleaning and the skeleton solve make the motion smoother and the feet steadier
    assert solved["jitter_m_s3"] < 0.5 * raw["jitter_m_s3"]
    assert solved["skate_cm_per_contact"] < raw["skate_cm_per_contact"]
    # poses: better than raw, mostly by the depth pass (measured 8.8 mm PA-MPJPE and 16.9 mm
    # MPJPE better; 1.6 / 2.2 mm without it), bone directions no worse (0.3 deg allowed)
    assert solved["pa_mpjpe_mm"] <= raw["pa_mpjpe_mm"] - 5.0
    assert solved["mpjpe_mm"] <= raw["mpjpe_mm"] - 10.0
    assert solved["bone_direction_deg"] <= raw["bone_direction_deg"] + 0.3
    # the root path is the lift's: the depth pass moves the hips only along their rays (the
    # pelvis centre by the hips' mean: measured 30.5 mm solved vs 32.6 raw), no worse than raw
    rs = roundtrip["metrics"]["solved"]["root_path_mm"]["rigid_horizontal"]
    rr = roundtrip["metrics"]["raw"]["root_path_mm"]["rigid_horizontal"]
    assert rs < rr + 1.0


def test_understudy_eval_gives_the_same_figures(roundtrip, capsys):
    """`understudy eval TAKE --truth truth_motion.npz [--raw]` reproduces the solved and
    the raw-baseline figures of the round trip."""
    from mocap.cli import main
    from mocap.motion_io import save_motion
    from mocap.take import save_take

    d = roundtrip["dir"]
    take_dir = d / "take"
    save_take(roundtrip["take"], take_dir)
    save_motion(roundtrip["res"].motion, take_dir / "motion.npz", contacts=roundtrip["res"].contacts)
    save_motion(roundtrip["truth"], d / "truth_motion.npz")
    for flag, which in (([], "solved"), (["--raw"], "raw")):
        out = d / f"eval_{which}.json"
        assert main(["eval", str(take_dir), "--truth", str(d / "truth_motion.npz"), "-o", str(out), *flag]) == 0
        capsys.readouterr()
        got = json.loads(out.read_text())
        want = roundtrip["metrics"][which]
        assert got["pa_mpjpe_mm"] == pytest.approx(want["pa_mpjpe_mm"], abs=0.05)
        assert got["mpjpe_mm"] == pytest.approx(want["mpjpe_mm"], abs=0.05)
        assert got["foot_skate"]["motion_cm_per_contact"] == pytest.approx(want["skate_per_contact"]["mean_cm"],
                                                                           abs=0.01)
