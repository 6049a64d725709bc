"""Rotation solve: world-frame :class:`~mocap.markers.Markers` -> a :class:`~mocap.motion.Motion`
on the canonical skeleton (``assets/skeleton/canonical.toml``, VRM joint names).

Conventions as everywhere (:mod:`mocap.glossary`): metres, +Y up, the character faces +Z
and its left is +X; quaternions wxyz. T frames, J = 52 joints.

The method, in the order :func:`solve_motion` runs it
----------------------------------------------------------

**1. Fit the skeleton to the performer.** Every bone whose two ends follow landmarks gets
the *median over frames* of the distance between those landmarks (frames where either is
missing are skipped), then left and right are averaged so the figure is symmetric. Bones
between joints without landmarks are scaled from related measures:

* the spine chain (spine, chest, upperChest, neck, and the neck->head offset) by
  ``|mid_hip -> mid_shoulder| / 0.49 m`` (its rest length);
* the clavicles (``leftShoulder`` offset by the spine factor; ``leftUpperArm`` offset so
  that the rest shoulder sits at half the measured shoulder width from the neck);
* the upper legs' offsets are half the hip width; the head's end site scales with the ear
  distance; finger bases with wrist -> knuckle distances (hand landmarks, else the body's
  ``pose.left_index``/``left_pinky``);
* anything never seen by the median ratio of the measured bones to their rest lengths.

Only lengths change: each offset keeps its rest direction. ``bone_lengths=`` overrides any
of them; the chosen lengths are in ``motion.meta["bone_lengths"]``, keyed like
:meth:`Skeleton.bone_lengths` (joint name -> distance from its parent; ``"<joint>.end"``
for an end site), so passing a solve's lengths to the next solve reproduces the figure.

**2. Global orientations from landmark frames.** Most targets are a *frame alignment*: two
observed directions ``a, b`` build an orthonormal frame ``[a, b_perp, a x b_perp]``, the
same construction on the rest skeleton gives ``F_rest``, and the joint's global rotation
is ``F_obs @ F_rest^T``. Local rotation = ``G_parent^-1 * G``. All arrays are
``(T, ...)``: the one Python loop is over joints, as in :func:`mocap.motion.fk`.

**3. Swing, twist and hinges on the limbs.** An upper arm / upper leg *swings* from its
rest direction to the observed one (shoulder -> elbow, hip -> knee). Its *twist* about
that direction comes from the bend plane of the next joint: the elbow and the knee are
**hinges**, so the hinge axis must be normal to the plane (upper bone, lower bone), i.e.
along ``n = u x f``. The hinge angle is then the signed angle of the lower bone projected
onto the plane normal to the axis (*hinge projection*); the lower bone gets a rotation
about the axis only (plus, for the forearm, a twist about its own length, see below).
When the limb is nearly straight the bend plane is noise, so the axis blends from ``n``
(bend >= :data:`HINGE_RELIABLE_DEG` for at least 3 frames in a row) to a fallback: the
twist angle (relative to the swing-only frame) interpolated in time between the
neighbouring well-bent frames (held before the first and after the last), i.e.
the twist solution closest to the frames before and after, never a 180-degree flip. The
sign of ``n`` is chosen to agree with that fallback while the limb is near straight, so a
slightly hyperextended elbow reads as straight (angle clamped to 0), not as a forward bend
with the arm turned over. Likewise a well-bent frame whose bend plane disagrees by more
than 90 degrees with the running median (5 well-bent frames) of its neighbours less than
0.2 s away - a forearm or shin seen on the wrong side of the joint for a frame or two, a
typical depth error - is not trusted: it reads as a hyperextension (straight) rather than
a turned-over limb. (Stills further apart in time are each solved on their own.)

* **Forearm twist** (pronation/supination): the hand's orientation relative to the
  hinge-only forearm is split by a swing-twist decomposition about the forearm's length;
  the twist goes to ``lowerArm`` (which is where a rig twists), the swing to ``hand``.
* **Hands** from wrist, index and pinky knuckles (``left_hand.wrist/index_mcp/pinky_mcp``
  when hand landmarks exist, else ``pose.left_wrist/left_index/left_pinky``): primary
  axis wrist -> the knuckles' midpoint, secondary index -> pinky.
* **Fingers** from the 21 hand landmarks: the proximal joint (and the thumb's metacarpal)
  has flexion about ``bone x palm_normal`` plus abduction about the palm normal, in
  closed form; the middle and distal joints are hinges (flexion only). Without hand
  landmarks the fingers keep the rest pose (or the last seen pose).
* **Legs**: upper leg swing + twist from the knee's bend plane, knee a hinge; **foot**
  from ankle -> ``pose.left_foot_index`` (primary) and the plane through the heel
  (secondary); **toes** stay at rest (MediaPipe has one point on the front of the foot).

**4. The trunk.** *Pelvis* (``hips``): left-right axis from the hip landmarks, up from the
spine direction ``mid_hip -> mid_shoulder`` (tilted when the trunk bends, below); the root
position is ``pose.mid_hip``. *Chest*: left-right axis from the shoulders. The relative
rotation pelvis -> chest is **distributed over spine, chest and upperChest, a third each**
(``q^(1/3)``, i.e. slerp). The trunk's bones keep their lengths, so a ``mid_hip ->
mid_shoulder`` distance shorter than the straight chain means a bent trunk: the per-joint
bend ``beta`` that gives that chord (a table for the planar chain, refined by two Newton
steps on the real chain) is taken as a **forward bend** about the mean left-right axis -
the pelvis's up is the chord tilted back by ``gamma`` (the chord's angle to the first
segment), the chest's tilted forward by ``3 beta - gamma``. (Two hip and two shoulder
points cannot tell a forward bend from a backward one; both place the joints alike.) A
last swing about the spine joint puts the **neck on** ``pose.mid_shoulder``: exact as long
as the spine limits are not reached. *Clavicles* (``leftShoulder``) swing so that
``leftUpperArm`` lands on ``pose.left_shoulder``. *Neck and head*: the head's orientation
comes from the ears (left-right) and the nose (forward) - ``pose.left_ear/right_ear/nose``,
else ``face.left_eye_outer/right_eye_outer/nose_tip`` - and is shared half and half between
``neck`` and ``head``. The rest face geometry the solver assumes is :data:`FACE_GEOMETRY`
(the synthetic take generator uses the same).

**5. Limits, holds, continuity.** With ``limits=True`` each local rotation is clamped to
:data:`JOINT_LIMITS` (degrees; ``swing`` is a cone half-angle about the rest bone
direction, ``twist`` the rotation about the bone; hinges have a flexion range and do not
bend backwards; fingers do not hyperextend beyond a few degrees). Where a joint's
landmarks are missing (NaN, or confidence 0) its local rotation is **held** from the
previous frame that had them (rest pose before the first one); the root position likewise
(the first seen position before it). Output quaternions have ``w`` continuity: every joint's
consecutive quaternions have a positive dot product (no sign flips).

Anatomical limits (:data:`JOINT_LIMITS`, degrees, with ``limits=True``)
---------------------------------------------------------------------
======================  ==========================================================
spine, chest,           each: twist +-35, swing 35 (so the trunk turns up to 105)
upperChest
neck / head             twist +-50 / +-50, swing 45 / 50
Shoulder (clavicle)     swing 35, no twist
UpperArm                twist +-120 (from the T-pose frame), swing free
LowerArm (elbow)        hinge 0..155, forearm twist +-110 (0 = palm down in T-pose)
Hand (wrist)            swing 90, residual twist +-30
UpperLeg (hip)          twist +-70, swing 150
LowerLeg (knee)         hinge 0..160 (never bends forwards)
Foot (ankle)            twist +-60 (carries the tibia's rotation), swing 75
Toes                    fixed at rest
finger Proximal         flexion -15..100, abduction +-30
finger Intermediate     flexion -5..115;  Distal -10..90
ThumbMetacarpal         flexion -40..70, abduction +-50; ThumbProximal -15..80;
                        ThumbDistal -20..90
======================  ==========================================================

A limit changes the pose only where it is exceeded; the joint's children then no longer
land on their landmarks (by design: the landmark, not the anatomy, is wrong there).

Which landmark each joint follows (canonical.toml ``marker``)
-------------------------------------------------------------
=========================  =============================================================
hips                       ``pose.mid_hip`` (position), hips L/R + mid_shoulder (turn)
spine, chest, upperChest   distributed pelvis -> chest (shoulders + spine direction)
neck                       lands on ``pose.mid_shoulder``; half the head's turn
head                       ``pose.left_ear/right_ear/nose`` (or face eye corners + nose tip)
left/rightShoulder         swing so the upper arm lands on ``pose.left/right_shoulder``
left/rightUpperArm         -> ``pose.*_elbow``, twist from the elbow's bend plane
left/rightLowerArm         hinge towards ``pose.*_wrist`` + forearm twist from the hand
left/rightHand             ``*_hand.wrist/index_mcp/pinky_mcp`` or ``pose.*_index/_pinky``
fingers                    ``*_hand.<finger>_mcp/pip/dip/tip`` (thumb ``cmc/mcp/ip/tip``)
left/rightUpperLeg         -> ``pose.*_knee``, twist from the knee's bend plane
left/rightLowerLeg         hinge towards ``pose.*_ankle``
left/rightFoot             ``pose.*_foot_index`` + ``pose.*_heel``
left/rightToes             rest (identity)
=========================  =============================================================

Speed (2-core machine, the whole solve): about 60,000 frames/s for the body alone
(18,000 frames in 0.3 s, ``tests/test_solve.py``), about 40,000 with both hands' fingers.
Per-joint arrays are kept in Fortran order (each quaternion component contiguous), which
makes the elementwise quaternion products about twice as fast as the row layout. On a
long take (2,000 frames or more) the left and right limbs, which hang from the solved
trunk and share no joint, are solved on two threads (numpy releases the GIL in its
loops); the result, ``meta`` included, is the same as on one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import SolveError, UsageError
from .glossary import Q_IDENTITY
from .markers import Markers
from .motion import Motion, Skeleton
from .skeleton import SkeletonSpec, canonical_spec

__all__ = [
    "solve_motion",
    "JointLimit",
    "JOINT_LIMITS",
    "HINGE_RELIABLE_DEG",
    "FACE_GEOMETRY",
    "HEEL_OFFSET",
    "HAND_POSE_POINTS",
    "FINGERS",
    "SIDES",
]

SIDES = ("left", "right")

FINGERS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str, str]]] = {
    "thumb": (("ThumbMetacarpal", "ThumbProximal", "ThumbDistal"), ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")),
    "index": (("IndexProximal", "IndexIntermediate", "IndexDistal"), ("index_mcp", "index_pip", "index_dip", "index_tip")),
    "middle": (("MiddleProximal", "MiddleIntermediate", "MiddleDistal"),
               ("middle_mcp", "middle_pip", "middle_dip", "middle_tip")),
    "ring": (("RingProximal", "RingIntermediate", "RingDistal"), ("ring_mcp", "ring_pip", "ring_dip", "ring_tip")),
    "pinky": (("LittleProximal", "LittleIntermediate", "LittleDistal"),
              ("pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")),
}
"""Per finger: the three canonical joint suffixes (``left``/``right`` prefix) and the four
MediaPipe hand landmarks their positions and tip follow."""

HAND_POSE_POINTS: dict[str, str] = {"index": "IndexProximal", "pinky": "LittleProximal", "thumb": "ThumbProximal"}
"""The body landmarks ``pose.left_index/left_pinky/left_thumb`` are taken to sit on these
canonical finger joints (the index and little knuckles, the thumb's MCP joint). MediaPipe
documents them only as 'index', 'pinky', 'thumb'; on real footage they fall near the
knuckles."""

HEEL_OFFSET = np.array([0.0, -0.06, -0.05])
"""Rest position of ``pose.*_heel`` relative to the ankle (the ``Foot`` joint), metres for
the 1.75 m canonical figure, in the foot's rest frame: 6 cm down and 5 cm back. Only the
plane (ankle, heel, foot_index) is used by the solver, i.e. the foot's roll."""

FACE_GEOMETRY: dict[str, tuple[float, float, float]] = {
    # relative to the head joint (top of the neck), head rest frame, metres, 1.75 m figure.
    # +X the performer's left, +Y up, +Z forward (the face).
    "nose": (0.0, 0.075, 0.115),
    "left_eye_inner": (0.017, 0.110, 0.088), "left_eye": (0.032, 0.110, 0.085),
    "left_eye_outer": (0.048, 0.110, 0.075),
    "right_eye_inner": (-0.017, 0.110, 0.088), "right_eye": (-0.032, 0.110, 0.085),
    "right_eye_outer": (-0.048, 0.110, 0.075),
    "left_ear": (0.075, 0.090, 0.0), "right_ear": (-0.075, 0.090, 0.0),
    "mouth_left": (0.025, 0.040, 0.095), "mouth_right": (-0.025, 0.040, 0.095),
    # face mesh points (mocap.landmarks.FACE_POINTS names)
    "nose_tip": (0.0, 0.075, 0.115),
    "forehead": (0.0, 0.160, 0.095),
    "chin": (0.0, 0.000, 0.090),
    "upper_lip_centre": (0.0, 0.050, 0.105),
    "lower_lip_centre": (0.0, 0.035, 0.100),
    "left_eye_upper": (0.032, 0.118, 0.087), "left_eye_lower": (0.032, 0.102, 0.086),
    "right_eye_upper": (-0.032, 0.118, 0.087), "right_eye_lower": (-0.032, 0.102, 0.086),
    "left_iris_centre": (0.032, 0.110, 0.090), "right_iris_centre": (-0.032, 0.110, 0.090),
    "left_brow_inner": (0.020, 0.130, 0.095), "left_brow_outer": (0.055, 0.130, 0.085),
    "right_brow_inner": (-0.020, 0.130, 0.095), "right_brow_outer": (-0.055, 0.130, 0.085),
    "left_cheek": (0.050, 0.070, 0.080), "right_cheek": (-0.050, 0.070, 0.080),
}  # fmt: skip
"""The stated face geometry: landmark offsets from the head joint in the head's rest frame
(an adult of 1.75 m: eyes 11 cm above the top of the neck and 8.5 cm in front, ears 15 cm
apart). Keys without a prefix are body landmarks (``pose.<key>``); the mesh point names
(``face.<key>``) are those of :data:`mocap.landmarks.FACE_POINTS` plus ``nose_tip``. The
solver only uses directions from it (ear line, nose forward), so the scale does not
matter; :mod:`mocap.synth` scales it by the figure's size."""


@dataclass(frozen=True)
class JointLimit:
    """Anatomical range of one joint's local rotation, degrees.

    ``kind`` is ``"ball"`` (``twist`` = (min, max) about the bone's rest direction,
    ``swing`` = cone half-angle), ``"hinge"`` (``flex`` = (min, max) about the hinge
    axis, positive = flexion; ``twist`` for the forearm's pronation/supination),
    ``"finger"`` (proximal joints: ``flex`` range + ``abduct`` = max sideways), or
    ``"fixed"`` (always identity)."""

    kind: str
    twist: tuple[float, float] = (0.0, 0.0)
    swing: float = 0.0
    flex: tuple[float, float] = (0.0, 0.0)
    abduct: float = 0.0


JOINT_LIMITS: dict[str, JointLimit] = {
    # trunk: each of the three spine joints carries a third of the pelvis -> chest turn
    "spine": JointLimit("ball", twist=(-35, 35), swing=35),
    "chest": JointLimit("ball", twist=(-35, 35), swing=35),
    "upperChest": JointLimit("ball", twist=(-35, 35), swing=35),
    "neck": JointLimit("ball", twist=(-50, 50), swing=45),
    "head": JointLimit("ball", twist=(-50, 50), swing=50),
    # clavicle: swing only (elevation/protraction)
    "Shoulder": JointLimit("ball", twist=(0, 0), swing=35),
    # shoulder joint: the arm reaches almost anywhere; humeral twist from the T-pose frame
    "UpperArm": JointLimit("ball", twist=(-120, 120), swing=180),
    # elbow hinge 0..155 flexion, forearm pronation/supination about its length
    "LowerArm": JointLimit("hinge", flex=(0, 155), twist=(-110, 110)),
    # wrist: flexion/extension/deviation as a cone, little residual twist
    "Hand": JointLimit("ball", twist=(-30, 30), swing=90),
    "UpperLeg": JointLimit("ball", twist=(-70, 70), swing=150),
    "LowerLeg": JointLimit("hinge", flex=(0, 160)),
    # the knee is a pure hinge, so the tibia's own rotation (up to ~40 deg with the knee
    # bent) shows up as foot twist about the shin
    "Foot": JointLimit("ball", twist=(-60, 60), swing=75),
    "Toes": JointLimit("fixed"),
    # fingers: proximal flexion + abduction, middle/distal hinges; hyperextension small
    "Proximal": JointLimit("finger", flex=(-15, 100), abduct=30),
    "Intermediate": JointLimit("hinge", flex=(-5, 115)),
    "Distal": JointLimit("hinge", flex=(-10, 90)),
    "ThumbMetacarpal": JointLimit("finger", flex=(-40, 70), abduct=50),
    "ThumbProximal": JointLimit("hinge", flex=(-15, 80)),
    "ThumbDistal": JointLimit("hinge", flex=(-20, 90)),
}
"""Per-joint ranges used when ``limits=True``, keyed by the canonical name without its
``left``/``right`` prefix (finger joints by their last part, the thumb by its full name).
Ball joints: twist about the rest bone direction (relative to the swing-only frame) and a
swing cone about the rest direction. Angles in degrees."""

HINGE_RELIABLE_DEG = 20.0
"""Above this bend the elbow's / knee's bend plane decides the upper bone's twist on its
own; below it the twist blends towards the value interpolated from the neighbouring
frames above it (a straight limb has no bend plane; MediaPipe's jitter is a few degrees)."""

_TWIST_MEDIAN = 5
"""Window (well-bent frames) of the running median that spots flipped bend planes."""
_TWIST_NEAR_S = 0.2
"""A flipped bend plane is only suspected between well-bent frames at most this close."""
_Z = np.array([0.0, 0.0, 1.0])


# -- small vectorised quaternion / vector helpers ---------------------------------------
# (..., 4) wxyz, (..., 3) vectors; NaN propagates (it marks missing data until the hold).


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.sqrt(np.einsum("...i,...i->...", v, v))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1e-12, v / n, np.nan)


def _norm(v: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``np.linalg.norm(v, axis=-1)`` bit for bit (the squares summed in order, as its
    reduction does), without the cost of numpy's reduction over a 3- or 4-long last axis:
    each component is a contiguous pass for the Fortran-order arrays used here."""
    e = v * v
    s = e[..., 0] + e[..., 1]
    for i in range(2, v.shape[-1]):
        s += e[..., i]
    n = np.sqrt(s)
    return n[..., None] if keepdims else n


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), order="F")
    out[..., 0] = a1 * b2 - a2 * b1
    out[..., 1] = a2 * b0 - a0 * b2
    out[..., 2] = a0 * b1 - a1 * b0
    return out


def _qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    out = np.empty(np.broadcast_shapes(q.shape, r.shape), order="F")
    out[..., 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    out[..., 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    out[..., 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    out[..., 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    return out


def _qconj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` by unit ``q`` (broadcast), as :func:`mocap.motion.quat_rotate`."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    v = np.asarray(v, dtype=float)
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    out = np.empty(np.broadcast_shapes(q.shape[:-1] + (3,), v.shape), order="F")
    out[..., 0] = vx + w * tx + (y * tz - z * ty)
    out[..., 1] = vy + w * ty + (z * tx - x * tz)
    out[..., 2] = vz + w * tz + (x * ty - y * tx)
    return out


def _qaxis(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation by ``angle`` (...,) radians about unit ``axis`` ((3,) or (..., 3))."""
    h = 0.5 * np.asarray(angle)
    axis = np.asarray(axis)
    out = np.empty(np.broadcast_shapes(h.shape, axis.shape[:-1]) + (4,), order="F")
    out[..., 0] = np.cos(h)
    s = np.sin(h)
    for i in range(3):  # component by component: contiguous writes into the Fortran array
        out[..., i + 1] = axis[..., i] * s
    return out


def _qpos(q: np.ndarray) -> np.ndarray:
    """The same rotations with w >= 0."""
    return np.where(q[..., :1] < 0, -q, q)


def _qpow(q: np.ndarray, t: float) -> np.ndarray:
    """``q^t``: the same axis, ``t`` times the angle (shorter arc)."""
    q = _qpos(q)
    s = _norm(q[..., 1:])
    ang = 2.0 * np.arctan2(s, q[..., 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = np.where((s > 1e-12)[..., None], q[..., 1:] / s[..., None], 0.0)
    return _qaxis(axis, t * ang)


def _qswing(r: np.ndarray, d: np.ndarray, perp: np.ndarray) -> np.ndarray:
    """The shortest rotation taking unit ``r`` to unit ``d``; ``perp`` (unit, normal to
    ``r``) is the axis used when ``d = -r``."""
    r = np.broadcast_to(r, d.shape)
    w = 1.0 + _dot(r, d)
    q = np.empty(d.shape[:-1] + (4,), order="F")
    q[..., 0] = w
    q[..., 1:] = _cross(r, d)
    flip = w < 1e-9
    if np.any(flip):
        q = np.where(flip[..., None], np.concatenate([np.zeros(w.shape + (1,)),
                                                      np.broadcast_to(perp, d.shape)], axis=-1), q)
    n = _norm(q, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return q / n


def _m2q(R: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) wxyz from rotation matrices (..., 3, 3) (Shepperd: the
    largest of w, x, y, z is taken from the diagonal, the rest from off-diagonals)."""
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    d = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22])
    k = np.argmax(np.nan_to_num(d, nan=-1.0), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = 0.5 * np.sqrt(np.maximum(np.take_along_axis(d, k[None], 0)[0], 1e-300))
        f = 0.25 / s
        a, b, c = m21 - m12, m02 - m20, m10 - m01  # 4w*(x, y, z)
        e, g, h = m01 + m10, m02 + m20, m12 + m21  # 4xy, 4xz, 4yz
        af, bf, cf, ef, gf, hf = a * f, b * f, c * f, e * f, g * f, h * f
        q = np.empty(R.shape[:-2] + (4,), order="F")
        q[..., 0] = np.choose(k, [s, af, bf, cf])
        q[..., 1] = np.choose(k, [af, s, ef, gf])
        q[..., 2] = np.choose(k, [bf, ef, s, hf])
        q[..., 3] = np.choose(k, [cf, gf, hf, s])
    return _qpos(q)


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) with columns ``a^``, ``b`` made normal to ``a``, and
    their cross product."""
    e1 = _unit(a)
    e2 = _unit(b - _dot(b, e1)[..., None] * e1)
    return np.stack([e1, e2, _cross(e1, e2)], axis=-1)


def _align(a: np.ndarray, b: np.ndarray, a0: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """Global rotations (T, 4) taking the rest frame of (a0, b0) onto the observed (a, b)."""
    F0 = _frame(np.asarray(a0, float), np.asarray(b0, float))
    return _m2q(_frame(a, b) @ F0.T)


def _twist_angle(q: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle (radians, (-pi, pi]) of the twist of ``q`` about unit ``axis`` in a
    swing-twist decomposition ``q = swing * twist``."""
    q = _qpos(q)
    return 2.0 * np.arctan2(q[..., 1:] @ axis, q[..., 0])


def _limit_ball(q: np.ndarray, axis: np.ndarray, twist: tuple[float, float], swing: float) -> np.ndarray:
    """Clamp ``q = swing * twist`` (twist about ``axis``): twist to ``twist`` (degrees),
    swing to a cone of ``swing`` degrees. Unclamped rotations are returned untouched."""
    q = _qpos(q)
    tw = 2.0 * np.arctan2(q[..., 1:] @ axis, q[..., 0])
    tq = _qaxis(axis, tw)
    sq = _qpos(_qmul(q, _qconj(tq)))
    sv = _norm(sq[..., 1:])
    sang = 2.0 * np.arctan2(sv, sq[..., 0])
    lo, hi = np.radians(twist)
    smax = np.radians(swing)
    with np.errstate(invalid="ignore"):
        bad = (tw < lo - 1e-9) | (tw > hi + 1e-9) | (sang > smax + 1e-9)
    if not np.any(bad):
        return q
    # the clamped rotations, for the rows out of range only
    tw_c = np.clip(tw[bad], lo, hi)
    sang_c = np.minimum(sang[bad], smax)
    sv_b = sv[bad]
    with np.errstate(invalid="ignore", divide="ignore"):
        sax = np.where((sv_b > 1e-12)[..., None], sq[bad][..., 1:] / sv_b[..., None], 0.0)
    out = np.array(q, order="F")  # Fortran order, as the solver keeps its arrays
    out[bad] = _qmul(_qaxis(sax, sang_c), _qaxis(axis, tw_c))
    return out


def _hold(q: np.ndarray, rest: np.ndarray = Q_IDENTITY) -> tuple[np.ndarray, int]:
    """Replace non-finite rows of ``q`` (T, k) by the last finite row before them (``rest``
    before the first). Returns (filled, number of rows filled)."""
    ok = np.isfinite(q[:, 0])  # column by column: contiguous passes on the Fortran arrays
    for c in range(1, q.shape[1]):
        ok &= np.isfinite(q[:, c])
    n_bad = int(ok.size - np.count_nonzero(ok))
    if n_bad == 0:
        return q, 0
    T = q.shape[0]
    idx = np.where(ok, np.arange(T), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where((idx >= 0)[:, None], q[np.maximum(idx, 0)], rest)
    return np.asfortranarray(out), n_bad


def _hold_back(x: np.ndarray) -> np.ndarray:
    """Forward fill non-finite rows of ``x`` (T, k), back-filling the leading ones from the
    first finite row (used for the root position). All-NaN stays NaN."""
    ok = np.all(np.isfinite(x), axis=-1)
    if ok.all() or not ok.any():
        return x
    T = x.shape[0]
    idx = np.where(ok, np.arange(T), -1)
    np.maximum.accumulate(idx, out=idx)
    idx = np.where(idx < 0, int(np.argmax(ok)), idx)
    return x[idx]


def _continuous_stack(L: list[np.ndarray]) -> np.ndarray:
    """Per-joint local rotations ``(T, 4)`` -> ``(T, J, 4)``, signs flipped so that each
    joint's consecutive quaternions have a non-negative dot product.

    The sign changes are found on the per-joint (Fortran-order, component-contiguous)
    arrays and applied to the stacked result in place: no other whole-take array."""
    out = np.stack(L, axis=1)
    if out.shape[0] < 2:
        return out
    for j, q in enumerate(L):
        a, b = q[1:], q[:-1]
        d = a[:, 0] * b[:, 0]
        for c in (1, 2, 3):
            d += a[:, c] * b[:, c]
        flip = np.logical_xor.accumulate(d < 0)  # an odd number of sign changes so far
        if flip.any():
            np.negative(out[1:, j], out=out[1:, j], where=flip[:, None])
    return out


def _rodrigues(v: np.ndarray, k: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (T, 3) about unit axes ``k`` (T, 3) by ``angle`` (T,) radians."""
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    return v * c + _cross(k, v) * s + k * (_dot(k, v)[..., None] * (1.0 - c))


_BEND_MAX = np.radians(45.0)


def _bend_table(lengths: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chord length and chord angle of a planar chain with ``lengths`` whose joints each
    bend by ``b``, for ``b`` in 0 .. :data:`_BEND_MAX` (451 steps): (b, chord, gamma)."""
    b = np.linspace(0.0, _BEND_MAX, 451)
    i = np.arange(len(lengths))[:, None]
    l_ = np.asarray(lengths)[:, None]
    sx, sy = np.sum(l_ * np.sin(i * b), axis=0), np.sum(l_ * np.cos(i * b), axis=0)
    return b, np.hypot(sx, sy), np.arctan2(sx, sy)


def _trunk_bend(chord: np.ndarray, lengths: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint bend ``beta`` and chord angle ``gamma`` (radians, (T,)) of a chain of
    segments ``lengths`` whose joints each bend by ``beta`` in one plane, such that its
    chord is ``chord`` (T,). Straight (0, 0) when the chord is at least the chain's length;
    at most :data:`_BEND_MAX` per joint. NaN chord -> NaN."""
    b, c, g = _bend_table(lengths)
    beta = np.interp(chord, c[::-1], b[::-1])  # c decreases with b
    beta = np.where(np.isfinite(chord), beta, np.nan)
    return beta, np.interp(beta, b, g)


def _trunk_bend_step(beta: np.ndarray, excess: np.ndarray, lengths: list[float]) -> np.ndarray:
    """One Newton step on the bend: ``excess`` = predicted - wanted chord (metres)."""
    b, c, _ = _bend_table(lengths)
    slope = np.interp(beta, b, np.gradient(c, b))  # negative
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(slope < -1e-9, -excess / slope, 0.0)
    return np.clip(beta + np.nan_to_num(step), 0.0, _BEND_MAX)


def _trunk_gamma(beta: np.ndarray, lengths: list[float]) -> np.ndarray:
    b, _, g = _bend_table(lengths)
    return np.interp(beta, b, g)


# -- markers --------------------------------------------------------------------------------


class _MarkerView:
    """Marker tracks by name, (T, 3), NaN where missing or with confidence 0; absent names
    read as all-NaN. ``pose.mid_hip`` / ``pose.mid_shoulder`` are derived when absent."""

    def __init__(self, markers: Markers) -> None:
        self.T = len(markers)
        pts = np.array(markers.points, dtype=float)
        pts[~(markers.confidence > 0)] = np.nan
        self.points = pts
        # marker-major (N, 3, T): each marker's track is then a Fortran-order (T, 3) view
        self._tracks = np.ascontiguousarray(pts.transpose(1, 2, 0))
        self.index = {n: i for i, n in enumerate(markers.names)}
        self.nan = np.full((self.T, 3), np.nan)
        self.nan.setflags(write=False)
        self.used: set[str] = set()
        self.cache: dict[str, np.ndarray] = {}

    def has(self, name: str) -> bool:
        if name in self.index:
            return bool(np.isfinite(self.points[:, self.index[name], 0]).any())
        mids = {"pose.mid_hip": ("pose.left_hip", "pose.right_hip"),
                "pose.mid_shoulder": ("pose.left_shoulder", "pose.right_shoulder")}
        return name in mids and all(self.has(n) for n in mids[name])

    def __call__(self, name: str) -> np.ndarray:
        got = self.cache.get(name)
        if got is not None:
            return got
        i = self.index.get(name)
        if i is not None:
            self.used.add(name)
            got = self._tracks[i].T
        elif name == "pose.mid_hip":
            got = 0.5 * (self("pose.left_hip") + self("pose.right_hip"))
        elif name == "pose.mid_shoulder":
            got = 0.5 * (self("pose.left_shoulder") + self("pose.right_shoulder"))
        else:
            return self.nan
        got.setflags(write=False)
        self.cache[name] = got
        return got


def _median_dist(a: np.ndarray, b: np.ndarray) -> float:
    d = _norm(a - b)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else float("nan")


# -- step 1: fit the skeleton ------------------------------------------------------------------


_REQUIRED = (
    "hips", "spine", "chest", "upperChest", "neck", "head",
    *(f"{s}{p}" for s in SIDES for p in ("Shoulder", "UpperArm", "LowerArm", "Hand",
                                          "UpperLeg", "LowerLeg", "Foot", "Toes")),
    *(f"{s}{j}" for s in SIDES for joints, _ in FINGERS.values() for j in joints),
)  # fmt: skip


def _check_spec(spec: SkeletonSpec) -> None:
    sk = spec.skeleton
    missing = [n for n in _REQUIRED if n not in sk]
    if missing:
        raise UsageError(
            f"solve_motion needs the canonical (VRM) joint names; skeleton {spec.name!r} lacks {missing[:6]}"
            + (" ..." if len(missing) > 6 else "")
        )
    if sk.names[0] != "hips":
        raise UsageError(f"the root joint must be 'hips', got {sk.names[0]!r}")
    for s in SIDES:
        chain = [("hips", f"{s}UpperLeg"), (f"{s}UpperLeg", f"{s}LowerLeg"), (f"{s}LowerLeg", f"{s}Foot"),
                 (f"{s}Shoulder", f"{s}UpperArm"), (f"{s}UpperArm", f"{s}LowerArm"), (f"{s}LowerArm", f"{s}Hand")]
        for parent, j in chain:
            got = sk.names[sk.parent(j)]
            if got != parent:
                raise UsageError(f"joint {j!r} must hang from {parent!r}, not {got!r}")


def _fit_lengths(spec: SkeletonSpec, mk: _MarkerView, overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Bone lengths (joint -> |offset| in metres, ``"<joint>.end"`` for end sites)."""
    sk = spec.skeleton
    rest = {n: float(np.linalg.norm(sk.offsets[j])) for j, n in enumerate(sk.names) if j > 0}
    rest.update({f"{n}.end": float(np.linalg.norm(v)) for n, v in sk.end_sites.items()})
    rp = sk.rest_positions()
    meas: dict[str, float] = {}

    def pair(joint: str, a: str, b: str) -> None:
        pa, pb = mk(a), mk(b)
        # a marker the take does not have (no hand landmarks) reads as all-NaN: no distance
        meas[joint] = float("nan") if pa is mk.nan or pb is mk.nan else _median_dist(pa, pb)

    for s in SIDES:
        pair(f"{s}UpperLeg", "pose.mid_hip", f"pose.{s}_hip")
        pair(f"{s}LowerLeg", f"pose.{s}_hip", f"pose.{s}_knee")
        pair(f"{s}Foot", f"pose.{s}_knee", f"pose.{s}_ankle")
        pair(f"{s}Toes", f"pose.{s}_ankle", f"pose.{s}_foot_index")
        pair(f"{s}LowerArm", f"pose.{s}_shoulder", f"pose.{s}_elbow")
        pair(f"{s}Hand", f"pose.{s}_elbow", f"pose.{s}_wrist")
        hand = f"{s}_hand"
        for joints, lms in FINGERS.values():
            names = [f"{s}{j}" for j in joints]
            pts = [f"{hand}.{m}" for m in lms]
            pair(names[0], f"{hand}.wrist", pts[0])
            pair(names[1], pts[0], pts[1])
            pair(names[2], pts[1], pts[2])
            pair(f"{names[2]}.end", pts[2], pts[3])
        for key, joint in (("index", HAND_POSE_POINTS["index"]), ("pinky", HAND_POSE_POINTS["pinky"])):
            if not np.isfinite(meas[f"{s}{joint}"]):
                pair(f"{s}{joint}", f"pose.{s}_wrist", f"pose.{s}_{key}")

    # left/right symmetric: average the two sides where both were seen
    for n in list(meas):
        if n.startswith("left"):
            other = "right" + n[4:]
            v = np.array([meas[n], meas.get(other, np.nan)])
            m = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            meas[n] = meas[other] = m

    ratios = [meas[n] / rest[n] for n in meas if np.isfinite(meas[n]) and rest.get(n, 0) > 0
              and "Thumb" not in n and "Index" not in n and "Middle" not in n and "Ring" not in n
              and "Little" not in n]
    trunk = _median_dist(mk("pose.mid_hip"), mk("pose.mid_shoulder"))
    rest_trunk = float(np.linalg.norm(rp[sk.index("neck")] - rp[0]))
    k_trunk = trunk / rest_trunk if np.isfinite(trunk) and trunk > 0 else np.nan
    if np.isfinite(k_trunk):
        ratios.append(k_trunk)
    k_global = float(np.median(ratios)) if ratios else 1.0
    if not np.isfinite(k_trunk):
        k_trunk = k_global

    out: dict[str, float] = {}
    # spine chain + neck -> head + clavicle roots: the trunk factor
    for n in ("spine", "chest", "upperChest", "neck", "head", "leftShoulder", "rightShoulder"):
        out[n] = rest[n] * k_trunk
    ears = _median_dist(mk("pose.left_ear"), mk("pose.right_ear"))
    rest_ears = float(np.linalg.norm(np.subtract(FACE_GEOMETRY["left_ear"], FACE_GEOMETRY["right_ear"])))
    k_head = ears / rest_ears if np.isfinite(ears) and ears > 0 else k_trunk
    if "head.end" in rest:
        out["head.end"] = rest["head.end"] * k_head
    # clavicle bone: the rest shoulder sits at half the shoulder width from the neck
    half_sw = 0.5 * _median_dist(mk("pose.left_shoulder"), mk("pose.right_shoulder"))
    for s in SIDES:
        o_sh = sk.offsets[sk.index(f"{s}Shoulder")]
        o_ua = sk.offsets[sk.index(f"{s}UpperArm")]
        k_c = (half_sw - abs(o_sh[0]) * k_trunk) / abs(o_ua[0]) if abs(o_ua[0]) > 1e-9 else np.nan
        if not (np.isfinite(k_c) and k_c > 0.2 * k_global):
            k_c = k_global
        out[f"{s}UpperArm"] = rest[f"{s}UpperArm"] * k_c
    # measured limbs and fingers
    for n, v in meas.items():
        if np.isfinite(v) and v > 0:
            out[n] = v
    # hands without landmarks: fingers follow the measured knuckles, else the figure
    for s in SIDES:
        ks = [out[f"{s}{j}"] / rest[f"{s}{j}"] for j in (HAND_POSE_POINTS["index"], HAND_POSE_POINTS["pinky"])
              if f"{s}{j}" in out]
        k_hand = float(np.mean(ks)) if ks else k_global
        for joints, _ in FINGERS.values():
            for j in (*joints, f"{joints[2]}.end"):
                n = f"{s}{j}"
                if n not in out and n in rest:
                    out[n] = rest[n] * k_hand
    # the rest: the figure's scale (toes' end by the foot's)
    for n, r in rest.items():
        if n not in out:
            base = n.split(".")[0]
            k = out[base] / rest[base] if n.endswith(".end") and base in out and rest[base] > 0 else k_global
            out[n] = r * k
    if overrides:
        for n, v in overrides.items():
            if n not in rest:
                raise UsageError(f"bone_lengths: no bone {n!r} (keys are joint names or '<joint>.end')")
            v = float(v)
            if not np.isfinite(v) or v <= 0:
                raise UsageError(f"bone_lengths[{n!r}] must be a positive number of metres, got {v!r}")
            out[n] = v
    return out


def _scaled_skeleton(sk: Skeleton, lengths: Mapping[str, float]) -> Skeleton:
    off = np.array(sk.offsets, dtype=float)
    for j, n in enumerate(sk.names):
        if j == 0:
            continue
        r = np.linalg.norm(off[j])
        if r > 0:
            off[j] *= lengths[n] / r
    ends = {}
    for n, v in sk.end_sites.items():
        r = np.linalg.norm(v)
        ends[n] = v * (lengths[f"{n}.end"] / r) if r > 0 else v
    # the root's rest position: stand on the floor with the new legs
    legs = [lengths[f"left{p}"] for p in ("LowerLeg", "Foot")]
    rest_legs = sum(np.linalg.norm(sk.offsets[sk.index(f"left{p}")]) for p in ("LowerLeg", "Foot"))
    off[0] = sk.offsets[0] * (sum(legs) / rest_legs if rest_legs > 0 else 1.0)
    return Skeleton(sk.names, sk.parents, off, ends)


# -- step 2-5: the solve ---------------------------------------------------------------------

_PARALLEL_FRAMES = 2000
"""Frames from which the left and right limbs are solved on two threads."""
_SIDE_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
"""Threads for the two sides: two when the process may run on two or more CPUs."""


class _Solver:
    """Joint-by-joint state: local rotations, globals and positions, all (T, ...)."""

    def __init__(self, sk: Skeleton, mk: _MarkerView, limits: bool, timestamps: np.ndarray) -> None:
        self.sk, self.mk, self.limits = sk, mk, limits
        self.ts = np.asarray(timestamps, dtype=float)
        T, J = mk.T, len(sk)
        self.T = T
        self.O = np.asarray(sk.offsets)
        self.rest = sk.rest_positions()
        # per joint (T, 4) / (T, 3) arrays in Fortran order: each component contiguous
        self.L: list[np.ndarray] = [None] * J
        self.G: list[np.ndarray] = [None] * J
        self.P: list[np.ndarray] = [None] * J
        self.done = np.zeros(J, bool)
        self.held: dict[str, int] = {}
        # joints in the order they were committed: the trunk (None), then per side
        self.committed: dict[str | None, list[str]] = {None: [], **{side: [] for side in SIDES}}

    def j(self, name: str) -> int:
        return self.sk.index(name)

    def place(self, j: int) -> np.ndarray:
        """Position of joint j (from its parent, which must be solved), (T, 3)."""
        p = self.sk.parents[j]
        self.P[j] = self.P[p] + _qrot(self.G[p], self.O[j])
        return self.P[j]

    def parent_G(self, j: int) -> np.ndarray:
        return self.G[self.sk.parents[j]]

    def commit(self, j: int, local: np.ndarray) -> None:
        """Hold missing frames, store the local rotation, update global and position."""
        local, n = _hold(local)
        local = np.asfortranarray(local)
        name = self.sk.names[j]
        self.committed[next((side for side in SIDES if name.startswith(side)), None)].append(name)
        if n:
            self.held[name] = n
        self.L[j] = local
        p = self.sk.parents[j]
        if p < 0:
            self.G[j] = local
        else:
            self.G[j] = _qmul(self.G[p], local)
            self.place(j)
        self.done[j] = True

    def limit(self, local: np.ndarray, key: str, axis: np.ndarray) -> np.ndarray:
        if not self.limits:
            return local
        lim = JOINT_LIMITS[key]
        return _limit_ball(local, axis, lim.twist, lim.swing)

    # -- trunk -----------------------------------------------------------------------------
    def trunk(self) -> None:
        mk, T = self.mk, self.T
        mid_hip, ms = mk("pose.mid_hip"), mk("pose.mid_shoulder")
        rest = self.rest
        hips = 0
        # root position: mid_hip, held; never seen -> the rest position
        root = _hold_back(mid_hip)
        if not np.isfinite(root).all():
            root = np.broadcast_to(self.O[0], (T, 3)).copy()
        self.P[hips] = np.asfortranarray(root)
        self.root_positions = root

        js, jc, ju, jn = (self.j(n) for n in ("spine", "chest", "upperChest", "neck"))
        x0 = rest[self.j("leftUpperLeg")] - rest[self.j("rightUpperLeg")]
        xs0 = rest[self.j("leftUpperArm")] - rest[self.j("rightUpperArm")]
        y0 = rest[jn] - rest[hips]
        x_p = _unit(mk("pose.left_hip") - mk("pose.right_hip"))
        x_c = _unit(mk("pose.left_shoulder") - mk("pose.right_shoulder"))
        xm = _unit(x_p + x_c)
        d = ms - mid_hip
        chord = _norm(d)
        o_sp, o_ch, o_uc, o_nk = (self.O[j] for j in (js, jc, ju, jn))

        def chain(beta: np.ndarray, gamma: np.ndarray):
            # pelvis tilted back by gamma from the chord, chest forward by 3 beta - gamma
            G_h = _align(x_p, _rodrigues(d, xm, -gamma), x0, y0)
            G_c = _align(x_c, _rodrigues(d, xm, 3.0 * beta - gamma), xs0, y0)
            part = _qpow(_qmul(_qconj(G_h), G_c), 1.0 / 3.0)
            p_sp = root + _qrot(G_h, o_sp)
            g_sp = _qmul(G_h, part)
            g_ch = _qmul(g_sp, part)
            p_nk = p_sp + _qrot(g_sp, o_ch) + _qrot(g_ch, o_uc) + _qrot(_qmul(g_ch, part), o_nk)
            return G_h, part, p_sp, g_sp, p_nk

        # A trunk shorter than the straight chain is bent forward (flexion): the per-joint
        # bend beta that gives the observed chord, from a table for a planar chain, then
        # two Newton steps on the real chain (twist between pelvis and chest shortens it too)
        lengths = [float(np.linalg.norm(o)) for o in (o_sp, o_ch, o_uc, o_nk)]
        beta, gamma = _trunk_bend(chord, lengths)
        for _ in range(2):
            pred = _norm(chain(beta, gamma)[4] - root)
            beta = _trunk_bend_step(beta, pred - chord, lengths)
            gamma = _trunk_gamma(beta, lengths)
        G_h, part, p_sp, g_sp, p_nk = chain(beta, gamma)
        self.commit(hips, G_h)
        if not np.isfinite(G_h).all():  # held pelvis frames: rebuild the chain on the held pelvis
            Gh = self.G[hips]
            part = np.where(np.isfinite(G_h).all(-1, keepdims=True), part, np.nan)
            p_sp = root + _qrot(Gh, o_sp)
            g_sp = _qmul(Gh, part)
        # one swing about the spine joint puts the neck on mid_shoulder
        corr = _qswing(_unit(p_nk - p_sp), _unit(ms - p_sp), np.array([1.0, 0.0, 0.0]))
        spine_local = _qmul(_qconj(self.G[hips]), _qmul(corr, g_sp))
        self.commit(js, self.limit(spine_local, "spine", _unit(o_ch)))
        self.commit(jc, self.limit(part, "chest", _unit(o_uc)))
        self.commit(ju, self.limit(part, "upperChest", _unit(o_nk)))

    def neck_head(self) -> None:
        mk = self.mk
        ju, jn, jh = self.j("upperChest"), self.j("neck"), self.j("head")
        fg = {k: np.asarray(v, float) for k, v in FACE_GEOMETRY.items()}
        # body landmarks (ears + nose), else face mesh (outer eye corners + nose tip)
        le, re, no = mk("pose.left_ear"), mk("pose.right_ear"), mk("pose.nose")
        H = _align(le - re, no - 0.5 * (le + re), fg["left_ear"] - fg["right_ear"],
                   fg["nose"] - 0.5 * (fg["left_ear"] + fg["right_ear"]))
        if mk.has("face.left_eye_outer") and mk.has("face.nose_tip"):
            lo, ro, nt = mk("face.left_eye_outer"), mk("face.right_eye_outer"), mk("face.nose_tip")
            H2 = _align(lo - ro, nt - 0.5 * (lo + ro), fg["left_eye_outer"] - fg["right_eye_outer"],
                        fg["nose_tip"] - 0.5 * (fg["left_eye_outer"] + fg["right_eye_outer"]))
            H = np.where(np.isfinite(H).all(-1, keepdims=True), H, H2)
        Gu = self.G[ju]
        rel = _qmul(_qconj(Gu), H)
        up = _unit(self.O[jh])
        self.commit(jn, self.limit(_qpow(rel, 0.5), "neck", up))
        head_local = _qmul(_qconj(self.G[jn]), H)
        self.commit(jh, self.limit(head_local, "head", up))

    def clavicle(self, s: str) -> None:
        j, ua = self.j(f"{s}Shoulder"), self.j(f"{s}UpperArm")
        p = self.place(j)
        Gu = self.parent_G(j)
        d = _unit(_qrot(_qconj(Gu), self.mk(f"pose.{s}_shoulder") - p))
        r = _unit(self.O[ua])
        local = _qswing(r, d, np.array([0.0, 1.0, 0.0]))
        self.commit(j, self.limit(local, "Shoulder", r))

    # -- limbs ------------------------------------------------------------------------------
    def limb(self, upper: str, lower: str, end: str, mid_marker: str, end_marker: str,
             flex_dir: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Upper bone (swing + twist from the bend plane) and the hinge at ``lower``.

        ``flex_dir``: where the lower bone goes when the hinge flexes, in the rest frame
        (+Z, forward, for the elbows of the T-pose; -Z for the knees). Commits ``upper``;
        returns the hinge-only local rotation of ``lower`` (T, 4) and the rest direction
        of the lower bone (the forearm's twist axis).
        """
        ju, jl, je = self.j(upper), self.j(lower), self.j(end)
        r_u, r_f = _unit(self.O[jl]), _unit(self.O[je])
        a_rest = _unit(np.cross(r_u, flex_dir))
        L_u = float(np.linalg.norm(self.O[jl]))
        p_u = self.place(ju)
        Gp = self.parent_G(ju)
        mid, tip = self.mk(mid_marker), self.mk(end_marker)
        u = _unit(mid - p_u)
        # swing-only frame and its hinge axis
        S = _qswing(r_u, _unit(_qrot(_qconj(Gp), u)), a_rest)
        a_sw = _qrot(_qmul(Gp, S), a_rest)
        f = _unit(tip - (p_u + L_u * u))
        n = _cross(u, f)
        sn = _norm(n)
        bend = np.arctan2(sn, _dot(u, f))
        with np.errstate(invalid="ignore", divide="ignore"):
            n_hat = n / sn[:, None]
        tau = np.arctan2(_dot(_cross(a_sw, n_hat), u), _dot(a_sw, n_hat))
        rel = np.radians(HINGE_RELIABLE_DEG)
        with np.errstate(invalid="ignore"):
            reliable = np.isfinite(tau) & (bend >= rel)
        # a lone well-bent frame among straight ones is usually noise: keep runs of >= 3
        full = np.convolve(reliable.astype(np.int8), np.ones(3, np.int8), mode="same") == 3
        reliable &= full | np.r_[full[1:], False] | np.r_[False, full[:-1]]
        k = np.flatnonzero(reliable)
        tk = np.unwrap(tau[k])
        if k.size >= _TWIST_MEDIAN:
            # a bend plane flipped for a frame or two (a forearm or shin seen on the wrong
            # side of the joint: a depth error) is an outlier against the running median
            # of its neighbours: it is not trusted, so it reads as a hyperextension (clamped
            # to straight) instead of turning the upper bone over by 180 degrees
            # (only between close neighbours: unrelated stills may differ at will)
            h = _TWIST_MEDIAN // 2
            win = np.lib.stride_tricks.sliding_window_view(np.pad(tk, h, mode="edge"), _TWIST_MEDIAN)
            kt = self.ts[k]
            close = (np.diff(kt, prepend=-np.inf) <= _TWIST_NEAR_S) & (np.diff(kt, append=np.inf) <= _TWIST_NEAR_S)
            keep = (np.abs(tk - np.median(win, axis=1)) < 0.5 * np.pi) | ~close
            reliable[k[~keep]] = False
            k, tk = k[keep], tk[keep]
        tau_fb = np.interp(self.ts, self.ts[k], tk) if k.size else np.zeros(self.T)
        c, s_ = np.cos(tau_fb)[:, None], np.sin(tau_fb)[:, None]
        f_b = a_sw * c + _cross(u, a_sw) * s_
        sgn = np.where(_dot(n_hat, f_b) < 0, -1.0, 1.0)[:, None]
        w = np.clip(bend / rel, 0.0, 1.0)
        w = (w * w * (3.0 - 2.0 * w))[:, None]  # smoothstep
        blend = _unit(w * sgn * n_hat + (1.0 - w) * f_b)
        a = np.where(reliable[:, None], n_hat, np.where(np.isfinite(blend), blend, f_b))
        G_u = _align(u, a, r_u, a_rest)
        local_u = _qmul(_qconj(Gp), G_u)
        self.commit(ju, self.limit(local_u, key, r_u))
        # hinge: the lower bone projected onto the plane normal to the (actual) axis
        Gu = self.G[ju]
        u_act, a_act = _qrot(Gu, r_u), _qrot(Gu, a_rest)
        p_l = self.place(jl)
        f = _unit(tip - p_l)
        theta = np.arctan2(_dot(_cross(u_act, f), a_act), _dot(u_act, f))
        lim = JOINT_LIMITS["LowerArm" if key == "UpperArm" else "LowerLeg"]
        if self.limits:
            theta = np.clip(theta, *np.radians(lim.flex))
        return _qaxis(a_rest, theta), r_f

    def hand_target(self, s: str) -> np.ndarray:
        """Global rotation of the hand from wrist + index/pinky knuckles, (T, 4)."""
        mk, rest = self.mk, self.rest
        w0 = rest[self.j(f"{s}Hand")]
        i0 = rest[self.j(f"{s}{HAND_POSE_POINTS['index']}")]
        k0 = rest[self.j(f"{s}{HAND_POSE_POINTS['pinky']}")]
        a0, b0 = 0.5 * (i0 + k0) - w0, i0 - k0

        def target(w, i, k):
            return _align(0.5 * (i + k) - w, i - k, a0, b0)

        G = target(mk(f"pose.{s}_wrist"), mk(f"pose.{s}_index"), mk(f"pose.{s}_pinky"))
        h = f"{s}_hand"
        if mk.has(f"{h}.index_mcp"):
            G2 = target(mk(f"{h}.wrist"), mk(f"{h}.index_mcp"), mk(f"{h}.pinky_mcp"))
            G = np.where(np.isfinite(G2).all(-1, keepdims=True), G2, G)
        return G

    def arm(self, s: str) -> None:
        hinge, r_f = self.limb(f"{s}UpperArm", f"{s}LowerArm", f"{s}Hand", f"pose.{s}_elbow",
                               f"pose.{s}_wrist", _Z, "UpperArm")
        jl, jh = self.j(f"{s}LowerArm"), self.j(f"{s}Hand")
        G_h = self.hand_target(s)
        G_lh = _qmul(self.parent_G(jl), hinge)
        psi = _twist_angle(_qmul(_qconj(G_lh), G_h), r_f)
        if np.isfinite(psi).any():
            psi = np.unwrap(_hold(psi[:, None], np.zeros(1))[0][:, 0])
        else:
            psi = np.zeros(self.T)
        if self.limits:
            psi = np.clip(psi, *np.radians(JOINT_LIMITS["LowerArm"].twist))
        self.commit(jl, _qmul(hinge, _qaxis(r_f, psi)))
        hand_local = _qmul(_qconj(self.G[jl]), G_h)
        self.commit(jh, self.limit(hand_local, "Hand", r_f))
        self.fingers(s)

    def fingers(self, s: str) -> None:
        mk, O = self.mk, self.O
        h = f"{s}_hand"
        jh = self.j(f"{s}Hand")
        # palm normal in the rest frame: side * (along x across), -Y for the T-pose
        w0 = self.rest[jh]
        i0 = self.rest[self.j(f"{s}{HAND_POSE_POINTS['index']}")]
        k0 = self.rest[self.j(f"{s}{HAND_POSE_POINTS['pinky']}")]
        side = 1.0 if s == "left" else -1.0
        palm = _unit(side * np.cross(0.5 * (i0 + k0) - w0, i0 - k0))
        if not any(mk.has(f"{h}.{m}") for _, lms in FINGERS.values() for m in lms):
            rest = np.broadcast_to(Q_IDENTITY, (self.T, 4)).copy()  # no hand landmarks: rest
            for joints, _ in FINGERS.values():
                for jn in joints:
                    self.commit(self.j(f"{s}{jn}"), rest)
                    self.held[f"{s}{jn}"] = self.T
            return
        for finger, (joints, lms) in FINGERS.items():
            names = [f"{s}{j}" for j in joints]
            js = [self.j(n) for n in names]
            pts = [mk(f"{h}.{m}") for m in lms]
            ends = [O[js[1]], O[js[2]], self.sk.end_sites.get(names[2], O[js[2]])]
            # proximal: flexion about (bone x palm normal), abduction about the palm normal
            e1 = _unit(ends[0])
            n = _unit(palm - np.dot(palm, e1) * e1)
            ax = np.cross(e1, n)
            self.place(js[0])
            d = _unit(_qrot(_qconj(self.G[jh]), pts[1] - pts[0]))
            alpha = np.arcsin(np.clip(_dot(d, n), -1.0, 1.0))
            beta = np.arctan2(_dot(d, np.cross(n, e1)), _dot(d, e1))
            lim = JOINT_LIMITS["ThumbMetacarpal" if finger == "thumb" else "Proximal"]
            if self.limits:
                alpha = np.clip(alpha, *np.radians(lim.flex))
                beta = np.clip(beta, -np.radians(lim.abduct), np.radians(lim.abduct))
            self.commit(js[0], _qmul(_qaxis(n, beta), _qaxis(ax, alpha)))
            # middle and distal: hinges
            for k in (1, 2):
                e = _unit(ends[k])
                n = _unit(palm - np.dot(palm, e) * e)
                ax = np.cross(e, n)
                d = _qrot(_qconj(self.G[js[k - 1]]), pts[k + 1] - pts[k])
                theta = np.arctan2(_dot(d, n), _dot(d, e))
                key = ("ThumbProximal", "ThumbDistal")[k - 1] if finger == "thumb" else ("Intermediate", "Distal")[k - 1]
                if self.limits:
                    theta = np.clip(theta, *np.radians(JOINT_LIMITS[key].flex))
                self.commit(js[k], _qaxis(ax, theta))

    def leg(self, s: str) -> None:
        hinge, _ = self.limb(f"{s}UpperLeg", f"{s}LowerLeg", f"{s}Foot", f"pose.{s}_knee",
                             f"pose.{s}_ankle", -_Z, "UpperLeg")
        jl, jf, jt = self.j(f"{s}LowerLeg"), self.j(f"{s}Foot"), self.j(f"{s}Toes")
        self.commit(jl, hinge)
        mk = self.mk
        ankle, toe, heel = mk(f"pose.{s}_ankle"), mk(f"pose.{s}_foot_index"), mk(f"pose.{s}_heel")
        t0 = self.O[jt]
        # primary: ankle -> foot_index (the foot bone); secondary: the foot's lateral axis,
        # normal to the plane (ankle, foot_index, heel); only directions matter
        G_f = _align(toe - ankle, _cross(toe - ankle, heel - ankle), t0, np.cross(t0, HEEL_OFFSET))
        local = _qmul(_qconj(self.G[jl]), G_f)
        self.commit(jf, self.limit(local, "Foot", _unit(self.O[jf])))
        self.commit(jt, np.broadcast_to(Q_IDENTITY, (self.T, 4)).copy())


def solve_motion(
    markers: Markers,
    *,
    skeleton_spec: SkeletonSpec | None = None,
    bone_lengths: Mapping[str, float] | None = None,
    limits: bool = True,
) -> Motion:
    """Solve local joint rotations on the canonical skeleton from world-frame markers.

    ``markers``: :class:`~mocap.markers.Markers` in the world frame (metres, +Y up); names
    as in ``canonical.toml`` (``pose.left_elbow``, ``left_hand.index_pip``, ...). The body
    landmarks are required in at least one frame; hands and face are optional.
    ``skeleton_spec``: the skeleton to solve onto (default: the canonical one; any spec
    with the same VRM joint names and hierarchy works). ``bone_lengths``: metres per joint
    name (distance from its parent; ``"<joint>.end"`` for end sites), overriding the fit.
    ``limits``: clamp each joint to :data:`JOINT_LIMITS`.

    Returns a :class:`~mocap.motion.Motion` on the performer-scaled skeleton: rotations
    ``(T, 52, 4)`` wxyz local, ``root_positions`` = ``pose.mid_hip`` (held across gaps),
    ``timestamps`` from the markers, ``fps`` from their median step. ``meta`` has
    ``bone_lengths``, ``held_frames`` (joint -> frames held for missing landmarks),
    ``limits`` and ``markers_used``. Never NaN: missing landmarks hold the previous pose.

    Raises :class:`~mocap.errors.SolveError` when no frame has the hips and shoulders.
    """
    if not isinstance(markers, Markers):
        raise UsageError(f"solve_motion needs Markers, got {type(markers).__name__}")
    spec = skeleton_spec if skeleton_spec is not None else canonical_spec()
    _check_spec(spec)
    T = len(markers)
    if T == 0:
        raise SolveError("no frames to solve (the markers are empty)")
    mk = _MarkerView(markers)
    body = ("pose.left_hip", "pose.right_hip", "pose.left_shoulder", "pose.right_shoulder")
    seen = np.all([np.isfinite(mk(n)).all(-1) for n in body], axis=0)
    if not seen.any():
        lacking = [n for n in body if not mk.has(n)]
        raise SolveError(
            f"no frame of {T} has both hips and both shoulders; cannot place the body"
            + (f" (never seen: {', '.join(lacking)})" if lacking else "")
        )
    lengths = _fit_lengths(spec, mk, bone_lengths)
    sk = _scaled_skeleton(spec.skeleton, lengths)

    ts = np.asarray(markers.timestamps, dtype=float)
    with np.errstate(invalid="ignore"):
        solver = _Solver(sk, mk, bool(limits), ts)
        solver.trunk()
        solver.neck_head()

    def side(s: str) -> None:
        with np.errstate(invalid="ignore"):  # (numpy's error state is per thread)
            solver.clavicle(s)
            solver.arm(s)
            solver.leg(s)

    # the two sides hang from the solved trunk and touch disjoint joints: on a long take
    # they run side by side (numpy releases the GIL in its loops)
    if T >= _PARALLEL_FRAMES and _SIDE_THREADS > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(SIDES), thread_name_prefix="mocap-solve") as ex:
            list(ex.map(side, SIDES))
    else:
        for s in SIDES:
            side(s)
    # held joints in the order they were committed, as a one-thread solve has them
    order = [n for key in (None, *SIDES) for n in solver.committed[key]]
    solver.held = {n: solver.held[n] for n in order if n in solver.held}
    if not solver.done.all():  # pragma: no cover - every canonical joint has a step above
        missing = [sk.names[j] for j in np.flatnonzero(~solver.done)]
        raise SolveError(f"internal: joints left unsolved: {missing}")
    rotations = _continuous_stack(solver.L)
    if T >= 2:
        fps = float(1.0 / np.median(np.diff(ts)))
    else:
        fps = float(markers.meta.get("fps", 30.0))
    meta = {
        "solver": "mocap.solve",
        "bone_lengths": {k: float(v) for k, v in lengths.items()},
        "held_frames": dict(solver.held),
        "limits": bool(limits),
        "markers_used": sorted(mk.used),
        "marker_frame": markers.frame,
    }
    return Motion(
        skeleton=sk,
        rotations=rotations,
        root_positions=solver.root_positions,
        fps=fps,
        timestamps=ts,
        meta=meta,
    )
