"""Realism: the presets rendered (pyrender) from the front and three-quarter view, in the
rest pose and in poses from the CMU motions, are taken for people by MediaPipe Holistic
(a pose in >= 90 % of the renders, a face mesh in most frontal ones); and each preset's
deformation figures through the CMU walk are within the stated tolerances."""

from __future__ import annotations

import os
from functools import cache

import numpy as np
import pytest

from retarget import character as C
from retarget.rig import load_rig, skin_vertices

from .conftest import shared_file

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # headless OpenGL, before pyrender is imported
pytest.importorskip("skimage", reason="scikit-image (marching cubes) is a dependency of retarget.character")
pytest.importorskip("pyrender", reason="pyrender renders the presets (pip install pyrender; libegl1 for EGL)")
pytest.importorskip("mediapipe", reason="MediaPipe judges the renders")

PRESETS = sorted(C.PRESETS)
VIEWS = {"front": 0.0, "three-quarter": 35.0}
SIZE = (288, 384)


@pytest.fixture(scope="module")
def glbs(tmp_path_factory):
    d = tmp_path_factory.mktemp("presets")
    return {p: C.save_character(C.generate_character(preset=p), d / f"{p}.glb") for p in PRESETS}


@cache
def canonical_poses() -> tuple:
    """A frame each of the CMU walk and salsa on the canonical skeleton (solved from
    synthetic landmarks, :func:`retarget.character._canonical_motion`)."""
    from mocap.bvh import load_bvh

    out = []
    for name, frames in (("cmu_131_01_walk.bvh", (150,)), ("cmu_60_10_salsa_scaled.bvh", (600,))):
        m = load_bvh(shared_file(f"mocap/{name}"))
        for f in frames:
            # a short window around the frame (the solver's filters need a few frames), then the frame
            solved = C._canonical_motion(m.slice(f - 8, f + 8), 1)
            out.append((f"{name.split('_')[3].removesuffix('.bvh')}@{f}", solved.slice(8, 9)))
    return tuple(out)


def facing_camera(V: np.ndarray, P: np.ndarray, sk) -> np.ndarray:
    """Vertices turned about the vertical through the hips so the pelvis faces +Z (a walk
    heads anywhere; the test wants the front view to show the front)."""
    lat = P[sk.index("leftUpperLeg")] - P[sk.index("rightUpperLeg")]
    fwd = np.cross(lat, [0.0, 1.0, 0.0])
    a = np.arctan2(fwd[0], fwd[2])
    c, s = np.cos(-a), np.sin(-a)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (V - P[0]) @ R.T + P[0]


def posed_renders(glb) -> list[tuple[str, str, np.ndarray]]:
    """(pose, view, image) for the rest pose and each of :func:`canonical_poses`."""
    rig = load_rig(glb)
    mesh = rig.meshes[0]
    colors = _colors(glb)
    shapes = [("rest", mesh.vertices)]
    for name, motion in canonical_poses():
        mo = C._on_rig(rig, motion)
        V = skin_vertices(rig, mo)[0]
        P, _ = mo.fk()
        shapes.append((name, facing_camera(V, P[0], rig.skeleton)))
    return [(pose, view, C.render_preview(V, mesh.faces, colors, yaw_deg=yaw, size=SIZE))
            for pose, V in shapes for view, yaw in VIEWS.items()]


@cache
def _colors_cache(path: str) -> np.ndarray:
    from retarget import gltf

    doc = gltf.load_gltf(path)
    return np.asarray(doc.meshes[0].primitives[0].attributes["COLOR_0"], dtype=float)[:, :3]


def _colors(glb) -> np.ndarray:
    return _colors_cache(str(glb))


def test_mediapipe_takes_the_rendered_presets_for_people(glbs):
    import mediapipe as mp

    found, faces, frontal, total = 0, 0, 0, 0
    missed = []
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        for preset, glb in glbs.items():
            for pose, view, img in posed_renders(glb):
                r = holistic.process(img)
                total += 1
                if r.pose_landmarks is not None:
                    found += 1
                    # the nose is found above the hips: a person standing upright in the picture
                    lm = r.pose_landmarks.landmark
                    assert lm[0].y < 0.5 * (lm[23].y + lm[24].y), (preset, pose, view)
                else:
                    missed.append((preset, pose, view))
                if view == "front":
                    frontal += 1
                    faces += r.face_landmarks is not None
    print(f"pose found in {found}/{total} renders, face mesh in {faces}/{frontal} frontal ones; missed {missed}")
    assert total == len(PRESETS) * len(VIEWS) * (1 + len(canonical_poses()))
    assert found >= 0.9 * total, f"pose found in {found}/{total}; missed {missed}"
    assert faces > 0.5 * frontal, f"face mesh in {faces}/{frontal} frontal renders"


@cache
def solved_walk():
    """The CMU walk, every 16th frame, on the canonical skeleton: solved once for all presets."""
    m = C._canonical_motion(shared_file("mocap/cmu_131_01_walk.bvh"), 16)
    m.meta["source"] = "walk"
    return m


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_deforms_within_tolerance_through_the_walk(glbs, preset):
    r = C.character_check(glbs[preset], motions=[solved_walk()], height_m=C.PRESETS[preset]["height_m"])
    assert r["passed"], r["failures"]
    w = r["motions"]["walk"]
    print(preset, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in w.items()})
    assert w["max_offset_ratio"] < 0.75 and w["max_edge_stretch"] < 6 and w["volume_change"] < 0.05
    for h in ("left_elbow", "right_elbow", "left_knee", "right_knee"):
        assert w[h]["max_flexion_deg"] > 45 and w[h]["volume_change"] > -0.40, (h, w[h])
    assert w["arm_in_torso_share"] < 0.02
