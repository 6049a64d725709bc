"""Make the demo's default footage: a generated actor performs a motion the project authors.

    .venv/bin/python scripts/make_demo_footage.py            # writes assets/demo/*
    .venv/bin/python scripts/make_demo_footage.py --check    # and tracks it with MediaPipe

Nothing here comes from a mocap library. The motion is **procedural** (:func:`author_motion`):
on Understudy's canonical skeleton a performer walks in from the left of the frame (a
sine gait: hips swing the thighs, knees flex in the swing phase, arms counter-swing),
turns to the camera and waves with the right hand. It is written as
``assets/demo/walk_wave.bvh`` (metres, 30 fps).

The footage (:func:`render_footage`) is that motion retargeted onto the generated
character ``ben`` and rendered by Understudy's own Blender pipeline
(:func:`mocap.render.render_frames`, Cycles) with a fixed virtual camera, composited
over a simple procedural set (a panelled wall and a tiled floor, drawn by casting the
camera's rays, so the floor has true perspective) with the pipeline's contact shadow,
and encoded as ``assets/demo/walk_wave.mp4``. Deterministic for a given Blender.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mocap.glossary import A2Q, Q_mul  # noqa: E402
from mocap.motion import Motion  # noqa: E402

FPS = 30.0
DURATION_S = 3.0
SIZE = (480, 360)
OUT_DIR = ROOT / "assets" / "demo"


def _rot(axis: str, deg) -> np.ndarray:
    """Quaternions ``(T, 4)`` wxyz of rotations by ``deg`` ``(T,)`` about a world axis."""
    deg = np.asarray(deg, float)
    a = np.zeros(deg.shape + (3,))
    a[..., "xyz".index(axis)] = np.radians(deg)
    return A2Q(a)


def _smooth(t, t0, t1):
    """0 before t0, 1 after t1, a smoothstep between."""
    x = np.clip((np.asarray(t, float) - t0) / (t1 - t0), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def author_motion(fps: float = FPS, duration_s: float = DURATION_S) -> Motion:
    """The demo performance on the canonical skeleton: walk in from x = -1.45 m facing +X
    (1.0 s), turn to face the camera (+Z, 0.6 s), wave the right hand (the rest)."""
    from mocap.skeleton import canonical_skeleton

    sk = canonical_skeleton()
    T = int(round(duration_s * fps))
    t = np.arange(T) / fps
    Q = np.tile([1.0, 0.0, 0.0, 0.0], (T, len(sk), 1))

    def put(name, q):
        j = sk.index(name)
        Q[:, j] = Q_mul(q, Q[:, j])

    walk = 1.0 - _smooth(t, 0.9, 1.3)         # gait amplitude: 1 while walking, eases to 0
    turn = _smooth(t, 1.0, 1.6)                # 0 facing +X, 1 facing the camera
    wave = _smooth(t, 1.6, 2.0)                # right arm up
    phase = 2 * np.pi * 0.95 * t               # one stride (two steps) per 1.05 s
    # trunk: yaw from +X (90 deg) to the camera (0), a little counter-rotation while walking
    put("hips", _rot("y", 90.0 * (1 - turn)))
    put("chest", _rot("y", -6.0 * walk * np.sin(phase)))
    # legs: thigh swing (forward = negative about x), knee flex in the swing phase
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        s = np.sin(phase) * sgn
        put(f"{side}UpperLeg", _rot("x", -24.0 * walk * s))
        knee = np.clip(np.cos(phase + 0.3 + (0.0 if sgn > 0 else np.pi)), 0.0, None)  # flexed in the swing
        put(f"{side}LowerLeg", _rot("x", 40.0 * walk * knee))
        put(f"{side}Foot", _rot("x", -8.0 * walk * s))
    # arms: down from the T-pose (about z), counter-swing while walking
    put("leftUpperArm", Q_mul(_rot("x", 18.0 * walk * np.sin(phase)), _rot("z", np.full(T, -72.0))))
    put("leftLowerArm", _rot("x", np.full(T, -12.0)))
    right_down = -18.0 * walk * np.sin(phase)
    # the wave: upper arm from 72 deg down to 35 deg up, forearm up and swinging about the view axis
    up = 72.0 - wave * (72.0 + 35.0)
    put("rightUpperArm", Q_mul(_rot("x", right_down), _rot("z", up)))
    swing = 22.0 * np.sin(2 * np.pi * 1.8 * np.clip(t - 1.9, 0.0, None)) * _smooth(t, 1.9, 2.1)
    put("rightLowerArm", _rot("z", -12.0 * (1 - wave) - (70.0 + swing) * wave))
    put("rightLowerArm", _rot("x", np.full(T, -10.0) * (1 - wave)))
    put("head", _rot("y", -35.0 * (1 - turn) * (t < 1.3)))
    # root: walk along +X, then stand; the lowest foot point stays on the floor
    x = -1.45 + 1.45 * _smooth(t, 0.0, 1.25) ** 0.9
    root = np.zeros((T, 3))
    root[:, 0] = x
    root[:, 1] = sk.offsets[0][1]
    root[:, 2] = -0.3 + 0.3 * turn
    m = Motion(skeleton=sk, rotations=Q, root_positions=root, fps=fps, meta={"source": "understudy demo walk_wave"})
    P, _ = m.fk()
    feet = [sk.index(n) for n in ("leftFoot", "rightFoot", "leftToes", "rightToes")]
    rest_low = sk.rest_positions()[feet, 1].min()
    root[:, 1] += rest_low - P[:, feet, 1].min(axis=1)
    return Motion(skeleton=sk, rotations=Q, root_positions=root, fps=fps, meta=m.meta)


def demo_camera(size=SIZE):
    """A fixed camera 3.9 m in front of the stage, 1.25 m high, tilted 5 deg down, 52 deg
    horizontal field of view."""
    from mocap.render import Camera

    W, H = size
    f = 0.5 * W / np.tan(np.radians(52.0) / 2)
    tilt = np.radians(-5.0)
    T = np.eye(4)
    T[:3, :3] = [[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]]
    T[:3, 3] = [0.0, 1.25, 3.9]
    return Camera(T, f, f, W / 2.0, H / 2.0, W, H)


def draw_set(camera) -> np.ndarray:
    """The set seen by ``camera``: a tiled floor (y = 0) and a panelled wall (z = -2.5 m),
    by casting one ray per pixel. ``(H, W, 3)`` uint8."""
    W, H = camera.width, camera.height
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    d_cam = np.stack([(u - camera.cx) / camera.fx, -(v - camera.cy) / camera.fy, -np.ones_like(u)], -1)
    R, o = camera.T_world_from_camera[:3, :3], camera.T_world_from_camera[:3, 3]
    d = d_cam @ R.T
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[..., 1] < 0, -o[1] / d[..., 1], np.inf)
        t_wall = np.where(d[..., 2] < 0, (-2.5 - o[2]) / d[..., 2], np.inf)
    hit_floor = t_floor < t_wall
    t_hit = np.minimum(t_floor, t_wall)
    p = o + d * t_hit[..., None]
    img = np.zeros((H, W, 3))
    # floor: 0.5 m tiles, two warm greys, thin grout
    tx, tz = p[..., 0] / 0.5, p[..., 2] / 0.5
    checker = (np.floor(tx) + np.floor(tz)) % 2
    grout = (np.abs(tx - np.round(tx)) < 0.02) | (np.abs(tz - np.round(tz)) < 0.02)
    floor = np.where(checker[..., None] > 0, [150, 138, 120], [128, 117, 101])
    floor = np.where(grout[..., None], [95, 88, 78], floor)
    # wall: pale blue-grey with 1.2 m panels and a skirting board
    wx = p[..., 0] / 1.2
    seam = np.abs(wx - np.round(wx)) < 0.012
    wall = np.where(seam[..., None], [150, 158, 166], [188, 196, 204])
    wall = np.where((p[..., 1] < 0.12)[..., None], [120, 110, 100], wall)
    img = np.where(hit_floor[..., None], floor, wall)
    # soft vignette so the frame is not flat
    r2 = ((u - W / 2) / W) ** 2 + ((v - H / 2) / H) ** 2
    img = img * (1.0 - 0.35 * r2)[..., None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_footage(motion: Motion, out: Path, *, preset: str = "ben", samples: int = 16,
                   size=SIZE, progress: bool = True) -> Path:
    """Render ``motion`` performed by the generated character ``preset`` over the set."""
    from mocap.compose import composite, contact_shadow
    from mocap.overlay import VideoWriter
    from mocap.render import RenderOptions, read_rgba, render_frames
    from retarget.character import generate_character, save_character
    from retarget.retarget import retarget
    from retarget.rig import export_glb, load_rig

    cam = demo_camera(size)
    backdrop = draw_set(cam)
    with tempfile.TemporaryDirectory(prefix="understudy-demo-") as work:
        work = Path(work)
        rig = load_rig(save_character(generate_character(preset=preset), work / f"{preset}.glb"))
        res = retarget(motion, rig)
        glb = export_glb(rig, res.motion, work / "performance.glb")
        frames = render_frames(glb, motion.fps, motion.n_frames, cam,
                               RenderOptions(engine="cycles", samples=samples), work / "frames", progress=progress)
        P, _ = res.motion.fk()
        names = res.motion.skeleton.names
        feet = [names.index(n) for n in ("leftFoot", "rightFoot", "leftToes", "rightToes")]
        with VideoWriter(out, fps=motion.fps, crf=26) as w:
            for k, png in enumerate(frames.png):
                shadow = contact_shadow(P[k, feet], P[k, 0], cam.project, size)
                w.write(composite(backdrop, read_rgba(png, size), shadow), k / motion.fps)
    out.chmod(0o644)  # a shipped file: readable by all (the writer's temporary file was private)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(OUT_DIR), help="folder to write (default assets/demo)")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples (default 16)")
    ap.add_argument("--check", action="store_true", help="also track the footage and report what MediaPipe found")
    args = ap.parse_args()
    from mocap.bvh import save_bvh

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    motion = author_motion()
    save_bvh(motion, out / "walk_wave.bvh")
    video = render_footage(motion, out / "walk_wave.mp4", samples=args.samples)
    print(f"written {out / 'walk_wave.bvh'} and {video} ({video.stat().st_size / 1e3:.0f} kB)")
    if args.check:
        from mocap.sources import open_source
        from mocap.tracking import TrackOptions, track

        with open_source(str(video)) as src:
            take = track(src, options=TrackOptions(), progress=True)
        print(take.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
