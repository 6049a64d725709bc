"""The ``understudy`` command: one console script, one subcommand per pipeline stage.

Every :class:`~mocap.errors.UnderstudyError` becomes one line on stderr and a non-zero
exit code (2 for usage errors, 1 otherwise); Ctrl-C exits with 130 after saving what
can be saved.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .errors import UnderstudyError, UsageError

__all__ = ["main", "build_parser"]

DEMO_FOOTAGE_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"


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


def cmd_demo(args) -> int:
    out = Path(args.output)
    footage = None
    if args.webcam is not None:
        footage = _parse_footage(args.webcam)
    elif args.input:
        footage = args.input
    else:
        shipped = sorted(DEMO_FOOTAGE_DIR.glob("*.mp4")) if DEMO_FOOTAGE_DIR.is_dir() else []
        if not shipped:
            raise UsageError(
                "no default demo footage ships with this version yet (it will be footage the project "
                "renders itself); run `understudy demo --input CLIP.mp4` with a clip of a person, "
                "or `understudy demo --webcam 0`")
        footage = str(shipped[0])
    out.mkdir(parents=True, exist_ok=True)
    print(f"demo: tracking {footage} -> {out / 'take'}, overlay video {out / 'overlay.mp4'}")
    return _track_to_take(footage, out / "take", preview=out / "overlay.mp4", args=args)


def cmd_models_install(args) -> int:
    from .models import install_pose_models

    for p in install_pose_models(args.source):
        print(f"installed {p}")
    return 0


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

    p = sub.add_parser("demo", help="the demo: footage in, tracked overlay video out",
                       description="Track footage and write the take and an overlay video to OUTDIR.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FOOTAGE", help="footage to use instead of the shipped default")
    src.add_argument("--webcam", metavar="CAMERA", help="record from a webcam (index or /dev/videoN); Ctrl-C stops")
    p.add_argument("-o", "--output", default="out/demo", metavar="OUTDIR", help="output folder (default out/demo)")
    _add_track_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="manage optional MediaPipe model files",
                       description="Install the optional lite/heavy pose models for --model-complexity 0/2.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    q = msub.add_parser("install", help="copy pose_landmark_lite/heavy.tflite into mediapipe",
                        description="Copy the lite/heavy pose models from a folder or an npm .tgz "
                                    "(@mediapipe/pose@0.5.1675469404) into the installed mediapipe.")
    q.add_argument("--from", dest="source", required=True, metavar="FOLDER_OR_TGZ")
    q.set_defaults(func=cmd_models_install)
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
