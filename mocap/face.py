"""Facial capture: a take's 478 face landmarks -> ARKit-52 curves, head pose and gaze.

The result is a :class:`FaceTrack` (stored beside the take as ``TAKE/face.npz``):

==================  ==============  ==================================================
``curves``          ``(T, 52)`` f4  ARKit coefficients 0..1, columns :data:`ARKIT_SHAPES`
``head_rotation``   ``(T, 4)``      wxyz, the head relative to the body (or the camera,
                                    see ``meta["head_reference"]``); identity = looking
                                    straight ahead
``head_position``   ``(T, 3)``      metres, the head (centroid of its rigid landmarks,
                                    about the nose bridge) relative to the shoulder
                                    centre, in the body frame (or the camera frame)
``eye_angles``      ``(T, 4)``      radians: left yaw, left pitch, right yaw, right pitch
``timestamps``      ``(T,)``        seconds, the take's
``present``         ``(T,)`` bool   a face was found (other frames are interpolated)
``fps``             float           median frame rate
==================  ==============  ==================================================

Axes follow :mod:`mocap.glossary`: the face frame is **+X the performer's left, +Y up,
+Z out of the face** (the direction a character faces), so "Left" in a shape name is
the performer's (and the character's) left, as in :mod:`retarget.character`. Head yaw
(about +Y) is positive when the head turns to the performer's left, pitch (about +X)
positive when it nods down, roll (about +Z) positive when the left ear rises; eye yaw
positive towards the performer's left, pitch positive upwards.

The geometric solver, as named passes over arrays (each a function of arrays):

1. :func:`face_points` -- pixels (+y down, z MediaPipe depth) to a right-handed
   y-up frame (still pixels).
2. :func:`rigid_fit` -- a similarity fit (Umeyama 1991) of the rigid landmarks
   (forehead, nose bridge, temples, cheekbones, eye corners; never lids, lips, jaw or
   brows) onto a template built from the take itself: rotation, scale and centre per
   frame. Every point is then brought into the **canonical face frame**, in units of
   the distance between the outer eye corners (``IOD``), so the features below do not
   depend on head rotation, distance to the camera or face size.
3. :func:`face_features` -- about 40 named scalar measurements per frame (lid
   heights, brow heights, lip corners, mouth width, jaw drop, ...), in IOD units.
4. :func:`find_neutral` -- the neutral face: the median features of the take's most
   typical frames (those nearest the median in robust z-score, mouth closed), or of a
   separate neutral take.
5. :func:`coefficients` -- each shape as a clipped linear function of the features'
   change from neutral over an anatomical range (the formulas are in ``docs/face.md``),
   then an optional per-performer gain so that a clearly performed expression reaches
   1.
6. :func:`filter_curves` -- per curve: blinks only lose single-frame spikes (a 3-tap
   median keeps their edges within a frame), mouth and gaze curves a zero-phase
   low-pass at 8 Hz, slow curves (brows, cheeks, nose) at 3 Hz with a small dead zone.

``tongueOut`` is not observable from landmarks (the mesh has no tongue) and stays 0.
The model-based solver (:mod:`mocap.face_model`) uses MediaPipe's blendshape network
and the same calibration.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileFormatError, SolveError, UsageError

__all__ = [
    "ARKIT_SHAPES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "IOD_M",
    "FaceTrack",
    "FaceOptions",
    "Neutral",
    "solve_face",
    "face_points",
    "rigid_fit",
    "face_features",
    "find_neutral",
    "coefficients",
    "filter_curves",
    "head_pose",
    "save_face",
    "load_face",
]

ARKIT_SHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)  # fmt: skip
"""The 52 ARKit face blend shapes, in Apple's order; "Left" = the performer's and the
character's left (+X). ``retarget.character.ARKIT_SHAPES`` is the same tuple."""

SCHEMA = "understudy.face"
SCHEMA_VERSION = 1
IOD_M = 0.09
"""Adult distance between the outer eye corners (exocanthion to exocanthion), metres
(population mean about 88-92 mm); it turns the face's size in pixels into a distance
from the camera for ``head_position``."""

HEAD_PITCH_CORRECTION_DEG = 12.0
"""The face frame's forward axis is the Frankfurt horizontal (ear to lower eyelid) tipped
down by this much: MediaPipe's ear-level contour points (234, 454) lie below the tragion.
Measured on two real clips of performers looking at the camera: without it they read
12 and 19 degrees "looking up"."""

_IDX = {n: i for i, n in enumerate(ARKIT_SHAPES)}

# -- landmark indices (MediaPipe face mesh vertices; performer's left = "l") -------------
# Rigid points: forehead, nose bridge and dorsum, temples, cheekbones, eye corners.
RIGID = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 127, 356, 234, 454, 21, 251, 162, 389,
         54, 284, 103, 332, 116, 345, 123, 352)
EYE = {
    "r": {"outer": 33, "inner": 133, "upper": (160, 159, 158), "lower": (144, 145, 153), "iris": 468},
    "l": {"outer": 263, "inner": 362, "upper": (385, 386, 387), "lower": (380, 374, 373), "iris": 473},
}
BROW = {
    "r": {"inner": (107, 55, 66, 65), "mid": (105, 52), "outer": (70, 46, 63, 53)},
    "l": {"inner": (336, 285, 296, 295), "mid": (334, 282), "outer": (300, 276, 293, 283)},
}
MOUTH = {"upper_out": 0, "upper_in": 13, "lower_in": 14, "lower_out": 17, "r": 61, "l": 291,
         "r_upper": (37, 39), "l_upper": (267, 269), "r_lower": (84, 181), "l_lower": (314, 405)}
CHIN = 152
NOSE_BASE = 2
CHEEK = {"r": (205, 50), "l": (425, 280)}
CHEEK_UNDER_EYE = {"r": (117, 118), "l": (346, 347)}
NOSE_WING = {"r": (98, 64), "l": (327, 294)}
TEMPLE = {"r": (234, 127), "l": (454, 356)}


# -- the track -------------------------------------------------------------------------


@dataclass
class FaceTrack:
    """ARKit curves, head pose and gaze of a take (see the module docstring for shapes)."""

    curves: np.ndarray
    head_rotation: np.ndarray
    head_position: np.ndarray
    eye_angles: np.ndarray
    timestamps: np.ndarray
    present: np.ndarray
    fps: float
    names: tuple[str, ...] = ARKIT_SHAPES
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.timestamps))

    def curve(self, name: str) -> np.ndarray:
        """``(T,)`` one shape's coefficients, by ARKit name (case-insensitive)."""
        low = {n.lower(): i for i, n in enumerate(self.names)}
        if name.lower() not in low:
            raise KeyError(f"no curve {name!r}; the 52 ARKit names are e.g. 'jawOpen', 'eyeBlinkLeft'")
        return self.curves[:, low[name.lower()]]

    def head_euler(self) -> np.ndarray:
        """``(T, 3)`` radians: yaw (about +Y), pitch (about +X), roll (about +Z) of the
        head, intrinsic Y-X-Z (signs in the module docstring)."""
        from .glossary import Q2E

        return Q2E(self.head_rotation, "YXZ")

    def validate(self) -> None:
        """Check shapes and ranges; raise :class:`FileFormatError` naming the problem."""
        T = len(self)
        want = {"curves": (T, len(self.names)), "head_rotation": (T, 4), "head_position": (T, 3),
                "eye_angles": (T, 4), "present": (T,)}
        if np.asarray(self.timestamps).ndim != 1:
            raise FileFormatError(f"face timestamps must be (T,), got {np.shape(self.timestamps)}")
        for k, shape in want.items():
            if np.shape(getattr(self, k)) != shape:
                raise FileFormatError(f"face {k} must have shape {shape}, got {np.shape(getattr(self, k))}")
        if tuple(self.names) != ARKIT_SHAPES:
            raise FileFormatError("face curve names must be the 52 ARKit shapes in Apple's order")
        c = np.asarray(self.curves)
        if not np.all(np.isfinite(c)) or c.min(initial=0) < 0 or c.max(initial=0) > 1:
            raise FileFormatError("face curves must be finite and within 0..1")
        if T > 1 and np.any(np.diff(self.timestamps) <= 0):
            raise FileFormatError("face timestamps must increase strictly")
        q = np.asarray(self.head_rotation)
        if T and not np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-3):
            raise FileFormatError("face head_rotation must hold unit quaternions (wxyz)")


def save_face(track: FaceTrack, path: str | os.PathLike) -> Path:
    """Write ``track`` to ``path`` (``.npz``, schema ``understudy.face`` v1) atomically."""
    track.validate()
    path = Path(path)
    header = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "fps": float(track.fps), "frames": len(track),
              "units": {"curves": "0..1", "head_position": "m", "eye_angles": "rad", "time": "s"},
              "axes": "face frame +X performer's left, +Y up, +Z out of the face; quaternions wxyz",
              "meta": json.loads(json.dumps(track.meta, default=_json_default))}
    arrays = {"names": np.array(track.names, dtype=str),
              "curves": np.asarray(track.curves, dtype=np.float32),
              "head_rotation": np.asarray(track.head_rotation, dtype=np.float64),
              "head_position": np.asarray(track.head_position, dtype=np.float64),
              "eye_angles": np.asarray(track.eye_angles, dtype=np.float64),
              "timestamps": np.asarray(track.timestamps, dtype=np.float64),
              "present": np.asarray(track.present, dtype=bool),
              "header": np.array(json.dumps(header))}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def load_face(path: str | os.PathLike) -> FaceTrack:
    """Read a ``face.npz`` (or a take folder's); raises :class:`FileFormatError`."""
    path = Path(path)
    if path.is_dir():
        path = path / "face.npz"
    if not path.is_file():
        raise FileFormatError(f"no face track at {path} (run `understudy face TAKE` or `understudy solve TAKE`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise FileFormatError(f"{path}: not a readable face archive ({e})") from None
    if "header" not in data:
        raise FileFormatError(f"{path}: no header; not an Understudy face track")
    try:
        header = json.loads(str(data["header"]))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}: malformed header ({e})") from None
    if header.get("schema") != SCHEMA or header.get("schema_version") != SCHEMA_VERSION:
        raise FileFormatError(f"{path}: expected {SCHEMA} version {SCHEMA_VERSION}, got "
                              f"{header.get('schema')!r} version {header.get('schema_version')!r}")
    need = ["names", "curves", "head_rotation", "head_position", "eye_angles", "timestamps", "present"]
    missing = [k for k in need if k not in data]
    if missing:
        raise FileFormatError(f"{path}: missing arrays {missing}")
    track = FaceTrack(curves=data["curves"], head_rotation=data["head_rotation"],
                      head_position=data["head_position"], eye_angles=data["eye_angles"],
                      timestamps=data["timestamps"], present=data["present"].astype(bool),
                      fps=float(header.get("fps", 0.0)), names=tuple(str(n) for n in data["names"]),
                      meta=dict(header.get("meta") or {}))
    try:
        track.validate()
    except FileFormatError as e:
        raise FileFormatError(f"{path}: {e}") from None
    return track


# -- pass 1-2: points and the rigid fit ---------------------------------------------------


def face_points(face_image: np.ndarray) -> np.ndarray:
    """``(T, 478, 3)`` take pixels (+x right, +y down, z MediaPipe depth, smaller =
    nearer) -> ``(T, 478, 3)`` pixels in a right-handed +Y-up, +Z-towards-camera frame:
    ``(x, -y, -z)``."""
    return np.asarray(face_image, dtype=float) * np.array([1.0, -1.0, -1.0])


def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity ``dst ~ s R src + t`` for batches: ``src`` ``(K, 3)``, ``dst``
    ``(T, K, 3)`` -> R ``(T, 3, 3)``, s ``(T,)``, t ``(T, 3)`` (least squares)."""
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=1)
    S = src - mu_s
    D = dst - mu_d[:, None]
    cov = np.einsum("tki,kj->tij", D, S) / len(src)
    U, sig, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U @ Vt))
    E = np.ones((len(dst), 3))
    E[:, 2] = d
    R = U @ (E[:, :, None] * Vt)
    var = (S ** 2).sum() / len(src)
    s = (sig * E).sum(axis=1) / var
    t = mu_d - s[:, None] * np.einsum("tij,j->ti", R, mu_s)
    return R, s, t


def _anatomical_frame(P: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rotation (columns X left, Y up, Z out of the face) from eye corners,
    forehead and the nose base of ``P`` ``(T, 478, 3)``."""
    x = P[:, 263] + P[:, 362] - P[:, 33] - P[:, 133]
    up = P[:, 10] - P[:, 2]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, up)
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def rigid_fit(P: np.ndarray, valid: np.ndarray, template: np.ndarray | None = None, *,
              template_frames: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the rigid landmarks of every valid frame onto a template.

    ``P`` ``(T, 478, 3)`` from :func:`face_points`; ``valid`` ``(T,)`` bool. The
    template ``(len(RIGID), 3)`` is in face units (outer eye corners 1 apart, centred on
    the rigid points' centroid, axes X left, Y up, Z out); None builds it from the take
    (median of the frames put in their anatomical frame, refined by a fit), from the
    frames ``template_frames`` ``(T,)`` bool (default: all valid ones).

    Returns ``C`` ``(T, 478, 3)`` canonical coordinates (NaN where not valid), ``R``
    ``(T, 3, 3)`` face-to-camera rotations, ``s`` ``(T,)`` pixels per face unit, ``t``
    ``(T, 3)`` the face origin in pixels, and the template.
    """
    T = len(P)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise SolveError("no frame with a face: nothing to solve")
    rig = np.asarray(RIGID)
    Pv = P[idx]
    if template is None:
        Pv = P[np.flatnonzero(template_frames & valid)] if template_frames is not None else Pv
        F = _anatomical_frame(Pv)
        cen = Pv[:, rig].mean(axis=1)
        iod = np.linalg.norm(Pv[:, 263] - Pv[:, 33], axis=-1)
        local = np.einsum("tji,tkj->tki", F, Pv[:, rig] - cen[:, None]) / iod[:, None, None]
        template = np.median(local, axis=0)
        for _ in range(2):  # refine: fit, re-express, median
            R, s, t = _umeyama(template, Pv[:, rig])
            local = np.einsum("tji,tkj->tki", R, Pv[:, rig] - t[:, None]) / s[:, None, None]
            template = np.median(local, axis=0)
            template -= template.mean(axis=0)
        # units: the outer eye corners 1 apart
        k33, k263 = RIGID.index(33), RIGID.index(263)
        template = template / np.linalg.norm(template[k263] - template[k33])
        # axes: re-orthogonalise the anatomical frame on the template itself
        x = template[k263] + template[RIGID.index(362)] - template[k33] - template[RIGID.index(133)]
        x /= np.linalg.norm(x)
        # forward: along the Frankfurt horizontal, from the ear-level face contour (about
        # the tragion) to the lower eyelids (about the orbitale), taken on the median face
        med = np.median(np.einsum("tji,tkj->tki", R, Pv - t[:, None]) / s[:, None, None], axis=0)
        f = 0.5 * (med[145] + med[374]) - 0.5 * (med[234] + med[454])
        z = f - np.dot(f, x) * x
        z /= np.linalg.norm(z)
        y = np.cross(z, x)
        # MediaPipe's ear-level contour points sit below the tragion: tip the axis down to match
        a = np.radians(HEAD_PITCH_CORRECTION_DEG)
        z, y = np.cos(a) * z - np.sin(a) * y, np.cos(a) * y + np.sin(a) * z
        template = template @ np.stack([x, y, z], axis=-1)
    Pv = P[idx]
    R, s, t = _umeyama(template, Pv[:, rig])
    C = np.full(P.shape, np.nan)
    C[idx] = np.einsum("tji,tkj->tki", R, P[idx] - t[:, None]) / s[:, None, None]
    Rf = np.full((T, 3, 3), np.nan)
    Rf[idx] = R
    sf = np.full(T, np.nan)
    sf[idx] = s
    tf = np.full((T, 3), np.nan)
    tf[idx] = t
    return C, Rf, sf, tf, template


# -- pass 3: features -------------------------------------------------------------------


def _m(C: np.ndarray, ids) -> np.ndarray:
    return C[:, list(ids)].mean(axis=1) if isinstance(ids, (tuple, list)) else C[:, ids]


def face_features(C: np.ndarray) -> dict[str, np.ndarray]:
    """Named measurements ``(T,)`` in face units (outer eye corners 1 apart) from the
    canonical coordinates ``C`` ``(T, 478, 3)``. Side keys end in ``_l``/``_r``
    (the performer's left/right); "out" is away from the nose (+X on the left, -X on
    the right)."""
    f: dict[str, np.ndarray] = {}
    base = C[:, NOSE_BASE, 1]  # heights of the mouth are taken from the nose base, near them and rigid
    mouth_mid_y = 0.5 * (C[:, MOUTH["upper_out"], 1] + C[:, MOUTH["lower_out"], 1])
    for side, sx in (("l", 1.0), ("r", -1.0)):
        e = EYE[side]
        corner = 0.5 * (C[:, e["outer"]] + C[:, e["inner"]])
        width = np.linalg.norm(C[:, e["outer"]] - C[:, e["inner"]], axis=-1)
        f[f"lid_upper_{side}"] = _m(C, e["upper"])[:, 1] - corner[:, 1]
        f[f"lid_lower_{side}"] = _m(C, e["lower"])[:, 1] - corner[:, 1]
        iris = C[:, e["iris"]] - corner
        f[f"iris_out_{side}"] = sx * iris[:, 0] / width
        f[f"iris_up_{side}"] = iris[:, 1] / width
        b = BROW[side]
        f[f"brow_inner_{side}"] = _m(C, b["inner"])[:, 1]
        f[f"brow_mid_{side}"] = _m(C, b["mid"])[:, 1]
        f[f"brow_outer_{side}"] = _m(C, b["outer"])[:, 1]
        f[f"brow_inner_x_{side}"] = sx * _m(C, b["inner"])[:, 0]
        c = C[:, MOUTH[side]]
        f[f"corner_out_{side}"] = sx * c[:, 0]
        f[f"corner_up_{side}"] = c[:, 1] - mouth_mid_y
        f[f"corner_y_{side}"] = c[:, 1] - base
        f[f"corner_back_{side}"] = -c[:, 2]
        up = _m(C, MOUTH[f"{side}_upper"])
        lo = _m(C, MOUTH[f"{side}_lower"])
        f[f"upper_side_y_{side}"] = up[:, 1] - base
        f[f"lower_side_y_{side}"] = lo[:, 1] - base
        f[f"lower_side_to_chin_{side}"] = lo[:, 1] - C[:, CHIN, 1]
        f[f"lips_side_gap_{side}"] = up[:, 1] - lo[:, 1]
        f[f"cheek_out_{side}"] = sx * _m(C, CHEEK[side])[:, 0]
        f[f"cheek_y_{side}"] = _m(C, CHEEK_UNDER_EYE[side])[:, 1]
        f[f"nose_wing_y_{side}"] = _m(C, NOSE_WING[side])[:, 1]
    f["mouth_width"] = np.linalg.norm(C[:, MOUTH["l"]] - C[:, MOUTH["r"]], axis=-1)
    f["mouth_x"] = (C[:, MOUTH["l"], 0] + C[:, MOUTH["r"], 0] + C[:, MOUTH["upper_out"], 0]
                    + C[:, MOUTH["lower_out"], 0]) / 4
    f["lip_gap"] = C[:, MOUTH["upper_in"], 1] - C[:, MOUTH["lower_in"], 1]
    f["upper_lip_h"] = C[:, MOUTH["upper_out"], 1] - C[:, MOUTH["upper_in"], 1]
    f["lower_lip_h"] = C[:, MOUTH["lower_in"], 1] - C[:, MOUTH["lower_out"], 1]
    f["upper_lip_y"] = C[:, MOUTH["upper_out"], 1] - base
    f["lower_lip_y"] = C[:, MOUTH["lower_out"], 1] - base
    f["lips_z"] = 0.5 * (C[:, MOUTH["upper_out"], 2] + C[:, MOUTH["lower_out"], 2])
    f["chin_x"] = C[:, CHIN, 0]
    f["chin_y"] = C[:, CHIN, 1] - base
    f["chin_z"] = C[:, CHIN, 2]
    return f


# -- pass 4: neutral --------------------------------------------------------------------


@dataclass
class Neutral:
    """The performer's neutral face: ``features`` (name -> value, face units), the
    ``frames`` it came from and where (``source``: "auto" or a path)."""

    features: dict[str, float]
    frames: np.ndarray
    source: str = "auto"


_NEUTRAL_KEYS = ("lid_upper_l", "lid_upper_r", "lid_lower_l", "lid_lower_r", "brow_inner_l", "brow_inner_r",
                 "brow_outer_l", "brow_outer_r", "corner_up_l", "corner_up_r", "mouth_width", "lip_gap",
                 "chin_y", "upper_lip_h", "lower_lip_h", "iris_out_l", "iris_out_r", "iris_up_l", "iris_up_r")


def find_neutral(features: dict[str, np.ndarray], valid: np.ndarray, *, share: float = 0.2,
                 source: str = "auto", mode: bool = False) -> Neutral:
    """The median features of the take's most neutral frames.

    The expression features are put in robust z-scores (deviation from the take's
    median over 1.4826 MAD). A resting face repeats itself while expressions spread
    out, so the neutral centre is the densest point: the frame whose ``share``-th
    nearest neighbour is closest (an open mouth, ``lip_gap`` above its 30th percentile,
    is penalised). The ``share`` of valid frames nearest that centre (at least 5) are
    the neutral frames. This needs the performer to rest their face for about ``share``
    of the take; otherwise give a neutral clip with ``--neutral``.
    """
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise SolveError("no frame with a face: cannot find a neutral face")
    Z = np.stack([features[k][idx] for k in _NEUTRAL_KEYS], axis=1)
    med = np.median(Z, axis=0)
    Z = (Z - med) / (1.4826 * np.median(np.abs(Z - med), axis=0) + 1e-6)
    gap = features["lip_gap"][idx]
    penalty = 2.0 * np.clip((gap - np.percentile(gap, 30)) / (np.std(gap) + 1e-6), 0, None)
    for k in ("upper_lip_h", "lower_lip_h"):  # pressed, rolled or pursed lips look thinner than at rest
        h = features[k][idx]
        penalty += np.clip((np.percentile(h, 70) - h) / (np.std(h) + 1e-6), 0, None)
    n = max(5, int(round(share * len(idx)))) if len(idx) >= 5 else len(idx)
    # the densest cluster: the frame whose n-th nearest neighbour is closest (a resting
    # face repeats itself; expressions spread out), on at most 1500 frames
    sub = np.linspace(0, len(idx) - 1, min(len(idx), 1500)).round().astype(int)
    D = np.sqrt(((Z[sub, None] - Z[None, sub]) ** 2).mean(axis=-1))
    k = min(max(1, int(round(share * len(sub)))), len(sub) - 1)
    kth = np.partition(D, k, axis=1)[:, k] + 0.5 * penalty[sub]
    centre = Z[sub[int(np.argmin(kth))]]
    score = np.sqrt(((Z - centre) ** 2).mean(axis=-1)) + 0.5 * penalty
    pick = idx[np.argsort(score)[:n]]
    values = {k: float(np.median(v[pick])) for k, v in features.items()}
    if mode:  # each feature rests at its own most frequent value, whatever the others do
        for k, v in features.items():
            values[k] = _mode(v[idx], values[k])
    return Neutral(features=values, frames=np.sort(pick), source=source)


def _mode(x: np.ndarray, fallback: float) -> float:
    """The peak of a Gaussian kernel density of ``x`` (bandwidth 0.25 robust sigma)."""
    x = x[np.isfinite(x)]
    if len(x) < 10:
        return fallback
    med = np.median(x)
    sig = 1.4826 * np.median(np.abs(x - med)) + 1e-9
    grid = np.linspace(np.percentile(x, 1), np.percentile(x, 99), 200)
    h = 0.25 * sig
    sub = x[:: max(1, len(x) // 3000)]
    dens = np.exp(-0.5 * ((grid[:, None] - sub[None]) / h) ** 2).sum(axis=1)
    return float(grid[int(np.argmax(dens))])


# -- pass 5: coefficients -------------------------------------------------------------------

RANGES: dict[str, float] = {
    # face units (outer eye corners 1 apart) of feature change that make a shape 1
    "blink": 0.75,          # share of the neutral lid aperture closed, above the dead zone
    "blink_dead": 0.15,
    "squint": 0.030,        # lower lid rise
    "wide": 0.025,          # upper lid rise
    "look_h": 0.16,         # iris shift, eye widths
    "look_up": 0.07,
    "look_down": 0.06,
    "brow_up_inner": 0.07,
    "brow_up_outer": 0.07,
    "brow_down": 0.045,
    "jaw_open": 0.22,
    "jaw_side": 0.06,
    "jaw_forward": 0.06,
    "mouth_close": 0.12,
    "narrow": 0.22,         # share of the neutral mouth width lost (pucker / funnel)
    "funnel_open": 0.12,    # lip gap at which a narrowed mouth counts as a funnel
    "mouth_side": 0.08,
    "smile": 0.08,
    "frown": 0.035,
    "dimple": 0.05,
    "stretch": 0.07,
    "roll": 0.55,           # share of the lip's visible height lost
    "shrug": 0.06,
    "press": 0.45,          # share of the side lip height lost
    "lower_down": 0.06,
    "upper_up": 0.07,
    "cheek_puff": 0.05,
    "cheek_squint": 0.03,
    "sneer": 0.045,
}
"""Anatomical ranges of the geometric formulas (the gain before per-performer
calibration); documented shape by shape in ``docs/face.md``."""


def _c(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def coefficients(features: dict[str, np.ndarray], neutral: Neutral,
                 ranges: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 52)`` ARKit coefficients 0..1 (columns :data:`ARKIT_SHAPES`) and
    ``(T, 4)`` eye angles (rad: left yaw, pitch, right yaw, pitch) from the features'
    change from ``neutral``. Formulas in ``docs/face.md``."""
    r = dict(RANGES, **(ranges or {}))
    n = neutral.features
    d = {k: v - n[k] for k, v in features.items()}
    T = len(next(iter(features.values())))
    out = np.zeros((T, len(ARKIT_SHAPES)))
    eyes = np.zeros((T, 4))

    def put(name, v):
        out[:, _IDX[name]] = _c(v)

    narrow = -d["mouth_width"] / n["mouth_width"]
    gap_open = _c(d["lip_gap"] / r["funnel_open"])
    jaw = -d["chin_y"]
    for side, S in (("l", "Left"), ("r", "Right")):
        ap_n = n[f"lid_upper_{side}"] - n[f"lid_lower_{side}"]
        ap = features[f"lid_upper_{side}"] - features[f"lid_lower_{side}"]
        closed = 1.0 - ap / ap_n
        put(f"eyeBlink{S}", (closed - r["blink_dead"]) / (r["blink"] - r["blink_dead"]))
        put(f"eyeSquint{S}", d[f"lid_lower_{side}"] / r["squint"])
        put(f"eyeWide{S}", d[f"lid_upper_{side}"] / r["wide"])
        h = d[f"iris_out_{side}"]
        v = d[f"iris_up_{side}"]
        put(f"eyeLookOut{S}", h / r["look_h"])
        put(f"eyeLookIn{S}", -h / r["look_h"])
        put(f"eyeLookUp{S}", v / r["look_up"])
        put(f"eyeLookDown{S}", -v / r["look_down"])
        # eye angles: iris shift over an eyeball radius of 0.4 eye widths
        sx = 1.0 if side == "l" else -1.0
        k = 0 if side == "l" else 2
        eyes[:, k] = np.arcsin(np.clip(np.nan_to_num(sx * h) / 0.4, -1, 1))
        eyes[:, k + 1] = np.arcsin(np.clip(np.nan_to_num(v) / 0.4, -1, 1))
        inner = d[f"brow_inner_{side}"]
        put(f"browDown{S}", (-0.5 * (inner + d[f"brow_mid_{side}"]) + 0.5 * -d[f"brow_inner_x_{side}"])
            / r["brow_down"])
        put(f"browOuterUp{S}", d[f"brow_outer_{side}"] / r["brow_up_outer"])
        up = d[f"corner_up_{side}"]
        outw = d[f"corner_out_{side}"]
        put(f"mouthSmile{S}", (up + 0.3 * outw) / r["smile"])
        put(f"mouthFrown{S}", -up / r["frown"])
        put(f"mouthStretch{S}", (outw - np.clip(up, 0, None)) / r["stretch"])
        put(f"mouthDimple{S}", (d[f"corner_back_{side}"] + 0.3 * outw) / r["dimple"] - 0.5 * _c(up / r["smile"]))
        gap_n = n[f"lips_side_gap_{side}"]
        put(f"mouthPress{S}", (-d[f"lips_side_gap_{side}"] / gap_n) / r["press"] * (1 - gap_open))
        put(f"mouthLowerDown{S}", -d[f"lower_side_to_chin_{side}"] / r["lower_down"])
        put(f"mouthUpperUp{S}", d[f"upper_side_y_{side}"] / r["upper_up"])
        put(f"cheekSquint{S}", d[f"cheek_y_{side}"] / r["cheek_squint"])
        put(f"noseSneer{S}", d[f"nose_wing_y_{side}"] / r["sneer"])
    for side, S in (("l", "Left"), ("r", "Right")):  # the iris is hidden in a blink: gaze fades out
        open_ = 1.0 - out[:, _IDX[f"eyeBlink{S}"]]
        for lk in ("Out", "In", "Up", "Down"):
            out[:, _IDX[f"eyeLook{lk}{S}"]] *= open_
        k = 0 if side == "l" else 2
        eyes[:, k:k + 2] *= open_[:, None]
    jaw_c = _c(jaw / r["jaw_open"])
    for S in ("Left", "Right"):
        out[:, _IDX[f"mouthDimple{S}"]] *= 1 - jaw_c
    put("browInnerUp", 0.5 * (d["brow_inner_l"] + d["brow_inner_r"]) / r["brow_up_inner"])
    put("jawOpen", jaw / r["jaw_open"])
    put("jawLeft", d["chin_x"] / r["jaw_side"])
    put("jawRight", -d["chin_x"] / r["jaw_side"])
    put("jawForward", d["chin_z"] / r["jaw_forward"])
    put("mouthClose", (jaw - d["lip_gap"]) / r["mouth_close"] * (jaw > 0.03))
    put("mouthPucker", narrow / r["narrow"] * (1 - gap_open))
    put("mouthFunnel", narrow / r["narrow"] * gap_open)
    put("mouthLeft", d["mouth_x"] / r["mouth_side"])
    put("mouthRight", -d["mouth_x"] / r["mouth_side"])
    put("mouthRollLower", -d["lower_lip_h"] / n["lower_lip_h"] / r["roll"])
    put("mouthRollUpper", -d["upper_lip_h"] / n["upper_lip_h"] / r["roll"])
    put("mouthShrugLower", (d["lower_lip_y"] + 0.5 * np.clip(-jaw, 0, None)) / r["shrug"])
    put("mouthShrugUpper", np.minimum(d["upper_lip_y"], d["lower_lip_y"]) / r["shrug"])
    put("cheekPuff", 0.5 * (d["cheek_out_l"] + d["cheek_out_r"]) / r["cheek_puff"])
    out[:, _IDX["tongueOut"]] = 0.0
    return out, eyes


def performer_gains(curves: np.ndarray, *, percentile: float = 99.0, present_at: float = 0.45,
                    limits: tuple[float, float] = (0.8, 1.6)) -> np.ndarray:
    """``(52,)`` per-performer gains: a shape the performer clearly performs (its
    ``percentile`` above ``present_at``) is scaled so that percentile reaches 1, within
    ``limits``; shapes not performed keep gain 1 (noise is never stretched)."""
    p = np.percentile(curves, percentile, axis=0)
    g = np.ones(curves.shape[1])
    hit = p > present_at
    g[hit] = np.clip(1.0 / p[hit], *limits)
    return g


# -- pass 6: filtering --------------------------------------------------------------------

CRISP = ("eyeBlinkLeft", "eyeBlinkRight")
SLOW = ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
        "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "mouthDimpleLeft",
        "mouthDimpleRight", "jawForward")


def filter_curves(curves: np.ndarray, t: np.ndarray, *, fast_hz: float = 8.0, slow_hz: float = 3.0,
                  dead_zone: float = 0.04) -> np.ndarray:
    """Per-curve filtering of ``(T, 52)`` coefficients at times ``t`` ``(T,)``.

    Blinks: a 3-tap running median (drops one-frame spikes, keeps a blink's rise
    within a frame). Slow curves (:data:`SLOW`: brows, cheeks, nose, dimples, jaw
    forward): zero-phase Butterworth at ``slow_hz`` and a ``dead_zone`` below which
    they are 0 (so a resting face is still). Everything else: zero-phase Butterworth at
    ``fast_hz``. Clipped to 0..1 afterwards.
    """
    from .filters import butterworth_zero_phase

    T = len(curves)
    out = np.array(curves, dtype=float)
    if T < 8:
        return np.clip(out, 0, 1)
    fs = 1.0 / np.median(np.diff(t))
    crisp = [_IDX[n] for n in CRISP]
    slow = [_IDX[n] for n in SLOW]
    fast = [i for i in range(len(ARKIT_SHAPES)) if i not in crisp and i not in slow]
    pad = np.pad(out[:, crisp], ((1, 1), (0, 0)), mode="edge")
    out[:, crisp] = np.median(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)
    out[:, fast] = butterworth_zero_phase(out[:, fast], t, cutoff_hz=min(fast_hz, 0.4 * fs))
    s = butterworth_zero_phase(out[:, slow], t, cutoff_hz=min(slow_hz, 0.4 * fs))
    out[:, slow] = np.where(s < dead_zone, 0.0, (s - dead_zone) / (1 - dead_zone))
    return np.clip(out, 0.0, 1.0)


# -- head pose ----------------------------------------------------------------------------


def _body_frame(take, valid_face: np.ndarray) -> tuple[np.ndarray | None, str]:
    """``(T, 3, 3)`` body rotations in the camera frame (columns X left, Y up, Z forward)
    from the shoulders (and hips when visible), smoothed at 1.5 Hz; None when the take
    has no usable shoulders."""
    from . import landmarks as L
    from .filters import butterworth_zero_phase

    W = np.asarray(take.pose_world, dtype=float)
    vis = np.asarray(take.pose_visibility, dtype=float)
    ls, rs = L.index("pose", "left_shoulder"), L.index("pose", "right_shoulder")
    lh, rh = L.index("pose", "left_hip"), L.index("pose", "right_hip")
    ok = take.present["pose"] & (np.minimum(vis[:, ls], vis[:, rs]) > 0.5)
    if ok.sum() < max(3, 0.3 * len(W)):
        return None, "camera"
    x = W[:, ls] - W[:, rs]
    hips = np.median(np.minimum(vis[ok, lh], vis[ok, rh])) > 0.5
    up = 0.5 * (W[:, ls] + W[:, rs]) - 0.5 * (W[:, lh] + W[:, rh]) if hips else np.tile([0.0, 1.0, 0.0], (len(W), 1))
    V = np.concatenate([x, up], axis=1)
    V[~ok] = np.nan
    V = butterworth_zero_phase(V, take.timestamps, cutoff_hz=min(1.5, 0.4 * take.fps))
    V = _fill(V, np.isfinite(V).all(axis=1))
    x, up = V[:, :3], V[:, 3:]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, up)
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1), "body (shoulders and hips)" if hips else "body (shoulders)"


MAX_GAP_S = 0.5
"""Frames without a usable face (none found, or a hand over it) are interpolated over gaps
up to this long; in longer gaps the curves rest at 0 (the neutral face)."""


def _fill_gaps(X: np.ndarray, ok: np.ndarray, t: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Rows ``X`` ``(T, k)`` interpolated over runs of not-``ok`` frames no longer than
    ``max_gap_s`` between two ok frames; other not-ok frames become 0."""
    out = np.where(ok[:, None], X, 0.0)
    bad = np.flatnonzero(~ok)
    if len(bad) == 0 or not ok.any():
        return out
    filled = _fill(np.where(ok[:, None], X, np.nan), ok)
    runs = np.split(bad, np.flatnonzero(np.diff(bad) > 1) + 1)
    for r in runs:
        a, b = r[0] - 1, r[-1] + 1
        if a >= 0 and b < len(ok) and t[b] - t[a] <= max_gap_s:
            out[r] = filled[r]
    return out


def _fill(X: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Linear interpolation of rows ``X`` ``(T, ...)`` over frames where ``ok`` is False,
    held at the ends; zeros when no frame is ok."""
    X = np.array(X, dtype=float)
    T = len(X)
    if ok.all() or T == 0:
        return X
    if not ok.any():
        return np.zeros_like(X)
    flat = X.reshape(T, -1)
    k = np.flatnonzero(ok)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(np.arange(T), k, flat[k, j])
    return flat.reshape(X.shape)


def head_pose(take, R_face: np.ndarray, s: np.ndarray, t_px: np.ndarray, valid: np.ndarray, *,
              reference: str = "auto", cutoff_hz: float = 6.0) -> tuple[np.ndarray, np.ndarray, str]:
    """Head rotation ``(T, 4)`` wxyz and position ``(T, 3)`` m.

    ``R_face`` ``(T, 3, 3)`` face-to-camera rotations, ``s`` pixels per face unit,
    ``t_px`` the face origin in pixels (+y up frame), from :func:`rigid_fit`.
    ``reference`` "body" (relative to the shoulders: needs them), "camera", or "auto"
    (body when the shoulders are seen in most frames). The distance to the camera is
    ``fx * IOD_M / s``; the position is the face origin minus the shoulder centre
    back-projected at the same distance, in the body frame. Rotations are low-passed at
    ``cutoff_hz`` (zero phase, sign-continuous quaternions); frames without a face are
    interpolated.
    """
    from . import landmarks as L
    from .filters import butterworth_zero_phase
    from .glossary import R2Q
    from .take import Intrinsics

    if reference not in ("auto", "body", "camera"):
        raise UsageError(f"head reference must be 'auto', 'body' or 'camera', got {reference!r}")
    T = len(valid)
    src = take.source
    intr = src.intrinsics or Intrinsics.from_hfov(src.width, src.height)
    body, ref = (None, "camera") if reference == "camera" else _body_frame(take, valid)
    if reference == "body" and body is None:
        raise SolveError("--head-reference body: the take's shoulders are not seen well enough")
    R = _fill(np.where(valid[:, None, None], R_face, np.nan), valid)
    if not valid.all():  # re-orthonormalise interpolated rotations
        U, _, Vt = np.linalg.svd(R)
        R = U @ Vt
    d = intr.fx * IOD_M / np.where(valid, s, np.nan)
    d = _fill(d, valid)
    u = _fill(t_px[:, 0], valid)
    v = _fill(-t_px[:, 1], valid)  # back to image rows (+y down)
    cam = np.stack([(u - intr.cx) / intr.fx * d, -(v - intr.cy) / intr.fy * d, -d], axis=-1)
    if body is not None:
        R = np.einsum("tji,tjk->tik", body, R)
        ls, rs = L.index("pose", "left_shoulder"), L.index("pose", "right_shoulder")
        mid = 0.5 * (np.asarray(take.pose_image[:, ls], float) + np.asarray(take.pose_image[:, rs], float))
        okp = np.isfinite(mid).all(axis=1)
        mid = _fill(mid, okp)
        sh = np.stack([(mid[:, 0] - intr.cx) / intr.fx * d, -(mid[:, 1] - intr.cy) / intr.fy * d, -d], axis=-1)
        pos = np.einsum("tji,tj->ti", body, cam - sh)
    else:
        pos = cam
    Q = R2Q(R)
    dots = np.sum(Q[1:] * Q[:-1], axis=-1)
    flips = np.concatenate([[0], np.cumsum(dots < 0)]) % 2
    Q = np.where(flips[:, None] == 1, -Q, Q)
    if T >= 8:
        fs = take.fps
        Q = butterworth_zero_phase(Q, take.timestamps, cutoff_hz=min(cutoff_hz, 0.4 * fs))
        pos = butterworth_zero_phase(pos, take.timestamps, cutoff_hz=min(cutoff_hz, 0.4 * fs))
    Q = Q / np.linalg.norm(Q, axis=-1, keepdims=True)
    Q = np.where(Q[:, :1] < 0, -Q, Q)
    return Q, pos, ref


# -- the whole solver ---------------------------------------------------------------------


@dataclass
class FaceOptions:
    """Knobs of the face solve (defaults in brackets): ``neutral`` [None: automatic] a
    :class:`Neutral` from another take; ``auto_gain`` [True] per-performer gains
    (:func:`performer_gains`); ``filter`` [True]; ``fast_hz`` [8], ``slow_hz`` [3];
    ``head_reference`` ["auto"]; ``neutral_share`` [0.2] share of frames used as
    neutral; ``ranges`` overrides of :data:`RANGES`."""

    neutral: Neutral | None = None
    auto_gain: bool = True
    filter: bool = True
    fast_hz: float = 8.0
    slow_hz: float = 3.0
    head_reference: str = "auto"
    neutral_share: float = 0.2
    ranges: dict[str, float] | None = None


def hand_occlusion(take, *, min_points: int = 3, box: float = 0.9) -> np.ndarray:
    """``(T,)`` bool: a hand covers the face -- at least ``min_points`` of a hand's
    landmarks lie inside the face's bounding box shrunk to ``box`` of its size. MediaPipe
    keeps reporting a plausible face behind a hand, but its mouth and eyes are guesses."""
    F = np.asarray(take.face_image, dtype=float)[:, :468, :2]
    T = len(F)
    cnt = np.zeros(T, int)
    ok = np.isfinite(F).all(axis=(1, 2))
    if not ok.any():
        return np.zeros(T, bool)
    lo = np.where(ok[:, None], np.nanmin(np.where(ok[:, None, None], F, 0.0), axis=1), 0.0)
    hi = np.where(ok[:, None], np.nanmax(np.where(ok[:, None, None], F, 0.0), axis=1), 0.0)
    c, h = 0.5 * (lo + hi), 0.5 * box * (hi - lo)
    for hand in (take.left_hand_image, take.right_hand_image):
        H = np.asarray(hand, dtype=float)[..., :2]
        with np.errstate(invalid="ignore"):
            inside = np.all(np.abs(H - c[:, None]) < h[:, None], axis=-1)
        cnt += inside.sum(axis=1)
    return (cnt >= min_points) & ok


def take_face_features(take) -> tuple[dict[str, np.ndarray], np.ndarray, tuple]:
    """Passes 1-3 on a take: ``(features, valid, (C, R, s, t, template))``. A frame is
    valid when the face (with iris) was found; the template is built from the frames no
    hand covers (:func:`hand_occlusion`) when there are enough of them."""
    F = np.asarray(take.face_image, dtype=float)
    valid = np.asarray(take.present["face"], bool) & np.isfinite(F[:, :478]).all(axis=(1, 2))
    if not valid.any():
        seen = np.asarray(take.present["face"], bool)
        if seen.any() and np.isfinite(F[seen][:, :468]).all():
            raise SolveError("the take's face has no iris points (tracked with --no-iris): track it again "
                             "with iris to solve the face")
        if seen.any():
            n = int(np.isfinite(F[seen]).all(axis=-1).sum(axis=1).max())
            raise SolveError(f"the take's face has only {n} of the 478 points (a synthetic take?): the face "
                             "needs the full mesh with iris from `understudy track`")
        raise SolveError("the take has no frame with a face: nothing to solve")
    P = face_points(F)
    clear = valid & ~hand_occlusion(take)
    fit = rigid_fit(P, valid, template_frames=clear if clear.sum() >= 5 else None)
    return face_features(fit[0]), valid, fit


def neutral_from_take(take, *, share: float = 0.5, source: str = "") -> Neutral:
    """A :class:`Neutral` from a take of the performer resting their face (its most
    neutral half of frames)."""
    feats, valid, _ = take_face_features(take)
    return find_neutral(feats, valid, share=share, source=source or "take")


def solve_face(take, options: FaceOptions | None = None, *, model_curves: np.ndarray | None = None) -> FaceTrack:
    """The geometric solver on a :class:`~mocap.take.Take` -> :class:`FaceTrack`.

    ``model_curves`` ``(T, 52)`` (from :func:`mocap.face_model.model_blendshapes`)
    switches the coefficients to the model's, calibrated with the same neutral frames
    (see :func:`mocap.face_model.combine`); head pose and gaze angles stay geometric.
    """
    opts = options or FaceOptions()
    feats, valid, (C, R, s, t, _) = take_face_features(take)
    ts = np.asarray(take.timestamps, dtype=float)
    occluded = hand_occlusion(take) & valid
    good = valid & ~occluded
    notes = []
    if good.sum() < 5:
        good = valid
        notes.append(f"a hand covers the face in {int(occluded.sum())} of {int(valid.sum())} frames: the curves "
                     "come from those frames and are unreliable")
    elif occluded.any():
        notes.append(f"a hand covers the face in {int(occluded.sum())} frames: their curves are interpolated "
                     f"over gaps up to {MAX_GAP_S:g} s, longer ones rest at neutral")
    neutral = opts.neutral or find_neutral(feats, good, share=opts.neutral_share)
    geo, eyes = coefficients(feats, neutral, opts.ranges)
    solver = "geometric"
    if model_curves is not None:
        from .face_model import combine

        curves = combine(model_curves, geo, neutral.frames if neutral.source == "auto" else None, valid)
        solver = "model (MediaPipe FaceLandmarker blendshapes) + geometric for cheekPuff, eyeWide, noseSneer"
    else:
        curves = geo
    gains = performer_gains(curves[good]) if opts.auto_gain else np.ones(len(ARKIT_SHAPES))
    curves = np.clip(curves * gains, 0, 1)
    curves = _fill_gaps(curves, good, ts, MAX_GAP_S)
    eyes = _fill_gaps(eyes, good, ts, MAX_GAP_S)
    if opts.filter:
        curves = filter_curves(curves, ts, fast_hz=opts.fast_hz, slow_hz=opts.slow_hz)
        if len(ts) >= 8:
            from .filters import butterworth_zero_phase

            eyes = butterworth_zero_phase(eyes, ts, cutoff_hz=min(opts.fast_hz, 0.4 * take.fps))
    Q, pos, ref = head_pose(take, R, s, t, valid, reference=opts.head_reference)
    meta = {"solver": solver, "head_reference": ref, "neutral_source": neutral.source, "notes": notes,
            "hand_over_face_frames": int(occluded.sum()),
            "neutral_frames": [int(i) for i in neutral.frames][:200],
            "gains": {n: round(float(g), 4) for n, g in zip(ARKIT_SHAPES, gains) if g != 1.0},
            "not_observable": ["tongueOut"], "face_frames": int(valid.sum())}
    return FaceTrack(curves=curves.astype(np.float32), head_rotation=Q, head_position=pos, eye_angles=eyes,
                     timestamps=ts, present=good, fps=float(take.fps), meta=meta)
