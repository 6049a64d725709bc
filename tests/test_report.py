"""The quality report: its numbers agree with what was injected into a synthetic take
(see tests/test_cleanup.py: 20 mm noise, 5 % lost frames, a hand lost for 0.5 s, spikes,
swaps), its files are complete, valid and readable back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mocap.cleanup import clean_markers
from mocap.errors import UsageError
from mocap.landmarks import POSE
from mocap.markers import Markers
from mocap.report import PLOTS, format_report, quality_report

from .test_cleanup import corrupt, synthetic_walk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def take():
    truth = synthetic_walk()
    raw, inj = corrupt(truth)
    clean, _ = clean_markers(raw)
    T = len(truth)
    # visibility: 20 % of the left-leg landmark-frames poorly seen, the rest fine
    vis = np.full((T, len(POSE)), 0.9)
    rng = np.random.default_rng(0)
    knee = POSE.index("left_knee")
    low = rng.choice(T, size=T // 5, replace=False)
    vis[low, knee] = 0.2
    # contacts: the frames where the true left heel is in its lowest third
    heel = truth.get("pose.left_heel")[:, 1]
    left = heel < np.quantile(heel, 1 / 3)
    contacts = {"left": left, "right": np.zeros(T, bool)}
    return truth, raw, inj, clean, vis, low, contacts


@pytest.fixture(scope="module")
def written(take, tmp_path_factory):
    truth, raw, inj, clean, vis, low, contacts = take
    out = tmp_path_factory.mktemp("report")
    d = quality_report(raw, clean, contacts=contacts, visibility=vis, out_dir=out)
    return d, out


def test_sections_present(written):
    d, _ = written
    for key in ("schema", "schema_version", "frames", "duration_s", "fps", "jitter_m_s3", "gaps", "visibility",
                "bones_mm", "feet", "motion", "cleanup", "files"):
        assert key in d, key
    assert d["frames"] == 450 and d["fps"] == pytest.approx(30.0)
    assert d["parts"] == {"body": 35, "hands": 42, "face": 7}
    assert set(d["jitter_m_s3"]["raw"]) == {"body", "hands", "face", "overall"}


def test_jitter_matches_the_noise(written):
    d, _ = written
    j = d["jitter_m_s3"]
    # 20 mm of white noise at 30 fps: ~1.6 * sqrt(20) * 0.02 * 30**3 = 3900 m/s^3 per marker
    assert 3000 < j["raw"]["body"] < 5500
    assert j["ratio"]["overall"] > 5 and j["ratio"]["body"] > 10
    for k in j["ratio"]:
        assert j["ratio"][k] == pytest.approx(j["raw"][k] / j["clean"][k], rel=1e-3)


def test_gaps_match_what_was_dropped(take, written):
    truth, raw, inj, clean, *_ = take
    d, _ = written
    g = d["gaps"]
    n_drop = len(inj["dropped"])
    assert g["raw"]["body"]["part_lost_share"] == pytest.approx(n_drop / 450, abs=1e-3)
    assert g["raw"]["body"]["longest_frames"] == 1
    assert g["raw"]["hands"]["longest_frames"] == 15
    assert g["raw"]["hands"]["longest_s"] == pytest.approx(0.5)
    assert g["clean"]["body"] == {"count": 0, "longest_frames": 0, "longest_s": 0.0, "missing_share": 0.0,
                                  "part_lost_share": 0.0}
    assert g["clean"]["hands"]["count"] == 21 and g["clean"]["hands"]["longest_frames"] == 15  # left hand, 0.5 s


def test_visibility_share(take, written):
    *_, vis, low, contacts = take
    v = written[0]["visibility"]
    assert v["low_share"] == pytest.approx(len(low) / vis.size, rel=0.01)
    assert v["frames_with_low_limb_share"] == pytest.approx(0.2, abs=0.01)
    assert list(v["worst"]) == ["left_knee"]


def test_bone_variation_raw_vs_clean(written):
    b = written[0]["bones_mm"]
    assert b["summary"]["raw_std"]["mean"] > 10  # 20 mm per end: the raw bones wobble
    assert b["summary"]["clean_std"]["max"] < 1
    assert b["summary"]["clean_range"]["max"] < 1
    thigh = b["per_bone"]["left.thigh"]
    assert thigh["clean"]["mean"] == pytest.approx(430, abs=10)
    assert thigh["raw"]["range"] > 50


def test_feet(take, written):
    from mocap.contacts import foot_skate

    truth, *_, contacts = take
    feet = truth.select(["pose.left_ankle", "pose.left_heel", "pose.left_foot_index"])
    true_cm = foot_skate({"left": feet}, {"left": contacts["left"]})["per_contact"]
    true_cm = sum(c["slide_cm"] for c in true_cm)
    f = written[0]["feet"]
    assert f["contacts_source"] == "given"
    assert f["contact_share"]["left"] == pytest.approx(1 / 3, abs=0.01)
    raw, clean = f["raw"], f["clean"]
    assert raw["per_foot"]["left"]["contacts"] == clean["per_foot"]["left"]["contacts"] > 0
    # the synthetic feet never plant (they travel ~1 m/s): the clean slide is that travel,
    # the raw one adds the wandering of 20 mm noise on top
    assert clean["per_foot"]["left"]["slide_cm"] == pytest.approx(true_cm, rel=0.15)
    assert raw["per_foot"]["left"]["slide_cm"] > 1.5 * true_cm
    assert raw["per_foot"]["right"]["slide_cm"] == 0.0
    # the true heel reaches 1 cm above the floor: 20 mm noise pushes it below, smoothing less so
    assert raw["floor_penetration"]["max_depth_cm"] > clean["floor_penetration"]["max_depth_cm"]
    assert raw["floor_penetration"]["share_frames"] > clean["floor_penetration"]["share_frames"]


def test_files_written_and_valid(written):
    d, out = written
    assert d["files"] == ["report.json", *PLOTS]
    for name in PLOTS:
        data = (out / name).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_SIGNATURE), name
        assert data[12:16] == b"IHDR"
    back = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert back == d
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_format_report(written):
    text = format_report(written[0])
    lines = text.splitlines()
    assert 5 <= len(lines) <= 15
    assert lines[0].startswith("quality: 450 frames")
    assert "jitter" in text and "swapped frames repaired" in text and "floor penetration" in text


def test_with_a_solved_motion(take):
    solve = pytest.importorskip("mocap.solve")
    truth, raw, inj, clean, *_ = take
    motion = solve.solve_motion(clean)
    d = quality_report(raw, clean, motion=motion)
    m = d["motion"]
    assert m["frames"] == 450 and m["joints"] == 52
    assert m["fit_mm"]["per_joint"]["hips"] == pytest.approx(0.0, abs=1.0)  # the root is on mid_hip
    assert 0 < m["fit_mm"]["mean"] < 50
    assert d["feet"]["motion"]["floor_penetration"]["max_depth_cm"] is not None
    assert "motion:" in format_report(d)
    json.dumps(d, allow_nan=False)


def test_contacts_detected_on_a_real_walk(tmp_path):
    """CMU 131_01 with 20 mm noise: contacts found on the clean feet, and the clean feet
    slide far less than the raw ones through them."""
    from mocap.bvh import load_bvh

    from .conftest import shared_file

    m = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh")).slice(0, None, 4)
    P = m.positions()
    joints = {"pose.mid_hip": "Hips"}
    for s, S in (("left", "Left"), ("right", "Right")):
        joints.update({f"pose.{s}_hip": f"{S}Hip", f"pose.{s}_knee": f"{S}Knee",
                       f"pose.{s}_ankle": f"{S}Ankle", f"pose.{s}_foot_index": f"{S}Toe"})
    names = list(joints)
    X = np.stack([P[:, m.skeleton.index(joints[n])] for n in names], axis=1)
    X += np.random.default_rng(3).normal(0.0, 0.02, X.shape)
    raw = Markers(names=names, points=X, timestamps=m.timestamps)
    clean, _ = clean_markers(raw)
    d = quality_report(raw, clean, out_dir=tmp_path)
    f = d["feet"]
    assert f["contacts_source"].startswith("detected")
    assert sum(f["contact_share"].values()) > 0.1
    for side in ("left", "right"):
        assert f["clean"]["per_foot"][side]["slide_cm"] < 0.5 * f["raw"]["per_foot"][side]["slide_cm"]
    assert d["visibility"] is None and d["motion"] is None
    assert "hands" not in d["jitter_m_s3"]["raw"]
    assert all((tmp_path / p).stat().st_size > 0 for p in PLOTS)


def test_mismatched_inputs_raise(take):
    truth, raw, inj, clean, vis, *_ = take
    with pytest.raises(UsageError, match="same markers"):
        quality_report(raw, Markers(names=clean.names[:-1], points=clean.points[:, :-1],
                                    timestamps=clean.timestamps))
    with pytest.raises(UsageError, match="visibility"):
        quality_report(raw, clean, visibility=vis[:, :10])
    with pytest.raises(UsageError, match="contacts"):
        quality_report(raw, clean, contacts={"left": np.zeros(3, bool)})
