"""The skinned mesh follows the retargeted bones, as Blender draws it.

A CMU walk is retargeted onto a MakeHuman character in A-pose (Unreal-style names),
exported as GLB, imported into Blender (bpy 5.0, headless, its own process) and
rendered from the side with an orthographic camera at two frames 1.5 s apart. The test
checks what a user would look at: Blender's bones are where our forward kinematics put
them (mm), the rendered silhouette is the one our own linear-blend skinning predicts
(IoU), and it moved across the image by the distance the root travelled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mocap.bvh import load_bvh
from mocap.glossary import yup_to_blender
from retarget.retarget import retarget
from retarget.rig import export_glb, load_rig, skin_vertices

from .conftest import shared_file

RENDER = textwrap.dedent(
    """
    import json, sys
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    glb, outdir, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    res = bpy.ops.import_scene.gltf(filepath=glb)
    arm = [o for o in scene.objects if o.type == "ARMATURE"][0]
    cd = bpy.data.cameras.new("cam")
    cd.type, cd.ortho_scale = "ORTHO", spec["ortho_scale"]
    cam = bpy.data.objects.new("cam", cd)
    scene.collection.objects.link(cam)
    cam.location = spec["cam_location"]
    cam.rotation_euler = (1.5707963, 0.0, 1.5707963)  # Blender's "Right" view: looks along -X
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = spec["px"]
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    act = arm.animation_data.action
    out = {"result": list(res), "frame_range": list(act.frame_range), "heads": {}, "images": {}}
    for f in spec["frames"]:
        scene.frame_set(f)
        bpy.context.view_layer.update()
        out["heads"][f] = {b: list(arm.matrix_world @ arm.pose.bones[b].head) for b in spec["bones"]}
        scene.render.filepath = f"{outdir}/frame_{f:04d}.png"
        bpy.ops.render.render(write_still=True)
        out["images"][f] = scene.render.filepath
    print("RESULT" + json.dumps(out))
    """
)

PX = 200
BONES = ("pelvis", "hand_l", "hand_r", "foot_l", "foot_r", "head")


def _ortho_px(P_blender: np.ndarray, cam_yz: np.ndarray, scale: float) -> np.ndarray:
    """Pixel (col, row) of Blender-space points seen by the side camera (looking -X):
    image right = Blender +Y (forward -X cross up +Z), image up = +Z."""
    u = ((P_blender[..., 1] - cam_yz[0]) / scale + 0.5) * PX
    v = (0.5 - (P_blender[..., 2] - cam_yz[1]) / scale) * PX
    return np.stack([u, v], axis=-1)


def _raster(uv: np.ndarray, tris: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros((PX, PX), np.uint8)
    pts = np.round(uv[tris] * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    cv2.fillPoly(mask, list(pts), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")
    rig = load_rig(shared_file("characters/mh_male_dark_game53.glb"))
    walk = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh")).resample(30.0).slice(0, 60)
    motion = retarget(walk, rig).motion
    tmp = tmp_path_factory.mktemp("render")
    glb = export_glb(rig, motion, tmp / "walk_on_mh.glb")

    frames = (0, 45)
    pos, _ = motion.fk()
    skins = [skin_vertices(rig, motion.slice(f, f + 1), i)[0] for i in range(len(rig.meshes)) for f in frames]
    allv = yup_to_blender(np.concatenate([v.reshape(-1, 3) for v in skins]))
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    centre = (lo + hi) / 2
    scale = float(max(hi[1] - lo[1], hi[2] - lo[2]) * 1.15)
    spec = {"ortho_scale": scale, "cam_location": [float(hi[0] + 5.0), float(centre[1]), float(centre[2])],
            "px": PX, "frames": [], "bones": list(BONES)}

    # the importer keys glTF time t at frame t * fps (+ 0 or 1, depending on the version): find it
    probe = dict(spec, frames=[0, 1], px=8)
    r = subprocess.run([sys.executable, "-c", RENDER, str(glb), str(tmp / "probe"), json.dumps(probe)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT")][-1][len("RESULT"):])
    hips0 = yup_to_blender(pos[0, rig.skeleton.index("pelvis")])
    first = min((0, 1), key=lambda f: np.linalg.norm(np.array(out["heads"][str(f)]["pelvis"]) - hips0))

    spec["frames"] = [first + f for f in frames]
    r = subprocess.run([sys.executable, "-c", RENDER, str(glb), str(tmp), json.dumps(spec)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT")][-1][len("RESULT"):])
    return {"rig": rig, "motion": motion, "pos": pos, "frames": frames, "first": first, "out": out,
            "cam_yz": np.array(spec["cam_location"][1:]), "scale": scale, "skins": skins}


def _alpha(path) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(path)[..., 3] > 0.5


def test_blender_plays_the_exported_animation_with_our_joint_positions(rendered):
    r = rendered
    assert r["out"]["result"] == ["FINISHED"]
    assert r["out"]["frame_range"][1] - r["out"]["frame_range"][0] == pytest.approx(59, abs=1)
    for f in r["frames"]:
        heads = r["out"]["heads"][str(r["first"] + f)]
        for b in BONES:
            ours = yup_to_blender(r["pos"][f, r["rig"].skeleton.index(b)])
            assert np.linalg.norm(np.array(heads[b]) - ours) * 1000 < 2.0, (f, b)  # mm


def test_rendered_silhouette_is_our_skinned_mesh_and_moves_with_the_root(rendered):
    r = rendered
    rig, pos = r["rig"], r["pos"]
    masks, ours = [], []
    for k, f in enumerate(r["frames"]):
        img = _alpha(r["out"]["images"][str(r["first"] + f)])
        assert img.shape == (PX, PX)
        pred = np.zeros((PX, PX), bool)
        for i, m in enumerate(rig.meshes):
            V = r["skins"][i * len(r["frames"]) + k]
            pred |= _raster(_ortho_px(yup_to_blender(V), r["cam_yz"], r["scale"]), m.faces)
        iou = (img & pred).sum() / (img | pred).sum()
        assert iou >= 0.90, f"frame {f}: Blender's silhouette vs our skinning IoU {iou:.3f}"
        masks.append(img)
        ours.append(pred)
        # hands and feet are drawn where the bones put them (within 3 px = 3% of the frame)
        dist = _distance_outside(img)
        for b in ("hand_l", "hand_r", "foot_l", "foot_r", "head"):
            u, v = _ortho_px(yup_to_blender(pos[f, rig.skeleton.index(b)]), r["cam_yz"], r["scale"])
            assert dist[int(round(v)), int(round(u))] <= 3.0, (f, b)
    # the figure walked: the silhouette's centre moved as our skinning predicts (which
    # includes the swinging limbs) and, to within the limbs' swing, by the root's travel
    cu = [np.nonzero(m)[1].mean() for m in masks]
    cu_ours = [np.nonzero(m)[1].mean() for m in ours]
    assert abs((cu[1] - cu[0]) - (cu_ours[1] - cu_ours[0])) < 1.5
    hips = rig.skeleton.index("pelvis")
    du_root = np.diff(_ortho_px(yup_to_blender(pos[list(r["frames"]), hips]), r["cam_yz"], r["scale"])[:, 0])[0]
    assert abs(du_root) > 20  # 1.5 s of walking is well over 20 px here
    assert np.sign(cu[1] - cu[0]) == np.sign(du_root) and abs((cu[1] - cu[0]) - du_root) < 0.35 * abs(du_root)
    assert (masks[0] & masks[1]).sum() < 0.5 * masks[0].sum()  # not the same picture twice


def _distance_outside(mask: np.ndarray) -> np.ndarray:
    """Distance in px from each pixel to the silhouette (0 inside)."""
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(~mask)


def test_rig_skinning_has_meshes_and_triangles(rendered):
    # the precondition the silhouette test relies on, stated: the body is there and skinned
    rig = rendered["rig"]
    body = [m for m in rig.meshes if len(m.faces) > 10000]
    assert body, [(m.name, len(m.faces)) for m in rig.meshes]
