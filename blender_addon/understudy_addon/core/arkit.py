"""ARKit blendshape names and the spellings that mean them. Standard library only.

Same rule as ``mocap.face_map.normalise_name`` (tested against it): lower case, no
separators, a trailing side ``_L``/``.L``/``L``/``Left`` read as ``left`` (``R`` as
``right``), and a prefix before the last ``.`` or ``|`` dropped unless what follows is a
side. ``mouthSmileLeft``, ``MouthSmileLeft``, ``mouthSmile_L``, ``Mouth_Smile_L``,
``mouthSmile.L`` and ``blendShape1.mouthSmileLeft`` all mean ``mouthSmileLeft``.
"""

from __future__ import annotations

import re

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
"""The 52 ARKit blendshape names (Apple's ``ARFaceAnchor.BlendShapeLocation``)."""

_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}
_TAIL = re.compile(r"([._\-\s]?)(left|right|l|r)$", re.IGNORECASE)


def normalise_name(name: str) -> str:
    """A key equal for every spelling of one shape (see the module docstring)."""
    s = name.strip()
    pieces = re.split(r"[.|]", s)
    if len(pieces) > 1 and pieces[-1].lower() not in _SIDES:
        s = pieces[-1]
    side = ""
    m = _TAIL.search(s)
    if m and len(s) > len(m.group(0)):
        sep, word = m.group(1), m.group(2)
        # 'left'/'right' always; a lone l/r only after a separator or as a capital L/R
        if word.lower() in ("left", "right") or sep or word in ("L", "R"):
            side = _SIDES[word.lower()]
            s = s[:m.start()]
    return re.sub(r"[^a-z0-9]", "", s.lower()) + side


_BY_KEY = {normalise_name(n): n for n in ARKIT_NAMES}


def arkit_key(name: str) -> str | None:
    """The ARKit name that ``name`` (a CSV column, a shape key) spells, or None."""
    return _BY_KEY.get(normalise_name(name))
