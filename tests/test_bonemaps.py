"""Bone maps as data: the shipped profiles, detection on the real shared files, the checks
a malformed file trips, and the TOML writer.

The shared files (see /work/shared/SOURCES.md sections 3 and 4) carry three naming
conventions for BVH (cgspeed, DAZ/SL) and two for rigs (CMU/MotionBuilder, UE mannequin).
"""

from __future__ import annotations

import functools
import json
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mocap.bvh import load_bvh
from mocap.errors import FileFormatError, RigError, UsageError
from retarget.bonemap import (
    BONEMAP_DIR,
    CORE_BONES,
    BoneMap,
    builtin_profiles,
    canonical_names,
    detect_profile,
    load_bonemap,
    require_core,
    required_missing,
    save_bonemap,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MOCAP = SHARED / "mocap"
CHARACTERS = SHARED / "characters"
needs_mocap = pytest.mark.skipif(
    not MOCAP.is_dir(), reason=f"the shared CMU BVH files are not at {MOCAP} (see SOURCES.md section 3)"
)
needs_characters = pytest.mark.skipif(
    not CHARACTERS.is_dir(), reason=f"the shared characters are not at {CHARACTERS} (SOURCES.md section 4)"
)

# canonical bones mapped by each shipped profile
PROFILE_SIZES = {
    "canonical": 52,
    "vrm": 52,
    "mixamo": 52,
    "rigify": 52,
    "ue5_mannequin": 52,
    "daz_sl": 51,
    "cmu_cgspeed": 26,
    "cmu_asf": 26,
    "cmu_motionbuilder": 26,
}

# file -> (expected profile, canonical bones found)
BVH_DETECTION = {
    "cmu_131_01_walk.bvh": ("cmu_cgspeed", 26),
    "cmu_131_03_hop.bvh": ("cmu_cgspeed", 26),
    "cmu_60_10_salsa_scaled.bvh": ("daz_sl", 39),
}


@functools.cache
def _bvh(name: str):
    return load_bvh(MOCAP / name)


def _glb_skin_joint_names(path: Path) -> list[str]:
    """The joint names of a GLB's first skin, read from its JSON chunk (no glTF library)."""
    data = path.read_bytes()
    magic, _version, _length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF"
    chunk_len, chunk_type = struct.unpack_from("<II", data, 12)
    assert chunk_type == 0x4E4F534A  # "JSON"
    gltf = json.loads(data[20:20 + chunk_len])
    return [gltf["nodes"][i]["name"] for i in gltf["skins"][0]["joints"]]


# -- the shipped profiles -----------------------------------------------------------------------


def test_each_shipped_profile_loads_and_maps_the_core():
    profiles = builtin_profiles()
    assert sorted(profiles) == sorted(p.stem for p in BONEMAP_DIR.glob("*.toml"))
    assert {n: len(m) for n, m in profiles.items()} == PROFILE_SIZES
    canon = set(canonical_names())
    assert len(canon) == 52
    for name, m in profiles.items():
        assert m.source == BONEMAP_DIR / f"{name}.toml"
        assert set(m.bones) <= canon
        assert set(CORE_BONES) <= set(m.bones), f"{name} does not map every core bone"
        assert len(set(m.bones.values())) == len(m.bones)
        assert m.description
    ident = {n: n for n in canonical_names()}
    assert dict(profiles["canonical"].bones) == ident == dict(profiles["vrm"].bones)
    # the maps are read-only
    with pytest.raises(TypeError):
        profiles["mixamo"].bones["hips"] = "x"  # type: ignore[index]


def test_profiles_spell_their_conventions():
    p = builtin_profiles()
    # the cgspeed names are shifted by one bone: a joint is named after the bone it rotates
    assert p["cmu_cgspeed"].bones["leftUpperLeg"] == "LeftHip"
    assert p["cmu_cgspeed"].bones["leftUpperArm"] == "LeftShoulder"
    assert p["cmu_cgspeed"].bones["leftShoulder"] == "LeftCollar"
    assert p["cmu_asf"].bones["leftUpperLeg"] == "lfemur"
    assert p["mixamo"].bones["leftUpperArm"] == "mixamorig:LeftArm"
    assert p["mixamo"].bones["rightLittleDistal"] == "mixamorig:RightHandPinky3"
    assert p["ue5_mannequin"].bones["leftToes"] == "ball_l"
    assert p["rigify"].bones["leftIndexProximal"] == "DEF-f_index.01.L"
    assert p["daz_sl"].bones["rightLowerArm"] == "rForeArm"


# -- detection on the real files -------------------------------------------------------------------


@needs_mocap
@pytest.mark.parametrize("fname", sorted(BVH_DETECTION))
def test_detect_profile_on_the_shared_bvh_files(fname):
    want, score = BVH_DETECTION[fname]
    names = _bvh(fname).skeleton.names
    m, s = detect_profile(names)
    assert (m.name, s) == (want, score)
    assert required_missing(m, names) == []
    # every bone detection reports present is a joint of the file, under that exact name
    for prof in builtin_profiles().values():
        assert set(prof.resolve(names).values()) <= set(names)
    found = m.resolve(names)
    assert len(found) == score
    assert all(m.bones[c] == r for c, r in found.items())  # exact names, no prefix games


@needs_mocap
@pytest.mark.parametrize("fname", sorted(BVH_DETECTION))
def test_detected_maps_are_anatomically_right(fname):
    """Independent of the names: in the first frame the mapped joints form a standing
    human, and the 'left' joints are on the performer's left, judged from where the feet
    point (cgspeed: toes ahead of the ankles) or the eyes look (DAZ)."""
    mo = _bvh(fname)
    names = mo.skeleton.names
    m, _ = detect_profile(names)
    ix = {c: mo.skeleton.index(r) for c, r in m.resolve(names).items()}
    P = mo.positions()[0]

    def dist(a, b):
        return float(np.linalg.norm(P[ix[a]] - P[ix[b]]))

    for side in ("left", "right"):  # (the "scaled" salsa figure is only 1.2 m tall)
        thigh, shin = dist(f"{side}UpperLeg", f"{side}LowerLeg"), dist(f"{side}LowerLeg", f"{side}Foot")
        upper, fore = dist(f"{side}UpperArm", f"{side}LowerArm"), dist(f"{side}LowerArm", f"{side}Hand")
        assert 0.25 < thigh < 0.6 and 0.25 < shin < 0.6
        assert 0.15 < upper < 0.4 and 0.15 < fore < 0.35
        assert fore < upper < thigh
    assert P[ix["head"], 1] > P[ix["neck"], 1] > P[ix["hips"], 1] > P[ix["leftFoot"], 1]
    if "leftToes" in ix:
        fwd = (P[ix["leftToes"]] - P[ix["leftFoot"]]) + (P[ix["rightToes"]] - P[ix["rightFoot"]])
    else:
        eyes = 0.5 * (P[mo.skeleton.index("leftEye")] + P[mo.skeleton.index("rightEye")])
        fwd = eyes - P[mo.skeleton.index("head")]
    fwd[1] = 0.0
    left = np.cross([0.0, 1.0, 0.0], fwd)  # +Y up: up x forward points to the left
    for a in ("UpperLeg", "Foot", "UpperArm", "Hand"):
        assert np.dot(P[ix["left" + a]] - P[ix["right" + a]], left) > 0, a


@needs_characters
@pytest.mark.parametrize(
    "fname, want, score, absent",
    [
        ("mh_male_casual_cmu31.glb", "cmu_motionbuilder", 26, []),
        ("mh_male_dark_game53.glb", "ue5_mannequin", 51, ["upperChest"]),  # spine_01..03 only
    ],
)
def test_detect_profile_on_the_shared_rigs(fname, want, score, absent):
    names = _glb_skin_joint_names(CHARACTERS / fname)
    m, s = detect_profile(names)
    assert (m.name, s) == (want, score)
    assert sorted(set(m.bones) - set(m.resolve(names))) == absent


def test_a_truncated_skeleton_names_its_missing_core_bones():
    names = [r for c, r in builtin_profiles()["cmu_cgspeed"].bones.items()
             if c not in ("leftLowerArm", "leftHand", "rightFoot")]
    m = builtin_profiles()["cmu_cgspeed"]
    assert required_missing(m, names) == ["rightFoot", "leftLowerArm", "leftHand"]
    with pytest.raises(RigError) as e:
        require_core(m, names, what="walk.bvh")
    msg = str(e.value)
    for bit in ("walk.bvh", "rightFoot (as 'RightAnkle')", "leftLowerArm (as 'LeftElbow')",
                "leftHand (as 'LeftWrist')"):
        assert bit in msg
    with pytest.raises(RigError) as e:
        detect_profile(names)
    msg = str(e.value)
    assert "'cmu_cgspeed'" in msg and "LeftElbow" in msg and "RightAnkle" in msg and "LeftWrist" in msg
    with pytest.raises(RigError, match="without joints"):
        detect_profile([])


@needs_mocap
def test_a_truncated_bvh_skeleton_fails_detection_naming_the_bones():
    sk = _bvh("cmu_131_01_walk.bvh").skeleton
    keep = [n for n in sk.names if n not in ("LeftElbow", "LeftWrist", "lhand", "LFingers", "LThumb")]
    names = sk.subset(keep).names
    with pytest.raises(RigError) as e:
        detect_profile(names)
    assert "leftLowerArm (as 'LeftElbow')" in str(e.value) and "leftHand (as 'LeftWrist')" in str(e.value)


def test_match_hints_prefixes_and_case():
    mix = builtin_profiles()["mixamo"]
    got = mix.resolve(["mixamorig1:Hips", "Spine", "mixamorig:Head", "Armature"])
    assert got == {"hips": "mixamorig1:Hips", "spine": "Spine", "head": "mixamorig:Head"}
    # two characters in one scene: ambiguous, so neither matches ...
    assert "hips" not in mix.resolve(["mixamorig1:Hips", "mixamorig2:Hips"])
    # ... unless one carries the exact name
    assert mix.resolve(["mixamorig:Hips", "mixamorig2:Hips"])["hips"] == "mixamorig:Hips"
    ue = builtin_profiles()["ue5_mannequin"]
    assert ue.resolve(["Pelvis", "THIGH_L"]) == {"hips": "Pelvis", "leftUpperLeg": "THIGH_L"}
    assert builtin_profiles()["cmu_cgspeed"].resolve(["hips", "HIPS"]) == {}  # exact only


def test_detection_prefers_the_profile_that_explains_more():
    # an unprefixed Mixamo rig shares most names with the MotionBuilder CMU skeleton
    mix = builtin_profiles()["mixamo"]
    bare = [r.split(":", 1)[1] for r in mix.bones.values()]
    assert detect_profile(bare)[0].name == "mixamo"
    m, s = detect_profile(["mixamorig7:" + n for n in bare])
    assert (m.name, s) == ("mixamo", 52)


def test_bonemap_import_stays_light():
    code = ("import sys, retarget, retarget.bonemap as b; b.builtin_profiles(); "
            "b.detect_profile(list(b.canonical_names())); "
            "print(sorted(m for m in ('scipy', 'mediapipe', 'cv2', 'bpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- malformed files ---------------------------------------------------------------------------------

GOOD = """schema = "understudy.bonemap"
schema_version = 1
name = "test"
[bones]
hips = "pelvis"
head = "head"
"""


def _write(tmp_path: Path, text: str, name: str = "map.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        ("schema = \"understudy.bonemap\"\nschema_version = 1\nname = \"x\n", "malformed TOML"),
        (GOOD + 'hips = "again"\n', "malformed TOML"),  # a key twice
        (GOOD.replace('head = "head"', 'haed = "head"'), "'haed' is not a canonical joint name (did you mean 'head'?)"),
        (GOOD.replace("schema_version = 1", "schema_version = 2"), "'schema_version' 2 is not supported"),
        (GOOD.replace("schema_version = 1\n", ""), "'schema_version' None"),
        (GOOD.replace("understudy.bonemap", "understudy.skeleton"), "'schema' must be 'understudy.bonemap'"),
        (GOOD.replace('head = "head"', 'head = "pelvis"'), "head = 'pelvis': the rig name is already used by hips"),
        (GOOD.replace('head = "head"', 'head = ""'), "[bones] head"),
        (GOOD.replace('head = "head"', "head = 3"), "[bones] head"),
        (GOOD.replace("[bones]", "colour = \"red\"\n[bones]"), "unknown key(s) 'colour'"),
        (GOOD.replace("[bones]", "[match]\nprefix = \"a:\"\n[bones]"), "[match] unknown key(s) 'prefix'"),
        (GOOD.replace("[bones]", "[match]\nprefixes = \"a:\"\n[bones]"), "prefixes must be a list"),
        (GOOD.replace("[bones]", "[match]\nignore_case = \"yes\"\n[bones]"), "ignore_case must be true or false"),
        (GOOD.replace("[bones]\nhips = \"pelvis\"\nhead = \"head\"\n", ""), "[bones] table is missing"),
        (GOOD.replace("hips = \"pelvis\"\nhead = \"head\"\n", ""), "[bones] maps no bones"),
        (GOOD.replace("name = \"test\"\n", ""), "'name' is missing"),
        (GOOD + "[notes]\nhips = 3\n", "[notes] 'hips'"),
        (GOOD.replace("[bones]", "[match]\nignore_case = true\n[bones]").replace('"head"', '"PELVIS"'),
         "already used by hips"),
    ],
)
def test_malformed_bonemap_files_name_the_file_and_the_key(tmp_path, text, needle):
    p = _write(tmp_path, text, "broken_rig.toml")
    with pytest.raises(FileFormatError) as e:
        load_bonemap(p)
    msg = str(e.value)
    assert msg.startswith(str(p)), msg
    assert needle in msg, msg


def test_missing_file_and_good_file(tmp_path):
    with pytest.raises(FileFormatError, match="no bone-map file"):
        load_bonemap(tmp_path / "nope.toml")
    m = load_bonemap(_write(tmp_path, GOOD))
    assert m == BoneMap(name="test", bones={"hips": "pelvis", "head": "head"})
    assert m.source == tmp_path / "map.toml"


def test_constructor_checks_like_the_loader():
    with pytest.raises(UsageError, match="not a canonical joint name"):
        BoneMap(name="x", bones={"pelvis": "pelvis"})
    with pytest.raises(UsageError, match="already used"):
        BoneMap(name="x", bones={"hips": "a", "head": "a"})
    with pytest.raises(UsageError, match="non-empty string"):
        BoneMap(name="", bones={"hips": "a"})


# -- writing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILE_SIZES))
def test_save_load_round_trip_of_every_profile(tmp_path, name):
    m = builtin_profiles()[name]
    p = save_bonemap(m, tmp_path / f"{name}.toml")
    back = load_bonemap(p)
    assert back == m
    assert list(back.bones) == [n for n in canonical_names() if n in m.bones]  # canonical order
    assert (back.prefixes, back.ignore_case, dict(back.notes)) == (m.prefixes, m.ignore_case, dict(m.notes))


def test_awkward_names_survive_the_writer(tmp_path):
    weird = BoneMap(
        name='quote " backslash \\ tab \t name',
        description="line one\nline two, unicode: Süß 骨, control \x01 and \x7f",
        bones={
            "hips": "mixamorig:Hips",
            "head": 'Head "top"',
            "neck": "C:\\rig\\neck",
            "leftHand": "hand.L #not a comment",
            "rightHand": "hand = R",
            "spine": "'single'",
        },
        prefixes=("mixamorig:", 'odd"prefix:'),
        ignore_case=True,
        notes={"general": "a [table] = not", "key with spaces": "x", "ünïcode": "y", "hips": ""},
    )
    p = save_bonemap(weird, tmp_path / "weird.toml")
    assert tomllib.loads(p.read_text(encoding="utf-8"))["bones"]["head"] == 'Head "top"'
    assert load_bonemap(p) == weird
    assert [q.name for q in tmp_path.iterdir()] == ["weird.toml"]  # no temporary file left
    # overwriting is atomic too, and gives the new content
    save_bonemap(BoneMap(name="small", bones={"hips": "root"}), p)
    assert load_bonemap(p).name == "small"
    assert [q.name for q in tmp_path.iterdir()] == ["weird.toml"]


def test_save_refuses_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        save_bonemap(builtin_profiles()["vrm"], tmp_path / "no" / "such.toml")
    with pytest.raises(UsageError, match="needs a BoneMap"):
        save_bonemap({"hips": "x"}, tmp_path / "m.toml")  # type: ignore[arg-type]
