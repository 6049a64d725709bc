"""Which Blender engine should `understudy render` use by default? Measured, same run.

    .venv/bin/python benchmarks/render_engines.py            # engines, 320x240
    .venv/bin/python benchmarks/render_engines.py --long 120 # also: one process vs chunks

Renders the generated character ``ada`` turning on the spot (the same scene for every
engine) through :func:`mocap.render.render_frames` and prints Blender's seconds per
frame (from the worker, excluding process start and scene load) and the wall time per
frame including them. Eevee runs on software OpenGL without a GPU, so it gets one frame.

``--long N`` renders N frames once in a single worker process (``chunk_frames = N``)
and once in chunks of 16, and compares the last frame of each with that frame rendered
by a process of its own (mean absolute difference, 0-255 RGBA) and the seconds per frame
of the first and last ten frames (a slowdown over the run shows there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def scene(work: Path, frames: int):
    from mocap.glossary import A2Q
    from mocap.motion import Motion
    from mocap.render import Camera
    from retarget.character import generate_character, save_character
    from retarget.rig import export_glb, load_rig

    rig = load_rig(save_character(generate_character(preset="ada"), work / "ada.glb"))
    sk = rig.skeleton
    s = np.linspace(0.0, 1.0, frames)
    Q = np.tile([1.0, 0.0, 0.0, 0.0], (frames, len(sk), 1))
    Q[:, 0] = A2Q(np.stack([0 * s, 6.0 * s, 0 * s], -1))
    Q[:, sk.index("leftUpperArm")] = A2Q(np.stack([0 * s, 0 * s, -1.2 * np.sin(8 * s)], -1))
    root = np.tile(sk.offsets[0], (frames, 1))
    glb = export_glb(rig, Motion(skeleton=sk, rotations=Q, root_positions=root, fps=30.0), work / "spin.glb")
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.9, 3.4]
    f = 0.5 * 320 / np.tan(np.radians(25.0))
    return glb, Camera(T, f, f, 160.0, 120.0, 320, 240)


def timed(glb, n, cam, opts, out, frames=None):
    from mocap.render import render_frames

    t0 = time.perf_counter()
    r = render_frames(glb, 30.0, n, cam, opts, out, frames=frames, progress=False)
    wall = time.perf_counter() - t0
    return r, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=6, help="frames per engine (default 6)")
    ap.add_argument("--long", type=int, default=0, metavar="N", help="also compare one process vs chunks over N frames")
    args = ap.parse_args()
    from mocap.render import RenderOptions, read_rgba

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        n = max(args.frames, args.long)
        glb, cam = scene(work, n)
        print(f"320x240, generated character 'ada', {args.frames} frames (eevee: 1)")
        print(f"{'engine':<22}{'Blender s/frame':>16}{'wall s/frame':>14}")
        for name, opts, k in (("cycles, 8 samples", RenderOptions(engine="cycles", samples=8), args.frames),
                              ("cycles, 16 samples", RenderOptions(engine="cycles", samples=16), args.frames),
                              ("workbench", RenderOptions(engine="workbench"), args.frames),
                              ("eevee, 16 samples", RenderOptions(engine="eevee", samples=16), 1)):
            r, wall = timed(glb, n, cam, opts, work / name.replace(" ", "_"), frames=list(range(k)))
            print(f"{name:<22}{np.mean(r.seconds):>16.2f}{wall / k:>14.2f}")
        if args.long:
            N = args.long
            last = N - 1
            alone, _ = timed(glb, n, cam, RenderOptions(samples=8), work / "alone", frames=[last])
            ref = read_rgba(alone.png[0], (320, 240)).astype(int)
            print(f"\nlast frame ({last}) of {N} frames vs the same frame rendered alone (cycles, 8 samples)")
            for label, chunk in (("one process", N), ("chunks of 16", 16)):
                r, wall = timed(glb, n, cam, RenderOptions(samples=8, chunk_frames=chunk), work / label.replace(" ", "_"),
                                frames=list(range(N)))
                img = read_rgba(r.png[-1], (320, 240)).astype(int)
                s = np.array(r.seconds)
                print(f"{label:<14} wall {wall:6.1f} s, s/frame first 10 {s[:10].mean():.2f}, last 10 {s[-10:].mean():.2f}, "
                      f"last frame differs from alone by {np.abs(img - ref).mean():.2f} (mean |RGBA|)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
