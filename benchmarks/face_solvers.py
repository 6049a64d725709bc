"""Face solvers compared in one run, on the close-up test clip (labelled frames as in
tests/test_face.py):

* per event, the matching coefficients of: the geometric solver (ours), MediaPipe's
  blendshape network raw (naive), and the network with our calibration;
* robustness to head rotation: the geometric solver in the canonical face frame (ours)
  against the same formulas on the raw pixel landmarks (naive, no rigid fit), after
  turning the face 25 degrees;
* seconds per stage.

    .venv/bin/python benchmarks/face_solvers.py [--clip PATH] [--model face_landmarker.task]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENTS = {"neutral": list(range(102, 110)) + list(range(202, 208)), "pucker": list(range(24, 37)),
          "jaw open": list(range(70, 91)), "eyes shut": [94, 95, 96, 97], "grin": list(range(128, 149))}
SHAPES = {"eyes shut": ["eyeBlinkLeft", "eyeBlinkRight"], "jaw open": ["jawOpen"], "pucker": ["mouthPucker"],
          "grin": ["mouthSmileLeft", "mouthSmileRight"]}


def _turn(F: np.ndarray, deg: float) -> np.ndarray:
    a = np.radians(deg)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    P = F * np.array([1.0, -1.0, -1.0])
    c = P.mean(axis=1, keepdims=True)
    return (np.einsum("ij,tkj->tki", R, P - c) + c) * np.array([1.0, -1.0, -1.0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(ROOT.parent / "shared/footage/liveportrait_d18_face_closeup_jawopen.mp4"))
    ap.add_argument("--model", default=str(ROOT.parent / "shared/models/face_landmarker.task"))
    args = ap.parse_args()

    from mocap import face as F
    from mocap.face_model import model_blendshapes
    from mocap.sources import open_source
    from mocap.take import Take
    from mocap.tracking import TrackOptions, track

    t0 = time.perf_counter()
    with open_source(args.clip) as src:
        take = track(src, options=TrackOptions(), progress=False)
    t_track = time.perf_counter() - t0
    t0 = time.perf_counter()
    geo = F.solve_face(take)
    t_geo = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = model_blendshapes(take, args.model)
    t_model = time.perf_counter() - t0
    cal = F.solve_face(take, model_curves=raw)
    col = {n: i for i, n in enumerate(F.ARKIT_SHAPES)}

    print(f"{Path(args.clip).name}: {len(take)} frames")
    print(f"{'event':10s} {'shape':16s} {'geometric':>10s} {'model raw':>10s} {'model+cal':>10s}   "
          f"(event mean; neutral max in brackets)")
    ne = EVENTS["neutral"]
    for ev, names in SHAPES.items():
        for n in names:
            e = EVENTS[ev]
            g, r, c = geo.curve(n), raw[:, col[n]], cal.curve(n)
            print(f"{ev:10s} {n:16s} {g[e].mean():5.2f} ({g[ne].max():.2f}) {r[e].mean():5.2f} ({r[ne].max():.2f}) "
                  f"{c[e].mean():5.2f} ({c[ne].max():.2f})")

    # rotation robustness: ours (canonical frame) vs the same features on pixel landmarks
    Fimg = np.asarray(take.face_image, float)
    turned = Take.empty(len(take), take.source)
    turned.timestamps = take.timestamps.copy()
    turned.face_image = _turn(Fimg, 25.0).astype(np.float32)
    turned.present["face"][:] = True
    opts = F.FaceOptions(auto_gain=False, head_reference="camera")
    a = F.solve_face(take.slice(0, len(take)), opts).curves
    b = F.solve_face(turned, opts).curves

    def naive(P):  # the formulas on pixel landmarks scaled by the 2D eye-corner distance, no rigid fit
        P = F.face_points(P)
        iod = np.linalg.norm(P[:, 263, :2] - P[:, 33, :2], axis=-1)
        C = (P - P[:, list(F.RIGID)].mean(axis=1, keepdims=True)) / iod[:, None, None]
        feats = F.face_features(C)
        valid = np.ones(len(P), bool)
        return F.coefficients(feats, F.find_neutral(feats, valid))[0]

    na, nb = naive(Fimg), naive(_turn(Fimg, 25.0))
    print("\nhead turned 25 deg: mean |change| of the 52 coefficients "
          f"(worst shape): ours {np.abs(a - b).mean():.3f} ({np.abs(a - b).mean(0).max():.3f}), "
          f"naive pixels {np.abs(na - nb).mean():.3f} ({np.abs(na - nb).mean(0).max():.3f})")
    print(f"\nseconds: tracking {t_track:.1f}, geometric solve {t_geo:.2f}, face model {t_model:.1f}")
    with tempfile.TemporaryDirectory() as d:
        from mocap.face_csv import write_live_link_csv

        t0 = time.perf_counter()
        write_live_link_csv(geo, Path(d) / "f.csv")
        print(f"Live Link CSV of {len(geo)} rows: {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
