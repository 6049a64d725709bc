"""Auto-rig accuracy: ours vs the naive fit, on every rigged character we have.

Each character (the four presets, the two MakeHuman characters and CesiumMan in
``../shared/characters``) is stripped of its skeleton and weights, turned to Z-up facing
-X, and auto-rigged (:func:`retarget.autorig.autorig`). Its joints are compared with the
original rig's (the joints both share, mapped through the bone maps; CesiumMan by hand),
in percent of the height. The naive fit for comparison: the canonical skeleton scaled to
the mesh's height, feet on the floor, centred on the mesh, in its T-pose, after the
same orientation normalisation (so the comparison is about joint placement alone).

    .venv/bin/python benchmarks/character_autorig.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TURN = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) @ np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]])


def main() -> int:
    from mocap.skeleton import canonical_skeleton
    from retarget import autorig as AR
    from retarget import character as C
    from tests.test_autorig import bare

    canon = canonical_skeleton()
    cP = canon.rest_positions()
    cH = canon.rest_end_sites()["head"][1]
    sources = sorted(C.PRESETS) + ["mh_male_casual_cmu31.glb", "mh_male_dark_game53.glb",
                                   "CesiumMan_blender_reexport.glb"]
    print(f"{'character':32s} {'joints':>6s} {'ours mean':>9s} {'ours max':>8s} {'naive mean':>10s} "
          f"{'naive max':>9s} {'seconds':>7s}")
    for src in sources:
        V, F, truth = bare(src)
        t0 = time.perf_counter()
        res = AR.autorig(V @ TURN.T, F)
        dt = time.perf_counter() - t0
        T = res.transform
        H = res.info["measurements"]["height"]
        P = res.skeleton.rest_positions()
        naive = cP * (H / cH)
        naive[:, 0] += float(np.mean(res.vertices[:, 0]))
        naive[:, 2] += float(np.mean(res.vertices[:, 2]))
        ours, base = [], []
        for k, p in truth.items():
            q = T[:3, :3] @ (TURN @ p) + T[:3, 3]
            ours.append(np.linalg.norm(P[res.skeleton.index(k)] - q) / H)
            base.append(np.linalg.norm(naive[canon.index(k)] - q) / H)
        print(f"{src:32s} {len(truth):6d} {100 * np.mean(ours):8.2f}% {100 * np.max(ours):7.1f}% "
              f"{100 * np.mean(base):9.2f}% {100 * np.max(base):8.1f}% {dt:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
