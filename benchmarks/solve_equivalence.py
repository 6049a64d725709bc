"""The solve pipeline now vs a reference commit: the same numbers, and how much faster.

The take is ``solve_throughput.py``'s (a CMU walk looped to 18,000 frames = 10 min at
30 fps, 10 mm noise, 2% of the frames dropped). The reference is the ``mocap`` package
(and ``assets``) of ``--base`` (default: the commit before the speed-ups), extracted with
``git archive`` into a temporary folder and imported as a second package, so both run in
one process on the same input.

Each round runs the four stages of ``mocap.pipeline.solve_markers`` (clean -> solve with
finger easing -> contacts -> foot lock, default options) once with each implementation,
alternating which goes first; per stage the best wall time and the best process CPU time
over the rounds count. On a shared, loaded machine the wall time mostly measures the
neighbours; the CPU time is what a stage costs (the filters' second thread included).

Equivalence: the largest absolute difference between the two results in the cleaned
markers (metres, NaN where missing must agree), the final local rotations (wxyz), the
root track and the world joint positions (FK of the final motion, metres); and whether the
foot contacts agree frame for frame, the cleanup reports (cutoffs, counts, notes) are the
same JSON, and the solve's held-frame counts come in the same order. The check passes at
<= 1e-9 (the stages are written to give the very same numbers: foot locking is not
continuous in its input, so a last-bit difference upstream can move a knee by 1e-5).

    .venv/bin/python benchmarks/solve_equivalence.py [--base COMMIT] [--rounds R]
        [--frames N] [--bvh PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DEFAULT_BASE = "0ac74d2"
"""The last commit before the solve pipeline's speed-ups (issue 3 benchmark work)."""
TOL = 1e-9
PHASES = ("clean", "solve", "contacts", "foot lock")


def extract_reference(base: str, into: Path) -> str:
    """``mocap`` and ``assets`` of commit ``base`` under ``into``, the package renamed to
    ``mocap_ref`` (its imports are relative; the skeleton is found in ``../assets``)."""
    tar = into / "ref.tar"
    with open(tar, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", base, "mocap", "assets"],
                       stdout=fh, check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(into, filter="data")
    (into / "mocap").rename(into / "mocap_ref")
    sys.path.insert(0, str(into))
    return "mocap_ref"


def load(pkg: str, take_arrays: dict, meta: dict):
    """The modules of package ``pkg`` and the take as its ``Markers``."""
    mods = {m: importlib.import_module(f"{pkg}.{m}") for m in ("pipeline", "markers", "cleanup", "solve", "contacts")}
    take = mods["markers"].Markers(take_arrays["names"], take_arrays["points"], take_arrays["timestamps"],
                                   confidence=take_arrays["confidence"], frame="world", meta=meta)
    return mods, take


def run_stages(mods: dict, take) -> dict[str, tuple[float, float]]:
    """The four stages of ``solve_markers`` with its default options, called one by one as
    it calls them, each timed: ``{stage: (wall s, process CPU s)}``."""
    P, C, S, K = mods["pipeline"], mods["cleanup"], mods["solve"], mods["contacts"]
    o = P.SolveOptions()
    out = {}

    def timed(name, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        r = fn()
        out[name] = (time.perf_counter() - w0, time.process_time() - c0)
        return r

    clean, _ = timed("clean", lambda: C.clean_markers(take, mode=o.mode, params=o.clean_params()))
    motion = timed("solve", lambda: P._ease_fingers(S.solve_motion(clean, limits=o.limits),
                                                    cutoff_hz=o.finger_cutoff_hz))

    def contacts():
        c = K.motion_contacts(motion, height_on=o.contact_height_m, height_off=1.6 * o.contact_height_m,
                              speed_on=o.contact_speed_m_s, speed_off=1.6 * o.contact_speed_m_s)
        return K.planted_contacts(motion, c, max_drift_m=o.max_slide_m)[0]

    c = timed("contacts", contacts)
    timed("foot lock", lambda: K.lock_feet(motion, c))
    return out


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| where both are finite; inf if NaN patterns or shapes differ."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    ok = ~np.isnan(a)
    return float(np.max(np.abs(a[ok] - b[ok]))) if ok.any() else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=DEFAULT_BASE, help="reference commit (default: before the speed-ups)")
    ap.add_argument("--rounds", type=int, default=5, help="runs of each implementation (best counts)")
    ap.add_argument("--frames", type=int, default=18_000, help="frames of the take (18000 = 10 min at 30 fps)")
    ap.add_argument("--bvh", type=Path, default=None, help="CMU BVH the take is made from")
    args = ap.parse_args()
    import solve_throughput as st

    bvh = args.bvh or st.DEFAULT_BVH
    if not bvh.exists():
        print(f"BVH not found: {bvh} (the default lives in ../shared/mocap)", file=sys.stderr)
        return 2
    if args.rounds < 1 or args.frames < 2:
        print("--rounds must be >= 1 and --frames >= 2", file=sys.stderr)
        return 2
    take, _ = st.build_take(bvh, args.frames, pose_only=False, noise_mm=10.0, dropout=0.02)
    arrays = {"names": take.names, "points": take.points, "timestamps": take.timestamps,
              "confidence": take.confidence}
    T = len(take)
    with tempfile.TemporaryDirectory(prefix="understudy-ref-") as tmp:
        ref_pkg = extract_reference(args.base, Path(tmp))
        impls = {"reference": load(ref_pkg, arrays, dict(take.meta)), "current": load("mocap", arrays, dict(take.meta))}
        wall = {k: dict.fromkeys(PHASES, np.inf) for k in impls}
        cpu = {k: dict.fromkeys(PHASES, np.inf) for k in impls}
        for r in range(args.rounds):
            order = list(impls) if r % 2 == 0 else list(impls)[::-1]
            line = []
            for name in order:
                t = run_stages(*impls[name])
                for p in PHASES:
                    wall[name][p] = min(wall[name][p], t[p][0])
                    cpu[name][p] = min(cpu[name][p], t[p][1])
                line.append(f"{name} clean+solve {T / (t['clean'][0] + t['solve'][0]):,.0f} f/s")
            print(f"  round {r + 1}: " + ", ".join(line), flush=True)
        # the pipeline's own entry point, once each, for the equivalence check
        results = {name: mods["pipeline"].solve_markers(tk, mods["pipeline"].SolveOptions())
                   for name, (mods, tk) in impls.items()}

    print(f"\n{T} frames, best of {args.rounds} rounds per stage, frames/s by wall clock and by "
          "process CPU time\n(CPU: the cost on an idle core; the wall clock also counts the "
          "neighbours' load and gains from the filters' two threads)")
    print(f"  {'stage':<14}{'ref wall':>10}{'cur wall':>10}{'x':>7}{'ref CPU':>10}{'cur CPU':>10}{'x':>7}")
    groups = [(p, (p,)) for p in PHASES] + [("clean + solve", ("clean", "solve")), ("all four", PHASES)]
    for label, ps in groups:
        aw, bw = (sum(wall[k][p] for p in ps) for k in impls)
        ac, bc = (sum(cpu[k][p] for p in ps) for k in impls)
        print(f"  {label:<14}{T / aw:10,.0f}{T / bw:10,.0f}{aw / bw:6.2f}x{T / ac:10,.0f}{T / bc:10,.0f}{ac / bc:6.2f}x")

    a, b = results["reference"], results["current"]
    diffs = {
        "clean markers (m)": max_diff(a.clean.points, b.clean.points),
        "local rotations": max_diff(a.motion.rotations, b.motion.rotations),
        "root positions (m)": max_diff(a.motion.root_positions, b.motion.root_positions),
        "joint positions (m)": max_diff(a.motion.positions(), b.motion.positions()),
    }
    same_contacts = a.contacts.keys() == b.contacts.keys() and all(
        np.array_equal(a.contacts[k], b.contacts[k]) for k in a.contacts)
    # the cleanup report (cutoffs, counts, notes, in order) and the solve's held frames
    same_report = json.dumps(a.clean_report.to_json()) == json.dumps(b.clean_report.to_json())
    same_held = list(a.motion.meta["held_frames"].items()) == list(b.motion.meta["held_frames"].items())
    print("\nequivalence (max |reference - current|):")
    for k, v in diffs.items():
        print(f"  {k:<22}{v:.3g}")
    print(f"  foot contacts          {'identical' if same_contacts else 'DIFFERENT'}")
    print(f"  cleanup report         {'identical' if same_report else 'DIFFERENT'}")
    print(f"  held frames (in order) {'identical' if same_held else 'DIFFERENT'}")
    ok = same_contacts and same_report and same_held and all(v <= TOL for v in diffs.values())
    print(f"{'PASS' if ok else 'FAIL'}: every difference <= {TOL:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
