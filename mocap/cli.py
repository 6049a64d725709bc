"""The ``understudy`` command: one console script, one subcommand per pipeline stage.

Every :class:`~mocap.errors.UnderstudyError` becomes one line on stderr and a non-zero
exit code (2 for usage errors, 1 otherwise); Ctrl-C exits with 130 after saving what
can be saved.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from pathlib import Path

from .commands import wxh
from .errors import UnderstudyError, UsageError

__all__ = ["main", "build_parser"]

# Further subcommands live in their own modules, each with ``register(subparsers)`` that
# adds its parsers; they import their heavy dependencies only when a command runs.
COMMAND_MODULES: tuple[str, ...] = (
    "mocap.commands.face",
    "mocap.commands.record",
    "mocap.commands.render",
    "mocap.commands.character",
    "mocap.commands.addon",
)

DEMO_FOOTAGE_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
DEMO_FOOTAGE = "walk_wave.mp4"
"""The demo's default footage: a generated actor performing a motion the project authored
(``scripts/make_demo_footage.py``)."""


def _err(msg: str) -> None:
    print(f"understudy: error: {msg}", file=sys.stderr)


def _sigterm_to_interrupt():
    """Turn SIGTERM into KeyboardInterrupt so a killed run still saves what it has."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread (e.g. embedded); keep the default
        return


def _parse_footage(spec: str):
    return int(spec) if spec.isdigit() else spec


def _track_to_take(footage, out: Path, *, preview: Path | None, args) -> int:
    from .overlay import VideoWriter, draw_landmarks
    from .sources import open_source
    from .take import save_take
    from .tracking import TrackOptions, track

    opts = TrackOptions(model_complexity=args.model_complexity, segmentation=args.segmentation,
                        refine_face=not args.no_iris, prefetch=args.prefetch, hfov_deg=args.fov)
    _sigterm_to_interrupt()
    with open_source(footage, fps=args.fps) as src:
        writer = None
        on_frame = None
        if preview is not None:
            writer = VideoWriter(preview, fps=src.info.nominal_fps or 30.0)

            def on_frame(t, rgb, lm):
                writer.write(draw_landmarks(rgb, text=f"{t:7.3f} s", **lm), t)

        try:
            take = track(src, options=opts, start=args.start, end=args.end, progress=not args.quiet,
                         on_frame=on_frame)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
    save_take(take, out)
    print(take.summary())
    print(f"take written to {out}" + (f", preview to {preview}" if preview else ""))
    if not take.complete:
        print(f"understudy: tracking was interrupted; {out} holds the {len(take)} frames done so far",
              file=sys.stderr)
        return 130
    return 0


def cmd_track(args) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UsageError(f"--end ({args.end}) must be after --start ({args.start})")
    return _track_to_take(_parse_footage(args.footage), Path(args.output),
                          preview=Path(args.preview) if args.preview else None, args=args)


def cmd_info(args) -> int:
    from .take import load_take

    take = load_take(args.take)
    if args.json:
        meta = json.loads((Path(args.take) / "take.json").read_text(encoding="utf-8"))
        print(json.dumps(meta, indent=2))
    else:
        src = take.source
        print(f"take {args.take}")
        print(f"source: {src.kind} {src.path}")
        if src.intrinsics is not None:
            i = src.intrinsics
            print(f"camera: fx={i.fx:.1f} fy={i.fy:.1f} cx={i.cx:.1f} cy={i.cy:.1f} px "
                  f"(horizontal FOV {i.hfov_deg(src.width):.1f} deg, from {i.source})")
        if take.tracker:
            print(f"tracker: {take.tracker.get('name')} {take.tracker.get('mediapipe_version')}, "
                  f"model complexity {take.tracker.get('model_complexity')}")
        print(take.summary())
    return 0


def _record_webcam(camera, path: Path, fps: float | None) -> Path:
    """Record a webcam into ``path`` until Ctrl-C (or the camera stops); returns it."""
    from .overlay import VideoWriter
    from .sources import open_source

    print(f"demo: recording webcam {camera} to {path}; press Ctrl-C to stop", flush=True)
    _sigterm_to_interrupt()
    with open_source(camera, fps=fps) as src:
        with VideoWriter(path, fps=src.info.nominal_fps or 30.0) as w:
            try:
                for fr in src:
                    w.write(fr.rgb, fr.t)
            except KeyboardInterrupt:
                pass  # the user's way to stop recording; the writer keeps what was recorded
        if w.frames == 0:
            raise UsageError(f"webcam {camera} delivered no frame")
    return path


def cmd_demo(args) -> int:
    """footage -> track -> solve -> generated character -> replacement shot + side by side."""
    import time

    from .pipeline import solve_take
    from .render import RenderOptions, render_take

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.webcam is not None:
        footage = str(_record_webcam(_parse_footage(args.webcam), out / "webcam.mp4", args.fps))
    elif args.input:
        footage = args.input
    else:
        default = DEMO_FOOTAGE_DIR / DEMO_FOOTAGE
        if not default.is_file():
            raise UsageError(f"the demo footage {default} is missing from this checkout; make it with "
                             "`.venv/bin/python scripts/make_demo_footage.py`, or pass --input CLIP.mp4")
        footage = str(default)
    take_dir, shot, sbs = out / "take", out / "shot.mp4", out / "side_by_side.mp4"
    t_all = time.perf_counter()

    def stage(n, text):
        print(f"[{n}/4] {text}", flush=True)

    stage(1, f"track {footage} (MediaPipe, with person masks) -> {take_dir}, overlay {out / 'overlay.mp4'}")
    args.segmentation = True
    rc = _track_to_take(footage, take_dir, preview=out / "overlay.mp4", args=args)
    if rc != 0:
        return rc
    from .motion_io import save_motion
    from .take import load_take

    take = load_take(take_dir)
    stage(2, f"solve {len(take)} frames -> {take_dir / 'motion.npz'}")
    res = solve_take(take)
    save_motion(res.motion, take_dir / "motion.npz", contacts=res.contacts)
    if take.present["face"].any():
        from .errors import SolveError
        from .face import FaceOptions, save_face, solve_face

        try:
            save_face(solve_face(take, FaceOptions()), take_dir / "face.npz")
        except SolveError as e:  # the body is solved; the face is optional for the demo
            print(f"note: face not solved: {e}")
    stage(3, f"retarget onto the generated character {args.character!r} and render with Blender "
             f"({args.engine}) in place of the performer -> {shot}")
    opts = RenderOptions(engine=args.engine, samples=args.samples, resolution=args.resolution)
    r = render_take(take_dir, args.character, shot, options=opts, frames=args.frames, replace=True,
                    side_by_side=sbs, progress=not args.quiet)
    stage(4, f"done in {time.perf_counter() - t_all:.0f} s: {r.frames} frames at {r.resolution[0]}x{r.resolution[1]}, "
             f"{r.character}")
    print(f"take:         {take_dir}")
    print(f"overlay:      {out / 'overlay.mp4'}")
    print(f"shot:         {r.shot}")
    print(f"side by side: {r.side_by_side}   (original | synthetic actor)")
    return 0


def cmd_models_install(args) -> int:
    from .models import install_pose_models

    for p in install_pose_models(args.source):
        print(f"installed {p}")
    return 0


# -- issue 3: clean, solve, synth, eval, report ------------------------------------------


def _solve_options(args):
    from .pipeline import SolveOptions

    return SolveOptions(mode=args.mode, body_cutoff_hz=args.body_cutoff, hands_cutoff_hz=args.hands_cutoff,
                        face_cutoff_hz=args.face_cutoff, max_gap_s=args.max_gap, limits=not args.no_limits,
                        foot_lock=not args.no_foot_lock, contact_height_m=args.contact_height,
                        contact_speed_m_s=args.contact_speed, max_slide_m=args.max_slide,
                        root_smooth_s=args.root_smooth, fov_deg=args.fov,
                        depth_refine=getattr(args, "depth_refine", True))


def _load_motion_any(path: str):
    """A Motion from a take folder (its motion.npz), a motion.npz or a BVH file."""
    from .bvh import load_bvh
    from .errors import FileFormatError
    from .motion_io import load_motion

    p = Path(path)
    if p.is_dir():
        if not (p / "motion.npz").is_file():
            raise FileFormatError(f"{p} has no motion.npz: run `understudy solve {p}` first")
        return load_motion(p / "motion.npz")[0]
    if p.suffix.lower() == ".bvh":
        return load_bvh(p)
    if p.suffix.lower() == ".npz":
        return load_motion(p)[0]
    raise UsageError(f"{p}: expected a take folder, a motion .npz or a .bvh file")


def cmd_solve(args) -> int:
    from .bvh import save_bvh
    from .motion_io import save_motion
    from .pipeline import solve_take
    from .take import load_take

    take = load_take(args.take)
    res = solve_take(take, _solve_options(args), progress=not args.quiet)
    m = res.motion
    out_npz = save_motion(m, Path(args.take) / "motion.npz", contacts=res.contacts)
    print(f"solved {m.n_frames} frames ({m.duration_s:.2f} s at {m.fps:.2f} fps) onto the canonical "
          f"{m.skeleton.n_joints}-joint skeleton; stored in {out_npz}")
    c = {k: int(v.sum()) for k, v in res.contacts.items()}
    print(f"foot contacts (frames): left {c.get('left', 0)}, right {c.get('right', 0)}; "
          + ("feet locked" if args.no_foot_lock is False else "feet not locked"))
    print("stages (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res.timings.items()))
    for n in res.notes:
        print(f"note: {n}")
    if not args.no_face and take.present["face"].any():  # issue 6: the face beside the skeleton
        from .commands.face import solve_take_face
        from .errors import SolveError

        try:
            ft = solve_take_face(take, Path(args.take), args, quiet=args.quiet)
            print(f"face: {int(ft.present.sum())} frames, 52 ARKit curves + head pose ({ft.meta['solver']}); "
                  f"stored in {Path(args.take) / 'face.npz'}")
        except SolveError as e:  # the skeleton is solved and stored; say why the face is not
            print(f"note: face not solved: {e}")
    if args.output:
        o = Path(args.output)
        if o.suffix.lower() == ".bvh":
            save_bvh(m, o)
        elif o.suffix.lower() == ".npz":
            save_motion(m, o, contacts=res.contacts)
        else:
            raise UsageError(f"-o must end in .bvh or .npz, got {o.name!r}")
        print(f"written {o}")
    return 0


def cmd_clean(args) -> int:
    from .cleanup import clean_markers
    from .markers import save_markers
    from .root import lift_take
    from .take import load_take

    opts = _solve_options(args)
    opts.check()
    take = load_take(args.take)
    raw, info = lift_take(take, smooth_s=opts.root_smooth_s)
    clean, report = clean_markers(raw, mode=opts.mode, params=opts.clean_params())
    out = Path(args.output) if args.output else Path(args.take) / "markers_clean.npz"
    save_markers(clean, out)
    r = report.to_json()
    print(f"cleaned {len(clean)} frames x {len(clean.names)} markers ({opts.mode}); written {out}")
    print("swaps repaired: " + ", ".join(f"{k} {v}" for k, v in r["swaps"].items()))
    print("spikes: " + ", ".join(f"{k} {v}" for k, v in r["spikes"].items())
          + "; filled: " + ", ".join(f"{k} {v}" for k, v in r["filled"].items()))
    for n in list(info.get("notes", [])) + r["notes"]:
        print(f"note: {n}")
    return 0


def cmd_synth(args) -> int:
    from .bvh import load_bvh
    from .synth import VirtualCamera, synth_mapping, synth_take
    from .take import save_take

    motion = load_bvh(args.motion)
    if args.fps:
        motion = motion.resample(args.fps)
    bonemap = args.map
    if bonemap and Path(bonemap).suffix.lower() == ".toml":
        from retarget.bonemap import load_bonemap

        bonemap = load_bonemap(bonemap)
    mapping = synth_mapping(motion, bonemap)
    cam = VirtualCamera(distance_m=args.camera_distance, hfov_deg=args.hfov, width=args.width, height=args.height)
    take = synth_take(motion, mapping=mapping, camera=cam, noise_mm=args.noise_mm, dropout=args.dropout,
                      seed=args.seed)
    save_take(take, args.output)
    print(take.summary())
    print(f"synthetic take of {args.motion} written to {args.output}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import DEFAULT_JOINTS, LIMB_JOINTS, evaluate

    if args.raw:  # the baseline: the take's MediaPipe landmarks lifted to the world frame, unsolved
        from .evaluate import markers_motion
        from .root import lift_take
        from .take import load_take

        motion, motion_map = markers_motion(lift_take(load_take(args.motion))[0]), "canonical"
    else:
        motion, motion_map = _load_motion_any(args.motion), args.motion_map
    truth = _load_motion_any(args.truth)
    joints = {"limbs": LIMB_JOINTS, "default": DEFAULT_JOINTS}[args.joints]
    r = evaluate(motion, truth, motion_map=motion_map, truth_map=args.truth_map, joints=list(joints),
                 heading_align=not args.no_heading_align)
    text = json.dumps(r, indent=2, allow_nan=False)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def cmd_report(args) -> int:
    from .cleanup import clean_markers
    from .motion_io import load_motion
    from .pipeline import solve_markers
    from .report import format_report, quality_report
    from .root import lift_take
    from .take import load_take

    opts = _solve_options(args)
    take = load_take(args.take)
    raw, info = lift_take(take, smooth_s=opts.root_smooth_s)
    mfile = Path(args.take) / "motion.npz"
    if mfile.is_file():
        motion, contacts = load_motion(mfile)
        clean, _ = clean_markers(raw, mode=opts.mode, params=opts.clean_params())
    else:
        res = solve_markers(raw, opts, lift_info=info)
        motion, contacts, clean = res.motion, res.contacts, res.clean
    out = Path(args.output) if args.output else Path(args.take) / "report"
    d = quality_report(raw, clean, motion=motion, contacts=contacts or None, visibility=take, out_dir=out)
    print(format_report(d))
    print(f"report written to {out} (report.json and plots)")
    return 0


# -- issue 4: retarget, batch -------------------------------------------------------------


def cmd_retarget(args) -> int:
    from retarget.batch import RetargetOptions, default_map_path, output_format, parse_frames, retarget_files

    out = Path(args.output)
    output_format(out)  # an unknown extension fails before any work
    if args.fps is not None and not args.fps > 0:
        raise UsageError(f"--fps must be positive, got {args.fps}")
    frames = parse_frames(args.frames) if args.frames else None
    map_out = Path(args.save_map) if args.save_map else default_map_path(out)
    if map_out.resolve() == out.resolve():
        raise UsageError(f"--save-map {map_out} would overwrite the output")
    opts = RetargetOptions(foot_ik=not args.no_foot_ik, hand_ik=args.hand_ik, fps=args.fps, frames=frames)
    res = retarget_files(args.source, args.rig, [out], source_map=args.source_map, target_map=args.map,
                         options=opts, map_out=map_out)
    print(f"retargeted {res.n_frames} frames ({res.fps:g} fps) of {Path(args.source).name} (bone map "
          f"{res.source_map!r}) onto {Path(args.rig).name} (bone map {res.target_map!r}), "
          f"{len(res.map_used)} bones matched")
    for n in res.notes:
        print(f"note: {n}")
    print("stages (s): " + ", ".join(f"{k} {v:.3f}" for k, v in res.timings.items()))
    face = _retarget_face(args, out, frames)
    if face:
        print(face)
    print(f"written {out}")
    if res.map_path is not None:
        print(f"bone map used written to {res.map_path} (edit it and pass --map {res.map_path} to reuse)")
    return 0


def _retarget_face(args, out: Path, frames) -> str | None:
    """Issue 6: the take's face curves as morph-target weights in a GLB output."""
    src = Path(args.source)
    if out.suffix.lower() != ".glb" or args.no_face or not (src.is_dir() and (src / "face.npz").is_file()):
        return None
    from retarget.batch import load_source_motion

    from .face import load_face
    from .face_map import add_face_to_glb

    motion = load_source_motion(src)
    if args.fps:
        motion = motion.resample(args.fps)
    if frames:
        motion = motion.slice(frames[0] or 0, frames[1])
    try:
        r = add_face_to_glb(out, load_face(src), start_s=float(motion.timestamps[0]), face_map=args.face_map)
    except UsageError as e:
        if args.face_map:
            raise
        return f"note: face not added: {e}"
    return (f"face: {len(r['targets'])} morph target(s) animated on {r['nodes']} mesh node(s) "
            f"({'; '.join(r['notes'])})")


def cmd_batch(args) -> int:
    from retarget.batch import format_summary, load_manifest, plan_jobs, run_batch

    if args.scheduler and args.workers is not None:
        raise UsageError("--workers is for local runs; the dask cluster at --scheduler has its own workers")
    manifest = load_manifest(args.manifest, allow_outside=args.allow_outside)
    jobs = plan_jobs(manifest)
    print(f"{len(manifest.takes)} take(s) x {len(manifest.characters)} character(s) x "
          f"{len(manifest.variants)} variant(s) = {len(jobs)} job(s), formats {', '.join(manifest.formats)}; "
          f"outputs in {manifest.output_dir}")
    if args.dry_run:
        for j in jobs:
            have = [Path(o).exists() for o in j.outputs]
            state = "skip (outputs exist)" if all(have) else "run"
            print(f"{j.name}: {state}: " + ", ".join(Path(o).name for o in j.outputs))
        return 0
    _sigterm_to_interrupt()
    report = run_batch(jobs, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet,
                       on_interrupt=lambda msg: print(f"understudy: {msg}", file=sys.stderr, flush=True))
    print(format_summary(report))
    if report.interrupted:
        _err("batch interrupted; finished outputs are kept, run it again to do the rest")
    return report.exit_code


def _add_solve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("offline", "live"), default="offline",
                   help="offline: zero-phase filters over the whole take (no lag, default); "
                        "live: causal One Euro filtering, as the recorder uses")
    p.add_argument("--body-cutoff", type=float, default=None, metavar="HZ",
                   help="body low-pass cutoff (default: chosen per take by residual analysis, 3-8 Hz)")
    p.add_argument("--hands-cutoff", type=float, default=None, metavar="HZ", help="hands low-pass cutoff (default 8)")
    p.add_argument("--face-cutoff", type=float, default=None, metavar="HZ", help="face low-pass cutoff (default 8)")
    p.add_argument("--max-gap", type=float, default=None, metavar="S",
                   help="longest dropout filled in, seconds (default 0.25 body, 0.15 hands, 0.2 face); "
                        "longer gaps stay marked missing")
    p.add_argument("--no-limits", action="store_true", help="do not clamp joints to anatomical limits")
    p.add_argument("--no-foot-lock", action="store_true", help="do not plant feet during contacts")
    p.add_argument("--contact-height", type=float, default=0.1, metavar="M",
                   help="a foot lower than this above the floor (and slow) is in contact (default 0.1 m)")
    p.add_argument("--contact-speed", type=float, default=0.3, metavar="M/S",
                   help="a foot slower than this (and low) is in contact (default 0.3 m/s; on footage, speed "
                        "across the camera's view)")
    p.add_argument("--max-slide", type=float, default=0.05, metavar="M",
                   help="a contact whose foot drifts further is cut into its still parts; what slides (pivot, "
                        "dance slide) is not locked (default 0.05 m)")
    p.add_argument("--root-smooth", type=float, default=0.05, metavar="S",
                   help="smoothing of the hips' camera-space path, seconds (default 0.05)")
    p.add_argument("--fov", type=float, default=None, metavar="DEG",
                   help="horizontal field of view of the camera, overriding the take's")
    p.add_argument("--depth-refine", dest="depth_refine", action=argparse.BooleanOptionalAction, default=True,
                   help="re-estimate each bone's depth from the 2D landmarks and the take's bone lengths "
                        "(default on; --no-depth-refine keeps MediaPipe's depth: about 7 mm worse PA-MPJPE "
                        "on the accuracy round trip, docs/accuracy.md)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_track_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                   help="MediaPipe pose model: 0 lite (fastest), 1 full (bundled, default), 2 heavy "
                        "(most accurate); 0 and 2 need `understudy models install`")
    p.add_argument("--segmentation", action="store_true",
                   help="also store the person mask of every frame (needed later for actor replacement)")
    p.add_argument("--start", type=float, default=None, metavar="S",
                   help="first time to track, seconds of the source's own timeline")
    p.add_argument("--end", type=float, default=None, metavar="S",
                   help="stop before this time, seconds of the source's own timeline")
    p.add_argument("--fov", type=float, default=None, metavar="DEG",
                   help="horizontal field of view of the camera in degrees, when known "
                        "(default: assume 60, a typical webcam)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of an image sequence (videos keep their own timestamps; default 30)")
    p.add_argument("--no-iris", action="store_true",
                   help="track the 468-point face mesh without the 10 iris points")
    p.add_argument("--prefetch", type=int, default=4, metavar="N",
                   help="frames decoded ahead in a background thread while MediaPipe runs (0 = off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="understudy",
        description="Performance capture from a webcam or phone: footage -> landmarks (take) -> "
                    "skeletal and face tracks -> any rig -> Blender.")
    ap.add_argument("--version", action="version", version="understudy 0.1.0")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("track", help="track body, hands and face in footage and write a take",
                       description="Run MediaPipe Holistic on every frame of FOOTAGE and write a take folder.")
    p.add_argument("footage", metavar="FOOTAGE",
                   help="a video file (mp4 mov mkv avi webm, phone clips included), an image, a folder "
                        "or glob of images, or a webcam (index like 0, or a device like /dev/video0)")
    p.add_argument("-o", "--output", required=True, metavar="TAKE", help="take folder to write")
    p.add_argument("--preview", metavar="OVERLAY.mp4", help="also write the footage with the landmarks drawn")
    _add_track_options(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("info", help="describe a take", description="Print what a take holds.")
    p.add_argument("take", metavar="TAKE", help="take folder")
    p.add_argument("--json", action="store_true", help="print the take's full take.json")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the demo: footage in, synthetic actor in place of the performer out",
                       description="Track footage (default: the shipped assets/demo/walk_wave.mp4, a generated "
                                   "actor performing a motion the project authored), solve it, retarget it onto "
                                   "a generated character and render that character into the footage in place of "
                                   "the performer: OUTDIR/shot.mp4 and OUTDIR/side_by_side.mp4 (original | "
                                   "synthetic actor), plus the take and a tracking overlay.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FOOTAGE", help="footage to use instead of the shipped default (a static "
                                                        "camera, one person, whole body in view works best)")
    src.add_argument("--webcam", metavar="CAMERA", help="record from a webcam (index or /dev/videoN) until Ctrl-C, "
                                                        "then run the demo on the recording")
    p.add_argument("-o", "--output", default="out/demo", metavar="OUTDIR", help="output folder (default out/demo)")
    p.add_argument("--character", default="ada", metavar="PRESET_OR_FILE",
                   help="the synthetic actor: a preset (ada, ben, chen, dara; generated at the performer's height) "
                        "or a character file (default ada)")
    p.add_argument("--engine", choices=("cycles", "eevee", "workbench"), default="cycles",
                   help="Blender engine (default cycles: fastest measured without a GPU)")
    p.add_argument("--samples", type=int, default=16, metavar="N", help="render samples per pixel (default 16)")
    p.add_argument("--resolution", type=wxh, default=None, metavar="WxH",
                   help="render size (default: the footage's, long side at most 640 px)")
    p.add_argument("--frames", metavar="A:B", help="render take frames A to B-1 only")
    _add_track_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("solve", help="solve a take into a clean skeletal motion (and BVH)",
                       description="Lift the take into the world (root motion from one camera, floor), clean "
                                   "it, solve joint rotations on the canonical skeleton, detect foot contacts and "
                                   "lock planted feet. Stores TAKE/motion.npz; -o also writes a BVH.")
    p.add_argument("take", metavar="TAKE", help="take folder from `understudy track` or `synth`")
    p.add_argument("-o", "--output", metavar="MOTION.bvh", help="also write the motion as .bvh (or .npz)")
    _add_solve_options(p)
    from .commands.face import add_face_options

    add_face_options(p)
    p.add_argument("--no-face", action="store_true", help="do not solve the face (TAKE/face.npz, docs/face.md)")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("clean", help="clean a take's landmarks into world-frame 3D markers",
                       description="Lift and clean a take's landmarks (swap repair, spikes, gaps, filtering, "
                                   "bone lengths) and write them as markers (.npz), without solving a skeleton.")
    p.add_argument("take", metavar="TAKE", help="take folder")
    p.add_argument("-o", "--output", metavar="MARKERS.npz", help="output (default TAKE/markers_clean.npz)")
    _add_solve_options(p)
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("synth", help="make a synthetic take from a BVH (for validation)",
                       description="Map a BVH's joints onto MediaPipe's landmarks and film them with a virtual "
                                   "pinhole camera, optionally with noise and dropped frames.")
    p.add_argument("motion", metavar="MOTION.bvh", help="motion capture to film")
    p.add_argument("-o", "--output", required=True, metavar="TAKE", help="take folder to write")
    p.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian landmark noise, sigma in mm (default 0)")
    p.add_argument("--dropout", type=float, default=0.0, help="share of frames with nobody found (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed for noise and dropout")
    p.add_argument("--fps", type=float, default=30.0, help="resample the motion to this rate first (default 30)")
    p.add_argument("--map", metavar="PROFILE_OR_TOML",
                   help="bone map of the BVH (a shipped profile name or a .toml; default: detected)")
    p.add_argument("--camera-distance", type=float, default=9.0, metavar="M",
                   help="camera distance from the performer's start, metres (default 9: a walk stays in frame)")
    p.add_argument("--hfov", type=float, default=60.0, metavar="DEG", help="camera horizontal FOV (default 60)")
    p.add_argument("--width", type=int, default=1280, help="image width in px (default 1280)")
    p.add_argument("--height", type=int, default=720, help="image height in px (default 720)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("eval", help="compare a motion with the truth (JSON metrics)",
                       description="MPJPE, PA-MPJPE, bone-direction error, root-path error, foot skate and jitter "
                                   "of MOTION against TRUTH, matching joints by name through bone maps.")
    p.add_argument("motion", metavar="MOTION", help="take folder (its motion.npz), motion .npz or .bvh")
    p.add_argument("--truth", required=True, metavar="MOTION.bvh", help="reference motion (.bvh, .npz or take)")
    p.add_argument("--raw", action="store_true",
                   help="MOTION is a take folder: evaluate its raw MediaPipe landmarks (lifted to the world "
                        "frame, not cleaned or solved) instead of its motion.npz, as the baseline")
    p.add_argument("--joints", choices=("limbs", "default"), default="limbs",
                   help="limbs: hips, legs, arms (every convention agrees where they are; default); "
                        "default: also neck and head")
    p.add_argument("--motion-map", default=None, help="bone-map profile of MOTION (default: detected)")
    p.add_argument("--truth-map", default=None, help="bone-map profile of the truth (default: detected)")
    p.add_argument("--no-heading-align", action="store_true",
                   help="do not turn the motion about +Y to the truth's heading first")
    p.add_argument("-o", "--output", metavar="METRICS.json", help="also write the JSON here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("report", help="quality report of a take: JSON and plots, raw beside cleaned",
                       description="Jitter, gaps, low-visibility frames, bone-length variation, foot skate and "
                                   "floor penetration, raw beside cleaned, as report.json and PNG plots.")
    p.add_argument("take", metavar="TAKE", help="take folder (solved or not)")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (default TAKE/report)")
    _add_solve_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("retarget", help="put a motion onto a character (GLB, BVH or FBX out)",
                       description="Retarget a solved take, a motion .npz or a BVH onto a character (.glb, .gltf, "
                                   ".vrm, or a .bvh skeleton) and write it as .glb, .bvh or .fbx. The bone map "
                                   "used is written beside the output (OUT.map.toml) to edit and reuse with --map.")
    p.add_argument("source", metavar="TAKE_OR_BVH", help="take folder (its motion.npz), motion .npz or .bvh")
    p.add_argument("--rig", required=True, metavar="CHARACTER", help="character: .glb .gltf .vrm, or .bvh")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output: .glb, .bvh or .fbx")
    p.add_argument("--map", metavar="MAP.toml",
                   help="the character's bone map (a .toml, e.g. a saved OUT.map.toml, or a shipped profile); "
                        "default: the file's own (VRM) or the best shipped profile")
    p.add_argument("--source-map", metavar="PROFILE_OR_TOML",
                   help="the source's bone map (shipped profile name or .toml); default: detected")
    p.add_argument("--save-map", metavar="MAP.toml", help="where to write the bone map used (default OUT.map.toml "
                                                          "beside the output, e.g. hero.glb -> hero.map.toml)")
    p.add_argument("--no-foot-ik", action="store_true", help="do not pin the feet with IK")
    p.add_argument("--hand-ik", action="store_true", help="also pin the hands with IK")
    p.add_argument("--fps", type=float, default=None, metavar="N", help="resample the source to N fps first")
    p.add_argument("--frames", metavar="A:B",
                   help="keep frames A to B-1 (0-based, counted after --fps; A: or :B leave a side open)")
    p.add_argument("--face-map", metavar="MAP.toml",
                   help="how the take's face curves drive the character's shape keys (a .toml, or a shipped map "
                        "name: vrm, character_creator); default: ARKit names, then the shipped aliases")
    p.add_argument("--no-face", action="store_true", help="do not animate shape keys from the take's face.npz")
    p.set_defaults(func=cmd_retarget)

    p = sub.add_parser("batch", help="retarget many takes onto many characters from a manifest",
                       description="Run every take x character x settings job of a batch manifest "
                                   "(schema understudy.batch, see docs/retargeting.md) in worker processes. "
                                   "Existing outputs are skipped; a failing job does not stop the rest; the exit "
                                   "code is 0 only when every job succeeded.")
    p.add_argument("manifest", metavar="MANIFEST.toml", help="batch manifest")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per CPU)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this dask.distributed cluster instead (workers must see the same paths)")
    p.add_argument("--dry-run", action="store_true", help="check the manifest and list the jobs; run nothing")
    p.add_argument("--allow-outside", action="store_true",
                   help="let the manifest name files outside its own folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("models", help="manage optional MediaPipe model files",
                       description="Install the optional lite/heavy pose models for --model-complexity 0/2.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    q = msub.add_parser("install", help="copy pose_landmark_lite/heavy.tflite into mediapipe",
                        description="Copy the lite/heavy pose models from a folder or an npm .tgz "
                                    "(@mediapipe/pose@0.5.1675469404) into the installed mediapipe.")
    q.add_argument("--from", dest="source", required=True, metavar="FOLDER_OR_TGZ")
    q.set_defaults(func=cmd_models_install)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UnderstudyError as e:
        _err(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
