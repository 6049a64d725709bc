"""Solve throughput, measured in one run on one synthetic 10-minute take.

The take: a real CMU motion (default ``cmu_131_01_walk.bvh``) resampled to 30 fps and
turned into world-frame markers by ``synth_markers`` (body: the 33 pose landmarks plus
mid-hip/mid-shoulder and the semantic face points the head gives; no hand landmarks, as
the CMU skeleton has no fingers; ``--pose-only`` drops the face points too). The clip is
looped to 18,000 frames (10 min at 30 fps) between the two frames that look most alike
(first third vs last third, in the body's own heading frame): each copy is turned about
the vertical and moved so it carries on where, and facing the way, the previous one ended,
so a seam is no bigger a step than an ordinary frame (it is printed), and timestamps run
on strictly increasing at 1/30 s. ``degrade_markers`` then adds 10 mm of noise and drops
2% of the frames (the whole person lost).

(a) ours: ``solve_markers`` (clean -> solve -> contacts -> foot lock) on the whole take,
    with the clean and solve stages timed separately (``result.timings``);
(b) the naive baseline: the per-frame Python loop someone would write first. Clean: hold
    the last value through a dropout, then one exponential low-pass step per frame
    (the 5 Hz one-pole equivalent). Solve: per frame, the hips from the hip line and the
    hips->shoulders direction (``Rotation.align_vectors`` with two vectors), then per
    bone the swing from its rest direction to the observed one (``align_vectors`` in the
    parent's frame) composed down the hierarchy. It runs on the first ``--naive-frames``
    frames (600) and its frames/s is extrapolated to the take. It does less than (a): no
    swap repair, spike rejection, zero-phase filtering, bone lengths, joint limits,
    twist, contacts or foot lock.

Each configuration runs ``--rounds`` times, interleaved, and the best time counts.
Target from issue 3: (a) clean + solve >= 20,000 body frames/s.

    .venv/bin/python benchmarks/solve_throughput.py [--bvh PATH] [--frames N]
        [--naive-frames N] [--rounds R] [--pose-only]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_BVH = ROOT.parent / "shared" / "mocap" / "cmu_131_01_walk.bvh"
FPS = 30.0
TARGET_FPS = 20_000
FILM_FRAMES = 162_000  # 90 minutes at 30 fps


# -- the take -----------------------------------------------------------------------------


def _headings(points: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Yaw of the hip line about +Y (radians, ``(T,)``) and the mid-hip ``(T, 3)`` of
    frames ``(T, N, 3)``."""
    lh, rh = points[:, names.index("pose.left_hip")], points[:, names.index("pose.right_hip")]
    lat = lh - rh
    return np.arctan2(lat[:, 2], lat[:, 0]), 0.5 * (lh + rh)


def _ry(yaw: np.ndarray) -> np.ndarray:
    """Rotations about +Y, ``(..., 3, 3)``: x' = c x + s z, z' = -s x + c z (a horizontal
    vector at angle phi = atan2(z, x) ends up at phi - yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros(np.shape(yaw) + (3, 3))
    R[..., 0, 0], R[..., 0, 2], R[..., 1, 1], R[..., 2, 0], R[..., 2, 2] = c, s, 1.0, -s, c
    return R


def find_loop(points: np.ndarray, names: tuple[str, ...], fps: float) -> tuple[int, int, float, float]:
    """A loop ``(i, j, pose_rms_m, velocity_rms_m_s)``: frame i looks most like frame j
    (i in the first third, j in the last), compared in each frame's own heading frame
    (mid-hip at the origin, hip line along +X), positions plus 0.1 s of velocity."""
    yaw, hip = _headings(points, names)
    hip[:, 1] = 0.0
    R = _ry(yaw)
    C = np.einsum("tij,tnj->tni", R, points - hip[:, None])
    V = np.einsum("tij,tnj->tni", R, np.gradient(points, axis=0) * fps)
    n = len(points)
    js = np.arange(max(2 * n // 3, 1), n)
    best = (np.inf, 0, n - 1, 0.0, 0.0)
    for i in range(max(n // 3, 1)):
        pc = np.sqrt(((C[js] - C[i]) ** 2).sum(-1).mean(-1))
        vc = np.sqrt(((V[js] - V[i]) ** 2).sum(-1).mean(-1))
        k = int(np.argmin(pc + 0.1 * vc))
        if pc[k] + 0.1 * vc[k] < best[0]:
            best = (pc[k] + 0.1 * vc[k], i, int(js[k]), float(pc[k]), float(vc[k]))
    return best[1:]


def build_take(bvh: Path, frames: int, *, pose_only: bool, noise_mm: float, dropout: float):
    """The degraded take and a description of how it was made."""
    from mocap.bvh import load_bvh
    from mocap.markers import Markers
    from mocap.synth import degrade_markers, synth_mapping, synth_markers

    motion = load_bvh(bvh).resample(FPS)
    clip = synth_markers(motion, mapping=synth_mapping(motion))
    keep = [k for k, n in enumerate(clip.names)
            if n.startswith("pose.") or (n.startswith("face.") and not pose_only)]
    names = tuple(clip.names[k] for k in keep)
    pts = clip.points[:, keep]
    info = {"clip_frames": len(pts), "markers": len(names),
            "face_markers": sum(n.startswith("face.") for n in names)}
    if len(pts) < frames:
        i, j, pos_rms, vel_rms = find_loop(pts, names, FPS)
        base = pts[i:j + 1]
        # every later copy continues from the previous copy's last frame: its frame i is
        # put where frame j was (turned to that heading, moved to that mid-hip) and left
        # out, so the take goes j -> i+1 -> ... -> j -> i+1 ...
        flat = np.array([1.0, 0.0, 1.0])
        yaw0, hip0 = _headings(base[:1], names)
        tiles = [base]
        total = len(base)
        while total < frames:
            yaw_e, hip_e = _headings(tiles[-1][-1:], names)
            tiles.append((base[1:] - hip0 * flat) @ _ry(yaw0[0] - yaw_e[0]).T + hip_e * flat)
            total += len(base) - 1
        pts = np.concatenate(tiles)[:frames]
        info.update(loop=(i, j), tiles=len(tiles), seam_pose_rms_m=pos_rms, seam_vel_rms_m_s=vel_rms)
    else:
        pts = pts[:frames]
    take = Markers(names, pts, np.arange(len(pts)) / FPS, frame="world", meta={**clip.meta, "fps": FPS})
    return degrade_markers(take, noise_mm=noise_mm, dropout=dropout, seed=0), info


# -- (a) ours -----------------------------------------------------------------------------


def run_ours(take) -> dict[str, float]:
    from mocap.pipeline import SolveOptions, solve_markers

    t0 = time.perf_counter()
    result = solve_markers(take, SolveOptions())
    total = time.perf_counter() - t0
    if not np.isfinite(result.motion.rotations).all():  # a broken solve's speed means nothing
        raise SystemExit("solve_markers returned non-finite rotations")
    return {"total": total, **result.timings}


# -- (b) the naive per-frame loop ---------------------------------------------------------


class NaiveSolver:
    """Per frame, per bone: swing from rest to observed direction, composed down the tree."""

    def __init__(self, names: tuple[str, ...]) -> None:
        from scipy.spatial.transform import Rotation

        from mocap.skeleton import canonical_spec

        self.R = Rotation
        sk = canonical_spec().skeleton
        self.sk = sk
        rest = sk.rest_positions()
        idx = {n: i for i, n in enumerate(names)}
        self.idx = idx
        J = lambda n: sk.index(n)  # noqa: E731
        # hips: rest hip line (left - right) and rest hips -> neck
        self.hips_rest = np.stack([rest[J("leftUpperLeg")] - rest[J("rightUpperLeg")],
                                   rest[J("neck")] - rest[J("hips")]])
        # (joint, observed bone from marker a to marker b, rest child position)
        # markers may be a tuple (midpoint of several)
        bones = [
            ("spine", "pose.mid_hip", "pose.mid_shoulder", "neck"),
            ("neck", "pose.mid_shoulder", ("pose.left_ear", "pose.right_ear"), "head"),
        ]
        for s in ("left", "right"):
            bones += [
                (f"{s}Shoulder", "pose.mid_shoulder", f"pose.{s}_shoulder", f"{s}UpperArm"),
                (f"{s}UpperArm", f"pose.{s}_shoulder", f"pose.{s}_elbow", f"{s}LowerArm"),
                (f"{s}LowerArm", f"pose.{s}_elbow", f"pose.{s}_wrist", f"{s}Hand"),
                (f"{s}Hand", f"pose.{s}_wrist", (f"pose.{s}_index", f"pose.{s}_pinky"), None),
                (f"{s}UpperLeg", f"pose.{s}_hip", f"pose.{s}_knee", f"{s}LowerLeg"),
                (f"{s}LowerLeg", f"pose.{s}_knee", f"pose.{s}_ankle", f"{s}Foot"),
                (f"{s}Foot", f"pose.{s}_ankle", f"pose.{s}_foot_index", f"{s}Toes"),
            ]
        self.bones = []
        for joint, a, b, child in bones:
            j = J(joint)
            if child is None:  # the hand: rest direction towards the index/little knuckles
                tip = 0.5 * (rest[J(f"{joint[:-4]}IndexProximal")] + rest[J(f"{joint[:-4]}LittleProximal")])
            else:
                tip = rest[J(child)]
            d = tip - rest[j]
            ia = [idx[a]] if isinstance(a, str) else [idx[x] for x in a]
            ib = [idx[b]] if isinstance(b, str) else [idx[x] for x in b]
            self.bones.append((j, int(sk.parents[j]), ia, ib, d / np.linalg.norm(d)))
        self.i_lh, self.i_rh = idx["pose.left_hip"], idx["pose.right_hip"]
        self.i_mh, self.i_ms = idx["pose.mid_hip"], idx["pose.mid_shoulder"]

    def clean(self, points: np.ndarray, t: np.ndarray, cutoff_hz: float = 5.0) -> np.ndarray:
        """Hold through dropouts, one-pole low-pass, frame by frame."""
        out = np.empty_like(points)
        y = None
        for i in range(len(points)):
            x = points[i]
            if y is None:
                y = x.copy()
            else:
                dt = t[i] - t[i - 1]
                a = 1.0 - math.exp(-2.0 * math.pi * cutoff_hz * dt)
                seen = np.isfinite(x)
                y = np.where(seen, y + a * (x - y), y)
            out[i] = y
        return out

    def solve(self, points: np.ndarray) -> np.ndarray:
        """``(T, J, 4)`` wxyz local rotations, frame by frame."""
        R = self.R
        T, Jn = len(points), len(self.sk)
        out = np.zeros((T, Jn, 4))
        out[..., 0] = 1.0
        ident = R.identity()
        for i in range(T):
            p = points[i]
            g = [ident] * Jn  # global rotations; unsolved joints follow their parent
            obs = np.stack([p[self.i_lh] - p[self.i_rh], p[self.i_ms] - p[self.i_mh]])
            g[0], _ = R.align_vectors(obs, self.hips_rest)
            local = {0: g[0]}
            for j in range(1, Jn):
                g[j] = g[int(self.sk.parents[j])]
            for j, parent, ia, ib, rest_dir in self.bones:
                d = p[ib].mean(0) - p[ia].mean(0)
                gp = g[parent]
                d_local = gp.inv().apply(d)
                lj, _ = R.align_vectors(d_local[None], rest_dir[None])
                local[j] = lj
                g[j] = gp * lj
                for c in self.sk.children(j):  # children without a bone inherit
                    g[c] = g[j]
            for j, lj in local.items():
                q = lj.as_quat()  # xyzw
                out[i, j] = (q[3], q[0], q[1], q[2])
        return out


def run_naive(solver: NaiveSolver, take, n: int) -> dict[str, float]:
    pts = np.array(take.points[:n])
    t = take.timestamps[:n]
    t0 = time.perf_counter()
    clean = solver.clean(pts, t)
    t1 = time.perf_counter()
    rot = solver.solve(clean)
    t2 = time.perf_counter()
    if not np.isfinite(rot).all():
        raise SystemExit("naive baseline returned non-finite rotations")
    return {"clean": t1 - t0, "solve": t2 - t1, "total": t2 - t0}


# -- main ---------------------------------------------------------------------------------


def _hms(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{int(m)} min {s:02.0f} s"
    h, m = divmod(m, 60)
    return f"{int(h)} h {int(m):02d} min"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bvh", type=Path, default=DEFAULT_BVH)
    ap.add_argument("--frames", type=int, default=18_000, help="frames of the take (18000 = 10 min at 30 fps)")
    ap.add_argument("--naive-frames", type=int, default=600, help="frames the naive loop runs on")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pose-only", action="store_true", help="drop the face.* points (pose landmarks only)")
    args = ap.parse_args()
    if not args.bvh.exists():
        print(f"BVH not found: {args.bvh} (the default lives in ../shared/mocap)", file=sys.stderr)
        return 2
    if args.frames < 2 or args.naive_frames < 2 or args.rounds < 1:
        print("--frames and --naive-frames must be >= 2, --rounds >= 1", file=sys.stderr)
        return 2

    take, info = build_take(args.bvh, args.frames, pose_only=args.pose_only, noise_mm=10.0, dropout=0.02)
    T = len(take)
    n_naive = min(args.naive_frames, T)
    if "loop" in info:
        i, j = info["loop"]
        how = (f"frames {i}-{j} of {info['clip_frames']} looped x{info['tiles']} (seam: "
               f"{100 * info['seam_pose_rms_m']:.1f} cm, {info['seam_vel_rms_m_s']:.2f} m/s RMS)")
    else:
        how = f"first {T} of {info['clip_frames']} frames"
    print(f"take: {args.bvh.name} at {FPS:g} fps, {how} -> {T} frames ({T / FPS / 60:.1f} min)")
    print(f"      {info['markers']} markers ({info['markers'] - info['face_markers']} pose, "
          f"{info['face_markers']} face, 0 hand), 10 mm noise, 2% frames dropped "
          f"({len(take.meta['dropped_frames'])})")

    naive = NaiveSolver(take.names)
    best_ours: dict[str, float] | None = None
    best_naive: dict[str, float] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # align_vectors on one vector, older scipy
        for r in range(args.rounds):
            o = run_ours(take)
            if best_ours is None or o["total"] < best_ours["total"]:
                best_ours = o
            print(f"  round {r + 1}: (a) solve_markers   {T / o['total']:9,.0f} frames/s "
                  f"(clean {o['clean']:.2f} s, solve {o['solve']:.2f} s, contacts {o['contacts']:.2f} s, "
                  f"foot lock {o['foot lock']:.2f} s)", flush=True)
            b = run_naive(naive, take, n_naive)
            if best_naive is None or b["total"] < best_naive["total"]:
                best_naive = b
            print(f"  round {r + 1}: (b) naive loop      {n_naive / b['total']:9,.0f} frames/s "
                  f"({n_naive} frames: clean {b['clean']:.2f} s, solve {b['solve']:.2f} s)", flush=True)
    assert best_ours is not None and best_naive is not None

    a_all = T / best_ours["total"]
    a_cs = T / (best_ours["clean"] + best_ours["solve"])
    a_clean, a_solve = T / best_ours["clean"], T / best_ours["solve"]
    b_all = n_naive / best_naive["total"]
    b_clean, b_solve = n_naive / best_naive["clean"], n_naive / best_naive["solve"]
    print("\nbest of rounds (frames/s):")
    print(f"  (a) ours, clean+solve+contacts+lock {a_all:10,.0f}   ({T} frames in {best_ours['total']:.2f} s)")
    print(f"  (a) ours, clean + solve             {a_cs:10,.0f}")
    print(f"  (a) ours, clean                     {a_clean:10,.0f}")
    print(f"  (a) ours, solve                     {a_solve:10,.0f}")
    print(f"  (b) naive, clean + solve            {b_all:10,.0f}   (measured on {n_naive} frames, "
          f"extrapolated: {T} frames would take {_hms(T / b_all)})")
    print(f"  (b) naive, clean                    {b_clean:10,.0f}")
    print(f"  (b) naive, solve                    {b_solve:10,.0f}")
    print(f"\n(a)/(b), whole pipeline vs naive    = {a_all / b_all:.1f}x")
    print(f"(a)/(b), clean + solve vs naive     = {a_cs / b_all:.1f}x")
    ok = "met" if a_cs >= TARGET_FPS else "NOT met"
    print(f"target (issue 3): clean + solve >= {TARGET_FPS:,} body frames/s: {a_cs:,.0f} -> {ok}")
    film = FILM_FRAMES / FPS / 60
    print(f"\na {film:.0f}-minute film ({FILM_FRAMES:,} frames at {FPS:g} fps) at these rates:")
    print(f"  (a) whole pipeline  {_hms(FILM_FRAMES / a_all)}")
    print(f"  (a) clean + solve   {_hms(FILM_FRAMES / a_cs)}")
    print(f"  (b) naive loop      {_hms(FILM_FRAMES / b_all)} (extrapolated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
