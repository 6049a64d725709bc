"""``understudy record`` (live capture with preview, takes, VMC streaming) and
``understudy recover`` (an interrupted take -> a valid one). The engine is
:mod:`mocap.record`; see docs/recording.md."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["register", "cmd_record", "cmd_recover"]


def cmd_record(args) -> int:
    from ..errors import UsageError
    from ..record import RecordOptions, parse_resolution, run_record
    from ..vmc import parse_hostport

    if args.fps is not None and not args.fps > 0:
        raise UsageError(f"--fps must be positive, got {args.fps}")
    if args.no_solve and args.vmc is not None:
        raise UsageError("--vmc streams the live solved pose: it cannot be combined with --no-solve")
    if not args.headless and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("no display for the preview window (DISPLAY is not set): use --headless")
    opts = RecordOptions(
        camera=args.camera, out=args.out, resolution=parse_resolution(args.resolution), fps=args.fps,
        headless=args.headless, vmc=parse_hostport(args.vmc) if args.vmc is not None else None,
        countdown_s=args.countdown, autostart=args.autostart, model_complexity=args.model_complexity,
        refine_face=not args.no_iris, video=not args.no_video, solve=not args.no_solve, loop=args.loop,
        pipeline=not args.sequential, face=not args.no_face, trackers=args.trackers)
    code, _ = run_record(opts)
    return code


def cmd_recover(args) -> int:
    from ..record import recover_all

    for r in recover_all(args.dir):
        print(f"recovered {r['folder']}: kept {r['frames']} frames ({r['duration_s']:.2f} s, last at "
              f"t = {r['t_last']:.3f} s); raw video: {r['video_frames']} frames in {r['video_segments']} "
              f"segment(s); frames after the last flush (at most {r['flush_s']:g} s) were lost")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "record", help="record takes live from a webcam (or a video played in real time), preview, VMC",
        description="Capture, track (MediaPipe Holistic), clean (One Euro) and solve every frame live. "
                    "A preview window shows the landmarks, fps and latency; keys: space or r start/stop "
                    "(after a countdown), d discard, q or Esc quit. --headless reads the same commands "
                    "(start, stop, discard, quit) as lines on stdin; SIGUSR1 toggles recording; Ctrl-C or "
                    "SIGTERM stops, saves and quits. Takes go to OUT/take_001, take_002, ... (never "
                    "overwritten), written to disk at least twice a second so a crash loses under a second; "
                    "`understudy recover OUT` repairs an interrupted one.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camera", default="0", metavar="0|/dev/videoN|FILE",
                   help="webcam index or device, or a video file played at its own frame rate through the same "
                        "loop (frames are dropped when processing falls behind, as with a camera); default 0")
    p.add_argument("--loop", action="store_true",
                   help="with --camera FILE: play the file again and again (timestamps keep increasing), "
                        "for rehearsals and demos without a camera")
    p.add_argument("--resolution", metavar="WxH",
                   help="camera resolution to request, e.g. 640x480; a video file is scaled to it")
    p.add_argument("--fps", type=float, default=None, metavar="N", help="camera frame rate to request")
    p.add_argument("--out", default="takes", metavar="DIR", help="folder for the takes (default ./takes)")
    p.add_argument("--headless", action="store_true",
                   help="no window: commands on stdin (start, stop, discard, quit, one per line) and signals")
    p.add_argument("--vmc", nargs="?", const="127.0.0.1:39539", default=None, metavar="HOST:PORT",
                   help="stream the solved pose over the VMC protocol (OSC/UDP) to HOST:PORT; --vmc alone "
                        "sends to 127.0.0.1:39539. Nothing is sent anywhere without this option")
    p.add_argument("--countdown", type=float, default=None, metavar="S",
                   help="seconds between 'start' and the first recorded frame (default 3 with the window, 0 headless)")
    p.add_argument("--autostart", action="store_true", help="start a take as soon as capture runs")
    p.add_argument("--model-complexity", type=int, choices=(0, 1, 2), default=1,
                   help="pose model: 0 lite (fastest; `understudy models install`), 1 full (default), 2 heavy")
    p.add_argument("--trackers", type=int, default=None, metavar="N",
                   help="MediaPipe graphs tracking alternate frames in parallel (1-4; default 2 on a machine "
                        "with 2 or more cores, else 1). One graph at 640x480 needs about a whole 30 fps frame "
                        "time on a laptop core pair, so with 1 frames queue and drop; 2 overlap them while "
                        "that is faster (measured here: 27-30 fps and 89-99%% of frames instead of 22-25 fps and "
                        "73-83%%, at ~15 ms more latency; ~210 MB of memory more per graph). Use 1 for the "
                        "lowest latency")
    p.add_argument("--no-iris", action="store_true", help="track the face mesh without the 10 iris points")
    p.add_argument("--no-video", action="store_true", help="do not store the raw video segments")
    p.add_argument("--no-solve", action="store_true",
                   help="track only: no live skeleton solve (and so nothing to stream over VMC)")
    p.add_argument("--no-face", action="store_true",
                   help="no live ARKit face curves (they need the face at rest for the first 2 s; "
                        "sent over VMC as /VMC/Ext/Blend/Val)")
    p.add_argument("--sequential", action="store_true",
                   help="solve in the tracking thread instead of overlapping it with the next frame's "
                        "tracking: lower latency, lower frame rate (see docs/recording.md)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "recover", help="turn an interrupted recording into a valid take",
        description="A take folder of `understudy record` without take.json was interrupted (killed, crashed, "
                    "power loss). Rebuild the take from the landmark chunks on disk (everything flushed, i.e. "
                    "all but at most the last half second) and say how much was kept. DIR is the take folder "
                    "or the --out folder, in which case every interrupted take in it is recovered.")
    p.add_argument("dir", metavar="DIR", help="take folder (take_NNN) or the folder holding the takes")
    p.set_defaults(func=cmd_recover)
