"""Foot contacts, foot locking and the foot-skate metric.

A foot is **in contact** when it is low *and* slow. Contact detection uses hysteresis
(two thresholds per test, as a thermostat does) so a foot hovering at a threshold does
not flicker: it *enters* contact when its lowest point is below ``height_on`` = 5 cm and
its speed below ``speed_on`` = 0.25 m/s, and *leaves* only when it rises above
``height_off`` = 8 cm or moves faster than ``speed_off`` = 0.4 m/s; in between it keeps
its state. (A walker's swing foot averages about 3 m/s and clears the floor by 5-10 cm,
so the off thresholds leave a wide margin while jitter of a few mm and 0.1 m/s on a
planted foot stays inside them.) Contacts shorter than ``min_duration_s`` = 0.1 s are
dropped and gaps shorter than ``min_gap_s`` = 0.05 s are closed. Speeds are central
differences over ``speed_window_s`` = 0.05 s of the mean of the foot's points. Heights
are world y (floor at 0, metres).

**Monocular takes.** From one camera a foot's depth comes from the body's apparent
size, and on a planted foot it wanders: MediaPipe takes lifted by :mod:`mocap.root` show
planted feet "moving" 0.2-0.4 m/s along the line of sight, but only ~0.04 m/s across
it (the image pins them), while a swinging foot moves 0.3-0.6 m/s across it. So
:func:`detect_contacts` can take the camera centre (``view_from``) and count the
speed's component along the camera -> foot ray ``depth_weight`` times;
:func:`sight_weight` picks the weight from the take itself (the line of sight's speed
over the image's, on low, slow feet: 1.4-3 on MediaPipe takes gives weight 0; about 1 or
less, as on markers or isotropic noise, gives 1). The solve (:mod:`mocap.pipeline`)
then uses 10 cm / 0.3 m/s entry thresholds over a 0.2 s speed window, widens each
contact by one frame, and has :func:`planted_contacts` cut a contact that drifts more
than 5 cm (across the view) into its still parts instead of dropping it. The price: a
foot swinging straight at the camera moves mostly in depth, so the ends of its swing
can look still and are taken as contact (the split and the lock's reach limit what that
does).

**Foot locking** (:func:`lock_feet`) plants the foot through each contact:

1. Targets. Over a contact segment the ankle (the ``foot`` joint) is held at the
   segment's mean position (``anchor="mean"``; or its first frame, ``"start"``), its
   height clamped to at least the ankle's rest height above the floor (with
   ``hold_height=False``, as the solve does, only x and z are held and the ankle keeps
   its own height, at least the rest height, so a heel rising at push-off rises); the foot's global
   rotation is held at the segment's mean, so the toe joint is planted too. For
   ``blend_s`` = 0.1 s on either side the correction (target minus original, taken at
   the boundary frame) fades in and out with a smoothstep, so there is no pop.
2. Root. Where a target is out of the leg's reach, the root is lowered (then shifted)
   just enough for every locked leg to reach; the lowering is max-filtered then
   box-filtered over the blend window so it eases in and out yet never falls short.
   ``max_root_shift_m`` caps that move (the solve passes 0 on a take whose depth it
   down-weights: a plant slightly off in depth must not drag the lifted root down);
   a leg that still cannot reach stretches straight towards its target.
3. Two-bone IK (analytic, after D. Holden's "simple two joint IK"): the knee is set to
   the flexion that makes the hip-ankle distance right (law of cosines), bending about
   the knee's own hinge axis (estimated from the motion's bent frames, in the thigh's
   frame), so the bend plane is kept and the knee never hyperextends (flexion in
   [0, pi)); the thigh is turned within the bend plane back onto the original hip-ankle
   line and then swung by the smallest rotation onto the target. Bone lengths cannot
   change: only rotations (and the root track) are edited.
4. Floor. Any foot point (ankle, toes, toe tip) below y = 0 raises that leg's target by
   the depth (eased like the root), the IK runs again, and anything left lifts the root.

Joint names are parameters (``legs``), defaulting to the canonical skeleton's
(``leftUpperLeg, leftLowerLeg, leftFoot, leftToes``...). Frames are vectorised; the
only Python loops run over legs, contact segments and a few projection iterations.

:func:`foot_skate` measures the result: centimetres slid horizontally while in contact
(per contact, mean and max) and the floor penetration (deepest point below 0, share of
frames with any foot point below it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import UsageError
from .glossary import A2Q, FORWARD, Q_inv, Q_mul
from .motion import Motion, fk, quat_rotate, slerp

__all__ = [
    "DEFAULT_LEGS",
    "contact_segments",
    "detect_contacts",
    "motion_contacts",
    "planted_contacts",
    "sight_weight",
    "foot_points",
    "lock_feet",
    "foot_skate",
]

DEFAULT_LEGS: dict[str, tuple[str, str, str, str | None]] = {
    "left": ("leftUpperLeg", "leftLowerLeg", "leftFoot", "leftToes"),
    "right": ("rightUpperLeg", "rightLowerLeg", "rightFoot", "rightToes"),
}
"""Per side: (thigh, shin, foot = ankle, toes or None) joint names of the canonical skeleton."""

_PENETRATION_TOL = 1e-4
"""Metres below y = 0 that :func:`foot_skate` still counts as "on" the floor (0.1 mm)."""


# -- segments and detection -----------------------------------------------------------------


def contact_segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` half-open frame ranges where ``mask`` ``(T,)`` is True."""
    m = np.asarray(mask, dtype=bool).astype(np.int8)
    d = np.diff(np.concatenate([[0], m, [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _velocity(x: np.ndarray, ts: np.ndarray, window_s: float) -> np.ndarray:
    """``(T, 3)`` central-difference velocity of ``x`` ``(T, 3)`` over ``window_s`` s."""
    T = len(ts)
    if T < 2:
        return np.zeros_like(x)
    dt = float(np.median(np.diff(ts)))
    h = max(1, int(round(0.5 * window_s / dt)))
    i = np.arange(T)
    i0, i1 = np.clip(i - h, 0, T - 1), np.clip(i + h, 0, T - 1)
    return (x[i1] - x[i0]) / (ts[i1] - ts[i0])[:, None]


def _view_speed(x: np.ndarray, ts: np.ndarray, window_s: float, view_from: np.ndarray | None,
                depth_weight: float) -> np.ndarray:
    """``(T,)`` speed of ``x`` ``(T, 3)``, m/s; with ``view_from`` (a camera centre ``(3,)``)
    the component along the line of sight (camera -> point) counts ``depth_weight`` times."""
    v = _velocity(x, ts, window_s)
    if view_from is None or depth_weight == 1.0:
        return np.linalg.norm(v, axis=-1)
    ray = _unit(x - np.asarray(view_from, dtype=float))
    along = np.einsum("ti,ti->t", v, ray)
    return np.linalg.norm(v - (1.0 - depth_weight) * along[:, None] * ray, axis=-1)


def detect_contacts(
    foot_points: np.ndarray,
    timestamps: np.ndarray,
    *,
    height_on: float = 0.05,
    height_off: float = 0.08,
    speed_on: float = 0.25,
    speed_off: float = 0.4,
    speed_window_s: float = 0.05,
    min_duration_s: float = 0.1,
    min_gap_s: float = 0.05,
    view_from: np.ndarray | None = None,
    depth_weight: float = 1.0,
    pad_s: float = 0.0,
) -> np.ndarray:
    """``(T,)`` bool: frames in which one foot touches the floor.

    ``foot_points`` ``(T, k, 3)`` (or ``(T, 3)``) world metres, the foot's points (heel,
    toe, ankle...); ``timestamps`` ``(T,)`` s. Height = the lowest point's y; speed = the
    points' mean, m/s. Thresholds and the hysteresis rule are in the module docstring.
    ``view_from`` ``(3,)`` world metres, the camera centre of a monocular take, with
    ``depth_weight`` in [0, 1]: the speed's component along the line of sight counts that
    much (0: the foot's motion across the image only; see "Monocular takes" in the module
    docstring).
    ``pad_s``: each contact found is widened by that much on both sides (after the
    duration rule). The state is held through frames with NaN points, which are then
    reported False.
    """
    X = np.asarray(foot_points, dtype=float)
    if X.ndim == 2:
        X = X[:, None]
    ts = np.asarray(timestamps, dtype=float)
    if X.ndim != 3 or X.shape[-1] != 3 or X.shape[0] != ts.shape[0] or ts.ndim != 1:
        raise UsageError(f"foot_points must be (T, k, 3) and timestamps (T,), got {np.shape(foot_points)} "
                         f"and {ts.shape}")
    if not (height_on <= height_off and speed_on <= speed_off):
        raise UsageError(f"hysteresis needs height_on <= height_off and speed_on <= speed_off, got "
                         f"height {height_on}/{height_off} m, speed {speed_on}/{speed_off} m/s")
    if not 0.0 <= depth_weight <= 1.0 or pad_s < 0:
        raise UsageError(f"depth_weight must be in [0, 1] and pad_s >= 0, got {depth_weight} and {pad_s}")
    if view_from is not None and np.shape(view_from) != (3,):
        raise UsageError(f"view_from must be a camera centre (3,), got shape {np.shape(view_from)}")
    T = len(ts)
    seen = np.all(np.isfinite(X), axis=(1, 2))
    with np.errstate(invalid="ignore"):
        height = np.where(seen, np.min(np.where(seen[:, None], X[..., 1], 0.0), axis=1), np.nan)
        speed = _view_speed(X.mean(axis=1), ts, speed_window_s, view_from, depth_weight)
        on = (height < height_on) & (speed < speed_on)
        off = ((height > height_off) | (speed > speed_off)) & ~on
    ev = np.where(on, 1, np.where(off, -1, 0))
    last = np.maximum.accumulate(np.where(ev != 0, np.arange(T), -1))
    state = np.where(last >= 0, ev[np.maximum(last, 0)] == 1, False)
    if T >= 2:
        dt = float(np.median(np.diff(ts)))
        gap_n = int(round(min_gap_s / dt))
        min_n = max(1, int(round(min_duration_s / dt)))
        segs = contact_segments(state)
        for (_, e0), (s1, _) in zip(segs[:-1], segs[1:]):
            if s1 - e0 < gap_n and np.all(seen[e0:s1]):
                state[e0:s1] = True
        for s, e in contact_segments(state):
            if e - s < min_n:
                state[s:e] = False
        pad_n = int(round(pad_s / dt))
        if pad_n > 0 and state.any():
            from scipy.ndimage import binary_dilation

            state = binary_dilation(state, iterations=pad_n)
    return state & seen


def sight_weight(foot_points: Mapping[str, np.ndarray], timestamps: np.ndarray, view_from: np.ndarray, *,
                 speed_window_s: float = 0.2, height_m: float = 0.1, speed_m_s: float = 0.3) -> tuple[float, float]:
    """``(depth_weight, ratio)`` for :func:`detect_contacts` on a monocular take.

    ``foot_points``: side -> ``(T, k, 3)`` world metres; ``view_from`` ``(3,)`` the camera
    centre. Over the frames where a foot is low (lowest point under ``height_m``) and
    slow across the view (under ``speed_m_s``), ``ratio`` is the median speed along the
    line of sight over the median speed across it: about 1 or less when depth is as
    good as the image (motion capture, markers), 1.4-3 on a MediaPipe take whose
    planted feet wander in depth. The weight is ``clip(2 - ratio, 0, 1)``: the line of
    sight counts fully when it is as trustworthy as the image and not at all once its
    speed is twice the image's. With fewer than 10 such frames: ``(1.0, nan)``.
    """
    ts = np.asarray(timestamps, dtype=float)
    cam = np.asarray(view_from, dtype=float)
    along, across = [], []
    for X in foot_points.values():
        X = np.asarray(X, dtype=float)
        X = X[:, None] if X.ndim == 2 else X
        c = X.mean(axis=1)
        v = _velocity(c, ts, speed_window_s)
        ray = _unit(c - cam)
        a = np.einsum("ti,ti->t", v, ray)
        b = np.linalg.norm(v - a[:, None] * ray, axis=-1)
        with np.errstate(invalid="ignore"):
            low = (np.min(X[..., 1], axis=1) < height_m) & (b < speed_m_s) & np.isfinite(a)
        along.append(np.abs(a[low]))
        across.append(b[low])
    a, b = np.concatenate(along), np.concatenate(across)
    if a.size < 10 or not np.median(b) > 0:
        return 1.0, float("nan")
    ratio = float(np.median(a) / np.median(b))
    return float(np.clip(2.0 - ratio, 0.0, 1.0)), ratio


# -- leg plumbing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leg:
    thigh: int
    shin: int
    foot: int
    toes: int  # -1 when there is none
    tip_joint: int  # joint carrying the end site (toes or foot), -1 if none
    tip_offset: np.ndarray | None

    def points(self, P: np.ndarray, Qg: np.ndarray) -> np.ndarray:
        """``(T, k, 3)`` foot points: ankle, toes joint, toe tip (those that exist)."""
        pts = [P[:, self.foot]]
        if self.toes >= 0:
            pts.append(P[:, self.toes])
        if self.tip_joint >= 0:
            pts.append(P[:, self.tip_joint] + quat_rotate(Qg[:, self.tip_joint], self.tip_offset))
        return np.stack(pts, axis=1)


class _JointArrays:
    """Per-joint arrays ``(T, k, d)`` of a few joints (an FK of the legs only), read like
    the full ``(T, J, d)`` array: ``a[frames, joint]`` with a skeleton joint index."""

    def __init__(self, values: np.ndarray, joints: list[int]) -> None:
        self.values = values
        self.at = {j: k for k, j in enumerate(joints)}

    def __getitem__(self, key: tuple) -> np.ndarray:
        frames, joint = key
        return self.values[frames, self.at[int(joint)]]


def _leg_joints(skeleton, legs: Mapping[str, _Leg]) -> list[int]:
    """The joints the leg code reads: each thigh's parent, thigh, shin, foot, toes, tip."""
    js = set()
    for leg in legs.values():
        js |= {int(skeleton.parents[leg.thigh]), leg.thigh, leg.shin, leg.foot, leg.toes, leg.tip_joint}
    return sorted(j for j in js if j >= 0)


def _leg_fk(skeleton, offsets, rotations, root, legs: Mapping[str, _Leg]) -> tuple[_JointArrays, _JointArrays]:
    """Positions and global rotations of the legs' joints only (:func:`_leg_joints`):
    the same numbers as a full FK at a fraction of its cost (the fingers, arms and head
    are not computed)."""
    joints = _leg_joints(skeleton, legs)
    P, Qg = fk(skeleton.parents, offsets, rotations, root, joints=joints)
    return _JointArrays(P, joints), _JointArrays(Qg, joints)


def _resolve_legs(skeleton, legs: Mapping[str, tuple] | None) -> dict[str, _Leg]:
    legs = DEFAULT_LEGS if legs is None else legs
    out = {}
    for side, names in legs.items():
        if len(names) not in (3, 4):
            raise UsageError(f"leg {side!r} must name (thigh, shin, foot[, toes]) joints, got {names!r}")
        thigh, shin, foot = (skeleton.index(n) for n in names[:3])
        toes = skeleton.index(names[3]) if len(names) == 4 and names[3] is not None else -1
        if skeleton.parents[shin] != thigh or skeleton.parents[foot] != shin or (
                toes >= 0 and skeleton.parents[toes] != foot):
            raise UsageError(f"leg {side!r} joints {names!r} must form a parent chain thigh -> shin -> foot"
                             " [-> toes]")
        tip_joint = toes if toes >= 0 else foot
        tip_name = skeleton.names[tip_joint]
        tip = skeleton.end_sites.get(tip_name)
        out[side] = _Leg(thigh, shin, foot, toes, tip_joint if tip is not None else -1,
                         None if tip is None else np.asarray(tip, dtype=float))
    return out


def foot_points(motion: Motion, *, legs: Mapping[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """World positions ``(T, k, 3)`` of each foot's points (ankle, toes joint, toe tip end
    site, as the skeleton has them), by side."""
    sk = motion.skeleton
    L = _resolve_legs(sk, legs)
    offsets = sk.offsets if motion.local_offsets is None else motion.local_offsets
    P, Qg = _leg_fk(sk, offsets, motion.rotations, motion.root_positions, L)
    return {side: leg.points(P, Qg) for side, leg in L.items()}


def motion_contacts(motion: Motion, *, legs: Mapping[str, tuple] | None = None, **kw) -> dict[str, np.ndarray]:
    """:func:`detect_contacts` on each foot of a motion (``kw`` are its thresholds)."""
    return {side: detect_contacts(p, motion.timestamps, **kw) for side, p in foot_points(motion, legs=legs).items()}


# -- helpers ---------------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ease_cover(x: np.ndarray, n: int) -> np.ndarray:
    """A smooth non-negative curve >= ``x`` (T,) everywhere: a running max over 2n+1
    frames, then a running mean over 2n+1 frames (each mean includes the max at its centre)."""
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    if n < 1 or not np.any(x > 0):
        return x
    m = maximum_filter1d(x, size=2 * n + 1, mode="nearest")
    return np.maximum(uniform_filter1d(m, size=2 * n + 1, mode="nearest"), x)


def _quat_mean(Q: np.ndarray) -> np.ndarray:
    Q = np.where((Q @ Q[0])[:, None] < 0, -Q, Q)
    return _unit(Q.sum(0))


def _min_rotation(x: np.ndarray, y: np.ndarray, fallback_axis: np.ndarray) -> np.ndarray:
    """Quaternions ``(M, 4)`` of the smallest rotation taking unit ``x`` onto unit ``y``."""
    c = np.einsum("mi,mi->m", x, y)
    q = np.concatenate([(1.0 + c)[:, None], np.cross(x, y)], axis=1)
    opposite = 1.0 + c < 1e-9
    if np.any(opposite):
        q[opposite] = np.concatenate([np.zeros((opposite.sum(), 1)), fallback_axis[opposite]], axis=1)
    return _unit(q)


def _knee_axis(P: np.ndarray, Qg: np.ndarray, leg: _Leg, bone_local: np.ndarray) -> np.ndarray:
    """The knee's flexion axis ``(3,)`` in the thigh's frame: the mean bend-plane normal
    ``thigh x shin`` over frames bent by more than 10 deg, else ``bone x -FORWARD`` (a knee
    that bends backwards in a rest pose facing +Z). Flexion is positive about it."""
    u = P[:, leg.shin] - P[:, leg.thigh]
    w = P[:, leg.foot] - P[:, leg.shin]
    x = np.cross(u, w)
    s = np.linalg.norm(x, axis=-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1), 1e-12)
    bent = s > np.sin(np.radians(10.0))
    bd = _unit(bone_local)
    n = np.cross(bd, -FORWARD)
    if np.count_nonzero(bent):
        nl = quat_rotate(Q_inv(Qg[bent, leg.thigh]), _unit(x[bent]))
        n = (nl * s[bent, None]).sum(0)
    n = n - (n @ bd) * bd
    if np.linalg.norm(n) < 1e-6:
        n = np.cross(bd, np.array([0.0, 1.0, 0.0])) if abs(bd[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    return _unit(n)


def _two_bone_ik(a, b, c, t, Qp, Qa, Qb, Qf, axis_local):
    """Analytic two-bone IK, batched over M frames.

    ``a, b, c`` ``(M, 3)`` hip, knee, ankle; ``t`` ``(M, 3)`` ankle target; ``Qp, Qa, Qb``
    ``(M, 4)`` global rotations of the thigh's parent, the thigh and the shin; ``Qf`` the
    foot's wanted global rotation; ``axis_local`` ``(3,)`` knee flexion axis in the thigh
    frame. Returns new local rotations (thigh, shin, foot), each ``(M, 4)``.
    """
    u, w = b - a, c - b
    l1, l2 = np.linalg.norm(u, axis=-1), np.linalg.norm(w, axis=-1)
    n = quat_rotate(Qa, axis_local)
    n = _unit(n - (np.einsum("mi,mi->m", n, u) / np.maximum(l1**2, 1e-12))[:, None] * u)
    phi0 = np.arctan2(np.einsum("mi,mi->m", n, np.cross(u, w)), np.einsum("mi,mi->m", u, w))
    d = np.clip(np.linalg.norm(t - a, axis=-1), np.abs(l1 - l2) + 1e-9, (l1 + l2) * (1.0 - 1e-9))
    cos_in = np.clip((l1**2 + l2**2 - d**2) / (2.0 * l1 * l2), -1.0, 1.0)
    phi1 = np.pi - np.arccos(cos_in)  # flexion in [0, pi): never hyperextended
    Rk = A2Q(n * (phi1 - phi0)[:, None])
    c1 = b + quat_rotate(Rk, w)
    # turn the chain about the hinge so hip->ankle is back on the original line (in the plane)
    x, y = c1 - a, c - a
    x = x - np.einsum("mi,mi->m", x, n)[:, None] * n
    y = y - np.einsum("mi,mi->m", y, n)[:, None] * n
    psi = np.arctan2(np.einsum("mi,mi->m", n, np.cross(x, y)), np.einsum("mi,mi->m", x, y))
    Rp = A2Q(n * psi[:, None])
    c2 = a + quat_rotate(Rp, c1 - a)
    S = _min_rotation(_unit(c2 - a), _unit(t - a), n)
    Qa_new = Q_mul(S, Q_mul(Rp, Qa))
    Qb_new = Q_mul(S, Q_mul(Rp, Q_mul(Rk, Qb)))
    return Q_mul(Q_inv(Qp), Qa_new), Q_mul(Q_inv(Qa_new), Qb_new), Q_mul(Q_inv(Qb_new), Qf)


def _ankle_height(skeleton, leg: _Leg) -> float:
    """The ankle's rest height above the floor: its rest y when the rest pose stands on
    y = 0 (lowest point 0-5 cm up), else its height above the rest pose's lowest point."""
    P = skeleton.rest_positions()
    lowest = [P[:, 1].min()]
    for name, v in skeleton.end_sites.items():
        lowest.append(P[skeleton.index(name), 1] + v[1])
    lo = float(min(lowest))
    y = float(P[leg.foot, 1])
    return y if 0.0 <= lo <= 0.05 else y - lo


def _targets(A0, Qf0, mask, nb, anchor, hmin, lock_rotation, hold_height=True):
    """Ankle targets (T,3), foot rotations (T,4), lock weight (T,) for one leg.

    Per contact segment the planted position and rotation (``hold_height`` False: the
    ankle keeps its own height, at least ``hmin``); the fades in and out of all segments
    (disjoint frame ranges: two neighbours split the gap between them) are then computed
    in one batch, each easing in the correction at its segment's boundary frame."""
    T = len(A0)
    At, Qt, w = A0.copy(), Qf0.copy(), np.zeros(T)
    segs = contact_segments(mask)
    I = np.array([1.0, 0.0, 0.0, 0.0])
    # per fade: (first frame, frame count, reference frame, rising, segment)
    fades: list[tuple[int, int, int, bool, int]] = []
    qlocks = np.empty((len(segs), 4))
    for k, (s, e) in enumerate(segs):
        lock = A0[s:e].mean(0) if anchor == "mean" else A0[s].copy()
        lock[1] = max(lock[1], hmin)
        At[s:e] = lock
        if not hold_height:
            At[s:e, 1] = np.maximum(A0[s:e, 1], hmin)
        if lock_rotation:
            qlocks[k] = Qt[s:e] = _quat_mean(Qf0[s:e])
        w[s:e] = 1.0
        gap_before = s - (segs[k - 1][1] if k > 0 else 0)
        gap_after = (segs[k + 1][0] if k + 1 < len(segs) else T) - e
        n_in = min(nb, gap_before - gap_before // 2 if k > 0 else gap_before)
        n_out = min(nb, gap_after // 2 if k + 1 < len(segs) else gap_after)
        if n_in > 0:
            fades.append((s - n_in, n_in, s, True, k))
        if n_out > 0:
            fades.append((e, n_out, e - 1, False, k))
    if not fades:
        return At, Qt, w
    first, count, ref, rising, seg = (np.array(v) for v in zip(*fades))
    fade = np.repeat(np.arange(len(fades)), count)  # the fade of each faded frame
    n = count[fade]
    j = np.arange(fade.size) - np.repeat(np.cumsum(count) - count, count) + 1.0  # 1 .. n
    rng = first[fade] + (j - 1).astype(np.int64)
    ref_f = ref[fade]
    ww = _smoothstep(np.where(rising[fade], j / (n + 1), (n + 1 - j) / (n + 1)))
    At[rng] = A0[rng] + ww[:, None] * (At[ref_f] - A0[ref_f])  # At[ref] is the segment's target
    if lock_rotation:
        C = Q_mul(qlocks[seg], Q_inv(Qf0[ref]))[fade]
        Qt[rng] = Q_mul(slerp(np.broadcast_to(I, (fade.size, 4)), C, ww), Qf0[rng])
    w[rng] = ww
    return At, Qt, w


def _root_shift(H: np.ndarray, A: np.ndarray, reach: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Smallest-ish root move ``(T, 3)`` so that every active leg reaches its target:
    first lower, then project onto each leg's reach sphere in turn (a few rounds).
    ``H, A`` ``(L, T, 3)`` hip joints and targets, ``reach`` ``(L,)``, ``active`` ``(L, T)``."""
    v = A - H
    hsq = v[..., 0] ** 2 + v[..., 2] ** 2
    r2 = (reach**2)[:, None]
    s = np.where(active & (hsq < r2), -v[..., 1] - np.sqrt(np.clip(r2 - hsq, 0, None)), 0.0)
    delta = np.zeros(H.shape[1:])
    delta[:, 1] = -np.clip(s.max(0), 0.0, None)
    for _ in range(8):
        for leg in range(len(H)):
            e = H[leg] + delta - A[leg]
            dist = np.linalg.norm(e, axis=-1)
            over = active[leg] & (dist > reach[leg])
            delta[over] -= e[over] * (1.0 - reach[leg] / dist[over])[:, None]
    return delta


# -- foot locking ------------------------------------------------------------------------------


def lock_feet(
    motion: Motion,
    contacts: Mapping[str, np.ndarray],
    *,
    legs: Mapping[str, tuple] | None = None,
    blend_s: float = 0.1,
    anchor: str = "mean",
    ankle_height: float | None = None,
    lock_rotation: bool = True,
    knee_axes: Mapping[str, np.ndarray] | None = None,
    reach: float = 0.999,
    hold_height: bool = True,
    max_root_shift_m: float | None = None,
) -> Motion:
    """A copy of ``motion`` whose feet stay planted through their contacts.

    ``contacts`` maps a side of ``legs`` (default :data:`DEFAULT_LEGS`: ``"left"``,
    ``"right"``) to ``(T,)`` bool. ``anchor`` "mean" or "start" picks the planted position;
    ``ankle_height`` (metres) is the lowest a planted ankle may be, by default the ankle's
    rest height (its rest y when the rest pose stands on y = 0, as the canonical skeleton
    does: 0.08 m; else its height above the rest pose's lowest point); ``lock_rotation`` also holds the foot's orientation
    (planting the toes); ``knee_axes`` overrides the estimated knee hinge axes (thigh
    frame, per side); a leg may stretch to ``reach`` x its length before the root is
    lowered; ``hold_height`` False holds only the ankle's horizontal position and lets it
    keep its own height (not below the rest height), so a heel rising at push-off still
    rises and a monocular take's height noise is not frozen into a plant;
    ``max_root_shift_m`` caps the root's move (a plant placed a little wrong in depth
    should not drag the whole body down): beyond it the leg stretches as far as it can
    and the foot stops short of its plant. See the module docstring for the method.

    The result's ``meta["foot_lock"]`` records the largest root lowering and lift (m),
    the frames where a target stayed out of reach, and the contact segment count.
    """
    if anchor not in ("mean", "start"):
        raise UsageError(f"anchor must be 'mean' or 'start', got {anchor!r}")
    sk = motion.skeleton
    L = _resolve_legs(sk, legs)
    T = len(motion)
    masks = {}
    for side, m in contacts.items():
        if side not in L:
            raise UsageError(f"contacts given for {side!r}, which is not a leg ({sorted(L)})")
        m = np.asarray(m, dtype=bool)
        if m.shape != (T,):
            raise UsageError(f"contacts[{side!r}] must be ({T},) bool, got shape {m.shape}")
        masks[side] = m
    sides = [s for s in L if s in masks]
    offsets = sk.offsets if motion.local_offsets is None else motion.local_offsets
    rot = motion.rotations.copy()
    root = motion.root_positions.copy()
    P0, Qg0 = _leg_fk(sk, offsets, rot, root, L)
    nb = max(1, int(round(blend_s * motion.fps)))
    axes = {}
    for side, leg in L.items():
        given = None if knee_axes is None else knee_axes.get(side)
        axes[side] = (_unit(np.asarray(given, dtype=float)) if given is not None
                      else _knee_axis(P0, Qg0, leg, np.asarray(sk.offsets[leg.shin])))

    # 1. targets
    tg = {}
    for side in sides:
        leg = L[side]
        hmin = _ankle_height(sk, leg) if ankle_height is None else float(ankle_height)
        tg[side] = _targets(P0[:, leg.foot], Qg0[:, leg.foot], masks[side], nb, anchor, hmin, lock_rotation,
                            hold_height)

    def solve(rot, root, targets, frames):
        """IK each leg in ``frames[side]`` towards ``targets[side] = (A, Qf)``."""
        P, Qg = _leg_fk(sk, offsets, rot, root, L)
        rot = rot.copy()
        for side, (A, Qf) in targets.items():
            f = frames[side]
            if not np.any(f):
                continue
            leg = L[side]
            par = sk.parents[leg.thigh]
            la, lb, lf = _two_bone_ik(P[f, leg.thigh], P[f, leg.shin], P[f, leg.foot], A[f], Qg[f, par],
                                      Qg[f, leg.thigh], Qg[f, leg.shin], Qf[f], axes[side])
            rot[f, leg.thigh], rot[f, leg.shin], rot[f, leg.foot] = la, lb, lf
        return rot

    # 2. root: lower (then shift) where a locked leg cannot reach
    delta = np.zeros((T, 3))
    unreachable = 0
    if sides:
        H = np.stack([P0[:, L[s].thigh] for s in sides])
        A = np.stack([tg[s][0] for s in sides])
        act = np.stack([tg[s][2] > 0 for s in sides])
        lens = np.stack([np.linalg.norm(P0[:, L[s].shin] - P0[:, L[s].thigh], axis=-1)
                         + np.linalg.norm(P0[:, L[s].foot] - P0[:, L[s].shin], axis=-1) for s in sides])
        r = reach * lens.min(axis=1)
        delta = _root_shift(H, A, r, act)
        low = _ease_cover(np.clip(-delta[:, 1], 0, None), nb)
        from scipy.ndimage import uniform_filter1d

        horiz = uniform_filter1d(delta[:, [0, 2]], size=2 * nb + 1, axis=0, mode="nearest")
        delta = np.stack([horiz[:, 0], -low, horiz[:, 1]], axis=1)
        delta += _root_shift(H + delta, A, r, act)  # what smoothing left short
        if max_root_shift_m is not None:
            n = np.linalg.norm(delta, axis=1, keepdims=True)
            delta *= np.minimum(1.0, max_root_shift_m / np.maximum(n, 1e-12))
        dist = np.linalg.norm(H + delta - A, axis=-1)
        unreachable = int(np.count_nonzero(np.any(act & (dist > r[:, None] * 1.0001), axis=0)))
    root1 = root + delta
    moved = np.linalg.norm(delta, axis=1) > 1e-12
    rot1 = solve(rot, root1, {s: tg[s][:2] for s in sides}, {s: (tg[s][2] > 0) | moved for s in sides})

    # 3. floor: raise legs whose foot points go below y = 0, then lift the root for the rest
    P1, Qg1 = _leg_fk(sk, offsets, rot1, root1, L)
    raise_t, raise_f = {}, {}
    for side, leg in L.items():
        pen = np.clip(-leg.points(P1, Qg1)[..., 1].min(axis=1), 0.0, None)
        if np.any(pen > 0):
            up = _ease_cover(pen, nb)
            A1 = P1[:, leg.foot] + up[:, None] * np.array([0.0, 1.0, 0.0])
            raise_t[side] = (A1, Qg1[:, leg.foot])
            raise_f[side] = up > 0
    if raise_t:
        rot1 = solve(rot1, root1, raise_t, raise_f)
    P2, Qg2 = _leg_fk(sk, offsets, rot1, root1, L)
    lowest = np.min(np.concatenate([leg.points(P2, Qg2)[..., 1] for leg in L.values()], axis=1), axis=1)
    lift = _ease_cover(np.clip(-lowest, 0.0, None), nb)
    root1 = root1 + lift[:, None] * np.array([0.0, 1.0, 0.0])

    meta = dict(motion.meta)
    meta["foot_lock"] = {
        "contacts": {s: len(contact_segments(masks[s])) for s in sides},
        "root_lowered_max_m": float(max(0.0, -delta[:, 1].min())) if T else 0.0,
        "root_shift_max_m": float(np.linalg.norm(delta, axis=1).max()) if T else 0.0,
        "root_lifted_max_m": float(lift.max()) if T else 0.0,
        "unreachable_frames": unreachable,
    }
    return Motion(skeleton=sk, rotations=rot1, root_positions=root1, fps=motion.fps,
                  timestamps=motion.timestamps, local_offsets=motion.local_offsets, meta=meta)


# -- metric ----------------------------------------------------------------------------------------


def foot_skate(
    motion_or_positions: Motion | Mapping[str, np.ndarray],
    contacts: Mapping[str, np.ndarray],
    *,
    legs: Mapping[str, tuple] | None = None,
) -> dict:
    """How much the feet slide while in contact, and how deep they go below the floor.

    ``motion_or_positions``: a :class:`Motion` (its foot points, see :func:`foot_points`)
    or a mapping side -> ``(T, k, 3)`` / ``(T, 3)`` world positions. ``contacts``: side ->
    ``(T,)`` bool.

    Returns ``{"per_contact": [{"foot", "start", "stop", "slide_cm", "drift_cm"}, ...],
    "slide_cm_mean", "slide_cm_max", "floor_penetration": {"max_depth_cm",
    "share_frames"}}``. ``slide_cm`` is the horizontal (x, z) path length of the foot's
    points through the contact, averaged over its points; ``drift_cm`` the farthest any
    point got from where it was at the contact's start. ``max_depth_cm`` is the deepest
    foot point below y = 0 over the whole clip; ``share_frames`` the fraction of frames
    with a foot point more than 0.1 mm below it.
    """
    if isinstance(motion_or_positions, Motion):
        pts = foot_points(motion_or_positions, legs=legs)
    else:
        pts = {}
        for side, p in motion_or_positions.items():
            p = np.asarray(p, dtype=float)
            pts[side] = p[:, None] if p.ndim == 2 else p
    per = []
    for side, mask in contacts.items():
        if side not in pts:
            raise UsageError(f"contacts given for {side!r} but no positions for it ({sorted(pts)})")
        p = pts[side][..., [0, 2]]
        for s, e in contact_segments(mask):
            seg = p[s:e]
            slide = np.linalg.norm(np.diff(seg, axis=0), axis=-1).sum(0).mean() if e - s > 1 else 0.0
            drift = np.linalg.norm(seg - seg[:1], axis=-1).max()
            per.append({"foot": side, "start": s, "stop": e, "slide_cm": 100.0 * float(slide),
                        "drift_cm": 100.0 * float(drift)})
    ys = np.concatenate([p[..., 1].reshape(len(p), -1) for p in pts.values()], axis=1)
    low = np.min(np.where(np.isfinite(ys), ys, np.inf), axis=1)
    low = low[np.isfinite(low)]
    slides = [c["slide_cm"] for c in per]
    return {
        "per_contact": per,
        "slide_cm_mean": float(np.mean(slides)) if slides else 0.0,
        "slide_cm_max": float(np.max(slides)) if slides else 0.0,
        "floor_penetration": {
            "max_depth_cm": 100.0 * float(max(0.0, -low.min())) if len(low) else 0.0,
            "share_frames": float(np.count_nonzero(low < -_PENETRATION_TOL)) / max(len(ys), 1),
        },
    }


def _median0(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=0)`` for a small ``(n, d)`` array, without its per-call overhead."""
    x = np.sort(x, axis=0)
    n = len(x)
    return 0.5 * (x[(n - 1) // 2] + x[n // 2])


def _still_pieces(u: np.ndarray, max_drift: float, min_n: int, max_speed: float,
                  dt: float) -> list[tuple[int, int]]:
    """The still parts ``[(start, stop), ...]`` of a foot's horizontal track ``u``
    ``(n, 2)`` (m): a part whose points stay within ``max_drift`` of its median is kept
    unless its least-squares speed exceeds ``max_speed`` (a steady slide); a part that
    strays further is cut at its fastest step (the two frames around it dropped) and
    each side judged again. Parts shorter than ``min_n`` frames are dropped."""
    n = len(u)
    step = np.linalg.norm(np.diff(u, axis=0), axis=1)  # step[i]: frames i -> i+1
    i = np.arange(n, dtype=float)[:, None]
    c_u = np.concatenate([np.zeros((1, u.shape[1])), np.cumsum(u, axis=0)])  # prefix sums for the slope
    c_iu = np.concatenate([np.zeros((1, u.shape[1])), np.cumsum(i * u, axis=0)])
    out, todo = [], [(0, n)]
    while todo:
        a, b = todo.pop()
        m = b - a
        if m < max(min_n, 2):
            continue
        seg = u[a:b]
        span = seg.max(axis=0) - seg.min(axis=0)
        # within max_drift of the median: surely when the bounding box's diagonal is, surely not when a
        # side exceeds twice that; in between, measured
        if np.sqrt((span**2).sum()) <= max_drift or (span.max() <= 2 * max_drift and np.sqrt(
                ((seg - _median0(seg)) ** 2).sum(axis=1).max()) <= max_drift):
            # least-squares slope of u over frames a..b-1, from the prefix sums (m/s)
            sx, sxx = (a + b - 1) * m / 2.0, ((b - 1) * b * (2 * b - 1) - (a - 1) * a * (2 * a - 1)) / 6.0
            sy, sxy = c_u[b] - c_u[a], c_iu[b] - c_iu[a]
            slope = np.linalg.norm(m * sxy - sx * sy) / max(m * sxx - sx * sx, 1e-12) / dt
            if slope <= max_speed:
                out.append((a, b))
            continue
        k = a + 1 + int(np.argmax(np.convolve(step[a:b - 1], np.ones(3) / 3.0, mode="same")))  # fastest: k-1 -> k
        todo += [(a, max(k - 1, a)), (min(k + 1, b), b)]
    return sorted(out)


def planted_contacts(motion: Motion, contacts: Mapping[str, np.ndarray], *, max_drift_m: float = 0.05,
                     legs: Mapping[str, tuple] | None = None, view_from: np.ndarray | None = None,
                     depth_weight: float = 0.0, split: bool = False, max_speed_m_s: float = 0.2,
                     min_duration_s: float = 0.1) -> tuple[dict[str, np.ndarray], int]:
    """Keep only the contacts in which the foot is really planted.

    A contact detected from height and speed may be a foot that truly slides on the
    floor: a pivot on the ball of the foot, a dance slide, a moonwalk. Locking it would
    invent a pose the performer never made. A contact segment is kept when the ankle
    stays within ``max_drift_m`` (horizontally) of its median position throughout; the
    small drift of noise, which locking is there to remove, stays well inside the
    default 5 cm. Returns the filtered contacts and the number of segments dropped
    (or, with ``split``, dropped or cut).

    ``view_from`` ``(3,)``, the camera centre of a monocular take: the drift along the
    line of sight (the horizontal camera -> ankle direction) counts ``depth_weight``
    times, as in :func:`detect_contacts`; at 0 it is measured only across the view, where
    the image pins the foot, since along it a planted foot's depth wanders by several
    cm. A slide straight towards or away from the camera then goes unseen.
    ``split``: a segment that drifts too far is not dropped whole but cut at its fastest
    steps into the parts where the foot stays put (a low, slow stretch of a salsa often
    holds a plant, a step, and another plant); a part is kept when it lasts
    ``min_duration_s`` and its least-squares speed is at most ``max_speed_m_s`` (a steady
    slide is not a plant, however short its drift).
    """
    if not max_drift_m > 0:
        raise UsageError(f"max_drift_m must be positive, got {max_drift_m}")
    if view_from is not None and np.shape(view_from) != (3,):
        raise UsageError(f"view_from must be a camera centre (3,), got shape {np.shape(view_from)}")
    fp = foot_points(motion, legs=legs)
    out: dict[str, np.ndarray] = {}
    dropped = 0
    dt = 1.0 / motion.fps
    min_n = max(1, int(round(min_duration_s / dt)))
    for side, c in contacts.items():
        c = np.asarray(c, dtype=bool).copy()
        ankle = fp[side][:, 0]
        for s, e in contact_segments(c):
            xz = ankle[s:e][:, [0, 2]]
            if view_from is not None:  # (across the view, weighted along it)
                ray = _unit(xz.mean(0) - np.asarray(view_from, dtype=float)[[0, 2]])
                xz = np.stack([xz @ np.array([-ray[1], ray[0]]), depth_weight * (xz @ ray)], axis=1)
            if np.sqrt(((xz - _median0(xz)) ** 2).sum(axis=1).max()) <= max_drift_m:
                continue
            dropped += 1
            c[s:e] = False
            if split:
                for a, b in _still_pieces(xz, max_drift_m, min_n, max_speed_m_s, dt):
                    c[s + a:s + b] = True
        out[side] = c
    return out, dropped
