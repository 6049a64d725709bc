"""Importing a 10-minute take into Blender: the add-on's bulk keys vs ``keyframe_insert``.

A 10-minute take (18,000 frames at 30 fps) on a 60-bone armature (the canonical 52-joint
skeleton plus 8 twist leaves) is imported three ways in one bpy 5.0.1 process:

1. the whole add-on operator (``understudy.import_take``: read motion.npz, bone map,
   retarget, bake with ``keyframe_points.add`` + ``foreach_set``, NLA strip), installed
   from the built zip as a user would;
2. the bake alone: the same channels written with the add-on's ActionWriter;
3. the naive way (what BlendArMocap-style add-ons do): per frame, set each pose bone's
   ``rotation_quaternion`` and call ``keyframe_insert``. It is timed on the first
   ``--naive-frames`` frames (default 600) and extrapolated linearly to 18,000. Each
   insert searches a longer curve as it grows, so the linear extrapolation is a lower
   bound on the naive time and the speed-up printed is conservative.

Target: the operator >= 20x faster than the naive keying and <= 10 s.

    .venv/bin/python benchmarks/blender_import.py [--frames 18000] [--naive-frames 600]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def smooth_motion(T: int, seed: int = 0):
    """The canonical skeleton swinging every joint by up to ~40 deg, smoothly, for ``T``
    frames at 30 fps, walking forward at 1.2 m/s."""
    from mocap.glossary import A2Q
    from mocap.motion import Motion
    from mocap.skeleton import canonical_skeleton

    sk = canonical_skeleton()
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 30.0
    f = rng.uniform(0.2, 1.5, size=(len(sk.names), 3))
    ph = rng.uniform(0, 2 * np.pi, size=(len(sk.names), 3))
    A = 0.35 * np.sin(2 * np.pi * f[None] * t[:, None, None] + ph[None])
    root = np.stack([np.zeros(T), np.full(T, 0.93), 1.2 * t], axis=1)
    return Motion(skeleton=sk, rotations=A2Q(A), root_positions=root, fps=30.0)


def build_armature(bpy, skeleton, extra: int = 8):
    """An armature of ``skeleton``'s joints (bone heads at the rest joints, Blender Z-up)
    plus ``extra`` twist leaves; returns the object."""
    from mocap.glossary import yup_to_blender

    P = yup_to_blender(skeleton.rest_positions())
    data = bpy.data.armatures.new("bench")
    obj = bpy.data.objects.new("bench", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    eb = {}
    kids = {i: [j for j, p in enumerate(skeleton.parents) if p == i] for i in range(len(skeleton.names))}
    for j, name in enumerate(skeleton.names):
        b = data.edit_bones.new(name)
        b.head = P[j]
        tail = P[kids[j][0]] if kids[j] else P[j] + (P[j] - P[skeleton.parents[j]]) * 0.5
        if np.linalg.norm(tail - P[j]) < 1e-3:
            tail = P[j] + np.array([0, 0, 0.05])
        b.tail = tail
        if skeleton.parents[j] >= 0:
            b.parent = eb[skeleton.names[skeleton.parents[j]]]
        eb[name] = b
    for name in ["leftUpperArm", "leftLowerArm", "rightUpperArm", "rightLowerArm",
                 "leftUpperLeg", "leftLowerLeg", "rightUpperLeg", "rightLowerLeg"][:extra]:
        b = data.edit_bones.new(f"{name}_twist")
        b.head, b.tail, b.parent = eb[name].head, eb[name].tail, eb[name]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=18000, help="take length in frames at 30 fps (default 18000)")
    ap.add_argument("--naive-frames", type=int, default=600,
                    help="frames keyed with keyframe_insert, extrapolated to --frames (default 600)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="understudy_bench_"))
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(tmp / "blender_user"))  # leave the user's config alone
    import bpy

    from blender_addon.build import build_addon
    from mocap.motion_io import save_motion

    bpy.ops.wm.read_factory_settings(use_empty=True)
    zip_path, _ = build_addon(tmp / "understudy_addon.zip")
    repo = bpy.context.preferences.extensions.repos.new(name="bench", module="bench", custom_directory=str(tmp / "repo"),
                                                       source="USER")
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=repo.module, enable_on_install=True)
    from bl_ext.bench.understudy.bake import ActionWriter

    motion = smooth_motion(args.frames)
    npz = save_motion(motion, tmp / "take" / "motion.npz")
    arm = build_armature(bpy, motion.skeleton)
    J = len(arm.data.bones)
    print(f"take: {args.frames} frames ({args.frames / 30 / 60:.1f} min at 30 fps), armature: {J} bones")

    # 1. the operator, end to end
    arm.select_set(True)
    t0 = time.perf_counter()
    r = bpy.ops.understudy.import_take(filepath=str(npz), start_frame=1)
    t_op = time.perf_counter() - t0
    assert r == {"FINISHED"}, r
    track = arm.animation_data.nla_tracks[-1]
    strip = track.strips[0]
    print(f"add-on operator (read, map, retarget, bulk bake, NLA): {t_op:.2f} s; strip {strip.frame_start:.0f}-"
          f"{strip.frame_end:.0f}")

    # 2. the bake alone with the add-on's writer, the same channels
    Q = np.tile(np.array([1.0, 0, 0, 0]), (args.frames, 1))
    frames = np.arange(1, args.frames + 1, dtype=float)
    t0 = time.perf_counter()
    w = ActionWriter("bulk", "OBJECT", arm.name)
    n_keys = 0
    for b in arm.data.bones:
        n_keys += w.keys(f'pose.bones["{b.name}"].rotation_quaternion', frames, Q, group=b.name)
    n_keys += w.keys('pose.bones["hips"].location', frames, np.zeros((args.frames, 3)), group="hips")
    t_bulk = time.perf_counter() - t0
    print(f"bulk keys (keyframe_points.add + foreach_set): {n_keys:,} keys in {t_bulk:.2f} s "
          f"({n_keys / t_bulk / 1e6:.1f} M keys/s)")

    # 3. naive: keyframe_insert per bone per frame, on a subset, extrapolated
    ad = arm.animation_data
    ad.action = None
    for tr in list(ad.nla_tracks):
        ad.nla_tracks.remove(tr)
    pbs = list(arm.pose.bones)
    for pb in pbs:
        pb.rotation_mode = "QUATERNION"
    n = min(args.naive_frames, args.frames)
    t0 = time.perf_counter()
    for f in range(n):
        for pb in pbs:
            pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
        pbs[0].location = (0.0, 0.0, 0.0)
        pbs[0].keyframe_insert("location", frame=f + 1)
    t_sub = time.perf_counter() - t0
    t_naive = t_sub * args.frames / n
    extrap = n < args.frames
    print(f"keyframe_insert per bone per frame: {n} frames in {t_sub:.2f} s"
          + (f" -> {t_naive:.1f} s for {args.frames} frames (extrapolated linearly: a lower bound)" if extrap
             else ""))
    verdict = ("met" if t_naive / t_op >= 20 and t_op <= 10 else "NOT met") if args.frames >= 18000 else \
        "applies to the 18,000-frame take"
    print(f"speed-up, operator vs keyframe_insert: {t_naive / t_op:.0f}x"
          f" (bake alone: {t_naive / t_bulk:.0f}x); target >= 20x and <= 10 s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
