"""Headless render, actor replacement and conditioning passes (mocap.render, Blender worker).

Real footage (../shared/footage, tracked for 1 s) is rendered at low resolution with
the generated character ``chen`` in place of the performer; the checks are what a
person would look at: does the character cover the performer's pixels, is the
performer gone from the clean plate, are the pass images where the body is.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mocap.errors import RenderError, UsageError
from tests.conftest import shared_file

cv2 = pytest.importorskip("cv2")
pytest.importorskip("bpy", reason="rendering needs Blender (pip install 'understudy[blender]')")

W, H = 144, 256  # the basketball clip is portrait 1080x1920


@pytest.fixture(scope="module")
def solved_take(tmp_path_factory):
    """1 s (12 frames) of a full-body clip, tracked with person masks and solved."""
    from mocap.motion_io import save_motion
    from mocap.pipeline import solve_take
    from mocap.sources import open_source
    from mocap.take import save_take
    from mocap.tracking import TrackOptions, track

    clip = shared_file("footage/mmhuman3d_single_person_basketball_fullbody.mp4")
    d = tmp_path_factory.mktemp("bb") / "take"
    with open_source(str(clip)) as src:
        take = track(src, options=TrackOptions(segmentation=True), end=1.0, progress=False)
    save_take(take, d)
    res = solve_take(take)
    save_motion(res.motion, d / "motion.npz", contacts=res.contacts)
    return d


@pytest.fixture(scope="module")
def shot(solved_take, tmp_path_factory):
    """The replacement shot with all passes and the raw RGBA frames kept."""
    from mocap.render import RenderOptions, render_take

    out = tmp_path_factory.mktemp("shot")
    r = render_take(solved_take, "chen", out / "shot.mp4",
                    options=RenderOptions(samples=4, resolution=(W, H), passes=("pose", "depth", "normal", "mask")),
                    replace=True, keep_frames=out / "raw", progress=False)
    return r, out


def _video(path):
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_replacement_covers_the_performer(solved_take, shot):
    """The character's silhouette overlaps the performer's tracked mask: IoU >= 0.5 in
    every frame (the camera, the root path and the performer's height all matter)."""
    from mocap.take import load_take

    r, out = shot
    take = load_take(solved_take)
    assert r.frames == len(take) == 12
    ious = []
    for i in range(r.frames):
        alpha = cv2.imread(str(out / "raw" / f"frame_{i:06d}.png"), cv2.IMREAD_UNCHANGED)[..., 3] >= 128
        mask = take.mask.frame_resized(i, W, H)
        ious.append((alpha & mask).sum() / (alpha | mask).sum())
    assert min(ious) >= 0.5, np.round(ious, 2)
    # the videos: the shot at the render size, the side by side twice as wide, every frame
    shot_v = _video(r.shot)
    sbs = _video(r.side_by_side)
    assert shot_v.shape == (12, H, W, 3)
    assert sbs.shape == (12, H, 2 * W, 3)


def test_performer_gone_from_clean_plate(solved_take):
    """Inside the performer's (shrunk) mask the plate differs from the footage; far
    outside it the plate is the footage (a static camera)."""
    from mocap.compose import clean_plate, grow_mask
    from mocap.render import read_footage
    from mocap.take import load_take

    take = load_take(solved_take)
    idx = np.arange(len(take))
    frames = read_footage(take, idx, (W, H))
    masks = np.stack([take.mask.frame_resized(int(i), W, H) for i in idx])
    plate = clean_plate(frames, masks)
    k = 6
    inner = ~grow_mask(~masks[k], 2)  # the mask shrunk by 2 px: surely the performer
    outer = ~grow_mask(masks.any(axis=0), 12)  # far from the performer in every frame
    diff = np.abs(plate.plate.astype(int) - frames[k].astype(int)).mean(axis=-1)
    assert inner.sum() > 500 and outer.sum() > 0.3 * W * H
    assert diff[inner].mean() > 25.0, diff[inner].mean()
    assert diff[outer].mean() < 6.0, diff[outer].mean()
    assert 0.0 < plate.inpainted_share < 0.3


def test_passes_layout_and_content(solved_take, shot):
    """pose/depth/depth_mm/normal/mask PNG sequences, one per frame, the render size;
    the pose image has each limb drawn where the performer's 2D keypoints are."""
    from mocap.compose import OPENPOSE_COLOURS, OPENPOSE_LIMBS, coco18_from_mediapipe
    from mocap.take import load_take

    r, out = shot
    pdir = r.passes_dir
    take = load_take(solved_take)
    meta = json.loads((pdir / "passes.json").read_text())
    assert meta["frames"] == 12 and (meta["width"], meta["height"]) == (W, H)
    for name, shape, dtype in (("pose", (H, W, 3), np.uint8), ("normal", (H, W, 3), np.uint8),
                               ("depth", (H, W), np.uint8), ("mask", (H, W), np.uint8),
                               ("depth_mm", (H, W), np.uint16)):
        files = sorted((pdir / name).glob("*.png"))
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(12)], name
        img = cv2.imread(str(files[5]), cv2.IMREAD_UNCHANGED)
        assert img.shape == shape and img.dtype == dtype, name
    k = 5
    mask = cv2.imread(str(pdir / "mask" / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED) > 0
    alpha = cv2.imread(str(out / "raw" / f"frame_{k:06d}.png"), cv2.IMREAD_UNCHANGED)[..., 3] >= 128
    assert np.array_equal(mask, alpha)
    depth_mm = cv2.imread(str(pdir / "depth_mm" / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
    assert np.all(depth_mm[~mask] == 0) and np.all(depth_mm[mask] > 0)
    # the character stands where the performer's solved hips are: depth along the camera axis
    from mocap.motion_io import load_motion
    from mocap.render import camera_from_take

    motion, _ = load_motion(solved_take / "motion.npz")
    hips_depth_mm = -1000 * camera_from_take(take, motion).to_camera(motion.root_positions[k])[2]
    assert abs(np.median(depth_mm[mask]) - hips_depth_mm) < 250, (np.median(depth_mm[mask]), hips_depth_mm)
    depth = cv2.imread(str(pdir / "depth" / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
    assert depth[~mask].max() == 0 and depth[mask].mean() > 20
    normal = cv2.cvtColor(cv2.imread(str(pdir / "normal" / f"{k:06d}.png")), cv2.COLOR_BGR2RGB)
    assert np.median(normal[mask][:, 2]) > 160  # mostly facing the camera: blue
    assert np.all(normal[~mask] == [128, 128, 255])
    # pose: the midpoint of each limb whose two keypoints were seen carries that limb's colour
    pose = cv2.cvtColor(cv2.imread(str(pdir / "pose" / f"{k:06d}.png")), cv2.COLOR_BGR2RGB).astype(int)
    kp = coco18_from_mediapipe(take.pose_image[k], take.pose_visibility[k])
    kp = kp * np.array([W / take.source.width, H / take.source.height])
    from mocap.compose import COCO18

    drawn = 0
    for i, ((a, b), colour) in enumerate(zip(OPENPOSE_LIMBS, OPENPOSE_COLOURS)):
        pa, pb = kp[COCO18.index(a)], kp[COCO18.index(b)]
        if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pb))) or np.hypot(*(pa - pb)) < 12:
            continue
        along = [pose[v, u] for u, v in (np.round(pa + t * (pb - pa)).astype(int) for t in np.linspace(0.25, 0.75, 11))]
        drawn += 1
        # the limb's own colour (at 60 %) along it, except where a limb drawn later covers it
        # (a side view puts one hip line over the other)
        later = [0.6 * np.array(c) for c in OPENPOSE_COLOURS[i + 1:len(OPENPOSE_LIMBS)]] + \
            [np.array(c) for c in OPENPOSE_COLOURS]
        mine = [np.abs(p - 0.6 * np.array(colour)).max() <= 12 for p in along]
        covered = [any(np.abs(p - c).max() <= 12 for c in later) for p in along]
        assert all(m or c for m, c in zip(mine, covered)), (a, b, [tuple(p) for p in along])
        assert any(mine) or all(covered), (a, b)
    assert drawn >= 10
    # and nothing is drawn far from every keypoint
    far = np.ones((H, W), bool)
    for p in kp[np.all(np.isfinite(kp), axis=1)]:
        cv2.circle(far.view(np.uint8), tuple(int(x) for x in np.round(p)), 40, 0, -1)
    assert pose[far.astype(bool)].max() == 0


def _spin_character(tmp_path, frames: int):
    """A generated character turning on the spot, its arms going down, as a GLB."""
    from mocap.glossary import A2Q
    from mocap.motion import Motion
    from retarget.character import generate_character, save_character
    from retarget.rig import export_glb, load_rig

    rig = load_rig(save_character(generate_character(preset="ada"), tmp_path / "ada.glb"))
    sk = rig.skeleton
    T = frames
    Q = np.tile([1.0, 0.0, 0.0, 0.0], (T, len(sk), 1))
    s = np.linspace(0.0, 1.0, T)
    Q[:, 0] = A2Q(np.stack([0 * s, 2.5 * s, 0 * s], -1))
    Q[:, sk.index("leftUpperArm")] = A2Q(np.stack([0 * s, 0 * s, -1.2 * s], -1))
    Q[:, sk.index("rightUpperArm")] = A2Q(np.stack([0 * s, 0 * s, 1.2 * s], -1))
    root = np.tile(sk.offsets[0], (T, 1))
    glb = export_glb(rig, Motion(skeleton=sk, rotations=Q, root_positions=root, fps=30.0), tmp_path / "spin.glb")
    return glb


def _front_camera(w=64, h=96):
    from mocap.render import Camera

    T = np.eye(4)
    T[:3, 3] = [0.0, 0.9, 3.6]
    f = 0.5 * w / np.tan(np.radians(20.0))
    return Camera(T, f, f, w / 2, h / 2, w, h)


def test_late_frame_of_long_take_matches_frame_alone(tmp_path):
    """Frame 23 of a 24-frame take rendered in chunks of 6 (the fourth worker process)
    is the frame rendered by a process of its own; and the character turned between
    the first and the last frame (the animation reached the worker)."""
    from mocap.render import RenderOptions, read_rgba, render_frames

    glb = _spin_character(tmp_path, 24)
    cam = _front_camera()
    opts = RenderOptions(samples=2, chunk_frames=6)
    long = render_frames(glb, 30.0, 24, cam, opts, tmp_path / "long", progress=False)
    alone = render_frames(glb, 30.0, 24, cam, opts, tmp_path / "alone", frames=[23], progress=False)
    assert long.chunks == 4 and alone.chunks == 1
    a = read_rgba(long.png[23], (64, 96)).astype(int)
    b = read_rgba(alone.png[0], (64, 96)).astype(int)
    assert np.abs(a - b).mean() < 0.5 and np.abs(a - b).max() <= 8
    first = read_rgba(long.png[0], (64, 96))[..., 3] >= 128
    last = a[..., 3] >= 128
    assert first.sum() > 150 and last.sum() > 150
    assert (first & last).sum() / (first | last).sum() < 0.8  # arms down, body turned


def test_worker_failure_is_an_error(tmp_path):
    """A Blender that fails, or exits 0 without frames or without its report, raises
    RenderError naming the frames; it never passes for success."""
    from mocap.render import RenderOptions, render_frames

    cam = _front_camera()
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF but not really")
    with pytest.raises(RenderError, match="exit code 1"):
        render_frames(bad, 30.0, 3, cam, RenderOptions(samples=1), tmp_path / "a", progress=False)
    silent = [sys.executable, "-c", "print('UNDERSTUDY_RENDER {}')"]
    with pytest.raises(RenderError, match="frame 0 is missing"):
        render_frames(bad, 30.0, 3, cam, RenderOptions(samples=1), tmp_path / "b", progress=False, command=silent)
    quiet = [sys.executable, "-c", "pass"]
    with pytest.raises(RenderError, match="without the worker's report"):
        render_frames(bad, 30.0, 3, cam, RenderOptions(samples=1), tmp_path / "c", progress=False, command=quiet)
    crash = [sys.executable, "-c", "import sys; print('render_worker: error: boom', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(RenderError, match="exit code 3.*boom"):
        render_frames(bad, 30.0, 3, cam, RenderOptions(samples=1), tmp_path / "d", progress=False, command=crash)


def test_options_are_checked(tmp_path):
    from mocap.render import RenderOptions, parse_frames

    with pytest.raises(UsageError, match="engine"):
        RenderOptions(engine="povray").check()
    with pytest.raises(UsageError, match="pass"):
        RenderOptions(passes=("pose", "albedo")).check()
    assert parse_frames("3:7", 10) == (3, 7) and parse_frames(":4", 10) == (0, 4) and parse_frames("2:", 10) == (2, 10)
    with pytest.raises(UsageError, match="frames"):
        parse_frames("8:12", 10)


def test_render_cli_refuses_a_take_without_masks(tmp_path, solved_take, capsys):
    """--replace on a take tracked without --segmentation: one line, exit code 2."""
    import shutil

    from mocap.cli import main

    t = tmp_path / "take"
    shutil.copytree(solved_take, t)
    meta = json.loads((t / "take.json").read_text())
    meta["mask"] = None
    (t / "take.json").write_text(json.dumps(meta))
    (t / "mask.npz").unlink()
    code = main(["render", str(t), "--character", "ada", "-o", str(tmp_path / "x.mp4"), "--replace", "-q"])
    assert code == 2
    assert "--segmentation" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
