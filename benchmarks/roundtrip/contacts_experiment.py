"""Experiment: foot contacts judged in the image plane instead of the 3D world.

    nice .venv/bin/python benchmarks/roundtrip/contacts_experiment.py --out out/roundtrip

Run after ``run.py`` (it reuses the takes and truths in ``--out``). The solve detects a
contact when the foot is low and slow in the *world* frame; from one camera a planted
foot's world position jitters along the line of sight (the lift reads depth from the
body's apparent size), so planted feet look like they move at 0.3-0.5 m/s and most
contacts are missed (docs/accuracy.md). Here the same detector
(:func:`mocap.contacts.detect_contacts`, same hysteresis) is fed the foot's *image*
motion instead: its 2D landmarks (ankle, heel, toe) low-passed at 4 Hz and scaled to
metres at the pelvis's depth, with the solved foot height for the height test; then the
same ``planted_contacts`` and ``lock_feet`` as the pipeline. Prints, per clip, the truth
contacts found (recall), the detected frames that are truly planted (precision), foot
skate per truth contact and PA-MPJPE, default vs image-plane.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FOOT = ("ankle", "heel", "foot_index")


def image_contacts(take, lift_info, motion, *, cutoff_hz=4.0, height_on=0.10, height_off=0.15,
                   speed_on=0.25, speed_off=0.4) -> dict[str, np.ndarray]:
    """Per side ``(T,)`` bool: contacts from the foot's image-plane speed (m/s at the
    pelvis's depth) and its solved height above the floor."""
    from mocap import landmarks as L
    from mocap.contacts import detect_contacts, foot_points
    from mocap.filters import butterworth_zero_phase

    t = np.asarray(take.timestamps, float)
    f = float(lift_info["intrinsics"].fx)
    depth = -np.asarray(lift_info["translation_cam"], float)[:, 2]  # (T,) m, camera looks down -Z
    fp = foot_points(motion)
    out = {}
    for side in ("left", "right"):
        uv = np.asarray(take.pose_image, float)[:, [L.index("pose", f"{side}_{n}") for n in FOOT], :2]
        uv = np.where(np.asarray(take.present["pose"], bool)[:, None, None], uv, np.nan)
        uv = butterworth_zero_phase(uv, t, cutoff_hz=cutoff_hz)
        metric = uv * (depth / f)[:, None, None]  # image-plane metres
        h = np.nanmin(fp[side][..., 1], axis=1)  # (T,) solved height of the lowest foot point
        pts = np.stack([metric[..., 0], np.broadcast_to(h[:, None], metric.shape[:2]), metric[..., 1]], axis=-1)
        out[side] = detect_contacts(pts, t, height_on=height_on, height_off=height_off, speed_on=speed_on,
                                    speed_off=speed_off)
    return out


def main(argv=None) -> int:
    from mocap.contacts import lock_feet, planted_contacts
    from mocap.evaluate import LIMB_JOINTS, evaluate
    from mocap.motion_io import load_motion
    from mocap.pipeline import SolveOptions, solve_take
    from mocap.roundtrip import load_truth, truth_contacts
    from mocap.take import load_take

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/roundtrip", help="the folder run.py wrote (default out/roundtrip)")
    args = p.parse_args(argv)
    out = Path(args.out)
    rows = json.loads((out / "results.json").read_text())
    lines = ["| character | clip | camera | truth contact frames found (default / image) | detected frames truly "
             "planted | foot skate, cm per contact | PA-MPJPE (mm) |", "|---|---|---|---|---|---|---|"]
    agg = {"default": [], "image": []}
    for r in rows:
        folder = out / r["character"] / r["clip"] / r["camera"]
        header, arrays = load_truth(folder / "truth.npz")
        truth = load_motion(folder / "truth_motion.npz")[0]
        take = load_take(folder / "take")
        res = solve_take(take, SolveOptions(foot_lock=False))
        unlocked = res.motion
        n = min(len(take.timestamps), truth.n_frames)
        P = arrays["positions"][:n]
        names = header["joint_names"]
        from retarget.bonemap import builtin_profiles

        found = builtin_profiles()[header["bonemap"]].resolve(names)
        feet_t = np.stack([P[:, names.index(found[s])] for s in ("leftFoot", "rightFoot")], axis=1)
        ct = truth_contacts(feet_t, arrays["timestamps"][:n])
        default = solve_take(take)  # the pipeline as shipped
        cont_i, _ = planted_contacts(unlocked, image_contacts(take, res.lift_info, unlocked), max_drift_m=0.05)
        locked_i = lock_feet(unlocked, cont_i) if any(c.any() for c in cont_i.values()) else unlocked
        cells = {}
        for name, motion, cont in (("default", default.motion, default.contacts), ("image", locked_i, cont_i)):
            c = np.stack([cont["left"][:n], cont["right"][:n]], axis=1)
            ev = evaluate(motion, truth, motion_map="canonical", truth_map=header["bonemap"],
                          joints=list(LIMB_JOINTS), heading_align=True)
            recall = float((c & ct).sum() / max(ct.sum(), 1))
            precision = float((c & ct).sum() / max(c.sum(), 1))
            cells[name] = (recall, precision, ev["foot_skate"]["motion_cm_per_contact"], ev["pa_mpjpe_mm"])
            agg[name].append(cells[name])
        d, i = cells["default"], cells["image"]
        lines.append(f"| {r['character'].split('_')[-1]} | {r['clip']} | {r['camera']} | {100 * d[0]:.0f} % / "
                     f"{100 * i[0]:.0f} % | {100 * d[1]:.0f} % / {100 * i[1]:.0f} % | {d[2]:.1f} / {i[2]:.1f} | "
                     f"{d[3]:.1f} / {i[3]:.1f} |")
        print(lines[-1], flush=True)
    m = {k: np.mean(np.array(v), axis=0) for k, v in agg.items()}
    d, i = m["default"], m["image"]
    lines.append(f"| **mean** | | | {100 * d[0]:.0f} % / {100 * i[0]:.0f} % | {100 * d[1]:.0f} % / {100 * i[1]:.0f} % "
                 f"| {d[2]:.1f} / {i[2]:.1f} | {d[3]:.1f} / {i[3]:.1f} |")
    text = "\n".join(lines) + "\n"
    (out / "contacts_experiment.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
