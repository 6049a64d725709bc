"""Synthetic takes from motion capture, to validate the pipeline against known truth.

A :class:`~mocap.motion.Motion` (e.g. a CMU BVH) is turned into the landmarks MediaPipe
would report, first as world-frame :class:`~mocap.markers.Markers`
(:func:`synth_markers`), then, through a :class:`VirtualCamera`, as a
:class:`~mocap.take.Take` (:func:`synth_take`). Solving the take (or the markers) and
comparing with the source motion measures the solver; :func:`degrade_markers` adds the
noise and dropped frames real tracking has.

How landmarks are made (``mapping``: canonical joint name -> the source's joint name)
-------------------------------------------------------------------------------------
* **Joint landmarks**: a canonical joint that follows a landmark (``marker`` in
  ``canonical.toml``) and is mapped gives that landmark the mapped joint's position:
  ``leftUpperLeg -> pose.left_hip``, ``leftLowerArm -> pose.left_elbow``,
  ``leftIndexProximal -> left_hand.index_mcp`` ... so synth and :mod:`mocap.solve` agree on
  what every point means by construction. ``pose.mid_hip`` / ``pose.mid_shoulder`` are the
  midpoints of the left/right points.
* **Feet**: ``foot_index`` is the mapped ``Toes`` joint, else the foot's end site, else a
  point 13 cm ahead and 6 cm below the ankle. ``heel`` is :data:`mocap.solve.HEEL_OFFSET`
  (6 cm down, 5 cm back) in the foot's rest frame (forward = the toe's direction, flat).
* **Face**: the head joint plus :data:`mocap.solve.FACE_GEOMETRY` (nose, eyes, ears,
  mouth, and the semantic face-mesh points), turned to the source's rest facing and carried
  by the head's rotation.
* **Hands**: ``pose.left_index/left_pinky/left_thumb`` are the mapped index/little knuckle
  and thumb MCP joints; without finger joints, the canonical knuckle offsets placed in the
  source's rest hand frame (along the forearm, thumb forward). The 21 hand landmarks are
  made only when the five fingers are mapped: mapped joints give their points, the tip is
  the last mapped joint's end site, points in between (e.g. a DIP the source lacks) are
  interpolated along the finger at the canonical proportions.
* **Scale**: the fixed geometry above is for the 1.75 m canonical figure and is scaled by
  ``figure_scale`` = the source's rest (thigh + shin) over the canonical 0.85 m.
* **Facing**: the source's rest pose faces ``(left hip - right hip) x up`` (+Z for the CMU
  files and the canonical skeleton).

The virtual camera (:class:`VirtualCamera`)
-------------------------------------------
A pinhole camera, default 1280x720 px, horizontal field of view 60 deg, standing 4 m in
front of the performer's mid-hip at the first frame (along their facing), its centre
1.2 m above the floor (the lowest landmark of that frame), looking at the mid-hip.
``yaw_deg`` orbits it about the performer (positive towards their left), ``tilt_deg``
pitches the view (positive looks up). Projection uses the glTF camera frame of
:mod:`mocap.glossary` (+X right, +Y up, looking down -Z) and image +y down:
``u = cx + fx x / d``, ``v = cy - fy y / d`` with depth ``d = -z``. A take then holds, as
MediaPipe's would: ``pose_image`` x, y in px and z = ``fx (d - d_mid_hip) / d_mid_hip``
(depth relative to the hips on the x scale, smaller = nearer); ``pose_world`` = the points
in the camera's axes minus the mid-hip (metres); hands and face in px (z relative to the
wrist / the face's mean depth). Only the 23 semantic face points
(:data:`mocap.landmarks.FACE_POINTS`) of the 478-point mesh are filled; the rest are NaN.

The CMU walk and hop travel 2.6 and 3.3 m towards a camera placed this way and end up
partly out of frame; ``VirtualCamera(distance_m=9)`` keeps them whole. Lifted back with
:func:`mocap.root.lift_take`, such a take gives the exact markers again within a few
millimetres after one rigid alignment (the lift picks its own floor and heading).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .errors import UsageError
from .markers import Markers
from .motion import Motion, quat_rotate
from .skeleton import SkeletonSpec, canonical_spec
from .solve import FACE_GEOMETRY, FINGERS, HAND_POSE_POINTS, HEEL_OFFSET, SIDES
from .take import Intrinsics, SourceInfo, Take

__all__ = [
    "VirtualCamera",
    "CameraPose",
    "REQUIRED_JOINTS",
    "synth_markers",
    "synth_take",
    "degrade_markers",
    "canonical_targets",
    "figure_scale",
]

REQUIRED_JOINTS: tuple[str, ...] = (
    "head",
    *(f"{s}{p}" for s in SIDES for p in ("UpperLeg", "LowerLeg", "Foot", "UpperArm", "LowerArm", "Hand")),
)
"""Canonical joints a ``mapping`` must name: legs, arms, hands and the head."""

_UP = np.array([0.0, 1.0, 0.0])
_CANON_LEG = ("UpperLeg", "LowerLeg", "Foot")
_NEAR_M = 0.1
"""Points closer to the camera plane than this (metres) are not projected."""


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _check_mapping(mapping: Mapping[str, str], motion: Motion, spec: SkeletonSpec) -> None:
    if not isinstance(mapping, Mapping):
        raise UsageError(f"mapping must be a dict of canonical -> source joint names, got {type(mapping).__name__}")
    canon = spec.skeleton
    for c, s in mapping.items():
        if c not in canon:
            close = difflib.get_close_matches(str(c), canon.names, n=2)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UsageError(f"mapping: {c!r} is not a canonical joint{hint}")
        if s not in motion.skeleton:
            close = difflib.get_close_matches(str(s), motion.skeleton.names, n=2)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UsageError(f"mapping: {c!r} -> {s!r}, but the motion has no joint {s!r}{hint}")
    missing = [c for c in REQUIRED_JOINTS if c not in mapping]
    if missing:
        raise UsageError(f"mapping lacks {missing} (synthetic landmarks need legs, arms, hands and head)")


def figure_scale(motion: Motion, mapping: Mapping[str, str]) -> float:
    """The source figure's size relative to the 1.75 m canonical one: rest (thigh + shin),
    both sides averaged, over the canonical 0.43 + 0.42 m."""
    canon = canonical_spec().skeleton
    sk = motion.skeleton
    rest = sk.rest_positions()
    crest = canon.rest_positions()
    got, want = [], []
    for s in SIDES:
        a, b, c = (rest[sk.index(mapping[f"{s}{p}"])] for p in _CANON_LEG)
        got.append(np.linalg.norm(b - a) + np.linalg.norm(c - b))
        a, b, c = (crest[canon.index(f"{s}{p}")] for p in _CANON_LEG)
        want.append(np.linalg.norm(b - a) + np.linalg.norm(c - b))
    return float(np.mean(got) / np.mean(want))


def synth_markers(motion: Motion, *, mapping: Mapping[str, str]) -> Markers:
    """World-frame landmarks of ``motion`` as MediaPipe would name them (exact, no noise).

    ``mapping``: canonical joint name -> joint name in ``motion`` (at least
    :data:`REQUIRED_JOINTS`; fingers, toes and the rest optional). Returns
    :class:`~mocap.markers.Markers` with the 33 ``pose.*`` landmarks, ``pose.mid_hip``,
    ``pose.mid_shoulder``, the ``face.*`` semantic points and, when the five fingers of a
    hand are mapped, its 21 ``left_hand.*`` / ``right_hand.*`` landmarks; timestamps are
    the motion's. See the module docstring for how each point is made.
    ``meta["figure_scale"]`` is the factor applied to the fixed geometry.
    """
    if not isinstance(motion, Motion):
        raise UsageError(f"synth_markers needs a Motion, got {type(motion).__name__}")
    spec = canonical_spec()
    _check_mapping(mapping, motion, spec)
    canon = spec.skeleton
    crest = canon.rest_positions()
    sk = motion.skeleton
    rest = sk.rest_positions()
    P, G = motion.fk()
    k = figure_scale(motion, mapping)

    def jx(c: str) -> int:
        return sk.index(mapping[c])

    # the source's rest facing: +Z-like axis from the hip line
    lat = rest[jx("leftUpperLeg")] - rest[jx("rightUpperLeg")]
    lat[1] = 0.0
    if np.linalg.norm(lat) < 1e-9:
        raise UsageError("cannot tell the source's facing: its rest hips are not side by side")
    lat = _unit(lat)
    fwd = np.cross(lat, _UP)
    B = np.stack([lat, _UP, fwd], axis=1)  # canonical rest axes -> source rest axes

    out: dict[str, np.ndarray] = {}

    def carried(c: str, offset: np.ndarray) -> np.ndarray:
        """Point fixed to source joint mapping[c] at ``offset`` (source rest frame)."""
        j = jx(c)
        return P[:, j] + quat_rotate(G[:, j], offset)

    # joint landmarks of the body
    for c, m in spec.markers.items():
        if m.startswith("pose.") and not m.startswith("pose.mid_") and c in mapping:
            out[m] = P[:, jx(c)]
    for s in SIDES:
        foot = jx(f"{s}Foot")
        # foot_index: the toe joint, else the foot's end site, else a virtual toe
        end = sk.end_sites.get(mapping[f"{s}Foot"])
        if f"{s}Toes" in mapping:
            toe_rest = rest[jx(f"{s}Toes")] - rest[foot]
        elif end is not None:
            toe_rest = np.asarray(end, dtype=float)
            out[f"pose.{s}_foot_index"] = carried(f"{s}Foot", toe_rest)
        else:
            toe_rest = B @ (canon.offsets[canon.index(f"{s}Toes")] * k)
            out[f"pose.{s}_foot_index"] = carried(f"{s}Foot", toe_rest)
        f_h = toe_rest.copy()
        f_h[1] = 0.0
        f_h = _unit(f_h) if np.linalg.norm(f_h) > 1e-9 else fwd
        lat_f = np.cross(_UP, f_h)
        heel = (HEEL_OFFSET[0] * lat_f + HEEL_OFFSET[1] * _UP + HEEL_OFFSET[2] * f_h) * k
        out[f"pose.{s}_heel"] = carried(f"{s}Foot", heel)

    # face: fixed geometry on the head
    for key, off in FACE_GEOMETRY.items():
        p = carried("head", B @ (np.asarray(off) * k))
        if key in L.POSE:
            out[f"pose.{key}"] = p
        if key in L.FACE_POINTS:
            out[f"face.{key}"] = p

    # hands
    for s in SIDES:
        side = 1.0 if s == "left" else -1.0
        hand_c = f"{s}Hand"
        a_s = _unit(rest[jx(hand_c)] - rest[jx(f"{s}LowerArm")])
        t_s = _unit(fwd - np.dot(fwd, a_s) * a_s)
        a_c = _unit(crest[canon.index(hand_c)] - crest[canon.index(f"{s}LowerArm")])
        t_c = _unit(np.array([0.0, 0.0, 1.0]) - a_c[2] * a_c)
        Fs = np.stack([a_s, t_s, side * np.cross(a_s, t_s)], axis=1)
        Fc = np.stack([a_c, t_c, side * np.cross(a_c, t_c)], axis=1)
        Bh = Fs @ Fc.T
        for key, joint in HAND_POSE_POINTS.items():
            c = f"{s}{joint}"
            if c in mapping:
                out[f"pose.{s}_{key}"] = P[:, jx(c)]
            else:
                off = (crest[canon.index(c)] - crest[canon.index(hand_c)]) * k
                out[f"pose.{s}_{key}"] = carried(hand_c, Bh @ off)
        mapped = [f"{s}{joints[0]}" in mapping for joints, _ in FINGERS.values()]
        if any(mapped) and not all(mapped):
            raise UsageError(f"mapping names some {s} fingers but not all five; map all or none")
        if all(mapped):
            out[f"{s}_hand.wrist"] = P[:, jx(hand_c)]
            for joints, lms in FINGERS.values():
                names = [f"{s}{j}" for j in joints]
                for name, pts in zip(lms, _finger_points(names, mapping, motion, P, G, canon)):
                    out[f"{s}_hand.{name}"] = pts

    out["pose.mid_hip"] = 0.5 * (out["pose.left_hip"] + out["pose.right_hip"])
    out["pose.mid_shoulder"] = 0.5 * (out["pose.left_shoulder"] + out["pose.right_shoulder"])
    order = [f"pose.{n}" for n in L.POSE] + ["pose.mid_hip", "pose.mid_shoulder"]
    order += sorted(n for n in out if n.startswith("face."))
    for s in SIDES:
        if f"{s}_hand.wrist" in out:
            order += [f"{s}_hand.{n}" for n in L.HAND]
    missing = [n for n in order if n not in out]
    if missing:  # pragma: no cover - every POSE name is made above
        raise UsageError(f"internal: no synthetic landmark for {missing}")
    points = np.stack([out[n] for n in order], axis=1)
    meta = {
        "source": "synthetic",
        "motion_source": motion.meta.get("source"),
        "mapping": dict(mapping),
        "figure_scale": k,
        "rest_facing": fwd.tolist(),
    }
    return Markers(names=tuple(order), points=points, timestamps=np.array(motion.timestamps),
                   frame="world", meta=meta)


def _finger_points(names, mapping, motion, P, G, canon) -> list[np.ndarray]:
    """(T, 3) positions of the 4 landmarks of one finger (base, two middle, tip)."""
    sk = motion.skeleton
    seg = [np.linalg.norm(canon.offsets[canon.index(names[1])]),
           np.linalg.norm(canon.offsets[canon.index(names[2])]),
           np.linalg.norm(canon.end_sites.get(names[2], canon.offsets[canon.index(names[2])]))]
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    known: dict[int, np.ndarray] = {}
    last = None
    for i, n in enumerate(names):
        if n in mapping:
            known[i] = P[:, sk.index(mapping[n])]
            last = (i, sk.index(mapping[n]))
    i, j = last
    end = sk.end_sites.get(sk.names[j])
    kids = sk.children(j)
    if end is not None:
        known[3] = P[:, j] + quat_rotate(G[:, j], end)
    elif kids:
        known[3] = P[:, kids[0]]
    elif i > 0:  # extrapolate along the last segment at the canonical proportion
        prev = max(a for a in known if a < i)
        known[3] = known[i] + (known[i] - known[prev]) * (arc[3] - arc[i]) / (arc[i] - arc[prev])
    else:
        raise UsageError(f"finger {names[0]!r}: the source has one joint and no end site; cannot place a tip")
    ks = sorted(known)
    out = []
    for m in range(4):
        if m in known:
            out.append(known[m])
            continue
        a = max(x for x in ks if x < m)
        b = min(x for x in ks if x > m)
        w = (arc[m] - arc[a]) / (arc[b] - arc[a])
        out.append(known[a] + w * (known[b] - known[a]))
    return out


def canonical_targets(markers: Markers, *, skeleton_spec: SkeletonSpec | None = None) -> dict[str, np.ndarray]:
    """Where each canonical joint *should* be: joint name -> ``(T, 3)`` position of the
    landmark it follows (``hips`` -> ``pose.mid_hip``, ``neck`` -> ``pose.mid_shoulder``,
    ``leftLowerArm`` -> ``pose.left_elbow``, fingers -> hand landmarks), for the joints
    whose landmark is among ``markers``. Compare with ``solve_motion(...).positions()``."""
    spec = skeleton_spec if skeleton_spec is not None else canonical_spec()
    out = {}
    for joint, m in spec.markers.items():
        if m in markers:
            out[joint] = np.array(markers.get(m))
    return out


def degrade_markers(markers: Markers, *, noise_mm: float = 0.0, dropout: float = 0.0, seed: int = 0) -> Markers:
    """A copy of ``markers`` with tracking defects, deterministic per ``seed``.

    ``dropout``: the fraction of frames (rounded to a whole number of frames) in which the
    whole person is lost: every point NaN, confidence 0, chosen uniformly at random.
    ``noise_mm``: independent Gaussian noise of that standard deviation (millimetres) on
    every coordinate of every observed landmark; ``pose.mid_hip``/``pose.mid_shoulder`` are
    recomputed as midpoints of the noisy left/right points.
    """
    noise_mm, dropout = float(noise_mm), float(dropout)
    if not (np.isfinite(noise_mm) and noise_mm >= 0):
        raise UsageError(f"noise_mm must be >= 0, got {noise_mm}")
    if not (0.0 <= dropout <= 1.0):
        raise UsageError(f"dropout must be a fraction in [0, 1], got {dropout}")
    rng = np.random.default_rng(seed)
    T = len(markers)
    pts = np.array(markers.points, dtype=float)
    conf = np.array(markers.confidence, dtype=float)
    n_drop = int(round(dropout * T))
    dropped = np.sort(rng.choice(T, size=n_drop, replace=False)) if n_drop else np.zeros(0, int)
    if noise_mm > 0:
        pts = pts + rng.normal(0.0, noise_mm / 1000.0, size=pts.shape)
    names = markers.names
    for mid, (a, b) in {"pose.mid_hip": ("pose.left_hip", "pose.right_hip"),
                        "pose.mid_shoulder": ("pose.left_shoulder", "pose.right_shoulder")}.items():
        if mid in markers and a in markers and b in markers:
            pts[:, markers.index(mid)] = 0.5 * (pts[:, markers.index(a)] + pts[:, markers.index(b)])
    pts[dropped] = np.nan
    conf[dropped] = 0.0
    meta = dict(markers.meta)
    meta.update(noise_mm=noise_mm, dropout=dropout, seed=int(seed), dropped_frames=dropped.tolist())
    return Markers(names=names, points=pts, timestamps=markers.timestamps, confidence=conf,
                   frame=markers.frame, meta=meta)


# -- the camera ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraPose:
    """A placed camera: ``rotation`` (3, 3) has the camera's axes (glTF: +X right, +Y up,
    +Z backwards) as columns in world coordinates; ``position`` (3,) metres."""

    rotation: np.ndarray
    position: np.ndarray

    def world_to_camera(self, p: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> the camera frame ``(..., 3)``, metres."""
        return (np.asarray(p, dtype=float) - self.position) @ self.rotation

    def to_json(self) -> dict:
        return {"position_m": self.position.tolist(), "rotation_cam_to_world": self.rotation.tolist()}


@dataclass(frozen=True)
class VirtualCamera:
    """A pinhole camera for synthetic takes (see the module docstring for its placement).

    ``width``/``height`` px, ``hfov_deg`` horizontal field of view; ``distance_m`` from the
    performer's first-frame mid-hip along their facing, ``height_m`` above the floor;
    ``yaw_deg`` orbits it about the performer (positive towards their left),
    ``tilt_deg`` pitches the view (positive looks up).
    """

    width: int = 1280
    height: int = 720
    hfov_deg: float = 60.0
    distance_m: float = 4.0
    height_m: float = 1.2
    yaw_deg: float = 0.0
    tilt_deg: float = 0.0

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_hfov(self.width, self.height, self.hfov_deg, source="synthetic")

    def place(self, markers: Markers) -> CameraPose:
        """The camera's pose for these world-frame markers (anchored on the first frame
        that has both hips)."""
        lh, rh = markers.get("pose.left_hip"), markers.get("pose.right_hip")
        ok = np.flatnonzero(np.isfinite(lh).all(-1) & np.isfinite(rh).all(-1))
        if ok.size == 0:
            raise UsageError("cannot place the camera: no frame has both hips")
        t = int(ok[0])
        anchor = 0.5 * (lh[t] + rh[t])
        lat = lh[t] - rh[t]
        lat[1] = 0.0
        fwd = _unit(np.cross(lat, _UP))
        yaw = math.radians(self.yaw_deg)
        c, s = math.cos(yaw), math.sin(yaw)
        d = np.array([c * fwd[0] + s * fwd[2], 0.0, -s * fwd[0] + c * fwd[2]])  # Ry(yaw) fwd
        pose_pts = np.stack([markers.get(f"pose.{n}")[t] for n in L.POSE])
        floor = float(np.nanmin(pose_pts[:, 1]))
        pos = np.array([anchor[0], floor + self.height_m, anchor[2]]) + self.distance_m * d
        z = _unit(pos - anchor)
        x = _unit(np.cross(_UP, z))
        y = np.cross(z, x)
        R = np.stack([x, y, z], axis=1)
        tl = math.radians(self.tilt_deg)
        Rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tl), -math.sin(tl)], [0.0, math.sin(tl), math.cos(tl)]])
        return CameraPose(rotation=R @ Rx, position=pos)

    def project(self, p_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(..., 3)`` -> pixels ``(..., 2)`` (image +y down); NaN for
        points less than 0.1 m in front of the camera."""
        K = self.intrinsics
        p = np.asarray(p_cam, dtype=float)
        d = -p[..., 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(d > _NEAR_M, d, np.nan)
            return np.stack([K.cx + K.fx * p[..., 0] / d, K.cy - K.fy * p[..., 1] / d], axis=-1)


def synth_take(
    motion: Motion,
    *,
    mapping: Mapping[str, str],
    camera: VirtualCamera | None = None,
    noise_mm: float = 0.0,
    dropout: float = 0.0,
    seed: int = 0,
) -> Take:
    """A :class:`~mocap.take.Take` of ``motion`` seen by ``camera`` (default
    :class:`VirtualCamera()`), as MediaPipe Holistic would report it.

    Landmarks come from :func:`synth_markers`, then :func:`degrade_markers` (``noise_mm``
    Gaussian noise in millimetres on the world points, so the image points carry the
    projected noise; ``dropout`` fraction of frames with nobody found; ``seed``), then the
    camera. ``take.source`` is ``kind="synthetic"`` with the camera's intrinsics
    (``source="synthetic"``); ``take.tracker["camera"]`` holds the camera pose
    (:meth:`CameraPose.to_json`), so ``pose_world + world_to_camera(mid_hip)`` reprojects
    onto ``pose_image``. Frames where part of the body is within 0.1 m of the camera plane
    or behind it have no pose (and a note says how many).
    """
    camera = camera if camera is not None else VirtualCamera()
    clean = synth_markers(motion, mapping=mapping)
    pose = camera.place(clean)
    mk = degrade_markers(clean, noise_mm=noise_mm, dropout=dropout, seed=seed)
    T = len(mk)
    K = camera.intrinsics
    src = SourceInfo(
        kind="synthetic",
        path=str(motion.meta.get("source", "motion")),
        width=int(camera.width),
        height=int(camera.height),
        nominal_fps=float(motion.fps),
        reported_frames=T,
        duration_s=float(motion.duration_s),
        intrinsics=K,
    )
    take = Take.empty(T, src)
    take.timestamps = np.array(mk.timestamps, dtype=float)
    notes = []

    def cam(names: list[str]) -> np.ndarray:
        return pose.world_to_camera(mk.select(names))

    # body
    body = cam([f"pose.{n}" for n in L.POSE])
    mid = pose.world_to_camera(mk.get("pose.mid_hip"))
    uv = camera.project(body)
    ok = np.isfinite(uv).all(axis=(1, 2)) & np.isfinite(mid).all(-1)
    near = np.isfinite(body).all(axis=(1, 2)) & ~ok
    if near.any():
        notes.append(f"{int(near.sum())} frames have landmarks within {_NEAR_M} m of the camera or behind it: no pose")
    d_mid = -mid[:, 2:3]
    z = K.fx * ((-body[..., 2]) - d_mid) / d_mid
    img = np.concatenate([uv, z[..., None]], axis=-1)
    take.pose_image[ok] = img[ok]
    take.pose_world[ok] = (body - mid[:, None])[ok]
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= camera.width) & (uv[..., 1] >= 0) & (uv[..., 1] <= camera.height)
    take.pose_presence[ok] = inside[ok].astype(np.float32)
    take.pose_visibility[ok] = 1.0
    take.present["pose"] = ok

    # hands: z relative to the wrist, on the x scale
    for s in SIDES:
        names = [f"{s}_hand.{n}" for n in L.HAND]
        if names[0] not in mk:
            continue
        pc = cam(names)
        huv = camera.project(pc)
        hok = np.isfinite(huv).all(axis=(1, 2))
        dw = -pc[:, :1, 2]
        hz = K.fx * ((-pc[..., 2]) - dw) / dw
        arr = getattr(take, f"{s}_hand_image")
        arr[hok] = np.concatenate([huv, hz[..., None]], axis=-1)[hok]
        take.present[f"{s}_hand"] = hok

    # face: the semantic points only, z relative to their mean depth
    fnames = [n for n in L.FACE_POINTS if f"face.{n}" in mk]
    if fnames:
        pc = cam([f"face.{n}" for n in fnames])
        fuv = camera.project(pc)
        fok = np.isfinite(fuv).all(axis=(1, 2))
        dm = np.mean(-pc[..., 2], axis=1, keepdims=True)
        fz = K.fx * ((-pc[..., 2]) - dm) / dm
        idx = L.indices("face", fnames)
        vals = np.concatenate([fuv, fz[..., None]], axis=-1)
        face = take.face_image
        sub = face[:, idx]
        sub[fok] = vals[fok]
        face[:, idx] = sub
        take.present["face"] = fok
        notes.append(f"face: only the {len(fnames)} semantic points of mocap.landmarks.FACE_POINTS are filled")

    take.tracker = {
        "name": "synthetic",
        "generator": "mocap.synth.synth_take",
        "mapping": dict(mapping),
        "noise_mm": float(noise_mm),
        "dropout": float(dropout),
        "seed": int(seed),
        "figure_scale": clean.meta["figure_scale"],
        "camera": {"width": camera.width, "height": camera.height, "hfov_deg": camera.hfov_deg,
                   "distance_m": camera.distance_m, "height_m": camera.height_m,
                   "yaw_deg": camera.yaw_deg, "tilt_deg": camera.tilt_deg, **pose.to_json()},
    }
    take.notes = notes
    take.validate()
    return take


def synth_mapping(motion: Motion, bonemap=None) -> dict[str, str]:
    """``{canonical joint: the motion's joint}`` for :func:`synth_take`, from a bone map
    (``retarget.bonemap.BoneMap`` or a profile name; detected from the joint names when
    None). A hand's finger joints are kept only when all five fingers are mapped (a CMU
    skeleton's single "fingers" bone is not a hand): the synthetic take then has no hand
    landmarks for that side, as MediaPipe would have none to give of a mitten."""
    from retarget.bonemap import builtin_profiles, detect_profile, require_core

    names = list(motion.skeleton.names)
    if bonemap is None:
        bonemap, _ = detect_profile(names)
    elif isinstance(bonemap, str):
        profiles = builtin_profiles()
        if bonemap not in profiles:
            raise UsageError(f"unknown bone-map profile {bonemap!r}; shipped: {sorted(profiles)}")
        bonemap = profiles[bonemap]
    mapping = require_core(bonemap, names, what="the motion's skeleton")
    for s in SIDES:
        bases = [f"{s}{joints[0]}" for joints, _ in FINGERS.values()]
        if not all(b in mapping for b in bases):
            for joints, _ in FINGERS.values():
                for j in joints:
                    mapping.pop(f"{s}{j}", None)
    return mapping
