"""``understudy character``: synthetic actors (``new``, ``presets``), their deformation
check (``check``) and auto-rigging of unrigged meshes (``rig``). The engines are
:mod:`retarget.character` and :mod:`retarget.autorig`; see docs/characters.md."""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "cmd_new", "cmd_presets", "cmd_check", "cmd_rig", "parse_proportions"]


def parse_proportions(text: str | None) -> dict[str, float] | None:
    """``"legs=1.05,arms=0.97"`` -> ``{"legs": 1.05, "arms": 0.97}``; raises
    :class:`~mocap.errors.UsageError` quoting a malformed item."""
    from ..errors import UsageError

    if not text:
        return None
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--proportions: expected KEY=NUMBER items separated by commas, got {item!r}") from None
    return out


def cmd_new(args) -> int:
    from retarget.character import generate_character, save_character

    model = generate_character(preset=args.preset, height_m=args.height, build=args.build, figure=args.figure,
                               proportions=parse_proportions(args.proportions), stylize=args.stylize,
                               seed=args.seed, skin=args.skin, hair_style=args.hair, sleeves=args.sleeves)
    path = save_character(model, args.out)
    i = model.info
    print(f"{path}: {i['name']} {model.height_m:.3f} m, {i['build']}, {i['figure']}, seed {i['seed']}; "
          f"{i['vertices']} vertices, {len(model.skeleton)} joints, {len(model.shape_names)} face shape keys; "
          f"{path.stat().st_size / 1e6:.1f} MB")
    for note in i.get("notes", []):
        print(f"note: {note}")
    return 0


def cmd_presets(args) -> int:
    from retarget.character import PRESETS

    print(f"{'name':6s} {'height':>7s}  {'build':9s} {'figure':10s} {'hair':5s} {'sleeves':7s} seed")
    for name, p in sorted(PRESETS.items()):
        print(f"{name:6s} {p['height_m']:6.2f}m  {p['build']:9s} {p['figure']:10s} {p['hair_style']:5s} "
              f"{p['sleeves']:7s} {p['seed']}")
    print("use: understudy character new --preset NAME -o actor.glb (other options override the preset)")
    return 0


def _figure(v: float, tol: float | None, fmt: str = "{:.3f}", bad_if_below: bool = False) -> str:
    if tol is None:
        return fmt.format(v)
    bad = (-v > tol) if bad_if_below else (v > tol)
    return f"{fmt.format(v)} (tolerance {fmt.format(tol)}){'  FAIL' if bad else ''}"


def cmd_check(args) -> int:
    from retarget.character import character_check

    r = character_check(args.character, motions=args.motion or (), frame_step=args.frame_step,
                        height_m=args.height)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0 if r["passed"] else 1
    t = r["tolerances"]
    print(f"{r['path']}: {r['vertices']} vertices, {r['triangles']} triangles, {r['joints']} joints "
          f"(bone map {r['bonemap']}), {r['shape_keys']} shape keys")
    print(f"  closed surface: {'yes' if r['watertight'] else 'NO'} {r['edges']}; height {r['height_m']:.3f} m; "
          f"rest volume {1000 * r['rest_volume_m3']:.1f} l")
    print(f"  influences per vertex <= {r['max_influences']}; weight sums within {r['weight_sum_error']:.1e} of 1")
    for name, m in r["motions"].items():
        print(f"  {name} ({m['frames']} frames, every {m['frame_step']}th):")
        print(f"    farthest vertex from the hips / body size: {_figure(m['max_offset_ratio'], t['max_offset_ratio'])}"
              "  (exploding vertices)")
        print(f"    largest edge stretch: {_figure(m['max_edge_stretch'], t['max_edge_stretch'], '{:.2f}x')}")
        print(f"    mesh volume change: {_figure(m['volume_change'], t['volume_change'], '{:.3f}')}")
        for h in ("left_elbow", "right_elbow", "left_knee", "right_knee"):
            v = m[h]["volume_change"]
            print(f"    {h}: volume change {v:+.3f} at {m[h]['max_flexion_deg']:.0f} deg flexion "
                  f"(tolerance -{t['joint_volume_loss']:.2f}){'  FAIL' if -v > t['joint_volume_loss'] else ''}")
        print(f"    forearm inside torso (median frame): "
              f"{_figure(m['arm_in_torso_share'], t['arm_in_torso_share'])}; worst frame "
              f"{m['arm_in_torso_share_max']:.3f}, frames with any {m['arm_in_torso_frames']:.2f}")
    if r["passed"]:
        print("passed: every figure within its tolerance")
        return 0
    for f in r["failures"]:
        print(f"FAIL: {f}")
    return 1


def cmd_rig(args) -> int:
    from retarget.autorig import autorig_file

    res = autorig_file(args.mesh, args.out, max_vertices=args.max_vertices)
    o, m = res.info["orientation"], res.info["measurements"]
    print(f"{args.out}: {res.info['vertices']} vertices, {len(res.skeleton)} joints, height {m['height']:.3f} "
          f"(input units); input up {_axis(o['up'])}, facing {_axis(o['forward'])} (from the {o['facing_cue']}); "
          f"arms {m['arm_elevation_deg']['left']:.0f}/{m['arm_elevation_deg']['right']:.0f} deg below horizontal; "
          f"{res.info['seconds']:.1f} s")
    print("  written in the house frame: +Y up, facing +Z; fingers approximated from the hand's extent")
    if res.info["pulled_inside"]:
        print(f"  joints moved inside the surface: {', '.join(res.info['pulled_inside'])}")
    if args.verify:
        from retarget.autorig import pose_check

        v = pose_check(res)
        if not v["found"]:
            print("  verify: MediaPipe Pose found no person in the front render (a stylised or untextured mesh "
                  "can do that); the rig is written anyway")
        else:
            worst = max(v["errors"], key=v["errors"].get)
            print(f"  verify: MediaPipe Pose agrees with the joints within {100 * v['mean']:.1f} % of the height "
                  f"on average (worst {worst}: {100 * v['errors'][worst]:.1f} %)")
    return 0


def _axis(v) -> str:
    """A unit vector as its nearest signed axis name, e.g. ``+Z`` (or the rounded vector)."""
    import numpy as np

    v = np.asarray(v, dtype=float)
    i = int(np.argmax(np.abs(v)))
    if abs(v[i]) > 0.97:
        return ("+" if v[i] > 0 else "-") + "XYZ"[i]
    return "(" + ", ".join(f"{x:.2f}" for x in v) + ")"


def register(sub) -> None:
    p = sub.add_parser("character", help="synthetic actors: generate, list presets, check deformation, auto-rig",
                       description="Rigged synthetic actors made from a few numbers, a deformation check, and "
                                   "auto-rigging of unrigged humanoid meshes. See docs/characters.md.")
    csub = p.add_subparsers(dest="character_command", required=True, metavar="COMMAND")

    q = csub.add_parser("new", help="generate a rigged, face-capable character (.glb)",
                        description="A parametric humanoid: closed skin mesh with clothing colours, the canonical "
                                    "52-joint skeleton with fingers, smooth skin weights, the 52 ARKit face shape "
                                    "keys. Deterministic per seed; explicit options override the preset's.",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--preset", metavar="NAME", help="a preset (see `understudy character presets`)")
    q.add_argument("--height", type=float, metavar="M", help="sole to hair top in metres (default 1.75)")
    q.add_argument("--build", choices=("slim", "average", "athletic", "heavy"), help="girth of body and limbs")
    q.add_argument("--figure", choices=("neutral", "masculine", "feminine"),
                   help="shoulder and hip width, bust, jaw and brows")
    q.add_argument("--proportions", metavar="K=V,...",
                   help="segment-length multipliers 0.5-1.6, keys legs, arms, torso, neck, head, hands, feet, "
                        "shoulders, hip_width; e.g. legs=1.05,arms=0.97")
    q.add_argument("--stylize", type=float, metavar="0..1", help="bigger head, eyes and hands, shorter legs")
    q.add_argument("--seed", type=int, metavar="N", help="varies proportions (2 %%), girths, colours, hair")
    q.add_argument("--skin", type=float, metavar="0..1", help="skin tone from light (0) to deep (1)")
    q.add_argument("--hair", choices=("cap", "crop", "bun", "auto"), help="hair style (auto: from the seed)")
    q.add_argument("--sleeves", choices=("short", "long", "auto"), help="shirt sleeves (auto: from the seed)")
    q.add_argument("-o", "--out", required=True, metavar="ACTOR.glb", help="output file (.glb)")
    q.set_defaults(func=cmd_new)

    q = csub.add_parser("presets", help="list the preset characters")
    q.set_defaults(func=cmd_presets)

    q = csub.add_parser("check", help="deformation figures of a character posed by motion capture",
                        description="Static checks (closed surface, height, joints, weights) and, per --motion, "
                                    "the character posed through the motion (linear blend skinning): farthest "
                                    "vertex (exploding vertices), edge stretch, volume change of the mesh and at "
                                    "the elbows and knees at their largest flexion, forearm inside the torso. "
                                    "Exits 1 when a figure is outside its tolerance (listed with each figure).")
    q.add_argument("character", metavar="ACTOR.glb", help="a character with the canonical joint names "
                                                           "(from `character new` or `character rig`)")
    q.add_argument("--motion", action="append", metavar="BVH",
                   help="a motion to pose it through (repeatable), e.g. a CMU BVH")
    q.add_argument("--frame-step", type=int, default=4, metavar="N", help="use every Nth frame (default 4)")
    q.add_argument("--height", type=float, metavar="M", help="expected height in metres (checked to 1 cm)")
    q.add_argument("--json", action="store_true", help="print the whole report as JSON")
    q.set_defaults(func=cmd_check)

    q = csub.add_parser("rig", help="auto-rig an unrigged humanoid mesh (GLB, glTF, OBJ, PLY) -> rigged .glb",
                        description="Finds the up axis, facing and left/right of a standing humanoid mesh (T- to "
                                    "A-pose, any axes and unit), places the canonical 52 joints by cross-sections "
                                    "(fingers approximated from the hand's extent), computes smooth skin weights "
                                    "and writes a rigged GLB in the house frame (+Y up, facing +Z). Fails with a "
                                    "clear message for a mesh that is not a standing humanoid, is flat, or is "
                                    "too large.")
    q.add_argument("mesh", metavar="MESH", help="the unrigged mesh: .glb, .gltf, .obj or .ply")
    q.add_argument("-o", "--out", required=True, metavar="RIGGED.glb", help="output file (.glb)")
    q.add_argument("--max-vertices", type=int, default=400_000, metavar="N",
                   help="refuse meshes with more vertices (default 400000); decimate big scans first")
    q.add_argument("--verify", action="store_true",
                   help="render the rigged mesh from the front (pyrender) and compare MediaPipe Pose's shoulders, "
                        "elbows, wrists, hips, knees and ankles with the joints placed")
    q.set_defaults(func=cmd_rig)
