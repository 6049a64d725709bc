"""Landmark names: every landmark is looked up by name, never by a bare index.

The orders below are MediaPipe's (Holistic / Pose / Hands / Face Mesh with iris
refinement), and they are also the order of the landmark axes in a take's arrays. A
take stores these names in ``take.json``, so a loader can check them.

``left``/``right`` are the *performer's* sides (MediaPipe's convention for the body),
so for a performer facing the camera the left wrist is on the image's right. MediaPipe
Holistic's ``left_hand_landmarks`` is the performer's left hand as well.
"""

from __future__ import annotations

__all__ = [
    "POSE",
    "HAND",
    "FACE",
    "FACE_POINTS",
    "PARTS",
    "POSE_EDGES",
    "HAND_EDGES",
    "index",
    "indices",
]

POSE: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
"""The 33 body landmarks of MediaPipe Pose, in its order."""

HAND: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
"""The 21 hand landmarks of MediaPipe Hands, in its order (same for both hands)."""

FACE: tuple[str, ...] = tuple(f"face_{i:03d}" for i in range(478))
"""The 478 Face Mesh points (468 mesh + 10 iris). The mesh has no per-point names
upstream, so each is ``face_NNN`` after its canonical-mesh vertex; the points a solver
needs have semantic names in :data:`FACE_POINTS`."""

FACE_POINTS: dict[str, str] = {
    "nose_tip": "face_001",
    "forehead": "face_010",
    "chin": "face_152",
    "upper_lip_centre": "face_013",
    "lower_lip_centre": "face_014",
    "mouth_left": "face_291",
    "mouth_right": "face_061",
    # eyes: the performer's left/right (face mesh points, not MediaPipe's camera-left)
    "left_eye_outer": "face_263",
    "left_eye_inner": "face_362",
    "left_eye_upper": "face_386",
    "left_eye_lower": "face_374",
    "right_eye_outer": "face_033",
    "right_eye_inner": "face_133",
    "right_eye_upper": "face_159",
    "right_eye_lower": "face_145",
    "left_iris_centre": "face_473",
    "right_iris_centre": "face_468",
    "left_brow_inner": "face_285",
    "left_brow_outer": "face_276",
    "right_brow_inner": "face_055",
    "right_brow_outer": "face_046",
    "left_cheek": "face_425",
    "right_cheek": "face_205",
}
"""Semantic names for the face points later stages use, mapped to :data:`FACE` names."""

PARTS: dict[str, tuple[str, ...]] = {
    "pose": POSE,
    "left_hand": HAND,
    "right_hand": HAND,
    "face": FACE,
}
"""Each tracked part and its landmark names, in array order."""

POSE_EDGES: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_wrist", "left_index"), ("left_wrist", "left_pinky"), ("left_wrist", "left_thumb"),
    ("right_wrist", "right_index"), ("right_wrist", "right_pinky"), ("right_wrist", "right_thumb"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("left_ankle", "left_heel"), ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("right_ankle", "right_heel"), ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
    ("left_eye", "nose"), ("right_eye", "nose"), ("left_ear", "left_eye"), ("right_ear", "right_eye"),
    ("mouth_left", "mouth_right"),
)  # fmt: skip
"""Bones of the body landmarks, for drawing and bone-length checks."""

HAND_EDGES: tuple[tuple[str, str], ...] = (
    ("wrist", "thumb_cmc"), ("thumb_cmc", "thumb_mcp"), ("thumb_mcp", "thumb_ip"), ("thumb_ip", "thumb_tip"),
    ("wrist", "index_mcp"), ("index_mcp", "index_pip"), ("index_pip", "index_dip"), ("index_dip", "index_tip"),
    ("index_mcp", "middle_mcp"), ("middle_mcp", "middle_pip"), ("middle_pip", "middle_dip"), ("middle_dip", "middle_tip"),
    ("middle_mcp", "ring_mcp"), ("ring_mcp", "ring_pip"), ("ring_pip", "ring_dip"), ("ring_dip", "ring_tip"),
    ("ring_mcp", "pinky_mcp"), ("wrist", "pinky_mcp"), ("pinky_mcp", "pinky_pip"), ("pinky_pip", "pinky_dip"),
    ("pinky_dip", "pinky_tip"),
)  # fmt: skip
"""Bones of the hand landmarks, for drawing and bone-length checks."""

_INDEX: dict[str, dict[str, int]] = {
    part: {name: i for i, name in enumerate(names)} for part, names in PARTS.items()
}


def index(part: str, name: str) -> int:
    """Array index of landmark ``name`` in ``part`` ('pose', 'left_hand', 'right_hand', 'face').

    Face points accept either a ``face_NNN`` name or a :data:`FACE_POINTS` name.
    """
    try:
        table = _INDEX[part]
    except KeyError:
        raise KeyError(f"unknown landmark part {part!r}; expected one of {sorted(_INDEX)}") from None
    if part == "face" and name in FACE_POINTS:
        name = FACE_POINTS[name]
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no landmark {name!r} in part {part!r}") from None


def indices(part: str, names) -> list[int]:
    """Array indices of several landmarks of one part, in the order given."""
    return [index(part, n) for n in names]
