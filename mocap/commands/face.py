"""``understudy face``: a take's face -> ARKit-52 curves, head pose, gaze (TAKE/face.npz),
and a Live Link Face CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError

__all__ = ["register", "cmd_face", "add_face_options", "solve_take_face"]


def add_face_options(p: argparse.ArgumentParser) -> None:
    """The face options shared by ``understudy face`` and ``understudy solve``."""
    p.add_argument("--neutral", metavar="CLIP_OR_TAKE",
                   help="a take folder (or a clip, tracked first) of the same performer resting their face, "
                        "used as the neutral face (default: found in the take's most neutral frames)")
    p.add_argument("--face-model", metavar="face_landmarker.task",
                   help="also run MediaPipe's FaceLandmarker blendshape model (a face_landmarker.task file you "
                        "have) on the footage and use its curves, calibrated like the geometric ones; cheekPuff, "
                        "eyeWide and noseSneer stay geometric")
    p.add_argument("--no-face-gain", action="store_true",
                   help="no per-performer gains (by default a clearly performed shape is scaled to reach 1)")
    p.add_argument("--head-reference", choices=("auto", "body", "camera"), default="auto",
                   help="head rotation relative to the shoulders (body) or the camera (auto: body when the "
                        "shoulders are seen)")


def _neutral(spec: str | None, quiet: bool):
    if not spec:
        return None
    from ..face import neutral_from_take
    from ..take import load_take

    p = Path(spec)
    if p.is_dir():
        take = load_take(p)
    elif p.is_file():
        from ..sources import open_source
        from ..tracking import TrackOptions, track

        with open_source(str(p)) as src:
            take = track(src, options=TrackOptions(), progress=not quiet)
    else:
        raise UsageError(f"--neutral {spec}: no such take folder or clip")
    return neutral_from_take(take, source=str(p))


def solve_take_face(take, take_dir: Path, args, *, quiet: bool = False):
    """Solve the face of ``take`` with the command-line ``args`` and store
    ``take_dir/face.npz``. Returns the :class:`~mocap.face.FaceTrack`."""
    from ..face import FaceOptions, save_face, solve_face
    from ..face_model import check_model_file, model_blendshapes

    model = None
    if getattr(args, "face_model", None):
        check_model_file(args.face_model)  # fail before any work
    opts = FaceOptions(neutral=_neutral(getattr(args, "neutral", None), quiet),
                       auto_gain=not getattr(args, "no_face_gain", False),
                       head_reference=getattr(args, "head_reference", "auto"))
    if getattr(args, "face_model", None):
        model = model_blendshapes(take, args.face_model, progress=not quiet)
    track = solve_face(take, opts, model_curves=model)
    save_face(track, Path(take_dir) / "face.npz")
    return track


def _summary(track) -> str:
    import numpy as np

    c = track.curves
    top = np.argsort(-c.max(axis=0))[:6]
    yaw = np.degrees(track.head_euler()[:, 0]) if len(track) else np.zeros(1)
    return (f"face: {int(track.present.sum())} of {len(track)} frames with a face, solver {track.meta.get('solver')}, "
            f"neutral {track.meta.get('neutral_source')}, head relative to the {track.meta.get('head_reference')}\n"
            f"strongest shapes (max): " + ", ".join(f"{track.names[i]} {c[:, i].max():.2f}" for i in top)
            + f"\nhead yaw {yaw.min():+.1f}..{yaw.max():+.1f} deg")


def cmd_face(args) -> int:
    from ..face_csv import write_live_link_csv
    from ..take import load_take

    take = load_take(args.take)
    if args.output and Path(args.output).suffix.lower() != ".csv":
        raise UsageError(f"-o must end in .csv (a Live Link Face CSV), got {Path(args.output).name!r}")
    track = solve_take_face(take, Path(args.take), args, quiet=args.quiet)
    print(_summary(track))
    print(f"stored in {Path(args.take) / 'face.npz'}")
    if args.output:
        write_live_link_csv(track, args.output, rate=args.timecode_rate)
        print(f"written {args.output} (Live Link Face CSV, {len(track)} rows, timecode at {args.timecode_rate:g} fps)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("face", help="solve a take's face: ARKit-52 curves, head pose, gaze (+ Live Link CSV)",
                       description="Compute the 52 ARKit blendshape curves, the head's rotation and position "
                                   "relative to the body and the eye gaze from a take's face landmarks, calibrated "
                                   "to the performer's neutral face. Stores TAKE/face.npz; -o also writes a CSV in "
                                   "Live Link Face's layout. See docs/face.md.")
    p.add_argument("take", metavar="TAKE", help="take folder from `understudy track` (tracked with iris)")
    p.add_argument("-o", "--output", metavar="FACE.csv", help="also write a Live Link Face CSV")
    p.add_argument("--timecode-rate", type=float, default=60.0, metavar="FPS",
                   help="frame rate of the CSV's HH:MM:SS:FF.fff timecode (default 60, as the app)")
    add_face_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_face)
