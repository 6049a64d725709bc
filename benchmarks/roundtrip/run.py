"""Accuracy round trip: CMU motion capture -> rendered footage -> track -> solve -> metrics.

    nice .venv/bin/python benchmarks/roundtrip/run.py --out out/roundtrip

For every character x clip x camera: the BVH is retargeted onto the character (its
joints are the truth), rendered to ``<out>/<character>/<clip>/<camera>/clip.mp4`` by the
numpy rasteriser of :mod:`mocap.roundtrip`, with the truth beside it (``truth.npz`` +
``truth.json``: joint world positions and rotations, root path, foot contacts, camera;
``truth_motion.npz`` for ``understudy eval``). The clip is tracked (MediaPipe Holistic),
solved (``understudy solve`` defaults; the take and its ``motion.npz`` are kept in
``take/``), and both the solved motion and the raw lifted MediaPipe landmarks are
compared with the truth (``metrics.json``). ``<out>/results.md`` has the tables,
``<out>/results.json`` every number, ``<out>/*.png`` the plots.

By default: the 31-joint MakeHuman character (the cgspeed CMU hierarchy) on all three
clips from the front, three-quarter and side cameras; the 53-joint game-rig MakeHuman
and our generated preset "ben" (retarget.character) on all three clips from the front
camera. 640x480, 30 fps, 60 deg field of view (given to the tracker, as a user who
knows their lens would). About 12 minutes on two cores; ``--reuse`` solves the kept takes
again in about a minute. Findings: docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
CLIPS = {
    "walk": "mocap/cmu_131_01_walk.bvh",
    "hop": "mocap/cmu_131_03_hop.bvh",
    "salsa": "mocap/cmu_60_10_salsa_scaled.bvh",
}
CHARACTERS = {
    "mh_casual_cmu31": "characters/mh_male_casual_cmu31.glb",
    "mh_dark_game53": "characters/mh_male_dark_game53.glb",
}
"""Characters from ../shared; ``preset_<name>`` is also accepted: one of our generated
characters (:mod:`retarget.character` preset), made once into ``<out>/characters/``."""
METRICS = [  # (label, getter, unit)
    ("PA-MPJPE", lambda r: r["pa_mpjpe_mm"], "mm"),
    ("MPJPE", lambda r: r["mpjpe_mm"], "mm"),
    ("bone dir.", lambda r: r["bone_direction_deg"], "deg"),
    ("root path", lambda r: r["root_path_percent"], "% of dist."),
    ("foot skate", lambda r: r["skate_per_contact"]["mean_cm"], "cm/contact"),
    ("jitter", lambda r: r["jitter"]["motion_m_s3"], "m/s^3"),
]


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/roundtrip", help="output folder (default out/roundtrip)")
    p.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated clips among {', '.join(CLIPS)}")
    p.add_argument("--cameras", default="front,three_quarter,side",
                   help="cameras for the first character (front, three_quarter, side)")
    p.add_argument("--second-cameras", default="front",
                   help="cameras for the second character ('' to skip it; default front)")
    p.add_argument("--characters", default=",".join([*CHARACTERS, "preset_ben"]),
                   help=f"comma-separated characters among {', '.join(CHARACTERS)} and preset_<name> (a generated "
                        "character: ada, ben, chen, dara); the first gets --cameras, the others --second-cameras "
                        "(default: the two MakeHumans and preset_ben)")
    p.add_argument("--width", type=int, default=640, help="frame width in px (default 640)")
    p.add_argument("--height", type=int, default=480, help="frame height in px (default 480)")
    p.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view, degrees (default 60)")
    p.add_argument("--seconds", type=float, default=None, help="render only the first SECONDS of each clip")
    p.add_argument("--model-complexity", type=int, choices=(0, 1, 2), default=1,
                   help="MediaPipe pose model: 0 lite, 1 full (default, bundled), 2 heavy (needs "
                        "`understudy models install --from ../shared/models`)")
    p.add_argument("--reuse", action="store_true", help="reuse clips and takes already in --out")
    p.add_argument("--no-depth-refine", dest="depth_refine", action="store_false",
                   help="solve without the depth pass (mocap.depth), to compare (default: with it, as "
                        "`understudy solve`)")
    return p.parse_args(argv)


def character_file(name: str, out: Path) -> Path:
    """The GLB of a character: from ../shared, or generated (``preset_<name>``) into
    ``<out>/characters/`` once."""
    if name in CHARACTERS:
        return SHARED / CHARACTERS[name]
    from retarget.character import generate_character, save_character

    path = out / "characters" / f"{name}.glb"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_character(generate_character(preset=name.removeprefix("preset_")), path)
    return path


def run_one(ch, ch_name, clip, truth, posed, cam, folder: Path, *, reuse: bool, model_complexity: int = 1,
            depth_refine: bool = True) -> dict:
    from mocap.motion_io import load_motion, save_motion
    from mocap.roundtrip import compare, render_clip, save_truth, tracker_diagnostics
    from mocap.take import load_take, save_take

    folder.mkdir(parents=True, exist_ok=True)
    bm = ch.rig.bonemap.name
    video = folder / "clip.mp4"
    t0 = time.perf_counter()
    if not (reuse and video.is_file()):
        render_clip(ch, truth, cam, video, still=folder / "frame.png", still_frame=truth.n_frames // 2)
    save_truth(folder / "truth.npz", truth, cam, bonemap=bm, character=ch_name, clip=clip)
    save_motion(truth, folder / "truth_motion.npz")
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    take_dir = folder / "take"
    from mocap.pipeline import SolveOptions, solve_take
    from mocap.roundtrip import track_and_solve

    opts = SolveOptions(depth_refine=depth_refine)
    if reuse and (take_dir / "motion.npz").is_file():
        take = load_take(take_dir)
        res = solve_take(take, opts)
        save_motion(res.motion, take_dir / "motion.npz", contacts=res.contacts)  # the file matches this solve
    else:
        take, res = track_and_solve(video, hfov_deg=cam.hfov_deg, model_complexity=model_complexity)
        if not depth_refine:
            res = solve_take(take, opts)
        save_take(take, take_dir)
        save_motion(res.motion, take_dir / "motion.npz", contacts=res.contacts)
    load_motion(take_dir / "motion.npz")  # the file `understudy eval` reads must load
    t_track = time.perf_counter() - t0
    out = compare(res, truth, truth_map=bm)
    out["tracker"] = tracker_diagnostics(take, truth, cam, truth_map=bm)
    out["coverage"] = take.coverage()
    out["timing_s"] = {"render": t_render, "track_solve": t_track}
    out["camera"] = cam.to_json()
    (folder / "metrics.json").write_text(json.dumps(out, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return out


def overlay(ch, posed, truth, cam, take_dir: Path, frame: int, path: Path, bm: str) -> None:
    """A rendered frame with the truth joints (green) and MediaPipe's landmarks (red),
    cropped to the figure and enlarged 2x."""
    import cv2

    from mocap import landmarks as L
    from mocap.roundtrip import _MP_TO_CANON, Renderer
    from mocap.take import load_take
    from retarget.bonemap import builtin_profiles

    img = Renderer(cam).draw(ch, [v[frame] for v in posed])[..., ::-1].copy()
    take = load_take(take_dir)
    found = builtin_profiles()[bm].resolve(truth.skeleton.names)
    P = truth.positions()[frame]
    names = list(_MP_TO_CANON)
    uv_t, _ = cam.project(np.stack([P[truth.skeleton.index(found[_MP_TO_CANON[n]])] for n in names]))
    uv_m = take.pose_image[frame, [L.index("pose", n) for n in names], :2]
    segs = [(0, 1), (0, 2), (2, 4), (1, 3), (3, 5), (6, 7), (6, 8), (8, 10), (7, 9), (9, 11), (0, 6), (1, 7)]
    for uv, col in ((uv_t, (60, 200, 60)), (uv_m, (40, 40, 230))):
        if not np.all(np.isfinite(uv)):
            continue
        q = np.round(uv).astype(int)
        for a, b in segs:
            cv2.line(img, tuple(q[a]), tuple(q[b]), col, 2, cv2.LINE_AA)
        for p in q:
            cv2.circle(img, tuple(p), 3, col, -1, cv2.LINE_AA)
    # crop to the figure (the skinned mesh's projection, padded) and enlarge 2x
    uv_v, _ = cam.project(np.concatenate([v[frame] for v in posed]))
    x0, y0 = np.maximum(np.floor(uv_v.min(axis=0)).astype(int) - 30, 0)
    x1, y1 = np.minimum(np.ceil(uv_v.max(axis=0)).astype(int) + 30, [cam.width, cam.height])
    img = cv2.resize(img[y0:y1, x0:x1], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.putText(img, "truth", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (60, 200, 60), 2)
    cv2.putText(img, "MediaPipe", (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 230), 2)
    cv2.imwrite(str(path), img)


def _fmt(v, nd=1):
    return "n/a" if v is None else f"{v:.{nd}f}"


def _contacts_cell(c: dict) -> str:
    return f"{_fmt(c['found_percent'], 0)} / {_fmt(c['false_percent'], 0)}"


def tables(rows: list[dict]) -> str:
    lines = ["| character | clip | camera | " + " | ".join(f"{m} ({u}) solved / raw" for m, _, u in METRICS)
             + " | contacts found / false (%) | MediaPipe 2D (px) |",
             "|---|---|---|" + "---|" * len(METRICS) + "---|---|"]
    for r in rows:
        cells = [f"{_fmt(g(r['solved']))} / {_fmt(g(r['raw']))}" for _, g, _ in METRICS]
        lines.append(f"| {r['character']} | {r['clip']} | {r['camera']} | " + " | ".join(cells)
                     + f" | {_contacts_cell(r['contacts'])} | {r['tracker']['image_px']['mean']:.1f} |")

    def mean_of(sel, which, g):
        vals = [g(r[which]) for r in sel if g(r[which]) is not None]
        return float(np.mean(vals)) if vals else None

    lines += ["", "| group | clips | " + " | ".join(f"{m} ({u}) solved / raw" for m, _, u in METRICS)
              + " | contacts found / false (%) |",
              "|---|---|" + "---|" * len(METRICS) + "---|"]
    groups = [(f"camera {c}", [r for r in rows if r["camera"] == c]) for c in dict.fromkeys(r["camera"] for r in rows)]
    groups += [(f"character {c}", [r for r in rows if r["character"] == c])
               for c in dict.fromkeys(r["character"] for r in rows)]
    groups.append(("overall", rows))
    for name, sel in groups:
        cells = [f"{_fmt(mean_of(sel, 'solved', g))} / {_fmt(mean_of(sel, 'raw', g))}" for _, g, _ in METRICS]
        cells.append(_contacts_cell({k: mean_of(sel, "contacts", lambda c, k=k: c[k])
                                     for k in ("found_percent", "false_percent")}))
        lines.append(f"| {name} | {len(sel)} | " + " | ".join(cells) + " |")
    lines += ["", "Where the error starts (MediaPipe's own output vs the truth, before lift and solve):", "",
              "| character | clip | camera | 2D landmarks (px) | world landmarks MPJPE / PA (mm) "
              "| PA with true depth / true x,y (mm) | \\|x\\| / \\|y\\| / \\|z\\| error (mm) | figure size ratio |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        w = r["tracker"]["world_cam"]
        a = w["abs_axis_error_mm"]
        lines.append(f"| {r['character']} | {r['clip']} | {r['camera']} | {r['tracker']['image_px']['mean']:.1f} | "
                     f"{w['mpjpe_mm']:.0f} / {w['pa_mpjpe_mm']:.0f} | {w['pa_mpjpe_mm_true_depth']:.0f} / "
                     f"{w['pa_mpjpe_mm_true_image_plane']:.0f} | "
                     f"{a['x']:.0f} / {a['y']:.0f} / {a['z']:.0f} | {w['size_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def plots(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    labels = [f"{r['clip']}\n{r['camera'].replace('three_quarter', '3/4')}\n{r['character'].split('_')[-1]}"
              for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(2, 2, figsize=(max(8, 0.75 * len(rows) + 3), 6.5))
    for ax, (name, g, unit) in zip(axes.flat, [METRICS[0], METRICS[2], METRICS[3], METRICS[4]]):
        s = [g(r["solved"]) or 0 for r in rows]
        rw = [g(r["raw"]) or 0 for r in rows]
        ax.bar(x - 0.2, rw, 0.4, label="raw MediaPipe", color="#d98c5f")
        ax.bar(x + 0.2, s, 0.4, label="solved", color="#4a7fb5")
        ax.set_title(f"{name} ({unit})", fontsize=10)
        ax.set_xticks(x, labels, fontsize=6)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].axhline(45, color="k", ls="--", lw=0.8, label="target (front)")
    axes[1, 0].axhline(10, color="k", ls="--", lw=0.8)
    axes[1, 1].axhline(1, color="k", ls="--", lw=0.8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_metrics.png", dpi=90)
    plt.close(fig)
    made.append(out / "accuracy_metrics.png")

    # per-joint error, solved, averaged per camera
    joints = list(rows[0]["solved"]["mpjpe_per_joint_mm"])
    fig, ax = plt.subplots(figsize=(8, 3.4))
    cams = list(dict.fromkeys(r["camera"] for r in rows))
    for k, c in enumerate(cams):
        sel = [r for r in rows if r["camera"] == c]
        v = [np.mean([r["solved"]["mpjpe_per_joint_mm"][j] for r in sel]) for j in joints]
        ax.bar(np.arange(len(joints)) + (k - (len(cams) - 1) / 2) * 0.8 / len(cams), v, 0.8 / len(cams), label=c)
    ax.set_xticks(np.arange(len(joints)), [j.replace("left", "L ").replace("right", "R ") for j in joints],
                  rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("root-aligned error (mm)")
    ax.set_title("solved: error per joint (pelvis-centred, heading aligned)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_per_joint.png", dpi=90)
    plt.close(fig)
    made.append(out / "accuracy_per_joint.png")

    # where the error is: tracker 3D axes
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for k, a in enumerate("xyz"):
        ax.bar(x + (k - 1) * 0.27, [r["tracker"]["world_cam"]["abs_axis_error_mm"][a] for r in rows], 0.27,
               label={"x": "x (across the image)", "y": "y (up)", "z": "z (depth)"}[a])
    ax.set_xticks(x, labels, fontsize=6)
    ax.set_ylabel("mean |error| (mm)")
    ax.set_title("MediaPipe world landmarks vs truth, camera axes, pelvis-centred", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_axes.png", dpi=90)
    plt.close(fig)
    made.append(out / "accuracy_axes.png")
    return made


def main(argv=None) -> int:
    from mocap.roundtrip import VIEWS, load_character, place_cameras, pose_vertices, truth_motion

    args = _parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = [c for c in args.clips.split(",") if c]
    chars = [c for c in args.characters.split(",") if c]
    for c in clips:
        if c not in CLIPS:
            raise SystemExit(f"unknown clip {c!r}; clips: {', '.join(CLIPS)}")
    for c in chars:
        if c not in CHARACTERS and not c.startswith("preset_"):
            raise SystemExit(f"unknown character {c!r}; characters: {', '.join(CHARACTERS)}, preset_<name>")
    missing = [p for p in [*(CLIPS[c] for c in clips), *(CHARACTERS[c] for c in chars if c in CHARACTERS)]
               if not (SHARED / p).is_file()]
    if missing:
        raise SystemExit(f"test data missing under {SHARED}: {', '.join(missing)}")
    rows = []
    t_start = time.perf_counter()
    for ci, ch_name in enumerate(chars):
        ch = load_character(character_file(ch_name, out))
        cams_wanted = [c for c in (args.cameras if ci == 0 else args.second_cameras).split(",") if c]
        for clip in clips:
            truth = truth_motion(SHARED / CLIPS[clip], ch, seconds=args.seconds)
            posed = pose_vertices(ch, truth)
            cams = place_cameras(np.concatenate([v[::5] for v in posed], axis=1), ch.rig.facing(),
                                 width=args.width, height=args.height, hfov_deg=args.hfov,
                                 views={k: v for k, v in VIEWS.items() if k in cams_wanted})
            for cam_name in cams_wanted:
                folder = out / ch_name / clip / cam_name
                print(f"== {ch_name} / {clip} / {cam_name}: {truth.n_frames} frames", flush=True)
                r = run_one(ch, ch_name, clip, truth, posed, cams[cam_name], folder, reuse=args.reuse,
                            model_complexity=args.model_complexity, depth_refine=args.depth_refine)
                r.update(character=ch_name, clip=clip, camera=cam_name, frames=truth.n_frames)
                rows.append(r)
                s, w = r["solved"], r["raw"]
                print(f"   PA-MPJPE {s['pa_mpjpe_mm']:.1f} mm (raw {w['pa_mpjpe_mm']:.1f}), MPJPE {s['mpjpe_mm']:.1f} "
                      f"(raw {w['mpjpe_mm']:.1f}), bone {s['bone_direction_deg']:.1f} deg, root path "
                      f"{_fmt(s['root_path_percent'])} % (raw {_fmt(w['root_path_percent'])}), skate "
                      f"{_fmt(s['skate_per_contact']['mean_cm'])} cm/contact (raw "
                      f"{_fmt(w['skate_per_contact']['mean_cm'])}), contacts found {_fmt(r['contacts']['found_percent'], 0)} "
                      f"% / false {_fmt(r['contacts']['false_percent'], 0)} %, 2D {r['tracker']['image_px']['mean']:.1f} px",
                      flush=True)
                if cam_name == "front" and ci == 0:
                    overlay(ch, posed, truth, cams[cam_name], folder / "take", truth.n_frames // 2,
                            out / f"accuracy_overlay_{clip}.png", ch.rig.bonemap.name)
    md = tables(rows)
    made = plots(rows, out)
    header = (f"# Round-trip accuracy\n\n{args.width}x{args.height}, {args.hfov:g} deg field of view, 30 fps, "
              f"pose model complexity {args.model_complexity}, depth pass {'on' if args.depth_refine else 'off'}; "
              f"{len(rows)} clip-camera pairs in {time.perf_counter() - t_start:.0f} s"
              f"{' (clips and takes reused, solved again)' if args.reuse else ''}. Lengths in mm, root path in % "
              f"of the distance the pelvis travelled (rigidly aligned path), foot skate in cm slid per truth "
              f"contact, jitter as mean jerk (m/s^3). Contacts: the truth's contact frames the solve found / the "
              f"solve's contact frames on a truly swinging foot (more than 10 cm up or faster than 0.5 m/s).\n\n")
    (out / "results.md").write_text(header + md, encoding="utf-8")
    keep = ("character", "clip", "camera", "frames", "solved", "raw", "contacts", "tracker", "coverage", "timing_s")
    (out / "results.json").write_text(json.dumps([{k: r[k] for k in keep} for r in rows], indent=1,
                                                 allow_nan=False) + "\n", encoding="utf-8")
    print(header + md)
    print("plots: " + ", ".join(str(p) for p in made))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
