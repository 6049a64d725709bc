"""The live per-frame solve: :func:`mocap.solve.solve_motion` for the newest frame of a
3-frame causal window, in plain Python float maths on 3-vectors and quaternions.

``understudy record`` solves every frame as it arrives. :func:`~mocap.solve.solve_motion`
is written for whole takes: every step is a numpy call on ``(T, 3)`` arrays, which for one
frame (or the three of the live window) costs ~30 ms of call overhead. :class:`LiveSolver`
does the same maths for one frame with Python floats (a 3-vector is a tuple; a quaternion
a ``(w, x, y, z)`` tuple), after precomputing everything that is constant: the skeleton's
joint indices, the scaled offsets and rest positions, the rest frames of every alignment,
the joint limits in radians, the trunk's bend table, the hand's palm normal and finger
axes. It takes ~1-2 ms a frame. :class:`LiveLift` likewise places one frame's landmarks in
the camera as :func:`mocap.root.lift_take` does (~1 ms instead of ~2-5 ms).

What it mirrors (``mocap/solve.py``, by method): ``_Solver.trunk`` (pelvis/chest from the
hip and shoulder lines, planar trunk bend + two Newton steps, the swing that puts the neck
on mid-shoulder), ``neck_head``, ``clavicle``, ``limb`` (upper bone from the bend plane,
hinge), ``hand_target``, ``arm`` (forearm twist), ``fingers``, ``leg``; the helpers
``_unit``, ``_qswing``, ``_m2q`` (Shepperd), ``_frame``/``_align``, ``_qpow``,
``_limit_ball``, ``_twist_angle``, ``_hold``.

What the window of 3 frames does in ``solve_motion`` and how it is kept here, causally:

* a joint whose rotation is missing in the newest frame holds the last finite rotation
  of the window (``_hold``), else the rest: here, the last solved rotation of that joint
  if it is at most 2 frames old, else the identity;
* the elbow's / knee's bend plane decides the upper bone's twist only when it is reliable
  (bent >= :data:`mocap.solve.HINGE_RELIABLE_DEG` with a finite plane) in a run of 3
  frames; for the newest frame of 3 that means in all three: the flags of the two
  previous frames are kept per limb; otherwise the interpolated twist is 0 (none of the
  window's frames counts), as in ``solve_motion``;
* the forearm twist is unwrapped over the window: the two previous raw twists are kept;
* no hand landmarks in the whole window -> fingers at rest; no frame of the window with
  both hips and both shoulders -> no pose (``solve_motion`` raises ``SolveError``);
* quaternion signs: continuous with the previous output (``_continuous_stack``).

The frames before the window was full are padded with the first, as
:class:`mocap.record.LivePose` pads them. Bone lengths: :meth:`LiveSolver.set_lengths`
(frozen, after the calibration second) or :meth:`LiveSolver.fit_lengths` on the window
(``mocap.solve._fit_lengths``, exactly what ``solve_motion`` fits, during calibration).
Equivalence is tested against ``solve_motion`` frame by frame on real and synthetic takes
(tests/test_live_solve.py: every joint within 0.5 degrees).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from math import asin, atan2, cos, pi, radians, sin, sqrt

import numpy as np

from .errors import UsageError

__all__ = ["LiveSolver", "LiveLift"]

_NAN = float("nan")
_NAN3 = (_NAN, _NAN, _NAN)
_NAN4 = (_NAN, _NAN, _NAN, _NAN)
_QI = (1.0, 0.0, 0.0, 0.0)
_TWO_PI = 2.0 * pi


# -- float maths on tuples (NaN propagates, as in the numpy helpers of mocap.solve) ---------


def _fin(v) -> bool:
    """All components finite (a NaN or an infinity makes the sum's difference NaN)."""
    s = sum(v)
    return s - s == 0.0


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _scale(a, k):
    return (a[0] * k, a[1] * k, a[2] * k)


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a):
    return sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def _unit(a):
    """``mocap.solve._unit``: NaN when shorter than 1e-12."""
    n = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    if n > 1e-12:
        return (a[0] / n, a[1] / n, a[2] / n)
    return _NAN3


def _clip(x, lo, hi):
    if x != x:
        return x
    return lo if x < lo else (hi if x > hi else x)


def _qmul(q, r):
    w1, x1, y1, z1 = q
    w2, x2, y2, z2 = r
    return (w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2)


def _qconj(q):
    return (q[0], -q[1], -q[2], -q[3])


def _qrot(q, v):
    """``mocap.solve._qrot``."""
    w, x, y, z = q
    vx, vy, vz = v
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx))


def _qaxis(axis, angle):
    h = 0.5 * angle
    s = sin(h) if h == h else _NAN
    return (cos(h) if h == h else _NAN, axis[0] * s, axis[1] * s, axis[2] * s)


def _qpos(q):
    return (-q[0], -q[1], -q[2], -q[3]) if q[0] < 0 else q


def _qpow(q, t):
    """``mocap.solve._qpow``: the same axis, ``t`` times the angle."""
    q = _qpos(q)
    s = sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    ang = 2.0 * atan2(s, q[0])
    axis = (q[1] / s, q[2] / s, q[3] / s) if s > 1e-12 else (0.0, 0.0, 0.0)
    return _qaxis(axis, t * ang)


def _qswing(r, d, perp):
    """``mocap.solve._qswing``: the shortest rotation taking unit ``r`` to unit ``d``."""
    w = 1.0 + _dot(r, d)
    c = _cross(r, d)
    q = (0.0, perp[0], perp[1], perp[2]) if w < 1e-9 else (w, c[0], c[1], c[2])
    n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    if not n > 0:
        return _NAN4
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def _frame(a, b):
    """``mocap.solve._frame``: the columns (e1, e2, e3) as three tuples."""
    e1 = _unit(a)
    k = _dot(b, e1)
    e2 = _unit((b[0] - k * e1[0], b[1] - k * e1[1], b[2] - k * e1[2]))
    return e1, e2, _cross(e1, e2)


def _m2q(m00, m01, m02, m10, m11, m12, m20, m21, m22):
    """``mocap.solve._m2q`` (Shepperd), w >= 0; NaN in -> NaN out."""
    d = (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22)
    if not (d[0] == d[0] and d[1] == d[1] and d[2] == d[2] and d[3] == d[3]):
        return _NAN4
    k = 0
    for i in (1, 2, 3):  # np.argmax: the first of equal maxima
        if d[i] > d[k]:
            k = i
    s = 0.5 * sqrt(max(d[k], 1e-300))
    f = 0.25 / s
    a, b, c = (m21 - m12) * f, (m02 - m20) * f, (m10 - m01) * f
    e, g, h = (m01 + m10) * f, (m02 + m20) * f, (m12 + m21) * f
    if k == 0:
        q = (s, a, b, c)
    elif k == 1:
        q = (a, s, e, g)
    elif k == 2:
        q = (b, e, s, h)
    else:
        q = (c, g, h, s)
    return _qpos(q)


def _align(a, b, F0):
    """``mocap.solve._align`` with the rest frame ``F0 = _frame(a0, b0)`` precomputed:
    the rotation ``F @ F0^T`` as a quaternion."""
    e1, e2, e3 = _frame(a, b)
    f1, f2, f3 = F0
    return _m2q(*(e1[i] * f1[j] + e2[i] * f2[j] + e3[i] * f3[j] for i in range(3) for j in range(3)))


def _twist_angle(q, axis):
    q = _qpos(q)
    return 2.0 * atan2(q[1] * axis[0] + q[2] * axis[1] + q[3] * axis[2], q[0])


def _limit_ball(q, axis, lo, hi, smax):
    """``mocap.solve._limit_ball`` (angles in radians): twist about ``axis`` clamped to
    [lo, hi], the swing to a cone of ``smax``; w >= 0."""
    q = _qpos(q)
    tw = 2.0 * atan2(q[1] * axis[0] + q[2] * axis[1] + q[3] * axis[2], q[0])
    sq = _qpos(_qmul(q, _qconj(_qaxis(axis, tw))))
    sv = sqrt(sq[1] * sq[1] + sq[2] * sq[2] + sq[3] * sq[3])
    sang = 2.0 * atan2(sv, sq[0])
    if not (tw < lo - 1e-9 or tw > hi + 1e-9 or sang > smax + 1e-9):
        return q
    sax = (sq[1] / sv, sq[2] / sv, sq[3] / sv) if sv > 1e-12 else (0.0, 0.0, 0.0)
    return _qmul(_qaxis(sax, min(sang, smax)), _qaxis(axis, _clip(tw, lo, hi)))


def _rodrigues(v, k, angle):
    c, s = cos(angle), sin(angle)
    kv = _dot(k, v) * (1.0 - c)
    x = _cross(k, v)
    return (v[0] * c + x[0] * s + k[0] * kv, v[1] * c + x[1] * s + k[1] * kv, v[2] * c + x[2] * s + k[2] * kv)


def _wrap(dd: float) -> float:
    """The step ``np.unwrap`` takes for a difference ``dd``."""
    if abs(dd) < pi:
        return dd
    m = (dd + pi) % _TWO_PI - pi
    return pi if (m == -pi and dd > 0) else m


def _mid(a, b):
    return (0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1]), 0.5 * (a[2] + b[2]))


def _tup(v) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


# -- the solver ---------------------------------------------------------------------------------


class LiveSolver:
    """One frame of world-frame markers -> local rotations on the canonical skeleton, as
    :func:`mocap.solve.solve_motion` gives for the newest frame of a 3-frame window.

    ``names``: the marker names (``canonical.toml``: ``pose.left_elbow``, ...), fixed for
    the session. Call :meth:`set_lengths` (frozen bone lengths, metres per joint, as in
    ``Motion.meta["bone_lengths"]``) or, while they are being measured,
    :meth:`fit_lengths` with the window's markers, then :meth:`solve` once per frame, in
    time order. ``solve(points (N, 3) m, confidence (N,))`` returns
    ``(rotations (52, 4) wxyz local, root (3,) m)`` or None when no frame of the window
    has both hips and both shoulders.
    """

    WINDOW = 3

    def __init__(self, names: Sequence[str], *, limits: bool = True, skeleton_spec=None) -> None:
        from . import solve as S
        from .skeleton import canonical_spec

        self.names = tuple(names)
        self.limits = bool(limits)
        self.spec = skeleton_spec if skeleton_spec is not None else canonical_spec()
        S._check_spec(self.spec)
        self._S = S
        sk = self.spec.skeleton
        self.joint_names: tuple[str, ...] = tuple(sk.names)
        self._J = len(sk.names)
        self._j = {n: i for i, n in enumerate(sk.names)}
        self._parents = [int(p) for p in sk.parents]
        idx = {n: i for i, n in enumerate(self.names)}
        self._idx = idx
        # limits in radians, keyed as JOINT_LIMITS
        self._lim = {k: (radians(v.twist[0]), radians(v.twist[1]), radians(v.swing), radians(v.flex[0]),
                         radians(v.flex[1]), radians(v.abduct)) for k, v in S.JOINT_LIMITS.items()}
        self._rel = radians(S.HINGE_RELIABLE_DEG)
        body = ("pose.left_hip", "pose.right_hip", "pose.left_shoulder", "pose.right_shoulder")
        self._body = [idx.get(n) for n in body]
        self._hand_markers = {s: [idx[f"{s}_hand.{m}"] for _, lms in S.FINGERS.values() for m in lms
                                  if f"{s}_hand.{m}" in idx] for s in S.SIDES}
        self.lengths: dict[str, float] | None = None
        self._lengths_at = 0
        self.reset()

    def reset(self) -> None:
        """Forget the history (holds, hinge flags, twists): the next frame starts a window."""
        self._frame_no = -1
        self._last_body = -10
        self._last_hand = {s: -10 for s in self._S.SIDES}
        self._held: list[tuple | None] = [None] * self._J
        self._held_at = [-10] * self._J
        self._root_held: tuple | None = None
        self._root_at = -10
        self._hinge_hist: dict[str, collections.deque] = {}
        self._psi_hist: dict[str, collections.deque] = {}
        self._prev_out: np.ndarray | None = None
        self._recent: collections.deque = collections.deque(maxlen=self.WINDOW - 1)  # previous frames' points
        self._window_mode: dict | None = None
        self._used_hold = self._context_changed = False
        self._used_flags: dict[tuple[str, str], collections.deque] = {}  # the hinge flags frames were solved with

    # -- the skeleton, once per set of lengths -------------------------------------------------
    def fit_lengths(self, window_points: np.ndarray, window_conf: np.ndarray, timestamps: np.ndarray) -> dict[str, float]:
        """The bone lengths ``solve_motion`` fits on this window of markers ``(W, N, 3)``
        (``mocap.solve._fit_lengths``); sets them and returns them."""
        from .markers import Markers

        S = self._S
        mk = Markers(names=self.names, points=np.asarray(window_points, float), timestamps=np.asarray(timestamps, float),
                     confidence=np.asarray(window_conf, float), frame="world")
        lengths = S._fit_lengths(self.spec, S._MarkerView(mk), None)
        self.set_lengths(lengths)
        return lengths

    def set_lengths(self, lengths: Mapping[str, float]) -> None:
        """Scale the skeleton to ``lengths`` (joint -> metres, ``"<joint>.end"`` for end
        sites; every bone, as ``solve_motion`` fits them) and precompute what is constant."""
        S = self._S
        lengths = {k: float(v) for k, v in lengths.items()}
        if self.lengths == lengths:
            return
        self._lengths_at = self._frame_no + 1  # the frames before were solved on other bones
        missing = [n for n in self.joint_names[1:] if n not in lengths]
        if missing:
            raise UsageError(f"LiveSolver.set_lengths: no length for {missing[:4]}")
        self.lengths = lengths
        sk = S._scaled_skeleton(self.spec.skeleton, lengths)
        self.skeleton = sk
        self.offsets = np.asarray(sk.offsets, float)
        O = [_tup(o) for o in self.offsets]
        self._O = O
        rest = sk.rest_positions()
        j = self._j
        c: dict = {}
        # trunk (_Solver.trunk)
        x0 = _tup(rest[j["leftUpperLeg"]] - rest[j["rightUpperLeg"]])
        xs0 = _tup(rest[j["leftUpperArm"]] - rest[j["rightUpperArm"]])
        y0 = _tup(rest[j["neck"]] - rest[0])
        c["F_hips"] = _frame(x0, y0)
        c["F_chest"] = _frame(xs0, y0)
        o_sp, o_ch, o_uc, o_nk = (O[j[n]] for n in ("spine", "chest", "upperChest", "neck"))
        tl = [float(np.linalg.norm(self.offsets[j[n]])) for n in ("spine", "chest", "upperChest", "neck")]
        b = np.linspace(0.0, S._BEND_MAX, 451)
        i = np.arange(len(tl))[:, None]
        l_ = np.asarray(tl)[:, None]
        sx, sy = np.sum(l_ * np.sin(i * b), axis=0), np.sum(l_ * np.cos(i * b), axis=0)
        ch, g = np.hypot(sx, sy), np.arctan2(sx, sy)
        c["bend"] = (b, ch, g, ch[::-1].copy(), b[::-1].copy(), np.gradient(ch, b))
        c["trunk_o"] = (o_sp, o_ch, o_uc, o_nk)
        c["u_ch"], c["u_uc"], c["u_nk"] = _unit(o_ch), _unit(o_uc), _unit(o_nk)
        # head (_Solver.neck_head)
        fg = {k: tuple(float(x) for x in v) for k, v in S.FACE_GEOMETRY.items()}
        c["F_ears"] = _frame(_sub(fg["left_ear"], fg["right_ear"]), _sub(fg["nose"], _mid(fg["left_ear"], fg["right_ear"])))
        c["F_eyes"] = _frame(_sub(fg["left_eye_outer"], fg["right_eye_outer"]),
                             _sub(fg["nose_tip"], _mid(fg["left_eye_outer"], fg["right_eye_outer"])))
        c["up_head"] = _unit(O[j["head"]])
        Z = (0.0, 0.0, 1.0)
        for s in S.SIDES:
            # clavicle
            c[s, "r_ua"] = _unit(O[j[f"{s}UpperArm"]])
            # limbs
            for upper, lower, end, flex in (("UpperArm", "LowerArm", "Hand", Z), ("UpperLeg", "LowerLeg", "Foot", (0.0, 0.0, -1.0))):
                r_u, r_f = _unit(O[j[f"{s}{lower}"]]), _unit(O[j[f"{s}{end}"]])
                a_rest = _unit(_cross(r_u, flex))
                c[s, upper] = (r_u, r_f, a_rest, _norm(O[j[f"{s}{lower}"]]), _frame(r_u, a_rest))
            # hand target (_Solver.hand_target) and palm (_Solver.fingers)
            w0 = rest[j[f"{s}Hand"]]
            i0 = rest[j[f"{s}{S.HAND_POSE_POINTS['index']}"]]
            k0 = rest[j[f"{s}{S.HAND_POSE_POINTS['pinky']}"]]
            c[s, "F_hand"] = _frame(_tup(0.5 * (i0 + k0) - w0), _tup(i0 - k0))
            side = 1.0 if s == "left" else -1.0
            palm = _unit(_tup(side * np.cross(0.5 * (i0 + k0) - w0, i0 - k0)))
            fingers = []
            for finger, (joints, lms) in S.FINGERS.items():
                names = [f"{s}{jn}" for jn in joints]
                js = [j[n] for n in names]
                ends = [O[js[1]], O[js[2]], _tup(sk.end_sites.get(names[2], self.offsets[js[2]]))]
                axes = []
                for k in range(3):
                    e = _unit(ends[k])
                    pe = _dot(palm, e)
                    n = _unit(_sub(palm, _scale(e, pe)))
                    axes.append((e, n, _cross(e, n), _cross(n, e)))
                keys = (("ThumbMetacarpal", "ThumbProximal", "ThumbDistal") if finger == "thumb"
                        else ("Proximal", "Intermediate", "Distal"))
                pts = [self._idx.get(f"{s}_hand.{m}") for m in lms]
                fingers.append((js, axes, keys, pts))
            c[s, "fingers"] = fingers
            # foot (_Solver.leg)
            t0 = O[j[f"{s}Toes"]]
            c[s, "F_foot"] = _frame(t0, _cross(t0, _tup(S.HEEL_OFFSET)))
            c[s, "u_foot"] = _unit(O[j[f"{s}Foot"]])
        self._c = c

    # -- per frame -----------------------------------------------------------------------------
    def _m(self, name: str):
        i = self._idx.get(name)
        return self._pts[i] if i is not None else _NAN3

    def _limit(self, q, key: str, axis):
        if not self.limits:
            return q
        lo, hi, smax = self._lim[key][:3]
        return _limit_ball(q, axis, lo, hi, smax)

    def _commit(self, j: int, local, *, place: bool = True) -> None:
        """``_Solver.commit``: hold a missing rotation (the last one at most 2 frames old,
        else the rest), store the local and global rotations and the position."""
        if _fin(local):
            self._held[j] = local
            self._held_at[j] = self._frame_no
        elif self._frame_no - self._held_at[j] < self.WINDOW and self._held[j] is not None:
            local = self._held[j]
            self._used_hold = True
        else:
            local = _QI
        self._L[j] = local
        p = self._parents[j]
        if p < 0:
            self._G[j] = local
        else:
            self._G[j] = _qmul(self._G[p], local)
            if place:
                self._P[j] = _add(self._P[p], _qrot(self._G[p], self._O[j]))

    def _place(self, j: int):
        p = self._parents[j]
        self._P[j] = _add(self._P[p], _qrot(self._G[p], self._O[j]))
        return self._P[j]

    def solve(self, points: np.ndarray, confidence: np.ndarray | None = None):
        """Solve one frame (the newest of the window). ``points (N, 3)`` world metres,
        ``confidence (N,)`` (<= 0 means missing). Returns ``(rotations (J, 4) wxyz,
        root (3,))`` or None (no frame of the window has the hips and shoulders)."""
        if self.lengths is None:
            raise UsageError("LiveSolver.solve: set_lengths() or fit_lengths() first")
        pts = np.asarray(points, float)
        if confidence is not None:
            bad = ~(np.asarray(confidence) > 0)
            if bad.any():
                pts = pts.copy()
                pts[bad] = np.nan
        pts = pts.tolist()
        self._frame_no += 1
        f = self._frame_no
        if all(i is not None and _fin(pts[i]) for i in self._body):
            self._last_body = f
        if f - self._last_body >= self.WINDOW:
            self._recent.append(pts)
            return None
        for s, ids in self._hand_markers.items():
            if any(_fin(pts[i]) for i in ids):
                self._last_hand[s] = f
        self._used_hold = False
        # a window holding frames solved on other bone lengths (while they are measured)
        self._context_changed = f - self._lengths_at < self.WINDOW - 1 and f > 0
        L, root = self._solve_frame(pts)
        if self._used_hold or self._context_changed:
            # a held rotation comes from an earlier frame of the window, solved as
            # solve_motion solves it in this window: solve the window again that way
            L = self._solve_window(pts)
        self._recent.append(pts)
        out = np.array(L, dtype=float)
        if self._prev_out is not None:  # _continuous_stack: signs continuous frame to frame
            flip = np.einsum("ij,ij->i", out, self._prev_out) < 0
            out[flip] *= -1.0
        self._prev_out = out
        return out, np.array(root, dtype=float)

    def _solve_frame(self, pts: list) -> tuple[list, tuple]:
        self._pts = pts
        J = self._J
        self._L: list = [None] * J
        self._G: list = [None] * J
        self._P: list = [None] * J
        self._trunk()
        self._neck_head()
        for s in self._S.SIDES:
            self._clavicle(s)
            self._arm(s)
            self._leg(s)
        return self._L, self._root

    def _solve_window(self, pts: list) -> list:
        """The newest frame's rotations from the window solved afresh, frame by frame, with
        the window's semantics (``solve_motion`` on the 3 frames): holds only within the
        window, a hinge reliable only if it is in all three frames (the flags kept), the
        forearm twist unwrapped from the window's first frame."""
        frames = list(self._recent)
        while len(frames) < self.WINDOW - 1:  # the first frames: padded with the first
            frames.insert(0, frames[0] if frames else pts)
        frames.append(pts)
        saved = (self._frame_no, self._held, self._held_at, self._root_held, self._root_at, self._hinge_hist,
                 self._psi_hist, self._used_hold, self._context_changed)
        self._window_mode = {k: all(h) for k, h in self._hinge_hist.items()}  # the flags incl. this frame
        try:
            self._held, self._held_at = [None] * self._J, [-10] * self._J
            self._root_held, self._root_at = None, -10
            self._psi_hist = {}
            for k, fr in enumerate(frames):
                self._frame_no = k
                L, _ = self._solve_frame(fr)
        finally:
            (self._frame_no, self._held, self._held_at, self._root_held, self._root_at, self._hinge_hist,
             self._psi_hist, self._used_hold, self._context_changed) = saved
            self._window_mode = None
        return L

    # mirrors _Solver.trunk
    def _trunk(self) -> None:
        c, m = self._c, self._m
        mid_hip = _mid(m("pose.left_hip"), m("pose.right_hip")) if "pose.mid_hip" not in self._idx else m("pose.mid_hip")
        ms = (_mid(m("pose.left_shoulder"), m("pose.right_shoulder")) if "pose.mid_shoulder" not in self._idx
              else m("pose.mid_shoulder"))
        # the root: mid_hip, held back over the window; never seen -> the rest position
        if _fin(mid_hip):
            root = mid_hip
            self._root_held, self._root_at = mid_hip, self._frame_no
        elif self._root_held is not None and self._frame_no - self._root_at < self.WINDOW:
            root = self._root_held
        else:
            root = self._O[0]
        self._root = root
        self._P[0] = root
        x_p = _unit(_sub(m("pose.left_hip"), m("pose.right_hip")))
        x_c = _unit(_sub(m("pose.left_shoulder"), m("pose.right_shoulder")))
        xm = _unit(_add(x_p, x_c))
        d = _sub(ms, mid_hip)
        chord = _norm(d)
        o_sp, o_ch, o_uc, o_nk = c["trunk_o"]
        F_h, F_c = c["F_hips"], c["F_chest"]

        def chain(beta, gamma):
            G_h = _align(x_p, _rodrigues(d, xm, -gamma), F_h)
            G_c = _align(x_c, _rodrigues(d, xm, 3.0 * beta - gamma), F_c)
            part = _qpow(_qmul(_qconj(G_h), G_c), 1.0 / 3.0)
            p_sp = _add(root, _qrot(G_h, o_sp))
            g_sp = _qmul(G_h, part)
            g_ch = _qmul(g_sp, part)
            p_nk = _add(_add(_add(p_sp, _qrot(g_sp, o_ch)), _qrot(g_ch, o_uc)), _qrot(_qmul(g_ch, part), o_nk))
            return G_h, part, p_sp, g_sp, p_nk

        b, ch, g, ch_r, b_r, slope_t = c["bend"]
        if chord == chord:
            beta = float(np.interp(chord, ch_r, b_r))
            gamma = float(np.interp(beta, b, g))
            for _ in range(2):
                pred = _norm(_sub(chain(beta, gamma)[4], root))
                slope = float(np.interp(beta, b, slope_t))
                step = -(pred - chord) / slope if slope < -1e-9 else 0.0
                step = 0.0 if step != step else step
                beta = _clip(beta + step, 0.0, self._S._BEND_MAX)
                gamma = float(np.interp(beta, b, g)) if beta == beta else _NAN
        else:
            beta = gamma = _NAN
        G_h, part, p_sp, g_sp, p_nk = chain(beta, gamma)
        self._commit(0, G_h)
        if not _fin(G_h):  # held pelvis: rebuild the chain on it
            Gh = self._G[0]
            part = _NAN4
            p_sp = _add(root, _qrot(Gh, o_sp))
            g_sp = _qmul(Gh, part)
        corr = _qswing(_unit(_sub(p_nk, p_sp)), _unit(_sub(ms, p_sp)), (1.0, 0.0, 0.0))
        spine_local = _qmul(_qconj(self._G[0]), _qmul(corr, g_sp))
        j = self._j
        self._commit(j["spine"], self._limit(spine_local, "spine", c["u_ch"]))
        self._commit(j["chest"], self._limit(part, "chest", c["u_uc"]))
        self._commit(j["upperChest"], self._limit(part, "upperChest", c["u_nk"]))

    # mirrors _Solver.neck_head
    def _neck_head(self) -> None:
        c, m, j = self._c, self._m, self._j
        le, re, no = m("pose.left_ear"), m("pose.right_ear"), m("pose.nose")
        H = _align(_sub(le, re), _sub(no, _mid(le, re)), c["F_ears"])
        if not _fin(H):
            lo, ro, nt = m("face.left_eye_outer"), m("face.right_eye_outer"), m("face.nose_tip")
            H = _align(_sub(lo, ro), _sub(nt, _mid(lo, ro)), c["F_eyes"])
        rel = _qmul(_qconj(self._G[j["upperChest"]]), H)
        up = c["up_head"]
        self._commit(j["neck"], self._limit(_qpow(rel, 0.5), "neck", up))
        self._commit(j["head"], self._limit(_qmul(_qconj(self._G[j["neck"]]), H), "head", up))

    # mirrors _Solver.clavicle
    def _clavicle(self, s: str) -> None:
        jj = self._j[f"{s}Shoulder"]
        p = self._place(jj)
        Gu = self._G[self._parents[jj]]
        d = _unit(_qrot(_qconj(Gu), _sub(self._m(f"pose.{s}_shoulder"), p)))
        r = self._c[s, "r_ua"]
        self._commit(jj, self._limit(_qswing(r, d, (0.0, 1.0, 0.0)), "Shoulder", r))

    # mirrors _Solver.limb
    def _limb(self, s: str, upper: str, lower: str, mid_marker: str, end_marker: str, key: str):
        r_u, r_f, a_rest, L_u, F_rest = self._c[s, upper]
        ju, jl = self._j[f"{s}{upper}"], self._j[f"{s}{lower}"]
        p_u = self._place(ju)
        Gp = self._G[self._parents[ju]]
        mid, tip = self._m(mid_marker), self._m(end_marker)
        u = _unit(_sub(mid, p_u))
        S = _qswing(r_u, _unit(_qrot(_qconj(Gp), u)), a_rest)
        a_sw = _qrot(_qmul(Gp, S), a_rest)
        f = _unit(_sub(tip, _add(p_u, _scale(u, L_u))))
        n = _cross(u, f)
        sn = _norm(n)
        bend = atan2(sn, _dot(u, f))
        n_hat = (n[0] / sn, n[1] / sn, n[2] / sn) if sn > 0 else _NAN3
        tau = atan2(_dot(_cross(a_sw, n_hat), u), _dot(a_sw, n_hat))
        ok = tau == tau and bend >= self._rel
        # reliable in a run of 3: for the newest frame of the window, in all three frames
        if self._window_mode is not None:
            reliable = self._window_mode[s, upper]
        else:
            hist = self._hinge_hist.get((s, upper))
            if hist is None:
                hist = self._hinge_hist[s, upper] = collections.deque([ok, ok, ok], maxlen=3)
            hist.append(ok)
            reliable = hist[0] and hist[1] and hist[2]
            used = self._used_flags.get((s, upper))
            if used is None:
                used = self._used_flags[s, upper] = collections.deque([reliable, reliable], maxlen=2)
            if upper == "UpperArm" and (used[0] != reliable or used[1] != reliable):
                # an earlier frame of the window was solved with the other flag: its
                # forearm twist, which the unwrap starts from, is not the window's
                self._context_changed = True
            used.append(reliable)
        if reliable:
            a = n_hat
        else:
            # no frame of the window is reliable: the interpolated twist is 0, f_b = a_sw
            f_b = a_sw
            sgn = -1.0 if _dot(n_hat, f_b) < 0 else 1.0
            w = _clip(bend / self._rel, 0.0, 1.0)
            w = w * w * (3.0 - 2.0 * w)
            blend = _unit(tuple(w * sgn * n_hat[i] + (1.0 - w) * f_b[i] for i in range(3)))
            a = blend if _fin(blend) else f_b
        G_u = _align(u, a, F_rest)
        local_u = _qmul(_qconj(Gp), G_u)
        self._commit(ju, self._limit(local_u, key, r_u))
        Gu = self._G[ju]
        u_act, a_act = _qrot(Gu, r_u), _qrot(Gu, a_rest)
        p_l = self._place(jl)
        f = _unit(_sub(tip, p_l))
        theta = atan2(_dot(_cross(u_act, f), a_act), _dot(u_act, f))
        if self.limits:
            lim = self._lim["LowerArm" if key == "UpperArm" else "LowerLeg"]
            theta = _clip(theta, lim[3], lim[4])
        return _qaxis(a_rest, theta), r_f

    # mirrors _Solver.hand_target
    def _hand_target(self, s: str):
        m, F = self._m, self._c[s, "F_hand"]
        w, i, k = m(f"{s}_hand.wrist"), m(f"{s}_hand.index_mcp"), m(f"{s}_hand.pinky_mcp")
        G = _align(_sub(_mid(i, k), w), _sub(i, k), F)
        if _fin(G):
            return G
        w, i, k = m(f"pose.{s}_wrist"), m(f"pose.{s}_index"), m(f"pose.{s}_pinky")
        return _align(_sub(_mid(i, k), w), _sub(i, k), F)

    # mirrors _Solver.arm
    def _arm(self, s: str) -> None:
        hinge, r_f = self._limb(s, "UpperArm", "LowerArm", f"pose.{s}_elbow", f"pose.{s}_wrist", "UpperArm")
        jl, jh = self._j[f"{s}LowerArm"], self._j[f"{s}Hand"]
        G_h = self._hand_target(s)
        G_lh = _qmul(self._G[self._parents[jl]], hinge)
        psi = _twist_angle(_qmul(_qconj(G_lh), G_h), r_f)
        hist = self._psi_hist.get(s)
        if hist is None:  # padded with this frame (normal), or the window's first frame
            hist = self._psi_hist[s] = collections.deque([psi, psi] if self._window_mode is None else [],
                                                         maxlen=2)
        seq = [*hist, psi]
        hist.append(psi)
        psi = 0.0  # _hold: forward fill, the rest (0) before the first; then np.unwrap
        raw = 0.0
        for i, x in enumerate(seq):
            if x == x:
                psi = psi + _wrap(x - raw) if i else x
                raw = x
        if self.limits:
            lo, hi = self._lim["LowerArm"][:2]
            psi = _clip(psi, lo, hi)
        self._commit(jl, _qmul(hinge, _qaxis(r_f, psi)))
        self._commit(jh, self._limit(_qmul(_qconj(self._G[jl]), G_h), "Hand", r_f))
        self._fingers(s)

    # mirrors _Solver.fingers
    def _fingers(self, s: str) -> None:
        jh = self._j[f"{s}Hand"]
        fingers = self._c[s, "fingers"]
        if self._frame_no - self._last_hand[s] >= self.WINDOW:  # no hand in the window: rest
            for js, _, _, _ in fingers:
                for jj in js:
                    self._commit(jj, _QI, place=False)
            return
        pt = self._pts
        lim, limits = self._lim, self.limits
        for js, axes, keys, pidx in fingers:
            p = [pt[i] if i is not None else _NAN3 for i in pidx]
            e1, n, ax, ne = axes[0]
            d = _unit(_qrot(_qconj(self._G[jh]), _sub(p[1], p[0])))
            alpha = asin(_clip(_dot(d, n), -1.0, 1.0)) if _fin(d) else _NAN
            beta = atan2(_dot(d, ne), _dot(d, e1))
            if limits:
                L = lim[keys[0]]
                alpha = _clip(alpha, L[3], L[4])
                beta = _clip(beta, -L[5], L[5])
            self._commit(js[0], _qmul(_qaxis(n, beta), _qaxis(ax, alpha)), place=False)
            for k in (1, 2):
                e, n, ax, _ = axes[k]
                d = _qrot(_qconj(self._G[js[k - 1]]), _sub(p[k + 1], p[k]))
                theta = atan2(_dot(d, n), _dot(d, e))
                if limits:
                    L = lim[keys[k]]
                    theta = _clip(theta, L[3], L[4])
                self._commit(js[k], _qaxis(ax, theta), place=False)

    # mirrors _Solver.leg
    def _leg(self, s: str) -> None:
        hinge, _ = self._limb(s, "UpperLeg", "LowerLeg", f"pose.{s}_knee", f"pose.{s}_ankle", "UpperLeg")
        j = self._j
        jl, jf, jt = j[f"{s}LowerLeg"], j[f"{s}Foot"], j[f"{s}Toes"]
        self._commit(jl, hinge)
        m = self._m
        ankle, toe, heel = m(f"pose.{s}_ankle"), m(f"pose.{s}_foot_index"), m(f"pose.{s}_heel")
        ta = _sub(toe, ankle)
        G_f = _align(ta, _cross(ta, _sub(heel, ankle)), self._c[s, "F_foot"])
        local = _qmul(_qconj(self._G[jl]), G_f)
        self._commit(jf, self._limit(local, "Foot", self._c[s, "u_foot"]))
        self._commit(jt, _QI, place=False)


# -- the lift, per frame --------------------------------------------------------------------------


class LiveLift:
    """One frame's landmarks -> camera-frame markers, as :func:`mocap.root.lift_take`
    places them (same names, order, confidences), without the per-call work that is
    constant or only matters for a whole take (intrinsics, the name list, the index
    arrays, the floor: a live world frame is fixed once and then only composed with).

    ``lift(lm)`` with the tracker's per-frame dict (``pose_world (33, 3)`` camera-frame
    metres, ``pose_image (33, 3)`` px, ``pose_visibility``, ``pose_presence (33,)``,
    ``left_hand_image``/``right_hand_image (21, 3)`` px, ``face_image (478, 3)`` px,
    ``present`` part -> bool) returns ``(points (N, 3) camera metres, confidence (N,))``,
    or None when the body does not fit the camera (``lift_take`` raises ``SolveError``).
    World markers: ``points @ R.T + t`` with the world frame's ``T_world_from_camera``.

    Mirrors ``lift_take`` (``mocap/root.py``) with ``smooth_s=0``: ``camera_translation``
    (called as is, one frame), ``body_cam = pose_world + t``, mid-hip / mid-shoulder and
    their confidence (the lower of the two), hands and face by ``_anchored_part`` on the
    wrist / nose, confidence 1 where placed; every point not finite gets confidence 0.
    """

    def __init__(self, intrinsics) -> None:
        from . import landmarks as L

        self.intr = intrinsics
        self.f = (float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy))
        ix = {n: L.index("pose", n) for n in L.POSE}
        self._ix = ix
        names = [f"pose.{n}" for n in L.POSE] + ["pose.mid_hip", "pose.mid_shoulder"]
        self._hand_wrist = {}
        for side in ("left", "right"):
            names += [f"{side}_hand.{n}" for n in L.HAND]
            self._hand_wrist[side] = L.index(f"{side}_hand", "wrist")
        fnames = list(L.FACE_POINTS)
        self._fidx = np.array([L.index("face", n) for n in fnames])
        self._nose_tip = fnames.index("nose_tip")
        names += [f"face.{n}" for n in fnames]
        self.names: tuple[str, ...] = tuple(names)
        self._n_hand = len(L.HAND)
        self._n_face = len(fnames)

    def lift(self, lm) -> tuple[np.ndarray, np.ndarray] | None:
        from .root import _anchored_part, camera_translation

        if not lm["present"]["pose"]:
            return None
        ix = self._ix
        fx, fy, cx, cy = self.f
        Pw = np.asarray(lm["pose_world"], dtype=float)
        img = np.asarray(lm["pose_image"], dtype=float)
        vis = np.nan_to_num(np.asarray(lm["pose_visibility"], dtype=float))
        pres = np.nan_to_num(np.asarray(lm["pose_presence"], dtype=float), nan=1.0)
        t = camera_translation(Pw[None], img[None], self.intr, weights=vis[None])[0]
        if not np.isfinite(t[0]):
            return None
        body = Pw + t
        lh, rh, ls, rs = ix["left_hip"], ix["right_hip"], ix["left_shoulder"], ix["right_shoulder"]
        conf_pose = vis * pres
        pts = [body, (0.5 * (body[lh] + body[rh]))[None], (0.5 * (body[ls] + body[rs]))[None]]
        confs = [conf_pose, [min(conf_pose[lh], conf_pose[rh]), min(conf_pose[ls], conf_pose[rs])]]
        for side in ("left", "right"):
            part = f"{side}_hand"
            if lm["present"][part]:
                p = _anchored_part(np.asarray(lm[f"{part}_image"], dtype=float)[None], self._hand_wrist[side],
                                   body[None, ix[f"{side}_wrist"]], fx, fy, cx, cy)[0]
            else:
                p = np.full((self._n_hand, 3), np.nan)
            pts.append(p)
            confs.append(np.isfinite(p).all(-1).astype(float))
        if lm["present"]["face"]:
            p = _anchored_part(np.asarray(lm["face_image"], dtype=float)[None, self._fidx], self._nose_tip,
                               body[None, ix["nose"]], fx, fy, cx, cy)[0]
        else:
            p = np.full((self._n_face, 3), np.nan)
        pts.append(p)
        confs.append(np.isfinite(p).all(-1).astype(float))
        P = np.concatenate(pts)
        conf = np.concatenate([np.asarray(c, float) for c in confs])
        conf[~np.isfinite(P).all(-1)] = 0.0
        return P, conf
