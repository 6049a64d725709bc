"""The pictures of docs/characters.md: the presets, and an auto-rigged MakeHuman mesh.

1. ``docs/img/character_presets.png``: each preset from the front and three-quarter view in
   its rest pose, and in a frame of the CMU walk and salsa (the motions solved onto the
   canonical skeleton, posed by linear blend skinning, turned to face the camera), with
   MediaPipe Holistic's verdict (pose / face found) printed per picture.
2. ``docs/img/character_autorig.png``: a MakeHuman character stripped of its rig, turned to
   Z-up facing -X, auto-rigged, with the found joints drawn over a front render and the
   original rig's joints beside them.

Needs pyrender (EGL), mediapipe and ``../shared``. About a minute on two cores.

    .venv/bin/python benchmarks/character_pictures.py [--out docs/img] [--width 800]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

SHARED = ROOT.parent / "shared"


def label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return out


def presets_sheet(out: Path, width: int) -> None:
    import cv2
    import mediapipe as mp

    from mocap.bvh import load_bvh
    from retarget import character as C
    from retarget.rig import load_rig, skin_vertices

    poses = []
    for pname, name, f in (("walk", "cmu_131_01_walk.bvh", 150), ("salsa", "cmu_60_10_salsa_scaled.bvh", 600)):
        m = load_bvh(SHARED / "mocap" / name)
        poses.append((pname, C._canonical_motion(m.slice(f - 8, f + 8), 1).slice(8, 9)))
    rows = []
    tmp = out / ".character_tmp.glb"
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        for preset in sorted(C.PRESETS):
            model = C.generate_character(preset=preset)
            C.save_character(model, tmp)
            rig = load_rig(tmp)
            shapes = [("rest", model.vertices)]
            for pname, motion in poses:
                mo = C._on_rig(rig, motion)
                V = skin_vertices(rig, mo)[0]
                P, _ = mo.fk()
                lat = P[0, rig.skeleton.index("leftUpperLeg")] - P[0, rig.skeleton.index("rightUpperLeg")]
                fwd = np.cross(lat, [0.0, 1.0, 0.0])
                a = -np.arctan2(fwd[0], fwd[2])
                R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
                shapes.append((pname, (V - P[0, 0]) @ R.T + P[0, 0]))
            tiles = []
            for pname, V in shapes:
                for view, yaw in (("front", 0.0), ("3/4", 35.0)):
                    img = C.render_preview(V, model.faces, model.colors, yaw_deg=yaw, size=(240, 360))
                    r = holistic.process(img)
                    verdict = ("pose" if r.pose_landmarks else "no pose") + (", face" if r.face_landmarks else "")
                    print(f"{preset:5s} {pname:6s} {view:5s}: {verdict}")
                    tiles.append(label(img, f"{preset} {pname} {view}"))
            rows.append(np.concatenate(tiles, axis=1))
    tmp.unlink(missing_ok=True)
    sheet = np.concatenate(rows, axis=0)
    h = int(round(sheet.shape[0] * width / sheet.shape[1]))
    sheet = cv2.resize(sheet, (width, h), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out / "character_presets.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out / 'character_presets.png'} ({width}x{h})")


def autorig_picture(out: Path) -> None:
    import cv2

    from retarget import autorig as AR
    from retarget import character as C
    from retarget.rig import load_rig

    src = SHARED / "characters" / "mh_male_casual_cmu31.glb"
    rig = load_rig(src)
    Vs, Fs, n = [], [], 0
    for m in rig.meshes:
        Vs.append(m.vertices)
        Fs.append(m.faces + n)
        n += len(m.vertices)
    V, F = np.concatenate(Vs), np.concatenate(Fs)
    turn = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) @ np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]])
    res = AR.autorig(V @ turn.T, F)
    truth = res.transform[:3, :3] @ turn
    found = rig.bonemap.to_canonical(rig.skeleton.names)
    P_true = {c: truth @ rig.rest_positions()[rig.skeleton.index(r)] + res.transform[:3, 3] for r, c in found.items()}
    w, h = 420, 560
    img = C.render_preview(res.vertices, res.faces, None, size=(w, h))
    # project with the same camera as render_preview (front, yaw 0)
    lo, hi = res.vertices.min(axis=0), res.vertices.max(axis=0)
    centre = 0.5 * (lo + hi)
    half = 0.5 * max(float(hi[1] - lo[1]), float(hi[0] - lo[0]) * h / w) * 1.08
    dist = half / np.tan(np.radians(30.0) / 2) + 0.5 * float(hi[2] - lo[2])
    f = 0.5 * h / np.tan(np.radians(30.0) / 2)

    def px(p):
        d = dist - (p[2] - centre[2])
        return int(round(w / 2 + f * (p[0] - centre[0]) / d)), int(round(h / 2 - f * (p[1] - centre[1]) / d))

    img = np.ascontiguousarray(img)
    sk = res.skeleton
    P = sk.rest_positions()
    for j in range(1, len(sk)):
        cv2.line(img, px(P[sk.parents[j]]), px(P[j]), (30, 90, 220), 1, cv2.LINE_AA)
    for j in range(len(sk)):
        cv2.circle(img, px(P[j]), 2, (30, 90, 220), -1, cv2.LINE_AA)
    for p in P_true.values():
        cv2.drawMarker(img, px(p), (220, 40, 40), cv2.MARKER_CROSS, 7, 1, cv2.LINE_AA)
    H = res.info["measurements"]["height"]
    err = np.mean([np.linalg.norm(P[sk.index(k)] - p) for k, p in P_true.items()]) / H
    img = label(img, f"auto-rig (blue) vs original (red +): {100 * err:.1f} % of H")
    cv2.imwrite(str(out / "character_autorig.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out / 'character_autorig.png'}; mean joint error {100 * err:.2f} % of the height")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs")
    ap.add_argument("--width", type=int, default=800, help="width of the presets contact sheet in pixels")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    presets_sheet(out, args.width)
    autorig_picture(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
