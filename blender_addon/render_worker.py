"""Headless render of one chunk of frames: a character, its animation, a matched camera.

Run by :mod:`mocap.render` in a **fresh process per chunk of frames**, either with a
Python that has ``bpy`` (Blender as a module)::

    python blender_addon/render_worker.py JOB.json

or with a Blender executable::

    blender --background --factory-startup --python-exit-code 1 \\
        --python blender_addon/render_worker.py -- JOB.json

Why one process per chunk: one long bpy process rendering Cycles frame after frame was
seen here to slow down about 4x and, after some 90 frames, to draw a skinned character
exploded; a fresh process per chunk renders every frame as it renders it alone.

This file imports only the standard library and ``bpy`` (no Understudy module), so any
Blender's own Python can run it by path. ``JOB.json`` (schema ``understudy.render_job``,
version 1)::

    {"schema": "understudy.render_job", "schema_version": 1,
     "input": "/tmp/.../character.glb",     # the character with its animation (glTF)
     "fps": 30.0, "frames": [0, 1, 2],       # animation frames (0 = its first key) to render
     "output_dir": "/tmp/.../chunk_000",     # frame_000000.png (+ .exr with passes)
     "engine": "cycles", "samples": 8, "resolution": [320, 240],
     "camera": {"matrix_world": [[...4x4...]],   # camera -> world, OUR axes (+Y up);
                "fx": 400.0, "fy": 400.0, "cx": 160.0, "cy": 120.0,   # pixels of the
                "width": 320, "height": 240,     # camera's own image (scaled to resolution)
                "clip_start": 0.05, "clip_end": 200.0},
     "passes": false,                        # also a multilayer EXR (depth, normal, alpha)
     "seed": 0}

The scene: the character (glTF importer: +Y up becomes Blender's +Z up, as
``mocap.glossary.yup_to_blender``), a camera with the job's intrinsics, a key sun from
above the camera, a fill sun, and a grey world for ambient light; the film is
transparent (RGBA out, alpha = the character's coverage). Colour: view transform
``Standard`` so vertex and texture colours come out as authored.

It cannot lie: **any** exception, and an operator that returns anything but
``FINISHED``, ends the process with exit code 1 and one line
``render_worker: error: ...`` as the last line on stderr; a bad command line exits 2.
After each frame one line ``UNDERSTUDY_FRAME {json}`` goes to stdout (the caller's
progress bar); at the end one line ``UNDERSTUDY_RENDER {json}``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

SCHEMA = "understudy.render_job"
SCHEMA_VERSION = 1
FRAME_PREFIX = "UNDERSTUDY_FRAME "
RESULT_PREFIX = "UNDERSTUDY_RENDER "
ENGINES = {"cycles": "CYCLES", "eevee": "BLENDER_EEVEE", "workbench": "BLENDER_WORKBENCH"}
"""Blender's engine identifiers (Eevee is ``BLENDER_EEVEE_NEXT`` in Blender 4.2-4.4)."""


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
    for key, kind in (("input", str), ("output_dir", str), ("fps", (int, float)), ("frames", list),
                      ("engine", str), ("samples", int), ("resolution", list), ("camera", dict),
                      ("passes", bool)):
        if not isinstance(job.get(key), kind):
            raise JobError(f"{path}: {key!r} is missing or of the wrong type ({job.get(key)!r})")
    if job["engine"] not in ENGINES:
        raise JobError(f"{path}: engine must be one of {sorted(ENGINES)}, got {job['engine']!r}")
    if not job["frames"] or not all(isinstance(f, int) and f >= 0 for f in job["frames"]):
        raise JobError(f"{path}: frames must be a non-empty list of frame numbers >= 0")
    if not Path(job["input"]).is_file():
        raise JobError(f"{path}: input {job['input']} does not exist")
    cam = job["camera"]
    for key in ("matrix_world", "fx", "fy", "cx", "cy", "width", "height"):
        if key not in cam:
            raise JobError(f"{path}: camera lacks {key!r}")
    return job


def _finished(result, what: str) -> None:
    if "FINISHED" not in result:
        raise RuntimeError(f"{what} returned {sorted(result)}")


def set_frame_rate(scene, fps: float) -> None:
    whole = max(1, round(fps))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps


def import_character(bpy, src: str):
    """Import the glTF into the empty scene; returns (armature, start frame of its action)."""
    _finished(bpy.ops.import_scene.gltf(filepath=src), "glTF import")
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    if len(arms) != 1:
        raise RuntimeError(f"expected one armature after importing {Path(src).name}, found {len(arms)}")
    arm = arms[0]
    if arm.animation_data is None or arm.animation_data.action is None:
        raise RuntimeError(f"the armature imported from {Path(src).name} has no animation")
    # bone display shapes the importer adds are scene objects too: never render them
    shapes = {pb.custom_shape.name for pb in arm.pose.bones if pb.custom_shape is not None}
    for o in bpy.data.objects:
        if o.name in shapes:
            o.hide_render = True
    return arm, round(arm.animation_data.action.frame_range[0])


def _matmul(A, B):
    return [[sum(A[i][k] * B[k][j] for k in range(4)) for j in range(4)] for i in range(4)]


# our +Y-up world -> Blender's +Z-up world: (x, y, z) -> (x, -z, y), as mocap.glossary.yup_to_blender
_YUP_TO_ZUP = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def add_camera(bpy, scene, cam: dict, resolution: tuple[int, int]):
    """A camera whose local frame is the take's camera frame (+x right, +y up, looking
    down -z, the same in Blender), placed by ``matrix_world`` (our axes), with the
    pinhole intrinsics of the footage (focal length and principal point)."""
    import mathutils

    data = bpy.data.cameras.new("understudy_camera")
    W, H = float(cam["width"]), float(cam["height"])
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = float(cam["fx"]) * 36.0 / W
    # shifts are in units of the larger image side; image +y is down, Blender's shift_y up
    side = max(W, H)
    data.shift_x = (W / 2.0 - float(cam["cx"])) / side
    data.shift_y = (float(cam["cy"]) - H / 2.0) / side
    data.clip_start = float(cam.get("clip_start", 0.05))
    data.clip_end = float(cam.get("clip_end", 200.0))
    obj = bpy.data.objects.new("understudy_camera", data)
    scene.collection.objects.link(obj)
    obj.matrix_world = mathutils.Matrix(_matmul(_YUP_TO_ZUP, cam["matrix_world"]))
    scene.camera = obj
    w, h = resolution
    scene.render.resolution_x, scene.render.resolution_y = int(w), int(h)
    scene.render.resolution_percentage = 100
    fy_ratio = float(cam["fy"]) / float(cam["fx"])  # non-square pixels
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, 1.0
    if abs(fy_ratio - 1.0) > 1e-3:
        scene.render.pixel_aspect_x = fy_ratio
    return obj


def add_lights(bpy, scene, camera) -> None:
    """Key sun from above the camera's left shoulder, a weaker fill, grey ambient world."""
    import mathutils

    cam_rot = camera.matrix_world.to_quaternion()
    for name, energy, euler in (("key", 3.0, (math.radians(-40), math.radians(-30), 0.0)),
                                ("fill", 1.0, (math.radians(-10), math.radians(50), 0.0))):
        data = bpy.data.lights.new(f"understudy_{name}", "SUN")
        data.energy = energy
        data.angle = math.radians(10)
        obj = bpy.data.objects.new(f"understudy_{name}", data)
        scene.collection.objects.link(obj)
        obj.rotation_mode = "QUATERNION"
        obj.rotation_quaternion = cam_rot @ mathutils.Euler(euler, "XYZ").to_quaternion()
    world = bpy.data.worlds.new("understudy_world")
    world.use_nodes = True
    bg = world.node_tree.nodes.get("Background")
    bg.inputs[0].default_value = (0.35, 0.35, 0.37, 1.0)
    bg.inputs[1].default_value = 1.0
    scene.world = world


def configure(bpy, scene, job: dict) -> None:
    r = scene.render
    engine = ENGINES[job["engine"]]
    known = r.bl_rna.properties["engine"].enum_items.keys()
    if engine not in known and engine + "_NEXT" in known:
        engine += "_NEXT"
    r.engine = engine
    r.film_transparent = True
    r.use_persistent_data = False
    r.threads_mode = "FIXED"
    r.threads = max(1, int(job.get("threads") or os.cpu_count() or 1))
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    if job["engine"] == "cycles":
        c = scene.cycles
        c.device = "CPU"
        c.samples = int(job["samples"])
        c.use_adaptive_sampling = False
        c.use_denoising = False
        c.seed = int(job.get("seed", 0))
        c.max_bounces = 3
        c.diffuse_bounces = 2
        c.glossy_bounces = 1
        c.transmission_bounces = 0
        c.volume_bounces = 0
        c.transparent_max_bounces = 4
        c.pixel_filter_type = "BLACKMAN_HARRIS"
    elif job["engine"] == "eevee":
        scene.eevee.taa_render_samples = int(job["samples"])
    else:
        s = scene.display.shading
        s.light = "STUDIO"
        s.color_type = "ATTRIBUTE" if job.get("workbench_colour") == "attribute" else "MATERIAL"
        scene.display.render_aa = "8"
    layer = scene.view_layers[0]
    if job["passes"]:
        layer.use_pass_z = True
        layer.use_pass_normal = True


def render_frames(bpy, scene, job: dict, start: int) -> list[dict]:
    out = Path(job["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for f in job["frames"]:
        t0 = time.perf_counter()
        scene.frame_set(start + int(f))
        png = out / f"frame_{f:06d}.png"
        if hasattr(scene.render.image_settings, "media_type"):
            scene.render.image_settings.media_type = "IMAGE"
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGBA"
        scene.render.image_settings.color_depth = "8"
        scene.render.filepath = str(png)
        _finished(bpy.ops.render.render(write_still=True), f"render of frame {f}")
        if not png.is_file():
            raise RuntimeError(f"Blender reported frame {f} rendered but wrote no {png.name}")
        rec = {"frame": f, "png": str(png), "seconds": round(time.perf_counter() - t0, 3)}
        if job["passes"]:
            exr = out / f"frame_{f:06d}.exr"
            settings = scene.render.image_settings
            if hasattr(settings, "media_type"):  # Blender 5.0: multilayer is a media type
                settings.media_type = "MULTI_LAYER_IMAGE"
            settings.file_format = "OPEN_EXR_MULTILAYER"
            settings.color_depth = "32"
            settings.exr_codec = "NONE"
            bpy.data.images["Render Result"].save_render(str(exr), scene=scene)
            if not exr.is_file():
                raise RuntimeError(f"Blender wrote no passes file {exr.name} for frame {f}")
            rec["exr"] = str(exr)
        done.append(rec)
        print(FRAME_PREFIX + json.dumps(rec), flush=True)
    return done


def run(job: dict) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    set_frame_rate(scene, float(job["fps"]))
    arm, start = import_character(bpy, job["input"])
    w, h = job["resolution"]
    camera = add_camera(bpy, scene, job["camera"], (w, h))
    add_lights(bpy, scene, camera)
    configure(bpy, scene, job)
    lo, hi = arm.animation_data.action.frame_range
    scene.frame_start, scene.frame_end = round(lo), round(hi)
    last = max(job["frames"])
    if start + last > round(hi):
        raise RuntimeError(f"frame {last} asked for, the animation has {round(hi) - start + 1} frames")
    frames = render_frames(bpy, scene, job, start)
    return {"frames": len(frames), "engine": scene.render.engine, "blender": bpy.app.version_string,
            "resolution": [scene.render.resolution_x, scene.render.resolution_y]}


def _argv() -> list[str]:
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def main() -> int:
    args = _argv()
    if len(args) != 1:
        print("render_worker: error: usage: python blender_addon/render_worker.py JOB.json", file=sys.stderr)
        return 2
    try:
        job = read_job(args[0])
        info = run(job)
    except BaseException as e:  # noqa: BLE001 - nothing escapes with exit code 0
        if not isinstance(e, JobError):
            traceback.print_exc(file=sys.stderr)
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"render_worker: error: {type(e).__name__}: {msg}", file=sys.stderr, flush=True)
        return 1
    print(RESULT_PREFIX + json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
