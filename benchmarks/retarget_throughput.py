"""Retargeting throughput, measured in one run.

(1) frames/s of ``retarget()`` for one rig: a 10-minute canonical motion (18,000 frames at
    30 fps, solved from the CMU walk and looped) onto ``mh_male_casual_cmu31.glb``
    (MakeHuman, A-pose, CMU names), with foot IK (default) and without, beside a naive
    per-frame loop (per frame, per mapped bone: scipy ``align_vectors`` of the bone
    direction, then globals to locals) measured on a few hundred frames and extrapolated.
    Target from issue 4: >= 20,000 body frames/s.
(2) the batch speed-up from 1 to 2 local workers: the same manifest (12 takes x 1
    character, GLB out) run by ``understudy batch`` with ``--workers 1`` and ``2``, wall
    time each (best of two), and the ratio (2 cores here, so at most 2x). Each job takes
    about 0.4 s, so a worker's start-up (~1 s) shows: with 6 takes the ratio was ~1.0,
    with 12 it is ~1.7. Other load on the machine takes the second core away: measure
    on an idle machine.

    .venv/bin/python benchmarks/retarget_throughput.py [--frames N] [--takes K]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def canonical_motion(frames: int):
    """The CMU walk solved onto the canonical skeleton, looped to ``frames`` at 30 fps."""
    from mocap.bvh import load_bvh
    from mocap.motion import Motion
    from mocap.solve import solve_motion
    from mocap.synth import synth_mapping, synth_markers

    src = load_bvh(SHARED / "mocap" / "cmu_131_01_walk.bvh").resample(30)
    m = solve_motion(synth_markers(src, mapping=synth_mapping(src)))
    reps = -(-frames // m.n_frames)
    rot = np.concatenate([m.rotations] * reps)[:frames]
    root = np.concatenate([m.root_positions] * reps)[:frames]
    return Motion(skeleton=m.skeleton, rotations=rot, root_positions=root, fps=30.0)


def naive(motion, rig, n: int) -> float:
    """Per-frame loop: per mapped bone, align the rest direction to the source's world
    direction with scipy, then turn world rotations into locals joint by joint."""
    from scipy.spatial.transform import Rotation

    from retarget.retarget import map_bones

    pairs = list(map_bones(motion.skeleton, rig.skeleton, target_map=rig.bonemap).pairs.values())
    sk_s, sk_t = motion.skeleton, rig.skeleton
    P = motion.slice(0, n).positions()
    rest_t = sk_t.rest_positions()
    par_t = sk_t.parents
    t0 = time.perf_counter()
    for f in range(n):
        glob = {}
        for s_name, t_name in pairs:
            js, jt = sk_s.index(s_name), sk_t.index(t_name)
            kids_s = sk_s.children(js)
            kids_t = sk_t.children(jt)
            if not kids_s or not kids_t:
                continue
            d_s = P[f, kids_s[0]] - P[f, js]
            d_t = rest_t[kids_t[0]] - rest_t[jt]
            r, _ = Rotation.align_vectors([d_s], [d_t])
            glob[jt] = r
        for jt, r in glob.items():
            p = par_t[jt]
            _ = (glob[p].inv() * r) if p in glob else r
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=18000)
    ap.add_argument("--naive-frames", type=int, default=300)
    ap.add_argument("--takes", type=int, default=12, help="takes in the batch manifest")
    args = ap.parse_args()
    char = SHARED / "characters" / "mh_male_casual_cmu31.glb"
    if not char.exists():
        print(f"{char} not found: the benchmark needs ../shared", file=sys.stderr)
        return 2
    from mocap.motion_io import save_motion
    from retarget.retarget import retarget
    from retarget.rig import load_rig

    motion = canonical_motion(args.frames)
    rig = load_rig(char)
    retarget(motion.slice(0, 300), rig)  # warm-up (imports, caches)
    best = {}
    for _ in range(2):
        for name, kw in (("foot IK (default)", {}), ("no foot IK", {"foot_ik": False})):
            t0 = time.perf_counter()
            res = retarget(motion, rig, **kw)
            best[name] = max(best.get(name, 0.0), motion.n_frames / (time.perf_counter() - t0))
    naive_fps = naive(motion, rig, args.naive_frames)
    print(f"retarget {motion.n_frames} frames ({motion.n_frames / 30 / 60:.0f} min at 30 fps) onto {char.name}:")
    for name, fps in best.items():
        print(f"  ours, {name:18s} {fps:10,.0f} frames/s")
    print(f"  naive per-frame loop     {naive_fps:10,.0f} frames/s (measured on {args.naive_frames} frames)")
    print(f"  ratio ours/naive = {best['foot IK (default)'] / naive_fps:.0f}x; "
          f"target >= 20,000 frames/s: {'met' if best['foot IK (default)'] >= 20000 else 'NOT met'}")
    print(f"  last pass timings (s): {res.timings}")

    # -- batch speed-up, 1 vs 2 workers -----------------------------------------------------
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        take_motion = motion.slice(0, 9000)  # 5 minutes each
        lines = ['schema = "understudy.batch"', "schema_version = 1", 'output_dir = "out"']
        for k in range(args.takes):
            save_motion(take_motion, d / f"take{k}.npz")
            lines += ["[[take]]", f'path = "take{k}.npz"']
        (d / "hero.glb").write_bytes(char.read_bytes())
        lines += ["[[character]]", 'path = "hero.glb"', "[settings]", 'formats = ["glb"]']
        (d / "shoot.toml").write_text("\n".join(lines) + "\n")
        times = {}
        for _ in range(2):  # best of two, alternating, so a burst of other load hits both alike
            for w in (1, 2):
                out = d / "out"
                if out.exists():
                    for f in out.iterdir():
                        f.unlink()
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "mocap.cli", "batch", str(d / "shoot.toml"),
                                    "--workers", str(w)], capture_output=True, text=True)
                times[w] = min(times.get(w, np.inf), time.perf_counter() - t0)
                if r.returncode != 0:
                    print(r.stderr[-2000:], file=sys.stderr)
                    return 1
        print(f"\nbatch of {args.takes} takes x 1 character (5 min each, GLB out):")
        print(f"  1 worker  {times[1]:6.1f} s\n  2 workers {times[2]:6.1f} s\n  speed-up  {times[1] / times[2]:.2f}x "
              "(2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
