"""The add-on's pure-numpy core (inside Blender it cannot use scipy, mocap or retarget)
against the project's own code: rest alignment and limb rotations vs
``retarget.retarget``, bone-map detection vs ``retarget.bonemap``, the motion.npz reader
vs ``mocap.motion_io``. No Blender needed; about 3 s."""

from __future__ import annotations

import importlib
import json
import sys
import zipfile

import numpy as np
import pytest

from blender_addon.build import build_addon
from mocap.bvh import load_bvh
from mocap.motion_io import save_motion
from retarget.bonemap import builtin_profiles, detect_profile
from retarget.retarget import retarget
from retarget.rig import load_rig

from .conftest import shared_file
from .test_retarget import mixamo_skeleton, rigify_skeleton

LIMBS = [f"{s}{b}" for s in ("left", "right") for b in ("UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg",
                                                          "Foot")]


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    """The core modules as shipped: imported from the built zip."""
    t = tmp_path_factory.mktemp("addon_core")
    zp, _ = build_addon(t / "understudy_addon.zip")
    with zipfile.ZipFile(zp) as z:
        z.extractall(t / "understudy_addon")
    sys.path.insert(0, str(t))
    try:
        yield {n: importlib.import_module(f"understudy_addon.core.{n}") for n in ("retarget", "formats", "bonemaps")}
    finally:
        sys.path.remove(str(t))
        for k in [k for k in sys.modules if k == "understudy_addon" or k.startswith("understudy_addon.")]:
            del sys.modules[k]


def _walk():
    return load_bvh(shared_file("mocap/cmu_131_01_walk.bvh")).resample(30.0).slice(0, 90)


def _core_motion(formats, m):
    sk = m.skeleton
    return formats.Motion(names=tuple(sk.names), parents=np.asarray(sk.parents), offsets=np.asarray(sk.offsets),
                          rotations=np.asarray(m.rotations), root_positions=np.asarray(m.root_positions),
                          timestamps=np.asarray(m.timestamps), fps=m.fps)


def _deg(a, b):
    return np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(a * b, axis=-1)), 0, 1)))


@pytest.mark.parametrize("rig", ["mixamo", "rigify", "mh_cmu31", "mh_game53"])
def test_rest_alignment_and_limb_rotations_match_the_project_retarget(core, rig):
    if rig == "mixamo":
        sk = mixamo_skeleton()
    elif rig == "rigify":
        sk = rigify_skeleton()
    else:
        file = {"mh_cmu31": "mh_male_casual_cmu31.glb", "mh_game53": "mh_male_dark_game53.glb"}[rig]
        sk = load_rig(shared_file(f"characters/{file}")).skeleton
    src = _walk()
    want = retarget(src, sk, foot_ik=False)
    al = want.alignment
    target = core["retarget"].Target(names=tuple(sk.names), parents=np.asarray(sk.parents), rest=sk.rest_positions())
    got = core["retarget"].retarget(_core_motion(core["formats"], src), dict(al.pairs.source_found), target,
                                    dict(al.pairs.target_found))
    assert set(got.pairs) == set(al.pairs.pairs)
    for c, A in al.rest_rotations.items():  # every paired bone's rest alignment, the same quaternion
        q = got.rest_rotations[c]
        assert min(np.abs(q - A).max(), np.abs(q + A).max()) < 1e-9, c
    _, G = want.motion.fk()
    for c in LIMBS + ["hips"]:
        j = sk.index(al.pairs.pairs[c][1])
        assert _deg(got.globals[:, j], G[:, j]).max() < 0.01, c
    # root path: the same scale; heights agree within 3 cm (the project stands the feet by their contacts)
    assert got.scale == pytest.approx(float(want.notes[[i for i, n in enumerate(want.notes)
                                                         if n.startswith("root path scaled by")][0]].split()[4]),
                                      abs=1e-3)
    h = sk.index(al.pairs.pairs["hips"][1])
    assert np.abs(got.hips[:, [0, 2]] - want.motion.fk()[0][:, h][:, [0, 2]]).max() < 1e-6
    assert np.abs(np.median(got.hips[:, 1]) - np.median(want.motion.fk()[0][:, h, 1])) < 0.03


def test_bone_map_detection_matches_the_project(core):
    rigs = {f"profile {n}": list(m.bones.values()) for n, m in builtin_profiles().items()}
    rigs["walk"] = list(_walk().skeleton.names)
    rigs["mixamo (no namespace)"] = [n.split(":")[-1] for n in mixamo_skeleton().names]
    rigs["rigify"] = list(rigify_skeleton().names)
    for name, names in rigs.items():
        want, n = detect_profile(names)
        got, k = core["bonemaps"].detect_profile(names)
        assert (got.name, k) == (want.name, n), name
        assert got.resolve(names) == want.resolve(names), name
    with pytest.raises(core["bonemaps"].RigError, match="no bone map fits this rig"):
        core["bonemaps"].detect_profile(["Bone", "Body", "Hips", "UpperLegL"])


def test_motion_npz_reader_matches_the_project(core, tmp_path):
    m = _walk()
    p = save_motion(m, tmp_path / "motion.npz")
    got = core["formats"].load_motion_npz(tmp_path)  # a take folder works too
    assert got.names == tuple(m.skeleton.names) and got.n_frames == 90 and got.fps == 30.0
    np.testing.assert_allclose(got.rotations, m.rotations, atol=1e-6)  # stored as float32
    np.testing.assert_allclose(got.root_positions, m.root_positions)
    P, _ = got.fk()
    assert np.abs(P - m.positions()).max() < 1e-5
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    header["schema_version"] = 2
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "v2.npz", **arrays)
    with pytest.raises(core["formats"].FileFormatError, match="expected understudy.motion version 1, got "
                                                             "'understudy.motion' version 2"):
        core["formats"].load_motion_npz(tmp_path / "v2.npz")


def test_addon_build_is_reproducible_and_refuses_other_extensions(tmp_path, capsys):
    from mocap.cli import main as cli

    assert cli(["addon", "build", "-o", str(tmp_path / "a.zip")]) == 0
    assert "extension 'understudy' 0.1.0 for Blender 4.2.0+" in capsys.readouterr().out
    build_addon(tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        names = z.namelist()
    assert names[0] == "__init__.py" and "blender_manifest.toml" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert cli(["addon", "build", "-o", str(tmp_path / "a.tar")]) == 2
    assert "the add-on is built as a .zip, got 'a.tar'" in capsys.readouterr().err


def test_face_csv_reader_matches_the_project(core, tmp_path):
    from mocap.face import ARKIT_SHAPES
    from mocap.face_csv import read_live_link_csv

    formats = core["formats"]
    assert set(formats.ARKIT_NAMES) == set(ARKIT_SHAPES) and len(formats.ARKIT_NAMES) == 52
    rng = np.random.default_rng(3)
    vals = rng.uniform(0, 1, size=(8, 52))
    cols = [n[0].upper() + n[1:] for n in ARKIT_SHAPES]
    lines = [",".join(["Timecode", "BlendShapeCount", *cols, "HeadYaw", "HeadPitch", "HeadRoll"])]
    for i in range(8):  # frames 56..63 at 60 fps: crosses a second boundary
        f = 56 + i
        tc = f"10:20:{30 + f // 60:02d}:{f % 60:02d}.{i * 7:03d}"
        lines.append(",".join([tc, "52", *(f"{v:.6f}" for v in vals[i]), "0.1", "0.2", "0.3"]))
    (tmp_path / "take.csv").write_text("\n".join(lines) + "\n")
    want = read_live_link_csv(tmp_path / "take.csv")
    got = formats.read_live_link_csv(tmp_path / "take.csv")
    np.testing.assert_allclose(got.timestamps, want["times"], atol=1e-9)
    assert got.timestamps[-1] == pytest.approx(7 / 60 + 0.049 / 60)  # frame field's fraction counts too
    order = [list(want["names"]).index(n) for n in got.names]
    np.testing.assert_allclose(got.values, want["curves"][:, order], atol=1e-6)
    assert got.notes == []


def test_shape_key_spellings_and_alias_maps_match_the_project(core):
    from mocap.face import ARKIT_SHAPES
    from mocap.face_map import map_shapes, normalise_name

    arkit = importlib.import_module("understudy_addon.core.arkit")
    facemaps = importlib.import_module("understudy_addon.core.facemaps")
    names = list(ARKIT_SHAPES) + [n[0].upper() + n[1:] for n in ARKIT_SHAPES] + [
        "mouthSmile_L", "Mouth_Smile_L", "mouthSmile.L", "blendShape1.mouthSmileLeft", "eyeBlink_R", "EyeBlinkR",
        "jaw_open", "Angry", "Surprised", "Sad", "Joy", "Blink_L", "A", "Fcl_MTH_A", "Brow_Raise_Inner_L",
        "Mouth_Roll_In_Lower", "Frobnicate", "Left", "pupil.L", "Eye_L", "Hand.R"]
    for n in names:
        assert arkit.normalise_name(n) == normalise_name(n), n
    got, _ = facemaps.map_shapes(names)
    want, _ = map_shapes(names)
    assert got == want
    assert got["Angry"] == {"browDownLeft": 0.4, "browDownRight": 0.4, "mouthFrownLeft": 0.1, "mouthFrownRight": 0.1}
    assert "Frobnicate" not in got and got["Mouth_Smile_L"] == {"mouthSmileLeft": 1.0}
