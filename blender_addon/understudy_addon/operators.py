"""The add-on's operators. Each ``execute`` runs its work through :func:`_run`, which turns
an :class:`~.core.errors.UnderstudyError` into ``self.report({'ERROR'}, message)`` and
``{'CANCELLED'}``; an unexpected exception (a bug) is reported the same way with its type,
and its traceback goes to the system console, never to the user as a bare traceback."""

from __future__ import annotations

import math
import traceback
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import props
from .bake import ActionWriter
from .core import bonemaps, facemaps, formats
from .core.errors import RigError, UnderstudyError, UsageError
from .core.retarget import retarget
from .rig import pose_channels, read_target


def _run(op, fn) -> set[str]:
    try:
        msg = fn()
    except UnderstudyError as e:
        op.report({"ERROR"}, str(e))
        return {"CANCELLED"}
    except Exception as e:  # a bug: report it, keep the traceback for the console
        traceback.print_exc()
        op.report({"ERROR"}, f"Understudy internal error ({type(e).__name__}: {e}); details in the system console")
        return {"CANCELLED"}
    for level, text in msg if isinstance(msg, list) else [("INFO", msg)]:
        op.report({level}, text)
    return {"FINISHED"}


def active_armature(context):
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        found = "nothing" if obj is None else f"{obj.name!r} ({obj.type.lower()})"
        raise UsageError(f"select an armature (the character's rig) first; the active object is {found}")
    return obj


def rig_map(arm) -> tuple[bonemaps.BoneMap, dict[str, str], bool]:
    """The armature's bone map (the stored one, else the detected profile, which is then
    stored), what it resolves to, and whether it was detected now."""
    names = [b.name for b in arm.data.bones]
    m = props.map_from_armature(arm.data)
    detected = m is None
    if detected:
        m, _ = bonemaps.detect_profile(names)
    found = m.resolve(names)
    missing = [b for b in bonemaps.CORE_BONES if b not in found]
    if missing:
        raise RigError(f"bone map {m.name!r} of {arm.name!r} lacks core bone(s) {', '.join(missing)}; "
                       "set them in the Understudy panel (Bone map)")
    if detected:
        props.store_map(arm.data, m, found)
    return m, found, detected


def _scene_frames(scene, timestamps: np.ndarray, fps: float, start: int, set_fps: bool) -> np.ndarray:
    if set_fps:
        r = max(1, round(fps))
        scene.render.fps = r
        scene.render.fps_base = r / fps
    scene_fps = scene.render.fps / scene.render.fps_base
    f = start + (timestamps - timestamps[0]) * scene_fps
    near = np.abs(f - np.round(f)) < 1e-4
    return np.where(near, np.round(f), f)


def apply_motion(context, arm, motion: formats.Motion, source_map: bonemaps.BoneMap | None, take: str,
                 start: int, set_fps: bool, set_range: bool, use_pose: bool = False) -> list[tuple[str, str]]:
    """Retarget ``motion`` onto ``arm``, bake one action with bulk keys and put it on a
    new NLA track ``take``. Returns report lines."""
    target, bones = read_target(arm, use_pose)
    tmap, tfound, detected = rig_map(arm)
    if source_map is None:
        source_map, _ = bonemaps.detect_profile(motion.names)
    sfound = source_map.resolve(motion.names)
    miss = [b for b in bonemaps.CORE_BONES if b not in sfound]
    if miss:
        raise RigError(f"the source motion lacks core bone(s) {', '.join(miss)} of bone map {source_map.name!r}")
    res = retarget(motion, sfound, target, tfound)
    for j in [res.hips_index, *res.placed]:
        if bones[j].use_connect:
            raise RigError(f"bone {bones[j].name!r} is connected to its parent and cannot move; disconnect it in "
                           "Edit Mode")
    basis, locs = pose_channels(arm, bones, res.globals, res.hips, res.hips_index, use_pose, res.placed)
    scene = context.scene
    frames = _scene_frames(scene, motion.timestamps, motion.fps, start, set_fps)
    w = ActionWriter(take, "OBJECT", arm.name)
    n = 0
    for j, b in enumerate(bones):
        arm.pose.bones[b.name].rotation_mode = "QUATERNION"
        path = f'pose.bones["{bpy.utils.escape_identifier(b.name)}"]'
        n += w.keys(f"{path}.rotation_quaternion", frames, basis[:, j], group=b.name)
    for j, loc in locs.items():
        name = bones[j].name
        n += w.keys(f'pose.bones["{bpy.utils.escape_identifier(name)}"].location', frames, loc, group=name)
    lines = []
    ad = arm.animation_data
    if ad is not None and ad.action is not None:
        lines.append(("WARNING", f"the rig's active action {ad.action.name!r} was unassigned (it stays in the file) "
                                 "so the take's NLA strip plays"))
        ad.action = None
    w.push_to_nla(arm, take, start)
    if set_range:
        scene.frame_start = int(start)
        scene.frame_end = int(math.ceil(frames[-1]))
    lines[:0] = [("INFO", f"{take}: {motion.n_frames} frames at {motion.fps:g} fps onto {arm.name!r} "
                      f"({len(res.pairs)} bones matched; source map {source_map.name!r}, rig map {tmap.name!r}"
                      + (" detected" if detected else "") + f"), {n} keys, NLA track {take!r}")]
    return lines + [("INFO", s) for s in res.notes]


class _ImportOptions:
    start_frame: bpy.props.IntProperty(name="Start frame", default=1, description="Scene frame of the first sample")
    set_scene_fps: bpy.props.BoolProperty(name="Set scene frame rate", default=True,
                                          description="Set the scene's frame rate to the file's (keys on whole frames)")
    set_frame_range: bpy.props.BoolProperty(name="Set frame range", default=True,
                                            description="Set the scene's start/end frames to the imported range")
    use_current_pose: bpy.props.BoolProperty(
        name="Current pose as rest", default=False,
        description="Align to the pose the rig is in now instead of its rest pose (for glTF imports whose node "
                    "pose differs from the bind pose, e.g. RobotExpressive)")


class UNDERSTUDY_OT_import_take(bpy.types.Operator, ImportHelper, _ImportOptions):  # noqa: N801 (Blender naming convention)
    """Import a solved Understudy take (TAKE/motion.npz) onto the selected armature"""

    bl_idname = "understudy.import_take"
    bl_label = "Import Take"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.npz", options={"HIDDEN"})

    def execute(self, context):
        def work():
            arm = active_armature(context)
            p = Path(self.filepath)
            motion = formats.load_motion_npz(p)
            name = p.name if p.is_dir() else (p.parent.name if p.name == "motion.npz" else p.stem)
            return apply_motion(context, arm, motion, None, name, self.start_frame, self.set_scene_fps,
                                self.set_frame_range, self.use_current_pose)
        return _run(self, work)


class UNDERSTUDY_OT_import_bvh(bpy.types.Operator, ImportHelper, _ImportOptions):  # noqa: N801 (Blender naming convention)
    """Retarget a BVH file onto the selected armature"""

    bl_idname = "understudy.import_bvh"
    bl_label = "Import BVH"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".bvh"
    filter_glob: bpy.props.StringProperty(default="*.bvh", options={"HIDDEN"})
    scale: bpy.props.FloatProperty(name="Scale (m per unit)", default=0.0, min=0.0,
                                   description="Metres per BVH unit; 0 guesses from the figure's size")

    def execute(self, context):
        def work():
            arm = active_armature(context)
            motion = formats.load_bvh(self.filepath, scale=self.scale or None)
            return apply_motion(context, arm, motion, None, Path(self.filepath).stem, self.start_frame,
                                self.set_scene_fps, self.set_frame_range, self.use_current_pose)
        return _run(self, work)


def face_targets(context, arm):
    """Shape-key datablocks to drive: the selected meshes', else the meshes bound to
    ``arm`` (parented to it or deformed by it)."""
    meshes = [o for o in context.selected_objects if o.type == "MESH"]
    if not meshes and arm is not None:
        meshes = [o for o in context.scene.objects if o.type == "MESH" and (
            o.parent == arm or any(m.type == "ARMATURE" and m.object == arm for m in o.modifiers))]
    return [o for o in meshes if o.data.shape_keys is not None]


class UNDERSTUDY_OT_import_face_csv(bpy.types.Operator, ImportHelper):  # noqa: N801 (Blender naming convention)
    """Key ARKit-named shape keys from a Live Link Face CSV (selected meshes, or the meshes of the selected armature)"""

    bl_idname = "understudy.import_face_csv"
    bl_label = "Import Face CSV"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})
    csv_fps: bpy.props.FloatProperty(name="CSV frame rate", default=60.0, min=1.0,
                                     description="Frame rate of the timecodes' frame field (Live Link Face: 60)")
    start_frame: bpy.props.IntProperty(name="Start frame", default=1)
    face_map: bpy.props.StringProperty(name="Face map", default="", subtype="FILE_PATH",
                                       description="Optional understudy.facemap TOML (shape key = {arkitName = "
                                                   "weight}); takes precedence over names and shipped aliases")

    def execute(self, context):
        def work():
            obj = context.active_object
            arm = obj if obj is not None and obj.type == "ARMATURE" else None
            face = formats.read_live_link_csv(self.filepath, fps=self.csv_fps)
            meshes = face_targets(context, arm)
            if not meshes:
                raise UsageError("select the face mesh (one with shape keys) or its armature first")
            scene = context.scene
            fps = scene.render.fps / scene.render.fps_base
            frames = self.start_frame + face.timestamps * fps
            take = Path(self.filepath).stem
            lines, total = [], 0
            for o in meshes:
                key = o.data.shape_keys
                mapping, notes = facemaps.map_shapes([kb.name for kb in key.key_blocks[1:]],
                                                     self.face_map or None)
                curves = {}
                for kb_name, mix in mapping.items():
                    wts = facemaps.weights(face.values, face.names, mix)
                    if wts is not None:
                        curves[kb_name] = wts
                if not curves:
                    continue
                w = ActionWriter(take, "KEY", key.name)
                for kb_name, wts in curves.items():
                    total += w.keys(f'key_blocks["{bpy.utils.escape_identifier(kb_name)}"].value', frames, wts)
                w.push_to_nla(key, take, self.start_frame)
                lines.append(("INFO", f"{take}: {len(curves)} shape keys of {o.name!r} keyed over "
                                      f"{len(frames)} frames ({'; '.join(notes)})"))
            if not lines:
                raise UsageError(f"no shape key on {', '.join(o.name for o in meshes)} is named like an ARKit "
                                 "blendshape (eyeBlinkLeft, jawOpen, ...; eyeBlink_L works) or a shipped alias "
                                 "(VRM blink, aa, angry, ...; Character Creator) with curves in this CSV")
            return lines + [("WARNING", n) for n in face.notes]
        return _run(self, work)


class UNDERSTUDY_OT_map_detect(bpy.types.Operator):  # noqa: N801 (Blender naming convention)
    """Fill the armature's bone map from the shipped profile that fits it best"""

    bl_idname = "understudy.map_detect"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def work():
            arm = active_armature(context)
            names = [b.name for b in arm.data.bones]
            m, n = bonemaps.detect_profile(names)
            props.store_map(arm.data, m, m.resolve(names))
            return f"bone map {m.name!r}: {n} bones of {arm.name!r} matched"
        return _run(self, work)


class UNDERSTUDY_OT_map_clear(bpy.types.Operator):  # noqa: N801 (Blender naming convention)
    """Forget the armature's bone map (the next import detects one again)"""

    bl_idname = "understudy.map_clear"
    bl_label = "Clear Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def work():
            arm = active_armature(context)
            arm.data.understudy_map.clear()
            arm.data.understudy_map_name = ""
            return f"bone map of {arm.name!r} cleared"
        return _run(self, work)


class UNDERSTUDY_OT_map_export(bpy.types.Operator, ExportHelper):  # noqa: N801 (Blender naming convention)
    """Write the armature's bone map as a TOML file (usable with `understudy retarget --map`)"""

    bl_idname = "understudy.map_export"
    bl_label = "Export Bone Map"
    filename_ext = ".toml"
    filter_glob: bpy.props.StringProperty(default="*.toml", options={"HIDDEN"})

    def execute(self, context):
        def work():
            arm = active_armature(context)
            m, _, _ = rig_map(arm)
            p = bonemaps.save_bonemap(m, self.filepath)
            return f"bone map {m.name!r} ({len(m.bones)} bones) written to {p}"
        return _run(self, work)


class UNDERSTUDY_OT_map_import(bpy.types.Operator, ImportHelper):  # noqa: N801 (Blender naming convention)
    """Read a bone-map TOML file into the armature's bone map"""

    bl_idname = "understudy.map_import"
    bl_label = "Import Bone Map"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".toml"
    filter_glob: bpy.props.StringProperty(default="*.toml", options={"HIDDEN"})

    def execute(self, context):
        def work():
            arm = active_armature(context)
            m = bonemaps.load_bonemap(self.filepath)
            names = [b.name for b in arm.data.bones]
            found = m.resolve(names)
            miss = [b for b in bonemaps.CORE_BONES if b not in found]
            if miss:
                wanted = ", ".join(f"{b} ({m.bones.get(b, 'not in the map')!r})" for b in miss)
                raise RigError(f"{Path(self.filepath).name}: {arm.name!r} has no bone for core bone(s) {wanted}")
            props.store_map(arm.data, m, found)
            return f"bone map {m.name!r}: {len(found)} bones of {arm.name!r} matched"
        return _run(self, work)


CLASSES = (UNDERSTUDY_OT_import_take, UNDERSTUDY_OT_import_bvh, UNDERSTUDY_OT_import_face_csv,
           UNDERSTUDY_OT_map_detect, UNDERSTUDY_OT_map_clear, UNDERSTUDY_OT_map_export, UNDERSTUDY_OT_map_import)


def register():
    for c in CLASSES:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
