"""Not a test module: the Blender side of tests/test_addon.py, run in its own process
(``python tests/test_addon_worker.py JOB.json``) with the bpy 5.0.1 module.

It blocks ``scipy``, ``mocap`` and ``retarget`` from being imported (as in a real Blender,
which has numpy only), installs the built extension zip into a temporary extension
repository with ``bpy.ops.extensions.package_install_files``, runs the add-on's operators
on the scenes the job describes and prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import importlib.abc
import json
import sys

BLOCKED = ("scipy", "mocap", "retarget")


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: a real Blender has numpy only")
        return None


def _op_error(fn, **kw) -> str | None:
    """None when the operator finished, else the message of the RuntimeError bpy raises for
    an operator that reported an error and returned CANCELLED."""
    try:
        r = fn(**kw)
    except RuntimeError as e:
        return str(e)
    return None if r == {"FINISHED"} else f"returned {sorted(r)}"


def _clear(bpy):
    for o in list(bpy.data.objects):
        bpy.data.objects.remove(o)


def _armature(bpy):
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1, [o.name for o in arms]
    arm = arms[0]
    for o in bpy.data.objects:
        o.select_set(False)
    arm.select_set(True)
    bpy.context.view_layer.objects.active = arm
    return arm


def _fcurves(ad):
    """All F-curves of the action on ``ad``'s NLA strips (5.0: channelbags; 4.2: action.fcurves)."""
    out = []
    for tr in ad.nla_tracks:
        for st in tr.strips:
            act = st.action
            if hasattr(act, "layers") and len(act.layers):
                for lay in act.layers:
                    for s in lay.strips:
                        for bag in s.channelbags:
                            out += list(bag.fcurves)
            else:
                out += list(act.fcurves)
    return out


def _pose_positions(bpy, arm, frames):
    """World bone heads ``{frame: {canonical: [x, y, z] (ours, +Y up)}}`` of the mapped bones."""
    scene = bpy.context.scene
    m = {it.canonical: it.bone for it in arm.data.understudy_map if it.bone}
    out = {}
    for f in frames:
        scene.frame_set(f)
        d = {}
        for c, b in m.items():
            p = arm.matrix_world @ arm.pose.bones[b].head
            d[c] = [p.x, p.z, -p.y]
        out[str(f)] = d
    return out


def _foot_min(bpy, arm, last: int) -> float:
    """The lowest world height (m, +Y up) of either ankle over frames 1..last."""
    m = {it.canonical: it.bone for it in arm.data.understudy_map if it.bone}
    low = float("inf")
    for f in range(1, last + 1):
        bpy.context.scene.frame_set(f)
        for side in ("leftFoot", "rightFoot"):
            low = min(low, (arm.matrix_world @ arm.pose.bones[m[side]].head).z)
    return low


class _Layout:
    """Stands in for a UI layout: records what a panel's draw() asks for."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args, **kw):
            self.log.append([name, [a for a in args if isinstance(a, str)], kw.get("text")])
            return _Layout(self.log)
        return call

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)


def _draw_panel(bpy):
    """What the sidebar panel draws for the active object (no UI in the bpy module)."""
    log = []
    pt = bpy.types.VIEW3D_PT_understudy

    class Fake:
        layout = _Layout(log)

    pt.draw(Fake(), bpy.context)
    return log


def _take_scene(bpy, job, character, label):
    _clear(bpy)
    r = bpy.ops.import_scene.gltf(filepath=character)
    assert r == {"FINISHED"}, r
    arm = _armature(bpy)
    out = {}
    if label == "robot":  # no shipped profile fits: the error, then the rig's own map from a TOML
        out["no_map_error"] = _op_error(bpy.ops.understudy.import_take, filepath=job["take"], start_frame=1)
        out["map_import_error"] = _op_error(bpy.ops.understudy.map_import, filepath=job["robot_map"])
    if label == "robot":
        bpy.context.scene.frame_set(1)
        out["feet_before"] = _pose_positions(bpy, arm, [1])["1"]
        out["feet_before"] = {k: v for k, v in out["feet_before"].items() if k in ("leftFoot", "rightFoot")}
    err = _op_error(bpy.ops.understudy.import_take, filepath=job["take"], start_frame=1,
                    use_current_pose=label == "robot")
    ad = arm.animation_data
    fcs = [fc for t in ad.nla_tracks if t.name == job["take_name"] for s in t.strips for fc in _fcurves_strip(s)]
    scene = bpy.context.scene
    tracks = [t.name for t in ad.nla_tracks if not t.name.startswith("[Action Stash]")]
    strips = [(s.name, s.frame_start, s.frame_end) for t in ad.nla_tracks if t.name in tracks for s in t.strips]
    out.update({
        "error": err,
        "bones": len(arm.data.bones),
        "map_name": arm.data.understudy_map_name,
        "map": {it.canonical: it.bone for it in arm.data.understudy_map if it.bone},
        "tracks": tracks,
        "strips": strips,
        "active_action": ad.action.name if ad.action else None,
        "fcurves": len(fcs),
        "keys_per_fcurve": sorted({len(fc.keyframe_points) for fc in fcs}),
        "key_frame_range": [min(fc.keyframe_points[0].co[0] for fc in fcs),
                            max(fc.keyframe_points[-1].co[0] for fc in fcs)],
        "interpolation": sorted({k.interpolation for fc in fcs[:5] for k in fc.keyframe_points[:3]}),
        "fps": scene.render.fps / scene.render.fps_base,
        "frame_range": [scene.frame_start, scene.frame_end],
        "pose": _pose_positions(bpy, arm, job["frames"]),
        "foot_min": _foot_min(bpy, arm, int(scene.frame_end)),
    })
    return out


def main(job_path: str) -> None:
    sys.meta_path.insert(0, _Block())
    job = json.loads(open(job_path, encoding="utf-8").read())
    import bpy
    import numpy as np  # noqa: F401  (Blender's bundled numpy is all the add-on may use)

    res = {"blender": bpy.app.version_string}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    repo = bpy.context.preferences.extensions.repos.new(
        name="understudy_test", module="understudy_test", custom_directory=job["repo_dir"], source="USER")
    r = bpy.ops.extensions.package_install_files(filepath=job["zip"], repo=repo.module, enable_on_install=True)
    res["install"] = sorted(r)
    res["addons"] = sorted(k for k in bpy.context.preferences.addons.keys() if "understudy" in k)
    res["operators"] = sorted(n for n in dir(bpy.ops.understudy))
    pt = getattr(bpy.types, "VIEW3D_PT_understudy", None)
    res["panel"] = None if pt is None else [pt.bl_space_type, pt.bl_region_type, pt.bl_category]
    res["scipy_loaded"] = "scipy" in sys.modules

    res["robot"] = _take_scene(bpy, job, job["robot"], "robot")
    res["generated"] = _take_scene(bpy, job, job["generated"], "generated")
    arm = _armature(bpy)

    res["panel_draw"] = _draw_panel(bpy)
    # a second take onto the same rig: a BVH, its own NLA track
    err = _op_error(bpy.ops.understudy.import_bvh, filepath=job["bvh"], start_frame=1)
    ad = arm.animation_data
    fcs = [fc for t in ad.nla_tracks if t.name == job["bvh_name"] for s in t.strips for fc in _fcurves_strip(s)]
    res["bvh"] = {"error": err, "tracks": [t.name for t in ad.nla_tracks],
                  "keys_per_fcurve": sorted({len(fc.keyframe_points) for fc in fcs}),
                  "fps": bpy.context.scene.render.fps / bpy.context.scene.render.fps_base,
                  "frame_range": [bpy.context.scene.frame_start, bpy.context.scene.frame_end]}
    # mute the take so the BVH's track alone plays, then read its pose
    for t in ad.nla_tracks:
        t.mute = t.name != job["bvh_name"]
    res["bvh"]["pose"] = _pose_positions(bpy, arm, job["bvh_frames"])

    # bone map: export, edit, import back
    before = {it.canonical: it.bone for it in arm.data.understudy_map}
    res["map_export_error"] = _op_error(bpy.ops.understudy.map_export, filepath=job["map_out"])
    arm.data.understudy_map.clear()
    res["map_import_error"] = _op_error(bpy.ops.understudy.map_import, filepath=job["map_out"])
    after = {it.canonical: it.bone for it in arm.data.understudy_map}
    res["map_roundtrip_equal"] = before == after
    res["map_rows"] = len(after)
    res["map_bad_import"] = _op_error(bpy.ops.understudy.map_import, filepath=job["bad_map"])

    # errors: a bad take file, a truncated BVH, no armature selected
    res["bad_take"] = _op_error(bpy.ops.understudy.import_take, filepath=job["bad_npz"])
    res["bad_bvh"] = _op_error(bpy.ops.understudy.import_bvh, filepath=job["bad_bvh"])
    bpy.context.view_layer.objects.active = None
    res["no_armature"] = _op_error(bpy.ops.understudy.import_take, filepath=job["take"])

    # face CSV onto shape keys
    _clear(bpy)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.shape_key_add(name="Basis")
    for n in job["shape_keys"]:
        cube.shape_key_add(name=n)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0
    res["face_error"] = _op_error(bpy.ops.understudy.import_face_csv, filepath=job["csv"], start_frame=1)
    key = cube.data.shape_keys
    fcs = _fcurves(key.animation_data)
    res["face_fcurves"] = sorted(fc.data_path for fc in fcs)
    vals = {}
    for f in job["csv_frames"]:
        scene.frame_set(f)
        vals[str(f)] = {kb.name: kb.value for kb in key.key_blocks[1:]}
    res["face_values"] = vals
    res["face_no_keys"] = None
    cube2 = bpy.data.objects.new("plain", bpy.data.meshes.new("plain"))
    scene.collection.objects.link(cube2)
    cube.select_set(False)
    cube2.select_set(True)
    cube2.shape_key_add(name="Basis")
    cube2.shape_key_add(name="Frobnicate")
    bpy.context.view_layer.objects.active = cube2
    res["face_no_keys"] = _op_error(bpy.ops.understudy.import_face_csv, filepath=job["csv"])
    res["scipy_loaded_end"] = "scipy" in sys.modules
    print("RESULT " + json.dumps(res))


def _fcurves_strip(st):
    act = st.action
    if hasattr(act, "layers") and len(act.layers):
        return [fc for lay in act.layers for s in lay.strips for bag in s.channelbags for fc in bag.fcurves]
    return list(act.fcurves)


if __name__ == "__main__":
    main(sys.argv[1])
