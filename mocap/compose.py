"""Image work for actor replacement and conditioning passes (numpy + OpenCV, no Blender).

* :func:`clean_plate`: the footage without the performer. The take's person masks
  (``understudy track --segmentation``) are grown by a margin; every pixel takes the
  **temporal median** of the frames in which it was not covered (a static camera sees
  the background behind a moving performer sooner or later), and the pixels that were
  covered in every frame are **inpainted** (OpenCV's Telea method) from their
  surroundings. The share of inpainted pixels is reported: it is the part of the plate
  that is invented rather than seen.
* :func:`composite`: the rendered character (straight-alpha RGBA) over a plate, after
  darkening the plate with a soft contact shadow.
* :func:`contact_shadow`: that shadow, an image-space density made of floor discs under
  the character's feet and hips, projected through the camera and blurred; a foot's disc
  fades as the foot rises.
* :func:`draw_openpose`: a COCO-18 skeleton image in the colours and limb order of
  ControlNet's OpenPose preprocessor, from MediaPipe pose landmarks.
* :func:`depth_image`, :func:`normal_image`: depth and camera-space normals as the 8-bit
  images ControlNet-style depth and normal models take (near = bright; normals in the
  ScanNet colour protocol that ControlNet 1.1's normal model reads: red = left,
  green = up, blue = towards the viewer).

Images are RGB ``(H, W, 3)`` uint8 unless stated; masks ``(H, W)`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .errors import UsageError

__all__ = [
    "PlateResult",
    "clean_plate",
    "composite",
    "contact_shadow",
    "COCO18",
    "OPENPOSE_LIMBS",
    "OPENPOSE_COLOURS",
    "coco18_from_mediapipe",
    "draw_openpose",
    "depth_image",
    "normal_image",
]


@dataclass
class PlateResult:
    """``plate`` ``(H, W, 3)`` uint8; ``never_seen`` ``(H, W)`` bool (inpainted);
    ``frames_used`` how many frames entered the median."""

    plate: np.ndarray
    never_seen: np.ndarray
    frames_used: int

    @property
    def inpainted_share(self) -> float:
        return float(self.never_seen.mean())


def grow_mask(mask: np.ndarray, margin_px: int) -> np.ndarray:
    """``mask`` ``(H, W)`` bool dilated by a disc of radius ``margin_px``."""
    import cv2

    if margin_px <= 0:
        return np.asarray(mask, bool)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1))
    return cv2.dilate(np.asarray(mask, np.uint8), k) > 0


def clean_plate(frames: np.ndarray, masks: np.ndarray, *, margin_px: int | None = None,
                max_frames: int = 60, inpaint_radius_px: int = 5) -> PlateResult:
    """The background of a static-camera shot with the performer removed.

    ``frames`` ``(T, H, W, 3)`` uint8 and ``masks`` ``(T, H, W)`` bool (True = performer).
    Masks are grown by ``margin_px`` (default 2 % of the image height: MediaPipe's mask
    is soft at the edges and misses hair and loose clothes); at most ``max_frames``
    frames, evenly spaced, enter the per-pixel median of the uncovered samples; pixels
    covered in all of them are inpainted with radius ``inpaint_radius_px``.
    """
    import cv2

    frames = np.asarray(frames)
    masks = np.asarray(masks, bool)
    if frames.ndim != 4 or frames.shape[-1] != 3 or masks.shape != frames.shape[:3]:
        raise UsageError(f"clean_plate needs frames (T, H, W, 3) and masks (T, H, W), got {frames.shape} "
                         f"and {masks.shape}")
    T, H, W = masks.shape
    if margin_px is None:
        margin_px = max(1, round(0.02 * H))
    pick = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    stack = frames[pick].astype(np.float32)
    cover = np.stack([grow_mask(masks[i], margin_px) for i in pick])
    stack[cover] = np.nan
    never = np.all(cover, axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: handled below
            med = np.nanmedian(stack, axis=0)
    med = np.where(never[..., None], 0.0, med)
    plate = np.clip(np.round(med), 0, 255).astype(np.uint8)
    if never.any():
        plate = cv2.inpaint(plate, never.astype(np.uint8) * 255, inpaint_radius_px, cv2.INPAINT_TELEA)
    return PlateResult(plate=plate, never_seen=never, frames_used=len(pick))


def contact_shadow(feet: np.ndarray, hips: np.ndarray, project, size: tuple[int, int], *,
                   foot_radius_m: float = 0.11, body_radius_m: float = 0.28, fade_m: float = 0.12,
                   blur_frac: float = 0.012) -> np.ndarray:
    """Shadow density ``(H, W)`` float in [0, 1] for one frame.

    ``feet`` ``(F, 3)`` world positions (metres, +Y up, floor y = 0) of the foot points
    (ankles, toes); ``hips`` ``(3,)``; ``project`` maps world points ``(N, 3)`` to pixels
    ``(N, 2)`` (NaN behind the camera); ``size`` ``(W, H)``. Each foot point lays a floor
    disc of ``foot_radius_m`` with density ``0.6 exp(-height / fade_m)``; the hips a
    wider, fainter disc (0.3): the occlusion of the body's mass over the floor.
    """
    import cv2

    W, H = size
    acc = np.zeros((H, W), np.float32)
    ang = np.linspace(0.0, 2 * np.pi, 32, endpoint=False)
    ring = np.stack([np.cos(ang), np.zeros_like(ang), np.sin(ang)], axis=-1)
    discs = [(np.asarray(p, float), foot_radius_m, 0.6 * float(np.exp(-max(p[1], 0.0) / fade_m))) for p in feet]
    discs.append((np.asarray(hips, float), body_radius_m, 0.3))
    for p, r, density in discs:
        if not np.all(np.isfinite(p)) or density < 0.02:
            continue
        centre = np.array([p[0], 0.0, p[2]])
        uv = project(centre + r * ring)
        if not np.all(np.isfinite(uv)):
            continue
        layer = np.zeros((H, W), np.float32)
        cv2.fillPoly(layer, [np.round(uv).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
        acc = np.maximum(acc, density * layer)
    sigma = max(1.0, blur_frac * H)
    return cv2.GaussianBlur(acc, (0, 0), sigma)


def composite(plate: np.ndarray, rgba: np.ndarray, shadow: np.ndarray | None = None, *,
              shadow_strength: float = 0.55) -> np.ndarray:
    """``rgba`` ``(H, W, 4)`` uint8 straight alpha over ``plate`` ``(H, W, 3)``, the plate
    first darkened by ``shadow`` ``(H, W)`` in [0, 1] times ``shadow_strength``."""
    plate = np.asarray(plate, np.float32)
    if rgba.shape[:2] != plate.shape[:2] or rgba.shape[2] != 4:
        raise UsageError(f"composite needs an (H, W, 4) render the size of the plate {plate.shape[:2]}, "
                         f"got {rgba.shape}")
    if shadow is not None:
        plate = plate * (1.0 - shadow_strength * np.clip(shadow, 0.0, 1.0))[..., None]
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * a + plate * (1.0 - a)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# -- OpenPose (COCO-18) ---------------------------------------------------------------

COCO18: tuple[str, ...] = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                           "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
                           "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear")
"""OpenPose's COCO-18 keypoints in order (right/left = the person's own)."""

OPENPOSE_LIMBS: tuple[tuple[str, str], ...] = (
    ("neck", "right_shoulder"), ("neck", "left_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("neck", "left_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("neck", "nose"), ("nose", "right_eye"),
    ("right_eye", "right_ear"), ("nose", "left_eye"), ("left_eye", "left_ear"),
)
"""The 17 limbs ControlNet's OpenPose preprocessor draws, in its drawing order."""

OPENPOSE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
"""RGB colour of keypoint i and of limb i (ControlNet's palette: red to magenta)."""

_MP_FOR_COCO = {"nose": "nose", "right_shoulder": "right_shoulder", "right_elbow": "right_elbow",
                "right_wrist": "right_wrist", "left_shoulder": "left_shoulder", "left_elbow": "left_elbow",
                "left_wrist": "left_wrist", "right_hip": "right_hip", "right_knee": "right_knee",
                "right_ankle": "right_ankle", "left_hip": "left_hip", "left_knee": "left_knee",
                "left_ankle": "left_ankle", "right_eye": "right_eye", "left_eye": "left_eye",
                "right_ear": "right_ear", "left_ear": "left_ear"}


def coco18_from_mediapipe(pose_image: np.ndarray, visibility: np.ndarray | None = None, *,
                          min_visibility: float = 0.3) -> np.ndarray:
    """COCO-18 keypoints ``(..., 18, 2)`` px (NaN = not seen) from MediaPipe's 33 pose
    landmarks ``(..., 33, 2+)`` px; the neck is the shoulders' midpoint. Landmarks with
    ``visibility`` below ``min_visibility`` are dropped, as OpenPose drops weak ones."""
    P = np.asarray(pose_image, float)[..., :2]
    vis = np.ones(P.shape[:-1]) if visibility is None else np.nan_to_num(np.asarray(visibility, float))
    P = np.where((vis >= min_visibility)[..., None], P, np.nan)
    out = np.full(P.shape[:-2] + (18, 2), np.nan)
    for i, name in enumerate(COCO18):
        if name == "neck":
            out[..., i, :] = 0.5 * (P[..., L.POSE.index("left_shoulder"), :] + P[..., L.POSE.index("right_shoulder"), :])
        else:
            out[..., i, :] = P[..., L.POSE.index(_MP_FOR_COCO[name]), :]
    return out


def draw_openpose(keypoints: np.ndarray, size: tuple[int, int], *, stick_px: int = 4) -> np.ndarray:
    """The OpenPose image of one person: ``keypoints`` ``(18, 2)`` px (NaN = absent),
    ``size`` ``(W, H)``. Black background; each limb an ellipse ``stick_px`` thick in its
    colour at 60 % brightness, then each keypoint a disc of radius ``stick_px`` at full
    colour, as ControlNet's preprocessor draws them."""
    import math

    import cv2

    W, H = size
    canvas = np.zeros((H, W, 3), np.uint8)
    idx = {n: i for i, n in enumerate(COCO18)}
    kp = np.asarray(keypoints, float)
    for (a, b), colour in zip(OPENPOSE_LIMBS, OPENPOSE_COLOURS):
        pa, pb = kp[idx[a]], kp[idx[b]]
        if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pb))):
            continue
        mid = (pa + pb) / 2.0
        length = float(np.hypot(*(pa - pb)))
        angle = math.degrees(math.atan2(pa[1] - pb[1], pa[0] - pb[0]))
        poly = cv2.ellipse2Poly((int(round(mid[0])), int(round(mid[1]))), (int(length / 2), stick_px),
                                int(round(angle)), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, tuple(int(round(0.6 * c)) for c in colour))
    for i, colour in enumerate(OPENPOSE_COLOURS):
        if np.all(np.isfinite(kp[i])):
            cv2.circle(canvas, (int(round(kp[i, 0])), int(round(kp[i, 1]))), stick_px, colour, thickness=-1)
    return canvas


# -- depth and normals ------------------------------------------------------------------


def depth_image(depth_m: np.ndarray, mask: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """8-bit depth ``(H, W)`` as ControlNet depth models take it: inverse depth scaled so
    ``near_m`` is 255 and ``far_m`` 0 (MiDaS-like: near = bright); background 0."""
    if not (0 < near_m < far_m):
        raise UsageError(f"need 0 < near < far, got {near_m}, {far_m}")
    inv = 1.0 / np.maximum(np.asarray(depth_m, float), 1e-6)
    v = (inv - 1.0 / far_m) / (1.0 / near_m - 1.0 / far_m)
    v = np.where(mask, np.clip(v, 0.0, 1.0), 0.0)
    return np.round(255.0 * v).astype(np.uint8)


def normal_image(normals_cam: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """8-bit normal map ``(H, W, 3)`` from camera-frame unit normals ``(H, W, 3)`` (+x
    right, +y up, +z towards the camera): red = left ``(1 - x)/2``, green = up
    ``(1 + y)/2``, blue = towards the viewer ``(1 + z)/2``; background (128, 128, 255),
    a surface facing the camera."""
    n = np.asarray(normals_cam, float)
    rgb = np.stack([(1.0 - n[..., 0]) / 2.0, (1.0 + n[..., 1]) / 2.0, (1.0 + n[..., 2]) / 2.0], axis=-1)
    rgb = np.where(np.asarray(mask, bool)[..., None], np.clip(rgb, 0.0, 1.0), np.array([0.5, 0.5, 1.0]))
    return np.round(255.0 * rgb).astype(np.uint8)
