"""Compare a motion with the truth: joint-position, bone-direction, root-path, foot-skate
and jitter metrics, as one JSON-ready dict (``understudy eval``).

The two motions may use different skeletons and naming conventions: each is matched to
the canonical joint names through a bone map (:mod:`retarget.bonemap`, detected from the
joint names unless given), and only canonical joints both have are compared.

What :func:`evaluate` does, in order
------------------------------------
1. **Joints.** By default :data:`DEFAULT_JOINTS` (hips, neck, head, and per side upper
   leg, lower leg, foot, upper arm, lower arm, hand: 15 joints) that both skeletons have;
   ``hips`` is always included, it is the root every root-relative number refers to.
   When both skeletons have the two upper-leg (hip) joints, ``hips`` is taken as the
   **pelvis centre**, their midpoint, on both sides: conventions place the hips joint
   differently (cgspeed about 9 cm above the hip joints, ours between them).
   **Bones** are the pairs (nearest compared canonical ancestor, joint): with the default
   set, 14 bones, among them hips->neck and hips->leftUpperArm, which span the spine.
2. **Time.** The common timeline is the *motion's* timestamps that fall within the
   truth's time span (``time_offset_s`` is added to the truth's clock first); motion
   frames outside it are dropped and counted. The truth is sampled at those times by
   slerping its local rotations and lerping its root (and animated offsets) between its
   two neighbouring frames, then forward kinematics; so a 120 fps truth against a
   30 fps motion is compared at the motion's 30 frames per second, exactly on the truth's
   frames when the clocks line up.
3. **Metrics** (lengths in mm, angles in degrees; means over frames, then joints/bones):

   * ``mpjpe_mm``: mean per-joint position error after subtracting each skeleton's hips
     in every frame (root-aligned), over the non-root joints (the root's is 0 by
     construction; ``mpjpe_per_joint_mm`` has each joint). No rotation is removed: both
     motions must face the same way in the world frame (+Y up, glossary).
   * ``pa_mpjpe_mm``: per frame, the similarity transform (scale, rotation, translation;
     Umeyama 1991) that best fits the motion's joints onto the truth's is applied first;
     mean over all compared joints. Insensitive to facing and to figure size.
   * ``mpjpe_scaled_mm``: root-aligned MPJPE after scaling the motion's root-relative
     joints by ``truth size / motion size``, where a figure's size is the mean sum of its
     compared bone lengths. When the sizes differ by more than :data:`SCALE_TOLERANCE`
     (5 %), ``scale.differs`` is true and a note says so: a BVH read with the wrong units,
     or a solve at the wrong height, then shows up as a large MPJPE that this number
     separates from pose error.
   * ``bone_direction_deg``: angle between the motion's and the truth's direction of each
     bone, mean over frames and bones (``bone_direction_per_bone_deg`` per bone, keyed
     ``"parent->child"``). Turning one forearm by 10 deg gives 10 deg on that bone and
     10/14 deg overall with the default bones.
   * ``root_path_mm``: mean distance between the two hips trajectories, three ways:
     ``raw`` (as given: world placement error), ``start_aligned`` (both paths start at
     the origin: drift), ``rigid_horizontal`` (start-aligned, then the least-squares
     rotation about +Y and horizontal shift of the motion's path: the path's shape,
     whatever the heading).
   * ``foot_skate``: contacts are defined **by the truth**: a foot (``leftFoot``,
     ``rightFoot``) is planted while it is within ``contact_height_m`` of the floor (the
     truth's lowest foot height in the clip) and moves horizontally slower than
     ``contact_speed_m_s``. Skate is the horizontal distance each motion's foot slides
     between two consecutive planted frames, mean in mm per frame (and in mm/s), and
     summed over each contact (a run of planted frames of one foot), mean in cm per
     contact; the truth's own value shows the floor of the measure.
   * ``jitter``: mean magnitude of the joints' jerk (third derivative of world position,
     :func:`mocap.filters.jitter`), m/s^3, for both and the ratio. White noise dominates
     it, growing with fps^3, so compare jitters only on one timeline (as here). A truth
     coarser than the motion is interpolated piecewise, which puts jerk at its frames:
     its jitter is then inflated (a 30 fps walk sampled at 120 fps: about 3x).

Numbers that cannot be computed (no contacts, fewer than 4 frames for jitter) are
``None``. ``notes`` states the choices made for this pair in words.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from retarget.bonemap import BoneMap, builtin_profiles, canonical_names, detect_profile

from .errors import RigError, UsageError
from .motion import Motion, fk, slerp
from .skeleton import canonical_skeleton

__all__ = ["evaluate", "DEFAULT_JOINTS", "SCALE_TOLERANCE", "CONTACT_HEIGHT_M", "CONTACT_SPEED_M_S"]

DEFAULT_JOINTS: tuple[str, ...] = (
    "hips",
    "leftUpperLeg", "leftLowerLeg", "leftFoot",
    "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand",
    "rightUpperArm", "rightLowerArm", "rightHand",
    "neck", "head",
)  # fmt: skip
"""The joints compared by default (those both skeletons have)."""

SCALE_TOLERANCE = 0.05
"""Relative size difference above which the figures are said to differ in scale."""
CONTACT_HEIGHT_M = 0.05
"""A truth foot joint (the ankle) within this height of the truth's lowest foot height
may be planted. The ankle sits 5-9 cm above the sole, so "lowest" is flat on the floor."""
CONTACT_SPEED_M_S = 0.1
"""...and moving horizontally slower than this. In the CMU walk 131_01 these two
thresholds mark 23 % of the foot-frame pairs as planted, and the truth's own planted
ankles still move 47 mm/s on average (the heel rolls): that is the floor of the skate
measure. At 0.2 m/s, 37 % are planted and the floor rises to 79 mm/s."""

_SCHEMA = "understudy.eval"


# -- helpers ---------------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _resolve_map(m: Motion, bonemap: BoneMap | str | None, what: str) -> tuple[BoneMap, dict[str, str]]:
    names = m.skeleton.names
    if bonemap is None:
        try:
            bonemap, _ = detect_profile(names)
        except RigError as e:
            raise RigError(f"{what}: {e}; pass {what}_map= to name its convention") from None
    elif isinstance(bonemap, str):
        profiles = builtin_profiles()
        if bonemap not in profiles:
            raise UsageError(f"{what}_map: no bone-map profile named {bonemap!r}; "
                             f"the shipped ones are {', '.join(profiles)}")
        bonemap = profiles[bonemap]
    elif not isinstance(bonemap, BoneMap):
        raise UsageError(f"{what}_map must be a BoneMap, a profile name or None, got {type(bonemap).__name__}")
    return bonemap, bonemap.resolve(names)


def _positions_at(m: Motion, t: np.ndarray) -> np.ndarray:
    """World joint positions ``(N, J, 3)`` of ``m`` at times ``t`` ``(N,)`` (clamped to the
    motion's span): local rotations slerped, root and local offsets lerped between the two
    neighbouring frames, then FK. Exact at the motion's own timestamps."""
    ts = m.timestamps
    t = np.clip(np.asarray(t, dtype=float), ts[0], ts[-1])
    if len(ts) == 1:
        i = i1 = np.zeros(len(t), dtype=int)
        w = np.zeros(len(t))
    else:
        i = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
        i1 = i + 1
        w = np.clip((t - ts[i]) / (ts[i1] - ts[i]), 0.0, 1.0)
    rot = slerp(m.rotations[i], m.rotations[i1], w[:, None])

    def lerp(a: np.ndarray) -> np.ndarray:
        return a[i] + w.reshape((-1,) + (1,) * (a.ndim - 1)) * (a[i1] - a[i])

    offsets = m.skeleton.offsets if m.local_offsets is None else lerp(m.local_offsets)
    return fk(m.skeleton.parents, offsets, rot, lerp(m.root_positions))[0]


def _similarity_align(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``X`` ``(N, K, 3)`` moved, per frame, by the similarity transform (scale, rotation,
    translation) that best fits it onto ``Y`` in the least-squares sense (Umeyama 1991;
    reflections excluded)."""
    mx = X.mean(axis=1, keepdims=True)
    my = Y.mean(axis=1, keepdims=True)
    Xc, Yc = X - mx, Y - my
    H = np.einsum("nki,nkj->nij", Xc, Yc)  # Xc^T Yc = U S V^T
    U, S, Vt = np.linalg.svd(H)
    V = np.swapaxes(Vt, 1, 2)
    D = np.ones(S.shape)
    D[:, -1] = np.sign(np.linalg.det(V @ np.swapaxes(U, 1, 2)))
    D[D[:, -1] == 0, -1] = 1.0
    R = (V * D[:, None, :]) @ np.swapaxes(U, 1, 2)  # V diag(D) U^T
    var = np.sum(Xc * Xc, axis=(1, 2))
    s = np.where(var > 1e-18, np.sum(S * D, axis=1) / np.maximum(var, 1e-18), 1.0)
    return s[:, None, None] * np.einsum("nij,nkj->nki", R, Xc) + my


def _rigid_align_2d(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """``a`` ``(N, 2)`` of (x, z) moved by the rotation and translation that best fit it
    onto ``b``; also returns that rotation as an angle about +Y in degrees (right-handed:
    +90 takes +Z to +X)."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    H = (a - ma).T @ (b - mb)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ np.diag([1.0, d]) @ U.T
    # about +Y by t, (x, z) -> (x cos t + z sin t, -x sin t + z cos t)
    return (a - ma) @ R.T + mb, float(np.degrees(np.arctan2(R[0, 1], R[0, 0])))


def _angle_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between vectors ``(..., 3)`` in degrees (atan2: accurate near 0 and 180);
    NaN where either is shorter than 1 micrometre."""
    c = np.linalg.norm(np.cross(u, v), axis=-1)
    d = np.sum(u * v, axis=-1)
    a = np.degrees(np.arctan2(c, d))
    short = (np.linalg.norm(u, axis=-1) < 1e-6) | (np.linalg.norm(v, axis=-1) < 1e-6)
    return np.where(short, np.nan, a)


def _pick_joints(joints: Sequence[str] | None, fm: dict, ft: dict, mname: str, tname: str) -> list[str]:
    canon = canonical_names()
    for side, found, name in (("motion", fm, mname), ("truth", ft, tname)):
        if "hips" not in found:
            raise RigError(f"the {side}'s skeleton has no hips joint under bone map {name!r}: "
                           f"nothing to align the root with")
    if joints is None:
        use = [j for j in DEFAULT_JOINTS if j in fm and j in ft]
    else:
        if isinstance(joints, str):
            raise UsageError(f"joints must be a list of canonical names, got the string {joints!r}")
        use = []
        for j in joints:
            if j not in canon:
                close = difflib.get_close_matches(str(j), canon, n=2)
                hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
                raise UsageError(f"joints: {j!r} is not a canonical joint name{hint}")
            if j not in use:
                use.append(j)
        lacking = [f"the motion ({mname}) has no {j}" for j in use if j not in fm]
        lacking += [f"the truth ({tname}) has no {j}" for j in use if j not in ft]
        if lacking:
            raise RigError("cannot compare the requested joints: " + "; ".join(lacking))
        if "hips" not in use:
            use.insert(0, "hips")
        order = {n: i for i, n in enumerate(canon)}
        use.sort(key=order.__getitem__)
        use.remove("hips")
        use.insert(0, "hips")
    if len(use) < 2:
        raise RigError(f"the motion ({mname}) and the truth ({tname}) share no joint besides the hips "
                       f"among {list(DEFAULT_JOINTS if joints is None else joints)}")
    return use


def _bones(use: list[str]) -> list[tuple[int, int]]:
    """(parent index, child index) into ``use``: each joint's nearest ancestor in the
    canonical hierarchy that is also compared."""
    sk = canonical_skeleton()
    pos = {n: k for k, n in enumerate(use)}
    out = []
    for k, n in enumerate(use):
        a = sk.parent(n)
        while a >= 0 and sk.names[a] not in pos:
            a = int(sk.parents[a])
        if a >= 0:
            out.append((pos[sk.names[a]], k))
    return out


# -- the metrics -------------------------------------------------------------------------------


def evaluate(
    motion: Motion,
    truth: Motion,
    *,
    motion_map: BoneMap | str | None = None,
    truth_map: BoneMap | str | None = None,
    joints: list[str] | None = None,
    time_offset_s: float = 0.0,
    contact_height_m: float = CONTACT_HEIGHT_M,
    contact_speed_m_s: float = CONTACT_SPEED_M_S,
    heading_align: bool = False,
) -> dict:
    """Metrics of ``motion`` against ``truth`` (see the module docstring for each one).

    ``motion_map``/``truth_map``: a :class:`retarget.bonemap.BoneMap`, the name of a
    shipped profile (``"cmu_cgspeed"``), or None to detect it from the joint names.
    ``joints``: canonical names to compare (``hips`` is always added); default
    :data:`DEFAULT_JOINTS` that both have. ``time_offset_s`` is added to the truth's
    timestamps before matching. ``contact_height_m``/``contact_speed_m_s``: the truth's
    foot-contact rule. ``heading_align``: first turn the whole motion about +Y by the one
    angle that best fits its root-relative joints onto the truth's over all frames (for a
    capture whose world heading is arbitrary, e.g. set by where the camera stood); the
    angle is reported as ``heading_yaw_deg``.

    Returns a JSON-ready dict: ``mpjpe_mm``, ``mpjpe_per_joint_mm``, ``pa_mpjpe_mm``,
    ``mpjpe_scaled_mm``, ``scale``, ``bone_direction_deg``, ``bone_direction_per_bone_deg``,
    ``root_path_mm`` (``raw``, ``start_aligned``, ``rigid_horizontal``), ``foot_skate``,
    ``jitter``, plus what was compared (``joints``, ``joint_names``, ``bones``, ``time``,
    ``motion``, ``truth``) and ``notes``. Raises :class:`~mocap.errors.RigError` when a
    skeleton's convention cannot be told or lacks the hips or requested joints, and
    :class:`~mocap.errors.UsageError` when the two do not overlap in time.
    """
    for what, m in (("motion", motion), ("truth", truth)):
        if not isinstance(m, Motion):
            raise UsageError(f"evaluate: {what} must be a Motion, got {type(m).__name__}")
    for what, v in (("contact_height_m", contact_height_m), ("contact_speed_m_s", contact_speed_m_s)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise UsageError(f"evaluate: {what} must be a positive number, got {v!r}")
    if not (isinstance(time_offset_s, (int, float)) and np.isfinite(time_offset_s)):
        raise UsageError(f"evaluate: time_offset_s must be a finite number, got {time_offset_s!r}")

    mmap, fm = _resolve_map(motion, motion_map, "motion")
    tmap, ft = _resolve_map(truth, truth_map, "truth")
    use = _pick_joints(joints, fm, ft, mmap.name, tmap.name)
    bones = _bones(use)
    K = len(use)
    notes: list[str] = []

    # -- time ------------------------------------------------------------------------------
    tm = motion.timestamps
    tt = truth.timestamps + float(time_offset_s)
    eps = 1e-6
    keep = (tm >= tt[0] - eps) & (tm <= tt[-1] + eps)
    if not np.any(keep):
        raise UsageError(
            f"evaluate: the motion ({tm[0]:.3f}-{tm[-1]:.3f} s) and the truth "
            f"({tt[0]:.3f}-{tt[-1]:.3f} s with time_offset_s={time_offset_s:g}) do not overlap in time"
        )
    t = tm[keep]
    N = len(t)
    dropped = int(len(tm) - N)
    if dropped:
        notes.append(f"{dropped} motion frames outside the truth's time span were dropped")

    im = [motion.skeleton.index(fm[j]) for j in use]
    it = [truth.skeleton.index(ft[j]) for j in use]
    Pm = motion.positions()[keep][:, im]
    Pt = _positions_at(truth, t - float(time_offset_s))[:, it]
    if "leftUpperLeg" in use and "rightUpperLeg" in use:
        # conventions put the hips joint in different places (cgspeed: ~9 cm above the hip
        # joints; ours: between them), so "hips" is compared as the pelvis centre, the
        # midpoint of the two hip (upper-leg) joints, on both sides
        il, ir = use.index("leftUpperLeg"), use.index("rightUpperLeg")
        Pm[:, 0] = 0.5 * (Pm[:, il] + Pm[:, ir])
        Pt[:, 0] = 0.5 * (Pt[:, il] + Pt[:, ir])
        notes.append("hips = pelvis centre (midpoint of the two upper-leg joints) on both skeletons")
    heading_yaw = 0.0
    if heading_align:
        a = (Pm - Pm[:, :1])[..., [0, 2]].reshape(-1, 2)
        b = (Pt - Pt[:, :1])[..., [0, 2]].reshape(-1, 2)
        ok = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
        U, _, Vt = np.linalg.svd(a[ok].T @ b[ok])
        R2 = Vt.T @ U.T
        if np.linalg.det(R2) < 0:
            R2 = Vt.T @ np.diag([1.0, -1.0]) @ U.T
        heading_yaw = float(np.degrees(np.arctan2(R2[0, 1], R2[0, 0])))
        xz = Pm[..., [0, 2]] @ R2.T
        Pm = np.stack([xz[..., 0], Pm[..., 1], xz[..., 1]], axis=-1)
        notes.append(f"heading aligned: the motion turned {heading_yaw:+.1f} deg about +Y (one angle for the clip)")

    # -- root-aligned and Procrustes-aligned joint errors -----------------------------------
    rel_m = Pm - Pm[:, :1]
    rel_t = Pt - Pt[:, :1]
    err = np.linalg.norm(rel_m - rel_t, axis=-1)  # (N, K), metres
    per_joint = err.mean(axis=0) * 1000.0
    mpjpe = float(err[:, 1:].mean() * 1000.0)
    pa = float(np.linalg.norm(_similarity_align(Pm, Pt) - Pt, axis=-1).mean() * 1000.0)

    # -- scale ----------------------------------------------------------------------------
    pi = [p for p, _ in bones]
    ci = [c for _, c in bones]
    len_m = np.linalg.norm(Pm[:, ci] - Pm[:, pi], axis=-1)  # (N, B)
    len_t = np.linalg.norm(Pt[:, ci] - Pt[:, pi], axis=-1)
    size_m = float(len_m.sum(axis=1).mean())
    size_t = float(len_t.sum(axis=1).mean())
    ratio = size_m / size_t if size_t > 0 else float("nan")
    k = size_t / size_m if size_m > 0 else 1.0
    mpjpe_scaled = float(np.linalg.norm(rel_m * k - rel_t, axis=-1)[:, 1:].mean() * 1000.0)
    differs = bool(np.isfinite(ratio) and abs(ratio - 1.0) > SCALE_TOLERANCE)
    if differs:
        notes.append(
            f"the figures differ in size by {100 * (ratio - 1):+.1f}% (sum of the compared bone lengths: "
            f"motion {size_m:.3f} m, truth {size_t:.3f} m): mpjpe_mm includes that difference, "
            f"mpjpe_scaled_mm ({mpjpe_scaled:.1f} mm) scales the motion's root-relative joints by "
            f"{k:.3f} first; check the units (e.g. a BVH read with the wrong scale)"
        )

    # -- bone directions ---------------------------------------------------------------------
    ang = _angle_deg(Pm[:, ci] - Pm[:, pi], Pt[:, ci] - Pt[:, pi])  # (N, B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bone of zero length in every frame
        per_bone = np.nanmean(ang, axis=0)
    bone_keys = [f"{use[p]}->{use[c]}" for p, c in bones]

    # -- root path ----------------------------------------------------------------------------
    rm, rt = Pm[:, 0], Pt[:, 0]
    raw = float(np.linalg.norm(rm - rt, axis=-1).mean() * 1000.0)
    sm, st = rm - rm[0], rt - rt[0]
    start_aligned = float(np.linalg.norm(sm - st, axis=-1).mean() * 1000.0)
    xz = [0, 2]
    if N >= 2:
        aligned_xz, yaw = _rigid_align_2d(sm[:, xz], st[:, xz])
    else:
        aligned_xz, yaw = st[:, xz], 0.0
    rigid = np.concatenate([aligned_xz[:, :1], sm[:, 1:2], aligned_xz[:, 1:]], axis=1)
    rigid_err = float(np.linalg.norm(rigid - st, axis=-1).mean() * 1000.0)

    # -- foot skate ---------------------------------------------------------------------------
    feet = [f for f in ("leftFoot", "rightFoot") if f in use]
    skate: dict[str, Any] = {
        "feet": feet,
        "contact_height_m": float(contact_height_m),
        "contact_speed_m_s": float(contact_speed_m_s),
        "floor_m": None,
        "contact_frames": 0,
        "motion_mm_per_frame": None,
        "truth_mm_per_frame": None,
        "ratio": None,
        "motion_mm_per_s": None,
        "truth_mm_per_s": None,
        "contacts": 0,
        "motion_cm_per_contact": None,
        "truth_cm_per_contact": None,
    }
    if feet and N >= 3:
        fi = [use.index(f) for f in feet]
        Ft, Fm = Pt[:, fi], Pm[:, fi]  # (N, F, 3)
        floor = float(Ft[..., 1].min())
        speed = np.linalg.norm(np.gradient(Ft[..., xz], t, axis=0), axis=-1)  # (N, F)
        contact = (Ft[..., 1] - floor < contact_height_m) & (speed < contact_speed_m_s)
        pairs = contact[:-1] & contact[1:]  # (N-1, F)
        dt = np.diff(t)[:, None]
        slide_m = np.linalg.norm(np.diff(Fm[..., xz], axis=0), axis=-1)
        slide_t = np.linalg.norm(np.diff(Ft[..., xz], axis=0), axis=-1)
        skate["floor_m"] = floor
        skate["contact_frames"] = int(pairs.sum())
        if pairs.any():
            sm_ = float(slide_m[pairs].mean() * 1000.0)
            st_ = float(slide_t[pairs].mean() * 1000.0)
            skate["motion_mm_per_frame"] = sm_
            skate["truth_mm_per_frame"] = st_
            skate["ratio"] = _num(sm_ / st_) if st_ > 0 else None
            skate["motion_mm_per_s"] = float((slide_m / dt)[pairs].mean() * 1000.0)
            skate["truth_mm_per_s"] = float((slide_t / dt)[pairs].mean() * 1000.0)
            # per contact: a run of consecutive planted pairs of one foot, its slides summed
            runs = [(f, a, b) for f in range(pairs.shape[1])
                    for a, b in zip(*(np.flatnonzero(np.diff(np.r_[0, pairs[:, f].astype(int), 0]) == d) for d in (1, -1)))]
            skate["contacts"] = len(runs)
            skate["motion_cm_per_contact"] = float(np.mean([slide_m[a:b, f].sum() for f, a, b in runs]) * 100.0)
            skate["truth_cm_per_contact"] = float(np.mean([slide_t[a:b, f].sum() for f, a, b in runs]) * 100.0)
        else:
            notes.append("the truth's feet are never planted (low and slow) on the common timeline: no foot skate")
    elif not feet:
        notes.append("no feet among the compared joints: no foot skate")

    # -- jitter -------------------------------------------------------------------------------
    jit: dict[str, Any] = {"motion_m_s3": None, "truth_m_s3": None, "ratio": None}
    if N >= 4:
        from .filters import jitter

        jm, jt = float(jitter(Pm, t)), float(jitter(Pt, t))
        jit = {"motion_m_s3": _num(jm), "truth_m_s3": _num(jt), "ratio": _num(jm / jt) if jt > 0 else None}
    else:
        notes.append(f"{N} common frames: jitter needs at least 4")

    notes.append(
        f"timeline: the motion's timestamps within the truth's span ({N} frames, "
        f"{t[0]:.3f}-{t[-1]:.3f} s); the truth sampled there by slerp of its local rotations and lerp of "
        f"its root, then FK"
    )
    notes.append(
        f"mpjpe_mm: hips subtracted per frame, no rotation alignment, mean over the {K - 1} non-root joints; "
        f"pa_mpjpe_mm: per-frame similarity (Procrustes) alignment, mean over all {K} joints"
    )
    notes.append(
        "root_path_mm: raw = as given; start_aligned = both hips paths moved to start at the origin; "
        f"rigid_horizontal = start-aligned, then the best rotation about +Y ({yaw:+.1f} deg) and "
        "horizontal shift of the motion's path"
    )

    def side(m: Motion, bm, found) -> dict:
        return {
            "profile": bm.name,
            "joints": m.n_joints,
            "mapped": len(found),
            "frames": m.n_frames,
            "fps": float(m.fps),
            "source": m.meta.get("source"),
        }

    return {
        "schema": _SCHEMA,
        "schema_version": 1,
        "units": {"length": "mm", "angle": "deg", "jitter": "m/s^3", "time": "s", "size": "m"},
        "motion": side(motion, mmap, fm),
        "truth": side(truth, tmap, ft),
        "joints": list(use),
        "joint_names": {j: {"motion": fm[j], "truth": ft[j]} for j in use},
        "bones": [[use[p], use[c]] for p, c in bones],
        "time": {
            "timeline": "motion",
            "frames": int(N),
            "frames_dropped": dropped,
            "start_s": float(t[0]),
            "end_s": float(t[-1]),
            "time_offset_s": float(time_offset_s),
            "truth_sampling": "slerp of local rotations, lerp of root and offsets, then FK",
        },
        "mpjpe_mm": mpjpe,
        "mpjpe_per_joint_mm": {use[j]: float(per_joint[j]) for j in range(1, K)},
        "pa_mpjpe_mm": pa,
        "mpjpe_scaled_mm": mpjpe_scaled,
        "scale": {
            "motion_size_m": size_m,
            "truth_size_m": size_t,
            "ratio": _num(ratio),
            "differs": differs,
            "tolerance": SCALE_TOLERANCE,
        },
        "bone_direction_deg": _num(np.nanmean(per_bone)) if np.any(np.isfinite(per_bone)) else None,
        "bone_direction_per_bone_deg": {b: _num(v) for b, v in zip(bone_keys, per_bone)},
        "heading_yaw_deg": heading_yaw,
        "root_path_mm": {"raw": raw, "start_aligned": start_aligned, "rigid_horizontal": rigid_err},
        "foot_skate": skate,
        "jitter": jit,
        "notes": notes,
    }


LIMB_JOINTS: tuple[str, ...] = (
    "hips",
    "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand",
)  # fmt: skip
"""The joints whose place every convention agrees on anatomically (hip, knee, ankle,
shoulder, elbow, wrist). Neck and head joints sit at convention-specific heights (the
cgspeed ``Neck`` is 16 mm, its ``Head`` 26 mm from ours on identical poses), so
accuracy figures of a solve are quoted on these."""


def markers_motion(markers, *, skeleton_spec=None) -> Motion:
    """A point 'motion' of the body markers each canonical joint follows (no rotations: every
    joint hangs from the hips with an animated offset), to evaluate raw landmarks with
    :func:`evaluate` exactly like a solved motion. Frames where any of those markers is
    missing are left out (their timestamps too)."""
    from .motion import Skeleton
    from .skeleton import canonical_spec

    spec = skeleton_spec or canonical_spec()
    names = [j for j in spec.skeleton.names
             if j in spec.markers and spec.markers[j].startswith("pose.") and spec.markers[j] in markers]
    if "hips" not in names:
        raise UsageError("markers_motion: no marker for the hips (pose.mid_hip)")
    names.remove("hips")
    names.insert(0, "hips")
    P = markers.select([spec.markers[j] for j in names])
    ok = np.all(np.isfinite(P), axis=(1, 2))
    if ok.sum() < 2:
        raise UsageError("markers_motion: fewer than 2 frames with every marker present")
    P = P[ok]
    rel = P - P[:, :1]
    J = len(names)
    sk = Skeleton(names=tuple(names), parents=np.array([-1] + [0] * (J - 1)), offsets=rel[0])
    rot = np.zeros((len(P), J, 4))
    rot[..., 0] = 1.0
    ts = markers.timestamps[ok]
    fps = float(1.0 / np.median(np.diff(markers.timestamps)))
    return Motion(skeleton=sk, rotations=rot, root_positions=P[:, 0], fps=fps, timestamps=ts, local_offsets=rel)
