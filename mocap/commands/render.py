"""``understudy render``: a solved take performed by a character, rendered headless by
Blender; with ``--replace`` put into the footage in place of the performer."""

from __future__ import annotations

import argparse

from . import wxh

__all__ = ["register", "cmd_render"]


def _passes(spec: str) -> tuple[str, ...]:
    from mocap.render import PASSES

    names = tuple(p.strip() for p in spec.split(",") if p.strip())
    bad = [p for p in names if p not in PASSES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"passes are a comma list of {','.join(PASSES)}, got {spec!r}")
    return names


def cmd_render(args) -> int:
    from mocap.cli import _sigterm_to_interrupt
    from mocap.render import RenderOptions, render_take

    opts = RenderOptions(engine=args.engine, samples=args.samples, resolution=args.resolution,
                         chunk_frames=args.chunk, passes=args.passes or ())
    _sigterm_to_interrupt()
    r = render_take(args.take, args.character, args.output, options=opts, frames=args.frames, replace=args.replace,
                    side_by_side=args.side_by_side, passes_dir=args.passes_dir, keep_frames=args.keep_frames,
                    progress=not args.quiet)
    print(f"rendered {r.frames} frames at {r.resolution[0]}x{r.resolution[1]} with {args.engine} "
          f"({r.seconds_per_frame:.2f} s per frame in Blender, {r.chunks} worker process(es)); {r.character}")
    for n in r.notes:
        if n.startswith(("root path", "face")) or "inpainted" in n:
            print(f"note: {n}")
    print(f"shot: {r.shot}")
    if r.side_by_side:
        print(f"side by side (original | synthetic actor): {r.side_by_side}")
    if r.passes_dir:
        print(f"passes: {r.passes_dir} ({', '.join(opts.passes)}; see passes.json)")
    if r.frames_dir:
        print(f"raw RGBA frames: {r.frames_dir}")
    return 0


def register(sub) -> None:
    from mocap.render import DEFAULT_ENGINE, DEFAULT_SAMPLES, ENGINES

    p = sub.add_parser(
        "render", help="render a solved take performed by a character (Blender, headless)",
        description="Retarget the solved take onto CHARACTER, match the footage's camera (the take's intrinsics "
                    "and the solved world), render with Blender in a fresh worker process per chunk of frames "
                    "and encode an H.264 MP4. --replace puts the character into the footage in place of the "
                    "performer (clean plate, contact shadow) and also writes a side-by-side video.")
    p.add_argument("take", metavar="TAKE", help="solved take folder (understudy track [--segmentation] + solve)")
    p.add_argument("--character", required=True, metavar="CHARACTER",
                   help="a character file (.glb .gltf .vrm) or a preset name (ada, ben, chen, dara: generated "
                        "at the performer's height)")
    p.add_argument("-o", "--output", required=True, metavar="SHOT.mp4", help="the video to write")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help=f"Blender render engine (default {DEFAULT_ENGINE}: measured fastest without a GPU; "
                        "eevee runs on software OpenGL here, about 20 s a frame)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help=f"samples per pixel for cycles/eevee (default {DEFAULT_SAMPLES})")
    p.add_argument("--resolution", type=wxh, default=None, metavar="WxH",
                   help="output size (default: the footage's, long side at most 640 px; same aspect ratio)")
    p.add_argument("--frames", metavar="A:B", help="take frames A to B-1 only (0-based; A: or :B leave a side open)")
    p.add_argument("--replace", action="store_true",
                   help="replace the performer in the footage (needs a take tracked with --segmentation); also "
                        "writes SHOT_side_by_side.mp4")
    p.add_argument("--side-by-side", metavar="SBS.mp4", help="where to write the side-by-side video (--replace)")
    p.add_argument("--passes", type=_passes, metavar="LIST",
                   help="also write conditioning passes, a comma list of pose,depth,normal,mask, as PNG "
                        "sequences in SHOT_passes/<pass>/000000.png (ComfyUI/ControlNet layout)")
    p.add_argument("--passes-dir", metavar="DIR", help="folder for the passes (default SHOT_passes/)")
    p.add_argument("--keep-frames", metavar="DIR", help="also keep Blender's raw RGBA frames in DIR")
    p.add_argument("--chunk", type=int, default=16, metavar="N",
                   help="frames per Blender worker process (default 16; a fresh process per chunk keeps long "
                        "takes rendering correctly)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_render)

