"""Headless FBX export: load a character into an empty Blender scene, write an FBX.

Run by :func:`retarget.fbx.export_fbx` in its own process, either with a Python that
has ``bpy`` (Blender as a module)::

    python -m blender_addon.fbx_worker JOB.json

or with a Blender executable::

    blender --background --factory-startup --python-exit-code 1 \\
        --python blender_addon/fbx_worker.py -- JOB.json

This file imports only the standard library and ``bpy`` (no Understudy module), so any
Blender's own Python can run it by path. ``JOB.json`` (schema ``understudy.fbx_job``,
version 1)::

    {"schema": "understudy.fbx_job", "schema_version": 1,
     "input": "/tmp/.../character.glb",   # .glb/.gltf (meshes, skins, one animation)
                                          # or .bvh (skeleton only), written by us
     "output": "/out/.hero.fbx.tmp",      # the FBX to write (the caller renames it)
     "fps": 30.0,                         # the motion's frame rate
     "frames": 30}                        # the motion's frame count

Passes, in order: empty scene -> scene frame rate -> import (glTF importer, or BVH
importer) -> scene frame range from the imported action -> FBX export with the
animation baked on every frame (no curve simplification, no leaf bones) -> one
``UNDERSTUDY_FBX {json}`` line on stdout: the armature's bone names, the frame range
and the frame rate, which the caller checks against what it asked for.

It cannot lie (STYLE item 10): **any** exception, and an operator that returns anything
but ``FINISHED``, ends the process with exit code 1 and one line
``fbx_worker: error: ...`` as the last line on stderr; a bad command line exits 2.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from pathlib import Path

SCHEMA = "understudy.fbx_job"
SCHEMA_VERSION = 1
RESULT_PREFIX = "UNDERSTUDY_FBX "


class JobError(Exception):
    """The job file asks for something this worker cannot do."""


def read_job(path: str) -> dict:
    """The job dict, checked: schema, version, keys and their types."""
    try:
        job = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise JobError(f"cannot read job file {path}: {e}") from None
    if not isinstance(job, dict) or job.get("schema") != SCHEMA or job.get("schema_version") != SCHEMA_VERSION:
        raise JobError(f"{path}: not a {SCHEMA} version {SCHEMA_VERSION} job file")
    for key, kind in (("input", str), ("output", str), ("fps", (int, float)), ("frames", int)):
        if not isinstance(job.get(key), kind) or isinstance(job.get(key), bool):
            raise JobError(f"{path}: {key!r} is missing or of the wrong type ({job.get(key)!r})")
    if not math.isfinite(job["fps"]) or job["fps"] <= 0 or job["frames"] < 1:
        raise JobError(f"{path}: fps {job['fps']!r} and frames {job['frames']!r} must be positive")
    if Path(job["input"]).suffix.lower() not in (".glb", ".gltf", ".bvh"):
        raise JobError(f"{path}: input must be .glb, .gltf or .bvh, got {job['input']!r}")
    if not Path(job["input"]).is_file():
        raise JobError(f"{path}: input {job['input']} does not exist")
    return job


def _finished(result, what: str) -> None:
    if "FINISHED" not in result:
        raise RuntimeError(f"{what} returned {sorted(result)}")


def set_frame_rate(scene, fps: float) -> None:
    """``scene.render.fps / fps_base`` = ``fps``: a whole rate exactly, 29.97 as 30/1.001."""
    whole = max(1, round(fps))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps


def import_character(bpy, job: dict):
    """Import the job's input into the (empty) scene; returns the armature object."""
    src = job["input"]
    if src.lower().endswith(".bvh"):
        # our BVH files are in metres, +Y up (the importer's default axes)
        _finished(bpy.ops.import_anim.bvh(filepath=src, global_scale=1.0, update_scene_fps=False,
                                          update_scene_duration=False, use_fps_scale=False), "BVH import")
    else:
        # the glTF importer turns keyframe times into frames with the scene's frame rate
        _finished(bpy.ops.import_scene.gltf(filepath=src), "glTF import")
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    if len(arms) != 1:
        raise RuntimeError(f"expected one armature after importing {Path(src).name}, found {len(arms)}")
    arm = arms[0]
    if arm.animation_data is None or arm.animation_data.action is None:
        raise RuntimeError(f"the armature imported from {Path(src).name} has no animation")
    return arm


def frame_range(arm, frames: int) -> tuple[int, int]:
    """The imported action's whole-frame range, checked against the job's frame count."""
    lo, hi = arm.animation_data.action.frame_range
    start, end = round(lo), round(hi)
    if abs(lo - start) > 1e-3 or abs(hi - end) > 1e-3 or end - start + 1 != frames:
        raise RuntimeError(f"the imported animation spans frames {lo:g}..{hi:g}, "
                           f"not {frames} whole frames (frame rate mismatch?)")
    return start, end


def export_fbx(bpy, path: str) -> None:
    """FBX 7.4 binary of the armature and meshes, the scene's frame range baked."""
    _finished(bpy.ops.export_scene.fbx(
        filepath=path,
        check_existing=False,
        object_types={"ARMATURE", "MESH", "EMPTY"},
        add_leaf_bones=False,
        bake_anim=True,
        bake_anim_use_all_bones=True,
        bake_anim_use_nla_strips=False,
        bake_anim_use_all_actions=False,
        bake_anim_force_startend_keying=True,
        bake_anim_step=1.0,
        bake_anim_simplify_factor=0.0,
    ), "FBX export")


def run(job: dict) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    set_frame_rate(scene, float(job["fps"]))
    arm = import_character(bpy, job)
    start, end = frame_range(arm, job["frames"])
    scene.frame_start, scene.frame_end = start, end
    out = Path(job["output"])
    export_fbx(bpy, str(out))
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"the FBX exporter reported success but wrote nothing to {out}")
    return {"bones": [b.name for b in arm.data.bones], "frame_start": start, "frame_end": end,
            "fps": scene.render.fps / scene.render.fps_base, "bytes": out.stat().st_size}


def _argv() -> list[str]:
    """Our arguments: after ``--`` under a Blender executable, else after the script."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def main() -> int:
    args = _argv()
    if len(args) != 1:
        print("fbx_worker: error: usage: python -m blender_addon.fbx_worker JOB.json", file=sys.stderr)
        return 2
    try:
        job = read_job(args[0])
        info = run(job)
    except BaseException as e:  # noqa: BLE001 - the whole point: nothing escapes with exit code 0
        if not isinstance(e, JobError):
            traceback.print_exc(file=sys.stderr)
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"fbx_worker: error: {type(e).__name__}: {msg}", file=sys.stderr, flush=True)
        return 1
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
