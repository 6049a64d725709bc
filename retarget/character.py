"""Synthetic actors: a parametric, rigged, face-capable humanoid written as a GLB.

Understudy's point is a *synthetic actor* performing what a human performed. This module
makes one from a handful of numbers: :func:`generate_character` builds a
:class:`CharacterModel` (a smooth closed skin mesh with clothing colours, the canonical
52-joint skeleton scaled to it, smooth skin weights and the 52 ARKit face shape keys),
:func:`save_character` writes it as a ``.glb`` that :func:`retarget.rig.load_rig`, Blender
and any glTF viewer open, :func:`character_check` poses a saved character through
motion capture and reports how its skin holds up, and :func:`render_preview` draws a
mesh with pyrender (docs pictures, the MediaPipe realism test, auto-rig verification).

Conventions (:mod:`mocap.glossary`): metres, +Y up, the character faces +Z, rest pose =
the canonical T-pose. **Left is the character's own left, +X**, and so is every
``...Left`` name: ``eyeBlinkLeft`` closes the eye on the +X side, the eye of the
performer's left (a performer facing the camera has it on the image's right). MediaPipe's
face landmarker names its blendshapes the same way: on a render of this character with
``eyeLookOutLeft`` applied it reports ``eyeLookOutLeft`` (0.88), not ``...Right``.

How a character is made (named passes over plain arrays; each states what it needs)
-----------------------------------------------------------------------------------
1. :func:`_recipe`: options, preset and seed -> every number the other passes use
   (proportions, girths, colours, sleeve length, hair), deterministic per seed.
2. :func:`_scaled_skeleton`: the canonical skeleton (``assets/skeleton/canonical.toml``)
   with its segments scaled by the proportions, then uniformly to the height.
3. :func:`_primitives`: a list of signed-distance primitives hung on the joints: round
   cones for limbs, fingers, neck, lips, brows and jaw; ellipsoids for pelvis, ribcage,
   muscles, skull, face, nose, ears, eyeballs; rounded boxes for palms and shoes; eye
   sockets and the mouth slit are subtracted. Each carries its **owner joint** (skin
   weights) and a **tag** (colour zone, face features).
4. :func:`_mesh`: the primitives are combined with the polynomial smooth minimum
   (``smin(a, b, k) = min(a, b) - max(k - |a - b|, 0)^2 / 4k``, Quilez) so joints blend,
   sampled on three grids (body 12 mm, head 3 mm, one hand 3 mm, for 1.75 m; the
   other hand is its mirror image) and polygonised with marching cubes (Lewiner,
   scikit-image). The grids meet at planes through the forearms and the neck, where the
   open boundary loops are zipped together by a band of triangles: one closed,
   consistently oriented surface. Left/right pairs of primitives enter the field
   together, so the field is exactly mirror-symmetric.
5. :func:`_taubin`: Taubin's lambda/mu smoothing (1995), which smooths without
   shrinking, then :func:`_symmetrise` (exact mirror symmetry again); the figure is then
   scaled to the asked height (sole to hair top) and stood on y = 0.
6. colours (:func:`_zones`, :func:`_colours`): per-vertex ``COLOR_0`` (linear RGB) from
   the nearest primitive's tag and clothing rules (waistline, sleeve end, trouser hem,
   collar): skin, shirt, trousers, shoes, hair cap, sclera / iris / pupil, lash line,
   brows, lips, mouth slit.
7. :func:`_skin_weights`: per vertex, distances to the bone segments of its owner joint's
   neighbourhood (owner, parent, children) with a Gaussian falloff (narrower across elbows
   and knees), Laplacian-smoothed over the mesh graph, the four largest kept and
   normalised; the head is rigid.
8. :func:`_face_targets`: the 52 ARKit shape keys as displacement fields with compact,
   smooth falloff, built for the left side and mirrored for the right.

A character has 52-57k vertices and takes about 1.5 s on two cores (marching cubes
0.6 s). Its GLB is about 5 MB: the writer (:func:`retarget.gltf.write_glb`) stores the
52 morph targets as sparse accessors (each is zero off the face; dense they took 36 MB).
scikit-image and scipy are imported only when a character is generated or checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocap.errors import RigError, UsageError
from mocap.face import ARKIT_SHAPES as _ARKIT_SHAPES
from mocap.motion import Skeleton

from . import gltf

__all__ = [
    "ARKIT_SHAPES",
    "BUILDS",
    "FIGURES",
    "PRESETS",
    "PROPORTION_KEYS",
    "ZONES",
    "CharacterModel",
    "generate_character",
    "character_document",
    "save_character",
    "character_check",
    "CHECK_TOLERANCES",
    "mesh_edges_manifold",
    "mesh_volume",
    "render_preview",
    "preview_camera",
    "project_preview",
]

# The 52 ARKit face blend shapes, in Apple's order; "Left" = the character's left (+X).
# Defined once, with the face solver that produces them.
ARKIT_SHAPES: tuple[str, ...] = _ARKIT_SHAPES

ZONES: tuple[str, ...] = ("skin", "shirt", "trousers", "shoes", "hair", "sclera", "iris", "pupil", "brow",
                          "lips", "mouth", "lashes")
"""Colour zones of :attr:`CharacterModel.zones` (index = value)."""

BUILDS: dict[str, dict[str, float]] = {
    # girth multipliers on the primitives' radii (1 = the average adult of the canonical file)
    "average": {"torso": 1.00, "waist": 1.00, "belly": 1.00, "hips": 1.00, "arms": 1.00, "legs": 1.00,
                "neck": 1.00, "deltoid": 1.00},
    "slim": {"torso": 0.90, "waist": 0.86, "belly": 0.80, "hips": 0.92, "arms": 0.86, "legs": 0.88,
             "neck": 0.92, "deltoid": 0.88},
    "athletic": {"torso": 1.06, "waist": 0.94, "belly": 0.85, "hips": 0.98, "arms": 1.12, "legs": 1.06,
                 "neck": 1.08, "deltoid": 1.18},
    "heavy": {"torso": 1.17, "waist": 1.28, "belly": 1.55, "hips": 1.15, "arms": 1.14, "legs": 1.12,
              "neck": 1.12, "deltoid": 1.08},
}
"""Named builds: radius multipliers per body region."""

FIGURES: dict[str, dict[str, float]] = {
    # proportion multipliers for a figure type (shoulder and hip width, chest shape, jaw)
    "neutral": {"shoulders": 1.00, "hip_width": 1.00, "bust": 0.0, "jaw": 1.00, "brow": 1.00},
    "masculine": {"shoulders": 1.06, "hip_width": 0.97, "bust": 0.0, "jaw": 1.08, "brow": 1.10},
    "feminine": {"shoulders": 0.93, "hip_width": 1.06, "bust": 1.0, "jaw": 0.92, "brow": 0.90},
}
"""Named figure types: proportion multipliers and the bust (0 or 1)."""

PROPORTION_KEYS: tuple[str, ...] = ("legs", "arms", "torso", "neck", "head", "hands", "feet", "shoulders",
                                    "hip_width")
"""Keys of ``proportions``: segment-length multipliers (1 = canonical)."""

PRESETS: dict[str, dict[str, Any]] = {
    "ada": {"height_m": 1.66, "build": "slim", "figure": "feminine", "seed": 11, "skin": 0.25,
            "hair_style": "bun", "sleeves": "long"},
    "ben": {"height_m": 1.84, "build": "athletic", "figure": "masculine", "seed": 23, "skin": 0.55,
            "hair_style": "crop", "sleeves": "short"},
    "chen": {"height_m": 1.72, "build": "average", "figure": "neutral", "seed": 37, "skin": 0.35,
             "hair_style": "cap", "sleeves": "short"},
    "dara": {"height_m": 1.69, "build": "heavy", "figure": "feminine", "seed": 41, "skin": 0.85,
             "hair_style": "cap", "sleeves": "long"},
}
"""Named characters: keyword defaults for :func:`generate_character` (explicit arguments win)."""

# palettes, sRGB 0-255 (converted to linear for COLOR_0)
_SKIN_RAMP = np.array([[246, 222, 205], [236, 196, 168], [214, 164, 128], [180, 128, 92], [128, 86, 60],
                       [86, 56, 40]], dtype=float)
_SHIRTS = np.array([[34, 60, 120], [30, 120, 120], [170, 40, 45], [210, 160, 40], [235, 235, 230],
                    [110, 110, 115], [60, 120, 60], [100, 60, 140], [220, 110, 60], [40, 40, 45]], dtype=float)
_TROUSERS = np.array([[45, 65, 110], [30, 30, 34], [170, 150, 110], [90, 90, 95], [85, 60, 45],
                      [60, 75, 60]], dtype=float)
_SHOES = np.array([[235, 235, 235], [25, 25, 28], [105, 65, 40], [150, 30, 35], [60, 60, 70]], dtype=float)
_HAIR = np.array([[20, 16, 14], [55, 35, 22], [100, 65, 40], [140, 70, 35], [205, 170, 110],
                  [160, 160, 160]], dtype=float)
_IRIS = np.array([[80, 50, 30], [45, 30, 20], [70, 110, 160], [80, 120, 70], [120, 95, 50]], dtype=float)
_SCLERA = np.array([238, 236, 232], dtype=float)
_PUPIL = np.array([12, 10, 10], dtype=float)
_MOUTH = np.array([70, 20, 25], dtype=float)

_MIRROR = np.array([-1.0, 1.0, 1.0])


def _linear(srgb255: np.ndarray) -> np.ndarray:
    """sRGB 0-255 -> linear 0-1 (glTF's COLOR_0 is linear)."""
    c = np.asarray(srgb255, dtype=float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _luma(srgb255: np.ndarray) -> float:
    return float(np.dot(srgb255, [0.299, 0.587, 0.114]))


def _side_name(name: str) -> str:
    """``leftFoo`` <-> ``rightFoo``; other names unchanged."""
    if name.startswith("left"):
        return "right" + name[4:]
    if name.startswith("right"):
        return "left" + name[5:]
    return name


# -- 1. the recipe ------------------------------------------------------------------------


@dataclass
class _Recipe:
    height_m: float
    build: str
    figure: str
    stylize: float
    seed: int
    proportions: dict[str, float]
    girth: dict[str, float]
    bust: float
    jaw: float
    brow: float
    eye_scale: float
    colours: dict[str, np.ndarray]
    sleeves: str
    hair_style: str
    preset: str | None


def _recipe(*, preset: str | None, height_m, build, figure, proportions, stylize, seed, skin, hair_style,
            sleeves) -> _Recipe:
    """Every number of a character from the options (explicit > preset > default) and the
    seed. Seeds jitter proportions by about 2 %, girths by about 3 %, and pick colours."""
    base: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"unknown character preset {preset!r}; presets: {sorted(PRESETS)}")
        base = dict(PRESETS[preset])

    def pick(name, value, default):
        return value if value is not None else base.get(name, default)

    height_m = float(pick("height_m", height_m, 1.75))
    if not np.isfinite(height_m) or not 0.5 <= height_m <= 2.5:
        raise UsageError(f"height_m must be between 0.5 and 2.5 metres, got {height_m}")
    build = str(pick("build", build, "average"))
    if build not in BUILDS:
        raise UsageError(f"unknown build {build!r}; builds: {sorted(BUILDS)}")
    figure = str(pick("figure", figure, "neutral"))
    if figure not in FIGURES:
        raise UsageError(f"unknown figure {figure!r}; figures: {sorted(FIGURES)}")
    stylize = float(pick("stylize", stylize, 0.0))
    if not np.isfinite(stylize) or not 0.0 <= stylize <= 1.0:
        raise UsageError(f"stylize must be in [0, 1], got {stylize}")
    seed = int(pick("seed", seed, 0))
    sleeves = str(pick("sleeves", sleeves, "auto"))
    hair_style = str(pick("hair_style", hair_style, "auto"))
    if sleeves not in ("auto", "short", "long"):
        raise UsageError(f"sleeves must be 'short', 'long' or 'auto', got {sleeves!r}")
    if hair_style not in ("auto", "cap", "crop", "bun"):
        raise UsageError(f"hair_style must be 'cap', 'crop', 'bun' or 'auto', got {hair_style!r}")

    rng = np.random.default_rng([seed, 0x5EED])
    props = {k: 1.0 for k in PROPORTION_KEYS}
    fig = FIGURES[figure]
    props["shoulders"] *= fig["shoulders"]
    props["hip_width"] *= fig["hip_width"]
    jitter = 1.0 + 0.02 * rng.uniform(-1, 1, len(PROPORTION_KEYS))
    for k, j in zip(PROPORTION_KEYS, jitter):
        props[k] *= float(j)
    # stylised: bigger head, eyes and hands, shorter legs (the height stays as asked)
    props["head"] *= 1.0 + 0.30 * stylize
    props["hands"] *= 1.0 + 0.12 * stylize
    props["legs"] *= 1.0 - 0.08 * stylize
    given = dict(proportions or base.get("proportions") or {})
    for k, v in given.items():
        if k not in props:
            raise UsageError(f"unknown proportion {k!r}; proportions: {', '.join(PROPORTION_KEYS)}")
        v = float(v)
        if not np.isfinite(v) or not 0.5 <= v <= 1.6:
            raise UsageError(f"proportion {k!r} must be between 0.5 and 1.6, got {v}")
        props[k] *= v
    girth = {k: float(v) * float(1.0 + 0.03 * rng.uniform(-1, 1)) for k, v in BUILDS[build].items()}

    skin_t = pick("skin", skin, None)
    if skin_t is None:
        skin_t = float(rng.uniform(0.0, 1.0))
    skin_t = float(skin_t)
    if not np.isfinite(skin_t) or not 0.0 <= skin_t <= 1.0:
        raise UsageError(f"skin must be a tone in [0, 1] (light to deep), got {skin_t}")
    pos = skin_t * (len(_SKIN_RAMP) - 1)
    i0 = min(int(pos), len(_SKIN_RAMP) - 2)
    skin_rgb = _SKIN_RAMP[i0] + (pos - i0) * (_SKIN_RAMP[i0 + 1] - _SKIN_RAMP[i0])
    lips_rgb = skin_rgb * np.array([0.80, 0.52, 0.52]) + np.array([25, 0, 5])
    hair_rgb = _HAIR[rng.integers(len(_HAIR))]
    if abs(_luma(hair_rgb) - _luma(skin_rgb)) < 45:  # keep the hairline visible
        hair_rgb = _HAIR[0] if _luma(skin_rgb) > 90 else _HAIR[4]
    colours = {
        "skin": _linear(skin_rgb),
        "shirt": _linear(_SHIRTS[rng.integers(len(_SHIRTS))]),
        "trousers": _linear(_TROUSERS[rng.integers(len(_TROUSERS))]),
        "shoes": _linear(_SHOES[rng.integers(len(_SHOES))]),
        "hair": _linear(hair_rgb),
        "brow": _linear(hair_rgb * 0.8),
        "iris": _linear(_IRIS[rng.integers(len(_IRIS))]),
        "sclera": _linear(_SCLERA),
        "pupil": _linear(_PUPIL),
        "lips": _linear(np.clip(lips_rgb, 0, 255)),
        "mouth": _linear(_MOUTH),
        "lashes": _linear(hair_rgb * 0.35),
    }
    if sleeves == "auto":
        sleeves = "short" if rng.uniform() < 0.5 else "long"
    if hair_style == "auto":
        hair_style = ("cap", "crop", "bun")[int(rng.integers(3))]
    return _Recipe(height_m=height_m, build=build, figure=figure, stylize=stylize, seed=seed, proportions=props,
                   girth=girth, bust=fig["bust"], jaw=fig["jaw"], brow=fig["brow"],
                   eye_scale=1.0 + 0.35 * stylize, colours=colours, sleeves=sleeves, hair_style=hair_style,
                   preset=preset)


# -- 2. the skeleton ----------------------------------------------------------------------

_HEAD_TOP = 0.228
"""Canonical distance from the head joint to the top of the skull (skin), metres."""
_HAIR_THICK = 0.008


def _scaled_skeleton(r: _Recipe) -> tuple[Skeleton, float]:
    """The canonical skeleton with each segment group scaled by ``r.proportions``, then
    uniformly so the figure (sole to hair top) is ``r.height_m`` tall. Returns it and the
    uniform factor ``k`` (radii of the body are multiplied by it too)."""
    from mocap.skeleton import canonical_skeleton

    sk = canonical_skeleton()
    pr = r.proportions
    off = np.array(sk.offsets, dtype=float)
    ends = {n: np.array(v, dtype=float) for n, v in sk.end_sites.items()}
    idx = sk.index
    for side in ("left", "right"):
        for n in ("LowerLeg", "Foot"):
            off[idx(side + n)] *= pr["legs"]
        off[idx(side + "UpperLeg")] *= pr["hip_width"]
        off[idx(side + "Toes")] *= pr["feet"]
        ends[side + "Toes"] = ends[side + "Toes"] * pr["feet"]
        for n in ("LowerArm", "Hand"):
            off[idx(side + n)] *= pr["arms"]
        for n in ("Shoulder", "UpperArm"):
            off[idx(side + n)][0] *= pr["shoulders"]
            off[idx(side + n)][1] *= pr["torso"]  # the clavicles sit on the ribcage's top
        for j, name in enumerate(sk.names):
            if name.startswith(side) and any(f in name for f in ("Thumb", "Index", "Middle", "Ring", "Little")):
                off[j] *= pr["hands"]
                if name in ends:
                    ends[name] = ends[name] * pr["hands"]
    for n in ("spine", "chest", "upperChest"):
        off[idx(n)] *= pr["torso"]
    off[idx("neck")] *= pr["torso"]
    off[idx("head")] *= pr["neck"]
    ends["head"] = ends["head"] * pr["head"]
    ankle = 0.08 * pr["feet"]
    leg = abs(off[idx("leftLowerLeg"), 1]) + abs(off[idx("leftFoot"), 1])
    off[0] = [0.0, leg + ankle, 0.0]
    for side in ("left", "right"):  # the toes stay 2 cm above the sole
        off[idx(side + "Toes"), 1] = -(ankle - 0.02 * pr["feet"])
    sk = Skeleton(sk.names, sk.parents, off, ends)
    P = sk.rest_positions()
    natural = P[idx("head"), 1] + (_HEAD_TOP + _HAIR_THICK) * pr["head"]
    k = r.height_m / natural
    return sk.scaled(k), float(k)


# -- 3. signed-distance primitives ---------------------------------------------------------


@dataclass
class _Prim:
    """One signed-distance primitive. ``kind``: ``cone`` (round cone a->b, radii ra, rb),
    ``ellipsoid`` (centre c, radii r, rotation R world-from-local, optional cut plane),
    ``box`` (centre c, half extents e, rounding rr). ``op``: ``union`` (smooth, radius k)
    or ``subtract``. ``owner``: the joint that carries it; ``tag``: colour zone / feature."""

    kind: str
    p: dict[str, Any]
    k: float
    owner: str
    tag: str = "body"
    op: str = "union"
    name: str = ""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        if self.kind == "cone":
            r = max(p["ra"], p["rb"])
            return np.minimum(p["a"], p["b"]) - r, np.maximum(p["a"], p["b"]) + r
        if self.kind == "ellipsoid":
            ext = np.abs(p["R"]) @ p["r"]
            return p["c"] - ext, p["c"] + ext
        return p["c"] - p["e"], p["c"] + p["e"]

    def sdf(self, X: np.ndarray) -> np.ndarray:
        p = self.p
        if self.kind == "cone":
            return _sd_round_cone(X, p["a"], p["b"], p["ra"], p["rb"])
        if self.kind == "ellipsoid":
            q = (X - p["c"]) @ p["R"]
            d = _sd_ellipsoid(q, p["r"])
            if p.get("cut") is not None:
                n, p0, kc = p["cut"]
                d = -_smin(-d, (X - p0) @ n, kc)
            return d
        q = np.abs(X - p["c"]) - (p["e"] - p["rr"])
        out = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        return out + np.minimum(q.max(axis=-1), 0.0) - p["rr"]

    def mirrored(self) -> "_Prim":
        p = {}
        for key, v in self.p.items():
            if key in ("a", "b", "c"):
                p[key] = v * _MIRROR
            elif key == "R":
                p[key] = _MIRROR[:, None] * v * _MIRROR[None, :]
            elif key == "cut" and v is not None:
                n, p0, kc = v
                p[key] = (n * _MIRROR, p0 * _MIRROR, kc)
            else:
                p[key] = v
        return _Prim(self.kind, p, self.k, _side_name(self.owner), self.tag, self.op, _side_name(self.name))


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (Quilez): ``min(a, b) - h^2 k / 4``, ``h = max(k - |a - b|, 0) / k``."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _sd_round_cone(X: np.ndarray, a: np.ndarray, b: np.ndarray, r1: float, r2: float) -> np.ndarray:
    """Exact distance to a round cone (two spheres and their tangent cone), Quilez."""
    ba = b - a
    l2 = float(ba @ ba)
    rr = r1 - r2
    a2 = l2 - rr * rr
    il2 = 1.0 / l2
    pa = X - a
    y = pa @ ba
    z = y - l2
    xv = pa * l2 - y[:, None] * ba
    x2 = np.einsum("ij,ij->i", xv, xv)
    y2 = y * y * l2
    z2 = z * z * l2
    k = np.sign(rr) * rr * rr * x2
    d_end = np.sqrt(x2 + z2) * il2 - r2
    d_start = np.sqrt(x2 + y2) * il2 - r1
    d_side = (np.sqrt(np.maximum(x2 * a2 * il2, 0.0)) + y * rr) * il2 - r1
    return np.where(np.sign(z) * a2 * z2 > k, d_end, np.where(np.sign(y) * a2 * y2 < k, d_start, d_side))


def _sd_ellipsoid(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Ellipsoid distance bound (Quilez's ``k0 (k0 - 1) / k1``): exact on the surface,
    close near it, the right sign everywhere. ``q`` in the ellipsoid's frame."""
    k0 = np.linalg.norm(q / r, axis=-1)
    k1 = np.linalg.norm(q / (r * r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _cone(a, b, ra, rb, k, owner, tag="body", name="") -> _Prim:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ra, rb = float(ra), float(rb)
    gap = np.linalg.norm(b - a)
    if abs(ra - rb) >= 0.98 * gap:  # keep the round cone well defined
        rb = ra - np.sign(ra - rb) * 0.98 * gap
    return _Prim("cone", {"a": a, "b": b, "ra": ra, "rb": rb}, k, owner, tag, name=name)


def _ell(c, r, k, owner, tag="body", R=None, cut=None, name="", op="union") -> _Prim:
    return _Prim("ellipsoid", {"c": np.asarray(c, dtype=float), "r": np.asarray(r, dtype=float),
                               "R": np.eye(3) if R is None else np.asarray(R, dtype=float), "cut": cut},
                 k, owner, tag, op, name)


def _box(c, e, rr, k, owner, tag="body", name="") -> _Prim:
    e = np.asarray(e, dtype=float)
    return _Prim("box", {"c": np.asarray(c, dtype=float), "e": e, "rr": float(min(rr, e.min()))}, k, owner, tag,
                 name=name)


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


# Face feature positions in the canonical head frame (metres from the head joint, for a
# head of scale 1); they match the primitives of :func:`_primitives`.
_EYE = np.array([0.032, 0.112, 0.071])
_NOSE_TIP = np.array([0.0, 0.072, 0.124])
_CHIN = np.array([0.0, -0.004, 0.080])
_MOUTH_Y = 0.040
_CORNER = np.array([0.026, 0.040, 0.087])
_JAW_PIVOT = np.array([0.0, 0.085, -0.006])
_BROW = np.array([0.032, 0.133, 0.088])


@dataclass
class _Face:
    """Where the face features are (world, rest, metres), for colours and shape keys.
    ``s`` is the head's scale (1 = canonical 1.75 m figure)."""

    H: np.ndarray
    s: float
    eye: np.ndarray  # left eye centre (+X)
    eye_r: float
    mouth: np.ndarray  # mouth centre (slit)
    corner: np.ndarray  # left mouth corner
    jaw_pivot: np.ndarray  # the jaw's hinge axis passes through this point, along X
    chin: np.ndarray
    nose_tip: np.ndarray
    brow: np.ndarray  # left brow middle
    cheek: np.ndarray  # left cheek
    ear: np.ndarray  # left ear

    def landmarks(self) -> dict[str, np.ndarray]:
        out = {"head": self.H, "eye_left": self.eye, "eye_right": self.eye * _MIRROR, "mouth": self.mouth,
               "mouth_corner_left": self.corner, "mouth_corner_right": self.corner * _MIRROR, "chin": self.chin,
               "nose_tip": self.nose_tip, "brow_left": self.brow, "brow_right": self.brow * _MIRROR,
               "cheek_left": self.cheek, "cheek_right": self.cheek * _MIRROR, "ear_left": self.ear,
               "ear_right": self.ear * _MIRROR, "jaw_pivot": self.jaw_pivot}
        return {k: np.array(v, dtype=float) for k, v in out.items()}


def _primitives(r: _Recipe, sk: Skeleton, k: float) -> tuple[list[_Prim], _Face]:
    """The body as signed-distance primitives (left side built, right side mirrored) and
    the face's feature positions. Needs the scaled skeleton and its factor ``k``."""
    P = dict(zip(sk.names, sk.rest_positions()))
    ends = sk.rest_end_sites()
    g = r.girth
    pr = r.proportions
    prims: list[_Prim] = []
    left: list[_Prim] = []  # built for +X, mirrored after
    K = k  # body radii scale with the height
    v = np.array

    # torso
    hips, spine, chest, uc, neck, head = (P[n] for n in ("hips", "spine", "chest", "upperChest", "neck", "head"))
    hw, gt, gw = pr["hip_width"], g["torso"], g["waist"]
    prims.append(_ell(hips + v([0, -0.012, -0.010]) * K, v([0.150 * hw * g["hips"], 0.100, 0.105 * g["hips"]]) * K,
                      0.0, "hips", name="pelvis"))
    left.append(_ell(hips + v([0.058 * hw, -0.050, -0.048]) * K, v([0.070, 0.080, 0.066]) * K * g["hips"],
                     0.03 * K, "hips", name="leftButtock"))
    prims.append(_ell(spine + v([0, 0.03, -0.005]) * K, v([0.132 * gw, 0.11, 0.092 * gw]) * K, 0.04 * K, "spine",
                      name="waist"))
    prims.append(_ell(spine + v([0, 0.03, 0.004 + 0.035 * (g["belly"] - 1)]) * K,
                      v([0.112 * gw, 0.095, 0.080 * g["belly"]]) * K, 0.035 * K, "spine", name="belly"))
    prims.append(_ell(chest + v([0, 0.10, -0.012]) * K, v([0.152 * gt, 0.165, 0.100 * gt]) * K, 0.035 * K, "chest",
                      name="ribcage"))
    prims.append(_ell(uc + v([0, 0.065, -0.022]) * K, v([0.165 * gt * pr["shoulders"], 0.065, 0.085 * gt]) * K,
                      0.03 * K, "upperChest", name="shoulderGirdle"))
    left.append(_ell(uc + v([0.060, 0.010, 0.045]) * K, v([0.062, 0.050, 0.045]) * K * gt, 0.025 * K,
                     "upperChest", name="leftPec"))
    if r.bust > 0:
        left.append(_ell(uc + v([0.066, -0.035, 0.066]) * K, v([0.052, 0.048, 0.046]) * K * gt, 0.03 * K,
                         "upperChest", name="leftBreast"))
    # shoulders and neck
    lua = P["leftUpperArm"]
    left.append(_cone(neck + v([0.0, 0.0, -0.018]) * K, lua + v([-0.02, 0.0, -0.006]) * K, 0.05 * K * g["neck"],
                      0.042 * K * g["deltoid"], 0.03 * K, "leftShoulder", name="leftTrapezius"))
    prims.append(_cone(neck + v([0, -0.03, -0.008]) * K, head + v([0, 0.02, -0.012]) * K,
                       0.058 * K * g["neck"], 0.050 * K * g["neck"], 0.03 * K, "neck", name="neck"))
    # arms
    lla, lh = P["leftLowerArm"], P["leftHand"]
    ga, gd = g["arms"], g["deltoid"]
    left.append(_ell(lua + v([0.012, -0.004, 0.0]) * K, v([0.066, 0.050, 0.054]) * K * gd, 0.03 * K,
                     "leftUpperArm", name="leftDeltoid"))
    left.append(_cone(lua, lla, 0.046 * K * ga, 0.035 * K * ga, 0.03 * K, "leftUpperArm", name="leftUpperArm"))
    left.append(_ell(lua + 0.5 * (lla - lua) + v([0, 0.004, 0.006]) * K, v([0.09, 0.042, 0.044]) * K * ga,
                     0.03 * K, "leftUpperArm", name="leftBiceps"))
    left.append(_cone(lla, lh, 0.037 * K * ga, 0.025 * K * ga, 0.025 * K, "leftLowerArm", name="leftForearm"))
    left.append(_ell(lla + 0.28 * (lh - lla), v([0.085, 0.036, 0.041]) * K * ga, 0.03 * K, "leftLowerArm",
                     name="leftForearmBulge"))
    # hand: palm, thumb, fingers (sizes follow the hand joints, which carry pr["hands"])
    hs = K * pr["hands"]
    left.append(_box(lh + v([0.047, -0.003, -0.004]) * hs, v([0.046, 0.0125, 0.038]) * hs, 0.011 * hs,
                     0.02 * hs, "leftHand", name="leftPalm"))
    tm, tp, td = P["leftThumbMetacarpal"], P["leftThumbProximal"], P["leftThumbDistal"]
    left.append(_ell(0.5 * (tm + tp) + v([-0.004, -0.002, -0.004]) * hs, v([0.028, 0.013, 0.016]) * hs,
                     0.012 * hs, "leftThumbMetacarpal", name="leftThenar"))
    left.append(_cone(tm, tp, 0.0125 * hs, 0.0105 * hs, 0.01 * hs, "leftThumbMetacarpal", name="leftThumb1"))
    left.append(_cone(tp, td, 0.0098 * hs, 0.0088 * hs, 0.006 * hs, "leftThumbProximal", name="leftThumb2"))
    left.append(_cone(td, ends["leftThumbDistal"], 0.0086 * hs, 0.0074 * hs, 0.005 * hs, "leftThumbDistal",
                      name="leftThumb3"))
    radii = {"Index": (0.0078, 0.0072, 0.0069, 0.0065, 0.0062, 0.0056),
             "Middle": (0.0080, 0.0074, 0.0071, 0.0067, 0.0064, 0.0058),
             "Ring": (0.0076, 0.0070, 0.0067, 0.0063, 0.0060, 0.0055),
             "Little": (0.0067, 0.0062, 0.0059, 0.0056, 0.0053, 0.0049)}
    for f, rad in radii.items():
        a, b, c = P[f"left{f}Proximal"], P[f"left{f}Intermediate"], P[f"left{f}Distal"]
        tip = ends[f"left{f}Distal"]
        left.append(_cone(a, b, rad[0] * hs, rad[1] * hs, 0.005 * hs, f"left{f}Proximal", name=f"left{f}1"))
        left.append(_cone(b, c, rad[2] * hs, rad[3] * hs, 0.004 * hs, f"left{f}Intermediate", name=f"left{f}2"))
        left.append(_cone(c, tip, rad[4] * hs, rad[5] * hs, 0.004 * hs, f"left{f}Distal", name=f"left{f}3"))
    # legs: the thighs stay apart below the crotch whatever the build
    lul, lll, lf, lt = P["leftUpperLeg"], P["leftLowerLeg"], P["leftFoot"], P["leftToes"]
    gl = g["legs"]
    r_thigh = min(0.086 * K * gl, 0.95 * lul[0])
    left.append(_cone(lul + v([0.006, -0.055, -0.004]) * K, lll, r_thigh, 0.054 * K * gl, 0.04 * K, "leftUpperLeg",
                      name="leftThigh"))
    left.append(_ell(lll + v([0, 0.0, 0.006]) * K, v([0.046, 0.050, 0.046]) * K * gl, 0.02 * K, "leftLowerLeg",
                     name="leftKnee"))
    left.append(_cone(lll, lf, 0.050 * K * gl, 0.034 * K * gl, 0.02 * K, "leftLowerLeg", name="leftShin"))
    left.append(_ell(lll + v([0.004, -0.125, -0.024]) * K, v([0.050, 0.100, 0.050]) * K * gl, 0.03 * K,
                     "leftLowerLeg", name="leftCalf"))
    left.append(_ell(lf, v([0.037, 0.037, 0.040]) * K, 0.02 * K, "leftFoot", name="leftAnkle"))
    fs = K * pr["feet"]
    top = lf[1] + 0.012 * fs  # the shoe's upper edge, a little above the ankle joint
    heel_z, toe_z = lf[2] - 0.072 * fs, ends["leftToes"][2] + 0.012 * fs
    ball_z = lt[2]
    e_y = 0.5 * top
    left.append(_box(v([lf[0], e_y, 0.5 * (heel_z + ball_z)]), v([0.047 * fs, e_y, 0.5 * (ball_z - heel_z)]),
                     0.024 * fs, 0.02 * K, "leftFoot", "shoe", name="leftShoeRear"))
    front_h = 0.5 * (lt[1] + 0.035 * fs)
    left.append(_box(v([lf[0], front_h, 0.5 * (ball_z - 0.01 * fs + toe_z)]),
                     v([0.046 * fs, front_h, 0.5 * (toe_z - ball_z + 0.01 * fs)]), 0.022 * fs, 0.02 * K, "leftToes",
                     "shoe", name="leftShoeFront"))

    # head, in the head frame: canonical offsets times s
    s = K * pr["head"]
    H = head
    jaw = r.jaw

    def hp(x, y, z):
        return H + v([x, y, z]) * s

    es = r.eye_scale
    eye_c = H + _EYE * s
    eye_r = 0.0122 * s * es
    prims.append(_ell(hp(0, 0.125, -0.006), v([0.077, 0.103, 0.096]) * s, 0.02 * s, "head", name="cranium"))
    prims.append(_ell(hp(0, 0.160, -0.022), v([0.074, 0.068, 0.086]) * s, 0.02 * s, "head", name="parietal"))
    prims.append(_ell(hp(0, 0.128, 0.080), v([0.052, 0.015, 0.017]) * s, 0.015 * s, "head", name="browRidge"))
    prims.append(_ell(hp(0, 0.084, 0.028), v([0.067 * jaw, 0.080, 0.066]) * s, 0.02 * s, "head", name="face"))
    prims.append(_ell(hp(0, 0.036, 0.022), v([0.054 * jaw, 0.030, 0.058]) * s, 0.02 * s, "head", R=_rot_x(0.38),
                      name="mandible"))
    prims.append(_ell(hp(0, 0.009, 0.074), v([0.019 * jaw, 0.014, 0.014]) * s, 0.016 * s, "head", name="chin"))
    prims.append(_ell(hp(0, 0.046, 0.070), v([0.036, 0.032, 0.028]) * s, 0.02 * s, "head", name="muzzle"))
    left.append(_ell(hp(0.050, 0.100, 0.050), v([0.020, 0.012, 0.020]) * s, 0.012 * s, "head",
                     name="leftCheekbone"))
    left.append(_ell(hp(0.077, 0.100, -0.010), v([0.009, 0.030, 0.018]) * s, 0.006 * s, "head",
                     R=_rot_x(-0.2), name="leftEar"))
    prims.append(_cone(hp(0, 0.117, 0.090), hp(0, 0.074, 0.112), 0.0052 * s, 0.0092 * s, 0.008 * s, "head",
                       "nose", name="noseBridge"))
    prims.append(_ell(hp(0, 0.067, 0.104), v([0.015, 0.008, 0.009]) * s, 0.006 * s, "head", "nose",
                      name="noseAla"))
    mouth_y = _MOUTH_Y
    left.append(_cone(hp(0.026, mouth_y + 0.001, 0.087), hp(0.0, mouth_y + 0.0045, 0.097), 0.0028 * s,
                      0.0043 * s, 0.004 * s, "head", "lips", name="leftUpperLip"))
    left.append(_cone(hp(0.024, mouth_y - 0.001, 0.087), hp(0.0, mouth_y - 0.0048, 0.096), 0.0028 * s,
                      0.0048 * s, 0.004 * s, "head", "lips", name="leftLowerLip"))
    bs = r.brow
    left.append(_cone(hp(0.014, 0.131, 0.092), hp(0.050, 0.134, 0.080), 0.0030 * s * bs, 0.0024 * s * bs,
                      0.004 * s, "head", "brow", name="leftBrow"))
    # hair: a cap (ellipsoid cut by a plane from the forehead hairline to the nape)
    hair_c = hp(0, 0.128, -0.012)
    hair_r = v([0.081, 0.108, 0.102]) * s
    if r.hair_style == "crop":
        hair_r = v([0.079, 0.106, 0.100]) * s
    n = v([0.0, 0.815, -0.579])
    cut = (n, hp(0, 0.178, 0.092), 0.012 * s)
    prims.append(_ell(hair_c, hair_r, 0.01 * s, "head", "hair", cut=cut, name="hair"))
    if r.hair_style == "bun":
        prims.append(_ell(hp(0, 0.175, -0.098), v([0.036, 0.034, 0.034]) * s, 0.015 * s, "head", "hair",
                          name="bun"))

    # subtractions: eye sockets, mouth slit; then the eyeballs
    subs = []
    left_subs = [_ell(hp(0.032, 0.113, 0.088), v([0.0165, 0.011, 0.013]) * s * es, 0.004 * s, "head", "socket",
                      name="leftSocket", op="subtract")]
    subs.append(_ell(hp(0, mouth_y, 0.099), v([0.026, 0.0016, 0.010]) * s, 0.0015 * s, "head", "mouth",
                     name="mouthSlit", op="subtract"))
    eyes = [_ell(eye_c, v([eye_r, eye_r, eye_r]), 0.002 * s, "head", "eye", name="leftEye")]

    def both(lst):
        out = []
        for p in lst:
            out += [p, p.mirrored()]
        return out

    allp = prims[:1] + both(left[:1]) + prims[1:] + both(left[1:]) + subs + both(left_subs) + both(eyes)
    face = _Face(H=np.array(H), s=float(s), eye=np.array(eye_c), eye_r=float(eye_r),
                 mouth=hp(0, mouth_y, 0.099), corner=H + _CORNER * s, jaw_pivot=H + _JAW_PIVOT * s,
                 chin=H + _CHIN * s, nose_tip=H + _NOSE_TIP * s, brow=H + _BROW * s,
                 cheek=hp(0.045, 0.070, 0.075), ear=hp(0.08, 0.1, -0.008))
    return allp, face


# -- 4. fields, marching cubes, zipping -----------------------------------------------------


class _Pair:
    """A primitive and its mirror image, combined first (``smin`` commutes, so the pair
    is exactly symmetric; adding them one after the other would not be, since ``smin``
    does not associate)."""

    def __init__(self, a: _Prim, b: _Prim):
        self.a, self.b, self.k, self.op = a, b, a.k, a.op

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        (la, ha), (lb, hb) = self.a.bounds(), self.b.bounds()
        return np.minimum(la, lb), np.maximum(ha, hb)

    def sdf(self, X: np.ndarray) -> np.ndarray:
        return _smin(self.a.sdf(X), self.b.sdf(X), self.k)


def _field_terms(prims: Sequence[_Prim]) -> list:
    """The primitives in evaluation order, each left/right pair merged into a :class:`_Pair`."""
    out: list = []
    i = 0
    while i < len(prims):
        p = prims[i]
        q = prims[i + 1] if i + 1 < len(prims) else None
        if q is not None and p.name.startswith("left") and q.name == _side_name(p.name):
            out.append(_Pair(p, q))
            i += 2
        else:
            out.append(p)
            i += 1
    return out


def _field_on_grid(prims: Sequence[_Prim], origin: np.ndarray, h: float, shape: tuple[int, int, int]) -> np.ndarray:
    """The combined field ``(nx, ny, nz)`` on the grid ``origin + h * (i, j, k)``: each
    primitive is evaluated only on the sub-box its bounds (plus its blend radius and 2 cm)
    touch, which leaves the zero level set exact (a primitive farther than that cannot
    change the smooth minimum near the surface). Positive = outside."""
    F = np.full(shape, 1.0)
    axes = [origin[d] + h * np.arange(shape[d]) for d in range(3)]
    for pr in _field_terms(prims):
        lo, hi = pr.bounds()
        m = pr.k + 0.02
        sl = []
        for d in range(3):
            i0 = max(int(np.floor((lo[d] - m - origin[d]) / h)), 0)
            i1 = min(int(np.ceil((hi[d] + m - origin[d]) / h)) + 1, shape[d])
            if i1 <= i0:
                break
            sl.append(slice(i0, i1))
        if len(sl) < 3:
            continue
        gx, gy, gz = np.meshgrid(axes[0][sl[0]], axes[1][sl[1]], axes[2][sl[2]], indexing="ij")
        X = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        d = pr.sdf(X).reshape(gx.shape)
        sub = F[sl[0], sl[1], sl[2]]
        if pr.op == "subtract":
            F[sl[0], sl[1], sl[2]] = -_smin(-sub, d, pr.k)
        else:
            F[sl[0], sl[1], sl[2]] = _smin(sub, d, pr.k)
    return F


def _polygonise(prims, lo, hi, h) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of the field on the grid from ``lo`` (a grid point) up to at least
    ``hi``, spacing ``h``. Faces wind counter-clockwise seen from outside."""
    from skimage.measure import marching_cubes

    shape = tuple(int(np.ceil((hi[d] - lo[d]) / h - 1e-9)) + 1 for d in range(3))
    F = _field_on_grid(prims, lo, h, shape)
    F[F == 0.0] = 1e-9  # no vertex exactly on a grid point: no degenerate triangles
    V, Fc, _, _ = marching_cubes(F, 0.0, spacing=(h, h, h), allow_degenerate=True, method="lewiner")
    return V + lo, Fc.astype(np.int64)


def _boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Boundary loops of an oriented mesh, each as vertex indices in the direction of its
    faces' own edges (a -> b for a face edge a -> b with no b -> a neighbour)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = int(faces.max()) + 1
    key = e[:, 0] * n + e[:, 1]
    rkey = e[:, 1] * n + e[:, 0]
    border = e[~np.isin(key, rkey)]
    nxt = dict(zip(border[:, 0].tolist(), border[:, 1].tolist()))
    if len(nxt) != len(border):
        raise RigError("internal: a boundary vertex is shared by two boundary loops")
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        cur = nxt[start]
        while cur != start:
            loop.append(cur)
            seen.add(cur)
            cur = nxt[cur]
        loops.append(np.array(loop))
    return loops


def _zip(V: np.ndarray, A: np.ndarray, B: np.ndarray, axis: int) -> np.ndarray:
    """Triangles joining loop A to loop B (vertex indices into ``V``; both circle the
    same ``axis``; A's edges run as in A's own faces, B's as in B's), oriented so each
    loop edge is used once in each direction: the union becomes closed."""
    c = V[A].mean(axis=0)
    u, w = [d for d in range(3) if d != axis]

    def unwrap(L):
        ang = np.arctan2(V[L, w] - c[w], V[L, u] - c[u])
        if np.unwrap(ang)[-1] < ang[0]:  # make the angle increase along the loop
            L, ang = L[::-1], ang[::-1]
        start = int(np.argmin(np.abs(ang)))
        return np.roll(L, -start), np.unwrap(np.roll(ang, -start))

    A2, ta = unwrap(A)
    B2, tb = unwrap(B)
    m, n = len(A2), len(B2)
    ta = np.append(ta, ta[0] + 2 * np.pi)
    tb = np.append(tb, tb[0] + 2 * np.pi)
    tris = []
    i = j = 0
    while i < m or j < n:
        if j >= n or (i < m and ta[i + 1] <= tb[j + 1]):
            tris.append((A2[i], A2[(i + 1) % m], B2[j % n]))
            i += 1
        else:
            tris.append((A2[i % m], B2[(j + 1) % n], B2[j]))
            j += 1
    T = np.array(tris, dtype=np.int64)
    # orientation: A's own faces use edge A[k] -> A[k+1] in A's original direction; the
    # band must use it the other way round
    a0, a1 = int(A[0]), int(A[1])
    e = np.concatenate([T[:, [0, 1]], T[:, [1, 2]], T[:, [2, 0]]])
    if np.any((e[:, 0] == a0) & (e[:, 1] == a1)):
        T = T[:, ::-1]
    return T


def mesh_edges_manifold(faces: np.ndarray) -> dict[str, int]:
    """Edge counts of a triangle mesh: ``edges``, ``boundary`` (used by one face),
    ``nonmanifold`` (by three or more), ``misoriented`` (two faces using an edge in the same
    direction). A closed, consistently oriented mesh has zero of the last three."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    und = np.sort(e, axis=1)
    _, counts = np.unique(und, axis=0, return_counts=True)
    _, dcounts = np.unique(e, axis=0, return_counts=True)
    return {"edges": int(len(counts)), "boundary": int(np.sum(counts == 1)), "nonmanifold": int(np.sum(counts > 2)),
            "misoriented": int(np.sum(dcounts > 1))}


def mesh_volume(V: np.ndarray, faces: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Signed volume enclosed by triangles ``faces`` over vertices ``V`` (``(..., N, 3)``
    for a batch of poses), as a fan of tetrahedra from ``centre`` (default the origin):
    the mesh volume when it is closed, the local volume of a patch seen from ``centre``
    otherwise. Positive for counter-clockwise-outside faces."""
    V = np.asarray(V, dtype=float)
    c = np.zeros(V.shape[:-2] + (3,)) if centre is None else np.asarray(centre, dtype=float)
    a = V[..., faces[:, 0], :] - c[..., None, :]
    b = V[..., faces[:, 1], :] - c[..., None, :]
    d = V[..., faces[:, 2], :] - c[..., None, :]
    return np.einsum("...i,...i->...", a, np.cross(b, d)).sum(axis=-1) / 6.0


_NECK_GAP = 0.03
"""Least height of neck (metres, for 1.75 m) between the shoulders' top and the chin,
where the head's grid meets the body's."""


def _neck_window(prims: Sequence[_Prim]) -> tuple[float, float]:
    """(the highest point of the shoulders and trunk, the lowest of the head) in metres,
    from the primitives' bounds: the head seam must lie between them."""
    below = [p.bounds()[1][1] for p in prims if p.op == "union" and p.owner not in ("head", "neck")]
    chin = [p.bounds()[0][1] for p in prims if p.op == "union" and p.owner == "head"]
    return max(below), min(chin)


def _mesh(prims: list[_Prim], sk: Skeleton, k: float, face: _Face, *, h_body: float, h_head: float,
          h_hand: float) -> tuple[np.ndarray, np.ndarray]:
    """One closed surface from three marching-cubes grids zipped at the forearms and the
    neck. Needs primitives whose only crossings of those planes are the forearms and the
    neck (the neck plane lies between the shoulders' top and the chin; checked)."""
    P = dict(zip(sk.names, sk.rest_positions()))
    los, his = zip(*(p.bounds() for p in prims if p.op == "union"))
    lo, hi = np.min(los, axis=0), np.max(his, axis=0)
    pad = 2.5 * h_body
    # seams: forearm plane (x), neck plane (y), on the body grid
    x_cut = np.round((P["leftLowerArm"][0] + 0.55 * (P["leftHand"][0] - P["leftLowerArm"][0])) / h_body) * h_body
    shoulder_top, chin_bottom = _neck_window(prims)
    if chin_bottom - shoulder_top < 0.5 * _NECK_GAP * k:  # pragma: no cover - generate_character sees to it
        raise RigError(f"internal: the neck is too short to place the head seam (shoulders up to "
                       f"{shoulder_top:.3f} m, chin down to {chin_bottom:.3f} m)")
    y_cut = 0.5 * (shoulder_top + chin_bottom)
    nby = int(np.ceil((y_cut - (lo[1] - pad)) / h_body))
    body_lo = np.array([-x_cut, y_cut - nby * h_body, np.floor((lo[2] - pad) / h_body) * h_body])
    body_hi = np.array([x_cut, y_cut, hi[2] + pad])
    Vb, Fb = _polygonise(prims, body_lo, body_hi, h_body)
    # head grid: symmetric about x = 0, from just above the neck plane
    y_h0 = y_cut + 0.7 * h_body
    head = [p for p in prims if p.owner in ("head", "neck")]
    hl = np.min([p.bounds()[0] for p in head], axis=0)
    hh = np.max([p.bounds()[1] for p in head], axis=0)
    nx = int(np.ceil((max(-hl[0], hh[0]) + 3 * h_head) / h_head))
    head_lo = np.array([-nx * h_head, y_h0, hl[2] - 3 * h_head])
    head_hi = np.array([nx * h_head, hh[1] + 3 * h_head, hh[2] + 3 * h_head])
    Vh, Fh = _polygonise(prims, head_lo, head_hi, h_head)
    # the left hand (its grid starts just past the body's forearm plane); the right is its mirror
    x_h0 = x_cut + 0.7 * h_body
    hand = [p for p in prims if p.bounds()[1][0] > x_h0 and p.op == "union"]
    al = np.min([p.bounds()[0] for p in hand], axis=0)
    ah = np.max([p.bounds()[1] for p in hand], axis=0)
    hand_lo = np.array([x_h0, al[1] - 3 * h_hand, al[2] - 3 * h_hand])
    hand_hi = ah + 3 * h_hand
    Va, Fa = _polygonise(prims, hand_lo, hand_hi, h_hand)
    Vr, Fr = Va * _MIRROR, Fa[:, ::-1].copy()

    parts = [(Vb, Fb), (Vh, Fh), (Va, Fa), (Vr, Fr)]
    V = np.concatenate([p[0] for p in parts])
    base = np.cumsum([0] + [len(p[0]) for p in parts])
    F = [p[1] + b for p, b in zip(parts, base)]
    loops = [[lp + b for lp in _boundary_loops(f - b)] for f, b in zip(F, base)]
    body_loops = loops[0]

    def find(lps, axis, value, what):
        hit = [lp for lp in lps if np.allclose(V[lp, axis], value, atol=1e-6)]
        if len(hit) != 1:
            raise RigError(f"internal: expected one boundary loop at the {what} seam, found {len(hit)}")
        return hit[0]

    if len(body_loops) != 3 or len(loops[1]) != 1 or len(loops[2]) != 1 or len(loops[3]) != 1:
        raise RigError(f"internal: unexpected open boundaries (body {len(body_loops)}, head {len(loops[1])}, "
                       f"hands {len(loops[2])}/{len(loops[3])}); the seams must cut the neck and forearms only")
    bands = [
        _zip(V, find(body_loops, 1, y_cut, "neck"), loops[1][0], axis=1),
        _zip(V, find(body_loops, 0, x_cut, "left forearm"), loops[2][0], axis=0),
        _zip(V, find(body_loops, 0, -x_cut, "right forearm"), loops[3][0], axis=0),
    ]
    faces = np.concatenate(F + bands)
    return V, faces


# -- 5. smoothing ---------------------------------------------------------------------------


def _adjacency(faces: np.ndarray, n: int):
    """Row-normalised vertex adjacency (scipy CSR): ``A @ x`` averages each vertex's
    neighbours (the umbrella operator ``A - I`` is the uniform Laplacian)."""
    from scipy import sparse

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    A = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    A.data[:] = 1.0  # duplicate entries were summed
    deg = np.asarray(A.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(deg, 1.0)) @ A


def _taubin(V: np.ndarray, A, *, iterations: int = 4, lam: float = 0.5, mu: float = -0.53) -> np.ndarray:
    """Taubin's lambda|mu smoothing (Taubin 1995, "A signal processing approach to fair
    surface design"): a shrinking step ``lam`` then an inflating step ``mu`` per
    iteration, a low-pass filter that leaves the volume nearly unchanged (here under
    0.5 %) where plain Laplacian smoothing would shrink thin parts such as fingers."""
    V = V.copy()
    for _ in range(iterations):
        V += lam * (A @ V - V)
        V += mu * (A @ V - V)
    return V


def _symmetrise(V_smooth: np.ndarray, V_raw: np.ndarray) -> np.ndarray:
    """Mirror-symmetric positions after smoothing. The raw marching-cubes vertices of a
    symmetric field on a symmetric grid come in exact mirror pairs, but the triangulation
    does not (Lewiner's cell cases are not mirror-invariant), so smoothing drifts each side
    differently by a few millimetres; averaging each vertex with its partner's mirror
    image restores the symmetry."""
    from scipy.spatial import cKDTree

    d, j = cKDTree(V_raw).query(V_raw * _MIRROR)
    ok = d < 1e-7
    out = V_smooth.copy()
    out[ok] = 0.5 * (V_smooth[ok] + V_smooth[j[ok]] * _MIRROR)
    return out


def _vertex_normals(V: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(N, 3)`` (outward for counter-clockwise faces)."""
    fn = np.cross(V[faces[:, 1]] - V[faces[:, 0]], V[faces[:, 2]] - V[faces[:, 0]])
    N = np.zeros_like(V)
    for k in range(3):
        np.add.at(N, faces[:, k], fn)
    n = np.linalg.norm(N, axis=1, keepdims=True)
    return N / np.maximum(n, 1e-20)


# -- 6. owners, zones, colours ----------------------------------------------------------------


def _nearest_primitive(prims: Sequence[_Prim], V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vertex, the union primitive whose surface is nearest (smallest |distance|:
    on a smooth union every primitive is at or outside the surface, but where a socket or
    the mouth was carved out the primitive it was carved from is inside), as an index into
    ``prims``, and that distance."""
    best = np.full(len(V), np.inf)
    arg = np.full(len(V), -1, dtype=np.int64)
    for i, pr in enumerate(prims):
        if pr.op != "union":
            continue
        lo, hi = pr.bounds()
        sel = np.flatnonzero(np.all((V >= lo - 0.03) & (V <= hi + 0.03), axis=1))
        if not len(sel):
            continue
        d = np.abs(pr.sdf(V[sel]))
        better = d < best[sel]
        best[sel[better]] = d[better]
        arg[sel[better]] = i
    if np.any(arg < 0):
        raise RigError(f"internal: {int(np.sum(arg < 0))} vertices are near no primitive")
    return arg, best


def _zones(r: _Recipe, prims: list[_Prim], nearest: np.ndarray, V: np.ndarray, sk: Skeleton,
           face: _Face) -> np.ndarray:
    """Colour zone of every vertex (index into :data:`ZONES`): features from the nearest
    primitive's tag, clothing from rules on the owner joint and the position (waistline,
    collar, sleeve end). The character wears a shirt, trousers and shoes."""
    Z = {n: i for i, n in enumerate(ZONES)}
    P = dict(zip(sk.names, sk.rest_positions()))
    owner = np.array([prims[i].owner for i in nearest])
    tag = np.array([prims[i].tag for i in nearest])
    base = np.array([o.replace("left", "").replace("right", "") for o in owner])
    x, y, z = V[:, 0], V[:, 1], V[:, 2]
    out = np.full(len(V), Z["skin"], dtype=np.uint8)
    torso = np.isin(base, ["hips", "spine", "chest", "upperChest", "Shoulder"])
    waist_y = P["hips"][1] + 0.55 * (P["spine"][1] - P["hips"][1])
    out[torso & (y >= waist_y)] = Z["shirt"]
    out[torso & (y < waist_y)] = Z["trousers"]
    neck_y = P["neck"][1]
    h = P["head"][1] - neck_y
    collar = neck_y + 0.12 * h - 0.45 * h * np.clip(z / 0.06, 0.0, 1.0) * (np.abs(x) < 0.05)
    out[(base == "neck") & (y < collar)] = Z["shirt"]
    ua, la, hd = P["leftUpperArm"][0], P["leftLowerArm"][0], P["leftHand"][0]
    sleeve_x = ua + 0.45 * (la - ua) if r.sleeves == "short" else hd - 0.035 * (hd - la) / 0.25
    arm = np.isin(base, ["UpperArm", "LowerArm"])
    out[arm & (np.abs(x) < sleeve_x)] = Z["shirt"]
    out[np.isin(base, ["UpperLeg", "LowerLeg"])] = Z["trousers"]
    out[np.isin(base, ["Foot"]) & (tag == "body")] = Z["trousers"]
    out[tag == "shoe"] = Z["shoes"]
    out[tag == "hair"] = Z["hair"]
    out[tag == "brow"] = Z["brow"]
    lips = tag == "lips"
    lip_d = np.min([np.abs(p.sdf(V)) for p in prims if p.tag == "lips"], axis=0)
    out[lips & (lip_d < 0.0015 * face.s) & (np.abs(x) < (face.corner[0] - 0.002 * face.s))] = Z["lips"]
    slit = next(p for p in prims if p.name == "mouthSlit")
    out[(base == "head") & (slit.sdf(V) < 0.0012 * face.s)] = Z["mouth"]
    eye = tag == "eye"
    side = np.where(x >= 0, 1.0, -1.0)
    c = face.eye * np.stack([side, np.ones_like(side), np.ones_like(side)], axis=1)
    u = V - c
    cosang = u[:, 2] / np.maximum(np.linalg.norm(u, axis=1), 1e-12)
    d_ball = np.linalg.norm(u, axis=1)
    # the upper lid's margin: a lash line just above the eyeball, in front
    lash = (base == "head") & ~eye & (d_ball < face.eye_r + 0.004 * face.s) & (u[:, 1] > 0.1 * face.eye_r)
    out[lash & (u[:, 2] > 0.0)] = Z["lashes"]
    on_ball = eye & (d_ball < face.eye_r * 1.04)
    out[on_ball] = Z["sclera"]
    out[on_ball & (cosang > np.cos(np.radians(36)))] = Z["iris"]
    out[on_ball & (cosang > np.cos(np.radians(17)))] = Z["pupil"]
    return out


def _colours(r: _Recipe, zones: np.ndarray, V: np.ndarray, A) -> np.ndarray:
    """Linear RGB ``(N, 3)`` per vertex from the zone palette, with a faint fabric
    variation on clothes (deterministic: a few sinusoids with phases from the seed), and
    zone borders softened by one averaging step over the mesh graph (``A``)."""
    table = np.stack([r.colours[z] for z in ZONES])
    C = table[zones].copy()
    rng = np.random.default_rng([r.seed, 0xC0102])
    waves = np.zeros(len(V))
    for _ in range(4):
        kvec = rng.normal(size=3) * 60.0
        waves += np.sin(V @ kvec + rng.uniform(0, 2 * np.pi))
    cloth = np.isin(zones, [ZONES.index(z) for z in ("shirt", "trousers")])
    C[cloth] *= (1.0 + 0.025 * waves[cloth])[:, None]
    C = 0.5 * C + 0.5 * (A @ C)
    return np.clip(C, 0.0, 1.0)


# -- 7. skin weights --------------------------------------------------------------------------


def _bone_segments(sk: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """``(J, 3)`` start and end of each joint's bone: its child (the spine, neck or middle
    finger where there are several), else its end site."""
    P = sk.rest_positions()
    ends = sk.rest_end_sites()
    prefer = {"hips": "spine", "upperChest": "neck", "leftHand": "leftMiddleProximal",
              "rightHand": "rightMiddleProximal"}
    B = np.empty_like(P)
    for j, n in enumerate(sk.names):
        kids = sk.children(j)
        if n in ends:
            B[j] = ends[n]
        elif n in prefer:
            B[j] = P[sk.index(prefer[n])]
        elif kids:
            B[j] = P[kids[0]]
        else:  # pragma: no cover - every canonical leaf has an end site
            B[j] = P[j] + 0.05 * (P[j] - P[sk.parents[j]])
    return P, B


def _segment_distance(V: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((V - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(V - (a + t[:, None] * ab), axis=1)


def _skin_weights(sk: Skeleton, V: np.ndarray, owner: np.ndarray, A, *, smooth_iterations: int = 4,
                  sigma_k: float = 0.4, hinge_k: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """``(joints (N, 4) uint8, weights (N, 4) float32)``. Each vertex may be weighted
    only to its owner joint (from the nearest primitive), the owner's parent and its
    children; within those, a Gaussian falloff of the distance to each bone segment
    beyond the nearest one (width 40 % of that distance, so the blend zone scales with the
    limb's thickness: about +-5 cm at the elbow, +-8 mm at a finger joint). The weights
    are then Laplacian-smoothed over the mesh graph, the four largest kept and
    normalised; float32 sums are exact to 1e-6."""
    J = len(sk)
    Pj, Bj = _bone_segments(sk)
    N = len(V)
    D = np.stack([_segment_distance(V, Pj[j], Bj[j]) for j in range(J)], axis=1)  # (N, J)
    # the pelvis is wide: the hips also own a segment across the hip joints, 4 cm (for 1.75 m) above
    # them (else the pelvis's sides would follow the thighs)
    up = np.array([0.0, 0.04 * float(np.ptp(V[:, 1])) / 1.75, 0.0])
    a, b = Pj[sk.index("leftUpperLeg")] + up, Pj[sk.index("rightUpperLeg")] + up
    D[:, 0] = np.minimum(D[:, 0], _segment_distance(V, a, b))
    # the head is rigid: everything its primitives own is the head's alone (the face lies
    # as far from the head's axis as from the neck's); the jaw-neck seam is blended by the
    # smoothing below
    head = sk.index("head")
    D[owner == head, head] = 0.0
    allowed = np.zeros((J, J), dtype=bool)
    for j in range(J):
        allowed[j, j] = True
        if sk.parents[j] >= 0:
            allowed[j, sk.parents[j]] = True
        for c in sk.children(j):
            allowed[j, c] = True
    legs = [sk.index("leftUpperLeg"), sk.index("rightUpperLeg")]
    allowed[np.ix_(legs, legs)] = True  # the crotch: both thighs share it
    mask = allowed[owner]  # (N, J)
    Dm = np.where(mask, D, np.inf)
    nearest = np.argmin(Dm, axis=1)
    dmin = Dm[np.arange(N), nearest][:, None]
    # hinges (elbows, knees) blend over a narrower band than ball joints and the spine
    width = np.full((J, J), sigma_k)
    for side in ("left", "right"):
        for a, b in (("UpperArm", "LowerArm"), ("UpperLeg", "LowerLeg")):
            ia, ib = sk.index(side + a), sk.index(side + b)
            width[ia, ib] = width[ib, ia] = hinge_k
    sigma = np.maximum(width[nearest] * dmin, 0.002)
    W = np.where(mask, np.exp(-(((Dm - dmin) / sigma) ** 2)), 0.0)
    W /= W.sum(axis=1, keepdims=True)
    for _ in range(smooth_iterations):
        W = 0.5 * W + 0.5 * (A @ W)
    order = np.argsort(-W, axis=1, kind="stable")[:, :4]
    top = np.take_along_axis(W, order, axis=1)
    top = np.where(top > 1e-3, top, 0.0)
    top /= top.sum(axis=1, keepdims=True)
    top = top.astype(np.float32)
    top[:, 0] = np.float32(1.0) - top[:, 1:].sum(axis=1, dtype=np.float32)
    joints = np.where(top > 0, order, 0).astype(np.uint8)
    if N and not np.all(np.abs(top.sum(axis=1, dtype=np.float64) - 1.0) < 1e-5):  # pragma: no cover
        raise RigError("internal: skin weights do not sum to 1")
    return joints, top


# -- 8. the ARKit face shapes -------------------------------------------------------------


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=float) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(Q: np.ndarray, c, radii) -> np.ndarray:
    """Compact smooth bump ``(1 - q)^3`` with ``q = |(Q - c) / radii|^2``, zero for q >= 1
    (zero value, slope and curvature at its edge: no crease where a shape key stops)."""
    q = np.sum(((Q - np.asarray(c, dtype=float)) / np.asarray(radii, dtype=float)) ** 2, axis=1)
    return np.clip(1.0 - q, 0.0, None) ** 3


def _rotate_about_x(Q: np.ndarray, pivot, angle: np.ndarray) -> np.ndarray:
    """Displacement ``(N, 3)`` of points ``Q`` turned by ``angle`` (per point, radians)
    about the X axis through ``pivot``; positive angles turn +Y towards +Z."""
    d = Q - np.asarray(pivot, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros_like(Q)
    out[:, 1] = d[:, 1] * c - d[:, 2] * s - d[:, 1]
    out[:, 2] = d[:, 1] * s + d[:, 2] * c - d[:, 2]
    return out


def _rotate_about_y(Q: np.ndarray, pivot, angle: np.ndarray) -> np.ndarray:
    """As :func:`_rotate_about_x`, about Y; positive angles turn +Z towards +X."""
    d = Q - np.asarray(pivot, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros_like(Q)
    out[:, 0] = d[:, 0] * c + d[:, 2] * s - d[:, 0]
    out[:, 2] = -d[:, 0] * s + d[:, 2] * c - d[:, 2]
    return out


def _face_fields(Q: np.ndarray, eye: np.ndarray, eye_r: float) -> dict[str, np.ndarray]:
    """Region weights (each ``(N,)`` in [0, 1]) on head-frame points ``Q`` (left side
    where sided), shared by several shapes."""
    x, y, z = Q[:, 0], Q[:, 1], Q[:, 2]
    ax = np.abs(x)
    # the jaw: everything below the mouth line, in front of the ear, above the throat
    hw = 0.0018 + 0.02 * _smoothstep(0.02, 0.045, ax)
    y_split = _MOUTH_Y - 0.012 * _smoothstep(0.022, 0.05, ax)
    jaw = _smoothstep(y_split + hw, y_split - hw, y) * _smoothstep(-0.03, 0.02, z)
    jaw *= 1.0 - _smoothstep(0.0, 0.025, -y) * (1.0 - _smoothstep(0.02, 0.06, z))
    jaw *= 1.0 - _smoothstep(0.062, 0.08, ax)
    lips = _bump(Q, [0.0, _MOUTH_Y, 0.094], [0.040, 0.022, 0.028])
    upper = _smoothstep(_MOUTH_Y - 0.0015, _MOUTH_Y + 0.0015, y)
    corner = _bump(Q, _CORNER, [0.022, 0.020, 0.022])
    left_half = _smoothstep(-0.006, 0.012, x)
    d_eye = np.linalg.norm(Q - eye, axis=1)
    # eyelids: flat-topped regions over the socket (the lid margin moves fully)
    around_eye = (1.0 - _smoothstep(0.017, 0.027, np.abs(x - eye[0]))) * _smoothstep(eye[2] - 0.012, eye[2], z)
    around_eye *= (d_eye > eye_r * 1.02) * (1.0 - _smoothstep(eye_r + 0.004, eye_r + 0.010, d_eye))
    upper_lid = around_eye * _smoothstep(eye[1] - 0.003, eye[1] + 0.002, y)
    upper_lid *= 1.0 - _smoothstep(eye[1] + 0.012, eye[1] + 0.021, y)
    lower_lid = around_eye * _smoothstep(eye[1] - 0.001, eye[1] - 0.005, y)
    lower_lid *= 1.0 - _smoothstep(eye[1] - 0.010, eye[1] - 0.018, y)
    return {"jaw": jaw, "lips": lips, "upper": upper, "lower": 1.0 - upper, "corner": corner,
            "left_half": left_half, "upper_lid": upper_lid, "lower_lid": lower_lid, "d_eye": d_eye}


def _left_shapes(Q: np.ndarray, is_eye: np.ndarray, eye: np.ndarray, eye_r: float) -> dict[str, np.ndarray]:
    """The sided shapes for the left side (+X) and the symmetric ones, as displacements
    ``(N, 3)`` in head-frame metres (scale 1) of points ``Q``."""
    f = _face_fields(Q, eye, eye_r)
    n = len(Q)
    out: dict[str, np.ndarray] = {}

    def vec(w, d):
        return w[:, None] * np.asarray(d, dtype=float)[None, :]

    skin = ~is_eye
    # eyes: the lid turns about the eye's horizontal axis; the eyeball turns about its centre
    out["eyeBlinkLeft"] = _rotate_about_x(Q, eye, 1.05 * f["upper_lid"] * skin) + \
        _rotate_about_x(Q, eye, -0.25 * f["lower_lid"] * skin)
    u = Q - eye
    cosang = u[:, 2] / np.maximum(np.linalg.norm(u, axis=1), 1e-12)
    gaze = is_eye * _smoothstep(np.cos(np.radians(62)), np.cos(np.radians(38)), cosang)
    lid_follow = 0.25 * f["upper_lid"] * skin
    out["eyeLookDownLeft"] = _rotate_about_x(Q, eye, 0.30 * gaze + 0.8 * lid_follow)
    out["eyeLookUpLeft"] = _rotate_about_x(Q, eye, -0.30 * gaze - 0.5 * lid_follow)
    out["eyeLookInLeft"] = _rotate_about_y(Q, eye, -0.35 * gaze)
    out["eyeLookOutLeft"] = _rotate_about_y(Q, eye, 0.35 * gaze)
    out["eyeSquintLeft"] = _rotate_about_x(Q, eye, -0.28 * f["lower_lid"] * skin) + \
        _rotate_about_x(Q, eye, 0.15 * f["upper_lid"] * skin)
    out["eyeWideLeft"] = _rotate_about_x(Q, eye, -0.22 * f["upper_lid"] * skin)
    brow = _bump(Q, _BROW, [0.030, 0.016, 0.030]) * skin
    out["browDownLeft"] = vec(brow, [-0.002, -0.006, 0.001])
    out["browOuterUpLeft"] = vec(_bump(Q, _BROW + [0.014, 0.001, -0.008], [0.024, 0.022, 0.026]) * skin,
                                 [0.0, 0.008, 0.0])
    out["cheekSquintLeft"] = vec(_bump(Q, [0.045, 0.088, 0.068], [0.025, 0.02, 0.03]) * skin, [0.0, 0.003, 0.001])
    out["noseSneerLeft"] = vec(_bump(Q, [0.013, 0.076, 0.100], [0.016, 0.018, 0.02]), [0.0005, 0.003, 0.0])
    # mouth: corners, lips halves
    c, lips, up, lo, half = f["corner"], f["lips"], f["upper"], f["lower"], f["left_half"]
    smile = _bump(Q, _CORNER + [0.002, 0.002, -0.002], [0.028, 0.026, 0.026])
    out["mouthSmileLeft"] = vec(smile, [0.007, 0.011, -0.004]) + vec(_bump(Q, [0.04, 0.075, 0.07], [0.024, 0.02,
                                                                                                  0.03]),
                                                                     [0.0, 0.002, 0.001])
    out["mouthFrownLeft"] = vec(c, [0.001, -0.005, -0.001])
    out["mouthDimpleLeft"] = vec(c, [0.002, 0.0, -0.004])
    out["mouthStretchLeft"] = vec(c, [0.005, -0.002, -0.002])
    out["mouthPressLeft"] = vec(lips * half * up, [0.0, -0.0015, -0.001]) + vec(lips * half * lo, [0.0, 0.0015, -0.001])
    out["mouthLowerDownLeft"] = vec(lips * half * lo, [0.0, -0.004, 0.0])
    out["mouthUpperUpLeft"] = vec(lips * half * up, [0.0, 0.004, 0.0])
    out["mouthLeft"] = vec(lips, [0.006, 0.0, -0.001])
    # symmetric shapes
    jaw = f["jaw"]
    opened = _rotate_about_x(Q, _JAW_PIVOT, 0.21 * jaw) + vec(jaw, [0.0, -0.008, 0.005])
    out["jawOpen"] = opened
    out["jawForward"] = vec(jaw, [0.0, 0.0, 0.006])
    out["jawLeft"] = vec(jaw, [0.007, 0.0, 0.0])
    out["mouthClose"] = vec(lips * lo, [0.0, 0.003, 0.0]) + vec(lips * up, [0.0, -0.002, 0.0])
    x = Q[:, 0]
    funnel = np.zeros((n, 3))
    funnel[:, 0] = -0.25 * x * lips
    funnel += vec(lips, [0.0, 0.0, 0.005]) + vec(lips * up, [0.0, 0.002, 0.0]) + vec(lips * lo, [0.0, -0.002, 0.0])
    out["mouthFunnel"] = funnel
    pucker = np.zeros((n, 3))
    pucker[:, 0] = -0.4 * x * lips
    pucker += vec(lips, [0.0, 0.0, 0.007]) + vec(lips * up, [0.0, -0.001, 0.0]) + vec(lips * lo, [0.0, 0.001, 0.0])
    out["mouthPucker"] = pucker
    out["mouthRollLower"] = vec(lips * lo, [0.0, 0.0015, -0.003])
    out["mouthRollUpper"] = vec(lips * up, [0.0, -0.0015, -0.003])
    out["mouthShrugLower"] = vec(lips * lo, [0.0, 0.003, 0.002]) + vec(_bump(Q, [0, 0.01, 0.08], [0.03, 0.03, 0.03]),
                                                                      [0.0, 0.002, 0.001])
    out["mouthShrugUpper"] = vec(lips * up, [0.0, 0.003, 0.001])
    inner = _bump(Q, [0.0, 0.133, 0.092], [0.032, 0.02, 0.03]) * (1.0 - _smoothstep(0.01, 0.03, np.abs(x)) * 0.5)
    out["browInnerUp"] = vec(inner * skin, [0.0, 0.008, 0.0])
    puff = _bump(Q, [0.046, 0.055, 0.068], [0.03, 0.03, 0.035]) + _bump(Q, [-0.046, 0.055, 0.068],
                                                                         [0.03, 0.03, 0.035])
    side = np.sign(x)
    out["cheekPuff"] = np.stack([0.007 * side * puff, np.zeros(n), 0.004 * puff], axis=1)
    out["tongueOut"] = vec(_bump(Q, [0.0, _MOUTH_Y - 0.006, 0.097], [0.018, 0.012, 0.02]), [0.0, -0.004, 0.008])
    return out


def _face_targets(V: np.ndarray, head_mask: np.ndarray, zones: np.ndarray, face: _Face) -> np.ndarray:
    """``(52, N, 3)`` float32 displacements in :data:`ARKIT_SHAPES` order. Built on head
    vertices in the head frame (scaled to the canonical head), for the left side; each
    ``...Right`` shape is the mirror image ``M f(M v)`` (M flips X); zero off the head."""
    s = face.s
    eye_zones = [ZONES.index(z) for z in ("sclera", "iris", "pupil")]
    idx = np.flatnonzero(head_mask)
    Q = (V[idx] - face.H) / s
    is_eye = np.isin(zones[idx], eye_zones)
    eye = (face.eye - face.H) / s
    eye_r = face.eye_r / s
    left = _left_shapes(Q, is_eye, eye, eye_r)
    right = _left_shapes(Q * _MIRROR, is_eye, eye, eye_r)
    out = np.zeros((len(ARKIT_SHAPES), len(V), 3), dtype=np.float32)
    for k, name in enumerate(ARKIT_SHAPES):
        if name.endswith("Right"):  # jawRight, mouthRight, eyeBlinkRight, ...: mirror images
            d = right[name[: -len("Right")] + "Left"] * _MIRROR
        else:
            d = left[name]
        d = np.where(np.abs(d) < 1e-7, 0.0, d)
        out[k, idx] = (d * s).astype(np.float32)
    return out


# -- the model and its file -----------------------------------------------------------------


@dataclass(eq=False)
class CharacterModel:
    """A generated character in its rest pose (T-pose, metres, +Y up, facing +Z).

    ===================  ==============  ====================================================
    ``skeleton``         Skeleton        the canonical 52 joints scaled to the character
                                         (world-aligned offsets, joint 0 ``hips``)
    ``vertices``         ``(N, 3)``      the closed skin surface; the sole at y = 0
    ``faces``            ``(F, 3)``      triangles, counter-clockwise seen from outside
    ``normals``          ``(N, 3)``      unit, outward
    ``colors``           ``(N, 3)``      linear RGB in [0, 1] (glTF ``COLOR_0``)
    ``zones``            ``(N,)`` uint8  index into :data:`ZONES` (skin, shirt, ...)
    ``joints``           ``(N, 4)``      skeleton joint indices (``JOINTS_0``)
    ``weights``          ``(N, 4)``      float32, each row sums to 1 (``WEIGHTS_0``)
    ``shape_names``      tuple           :data:`ARKIT_SHAPES`
    ``shapes``           ``(52, N, 3)``  float32 displacements of the shape keys
    ``landmarks``        dict            feature points ``(3,)``: eyes, mouth corners,
                                         chin, nose tip, brows, cheeks, ears, jaw pivot
    ``info``             dict            the recipe (options, proportions, colours in
                                         sRGB 0-255) and the build figures
    ===================  ==============  ====================================================
    """

    skeleton: Skeleton
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    zones: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    shape_names: tuple[str, ...]
    shapes: np.ndarray
    landmarks: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def height_m(self) -> float:
        """Sole to the top of the hair, metres."""
        return float(np.ptp(self.vertices[:, 1]))

    def __repr__(self) -> str:
        return (f"CharacterModel({self.info.get('name', '?')!r}, {self.height_m:.3f} m, {len(self.vertices)} vertices, "
                f"{len(self.faces)} triangles, {len(self.skeleton)} joints, {len(self.shape_names)} shape keys)")


def generate_character(
    *,
    preset: str | None = None,
    height_m: float | None = None,
    build: str | None = None,
    figure: str | None = None,
    proportions: Mapping[str, float] | None = None,
    stylize: float | None = None,
    seed: int | None = None,
    skin: float | None = None,
    hair_style: str | None = None,
    sleeves: str | None = None,
    resolution_m: float = 0.012,
) -> CharacterModel:
    """A parametric humanoid, deterministic for its arguments.

    ``preset``: a name in :data:`PRESETS` (``"ada"``, ``"ben"``, ``"chen"``, ``"dara"``)
    giving defaults; explicit arguments override it. ``height_m`` (default 1.75): sole to
    hair top, exact to 1 mm. ``build``: a :data:`BUILDS` name (``average``, ``slim``,
    ``athletic``, ``heavy``). ``figure``: ``neutral``, ``masculine`` or ``feminine``
    (shoulder/hip width, bust, jaw, brows). ``proportions``: multipliers (0.5-1.6) of
    segment groups, keys :data:`PROPORTION_KEYS` (e.g. ``{"legs": 1.1, "head": 0.95}``).
    ``stylize`` 0-1: bigger head, eyes and hands, shorter legs. ``seed``: varies
    proportions (about 2 %), girths (3 %), clothing, hair and eye colours; ``skin`` a tone
    from 0 (light) to 1 (deep), from the seed when None. ``hair_style``: ``cap``,
    ``crop``, ``bun`` (``auto``: from the seed); ``sleeves``: ``short``, ``long``
    (``auto``). ``resolution_m``: the body grid's spacing for a 1.75 m figure (head and
    hands are sampled 4x finer, in proportion to their size).

    Takes about 1.5 s on two cores. Raises :class:`~mocap.errors.UsageError` naming any
    unknown preset, build, figure, style or proportion and any value out of range.
    """
    import time

    t0 = time.perf_counter()
    r = _recipe(preset=preset, height_m=height_m, build=build, figure=figure, proportions=proportions,
                stylize=stylize, seed=seed, skin=skin, hair_style=hair_style, sleeves=sleeves)
    h = float(resolution_m)
    if not np.isfinite(h) or not 0.005 <= h <= 0.03:
        raise UsageError(f"resolution_m must be between 0.005 and 0.03, got {resolution_m}")
    sk, k = _scaled_skeleton(r)
    prims, face = _primitives(r, sk, k)
    notes = []
    for _ in range(4):  # a very short neck or torso: lengthen the neck until the chin clears the shoulders
        top, chin = _neck_window(prims)
        short = _NECK_GAP * k - (chin - top)
        if short <= 0:
            break
        r.proportions["neck"] += 1.2 * short / (0.1 * k)  # the canonical neck->head offset is 0.1 m
        sk, k = _scaled_skeleton(r)
        prims, face = _primitives(r, sk, k)
        notes = [f"neck lengthened to proportion {r.proportions['neck']:.3f} so the chin clears the shoulders"]
    V, F = _mesh(prims, sk, k, face, h_body=h * k, h_head=h * k * r.proportions["head"] / 4.0,
                 h_hand=h * k * max(r.proportions["hands"], 0.75) / 4.0)
    t_mesh = time.perf_counter()
    A = _adjacency(F, len(V))
    V = _symmetrise(_taubin(V, A), V)
    nearest, _ = _nearest_primitive(prims, V)
    zones = _zones(r, prims, nearest, V, sk, face)
    # exact height: scale about the floor origin, then put the sole on y = 0
    c = r.height_m / float(np.ptp(V[:, 1]))
    V = V * c
    lift = -float(V[:, 1].min())
    V[:, 1] += lift
    off = np.array(sk.offsets) * c
    off[0, 1] += lift
    sk = Skeleton(sk.names, sk.parents, off, {n: e * c for n, e in sk.end_sites.items()})
    move = np.array([0.0, lift, 0.0])
    face = _Face(**{f: (getattr(face, f) * c + move if isinstance(getattr(face, f), np.ndarray) else
                        getattr(face, f) * c) for f in face.__dataclass_fields__})
    owner = np.array([sk.index(prims[i].owner) for i in nearest])
    joints, weights = _skin_weights(sk, V, owner, A)
    head_mask = owner == sk.index("head")
    shapes = _face_targets(V, head_mask, zones, face)
    colors = _colours(r, zones, V, A)
    normals = _vertex_normals(V, F)
    name = r.preset or "custom"
    info = {
        "name": name,
        "preset": r.preset,
        "height_m": r.height_m,
        "build": r.build,
        "figure": r.figure,
        "stylize": r.stylize,
        "seed": r.seed,
        "sleeves": r.sleeves,
        "hair_style": r.hair_style,
        "proportions": {k2: round(float(v), 6) for k2, v in r.proportions.items()},
        "girth": {k2: round(float(v), 6) for k2, v in r.girth.items()},
        "colours_srgb": {k2: [int(round(255 * x)) for x in _srgb(v)] for k2, v in r.colours.items()},
        "resolution_m": h,
        "notes": notes,
        "vertices": int(len(V)),
        "triangles": int(len(F)),
        "seconds": {"mesh": round(t_mesh - t0, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    return CharacterModel(skeleton=sk, vertices=V, faces=F, normals=normals, colors=colors, zones=zones,
                          joints=joints, weights=weights, shape_names=ARKIT_SHAPES, shapes=shapes,
                          landmarks=face.landmarks(), info=info)


def _srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(np.asarray(lin, dtype=float), 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def character_document(model: CharacterModel) -> gltf.GltfDocument:
    """The glTF document of a character: 52 joint nodes named as the canonical skeleton
    (rest TRS = world-aligned offsets, no rotation), one skinned mesh node with
    ``POSITION``, ``NORMAL``, ``COLOR_0``, ``JOINTS_0``, ``WEIGHTS_0`` and the 52 ARKit
    morph targets (``extras.targetNames``), one material (vertex colours times white),
    and the recipe in the top-level ``extras.understudy_character``."""
    sk = model.skeleton
    J = len(sk)
    doc = gltf.GltfDocument(extra={"asset": {"version": "2.0"},
                                   "extras": {"understudy_character": _jsonable(
                                       {k: v for k, v in model.info.items() if k != "seconds"})}})
    for j, name in enumerate(sk.names):
        kids = [int(c) for c in np.flatnonzero(sk.parents == j)]
        doc.nodes.append(gltf.Node(name=name, children=kids, translation=np.array(sk.offsets[j], dtype=float)))
    P = sk.rest_positions()
    ibm = np.tile(np.eye(4), (J, 1, 1))
    ibm[:, :3, 3] = -P
    doc.skins.append(gltf.Skin(joints=list(range(J)), inverse_bind_matrices=ibm.astype(np.float32),
                               skeleton=0, name="understudy_skeleton"))
    prim = gltf.Primitive(
        attributes={
            "POSITION": model.vertices.astype(np.float32),
            "NORMAL": model.normals.astype(np.float32),
            "COLOR_0": model.colors.astype(np.float32),
            "JOINTS_0": model.joints.astype(np.uint8),
            "WEIGHTS_0": model.weights.astype(np.float32),
        },
        indices=model.faces.reshape(-1).astype(np.uint32),
        material=0,
        targets=[{"POSITION": model.shapes[k]} for k in range(len(model.shape_names))],
    )
    doc.meshes.append(gltf.Mesh(name="body", primitives=[prim], weights=[0.0] * len(model.shape_names),
                                extra={"extras": {"targetNames": list(model.shape_names)}}))
    doc.nodes.append(gltf.Node(name="body", mesh=0, skin=0))
    doc.materials = [{"name": "understudy_skin", "pbrMetallicRoughness": {
        "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.7}}]
    doc.scenes = [{"name": "character", "nodes": [0, J]}]
    doc.scene = 0
    return doc


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    return x


def save_character(model: CharacterModel, path: str | os.PathLike) -> Path:
    """Write ``model`` as a binary glTF (``.glb``) with :func:`retarget.gltf.write_glb`;
    identical models give identical bytes. Returns the path."""
    if not isinstance(model, CharacterModel):
        raise UsageError(f"save_character needs a CharacterModel, got {type(model).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise UsageError(f"a character is written as .glb, got {path.name!r}")
    return gltf.write_glb(character_document(model), path)


# -- the check --------------------------------------------------------------------------------

CHECK_TOLERANCES: dict[str, float] = {
    "height_error_m": 0.01,
    "max_offset_ratio": 0.75,
    "max_edge_stretch": 6.0,
    "volume_change": 0.05,
    "joint_volume_loss": 0.40,
    "arm_in_torso_share": 0.02,
}
"""What :func:`character_check` accepts, and why.

* ``height_error_m``: sole to top against ``height_m``, when given.
* ``max_offset_ratio``: no posed vertex farther from the posed hips than this share of
  the rest bounding-box diagonal (an exploding vertex flies much farther).
* ``max_edge_stretch``: no edge longer than this multiple of its rest length. Linear blend
  skinning stretches a few millimetre-long edges 3-5x where a raised arm pulls the upper
  back or a lifted thigh the buttock; a broken weight gives tens.
* ``volume_change``: |posed mesh volume / rest - 1|; the deep crouch of the CMU walk
  (knees at 120-135 degrees) costs about 4 %.
* ``joint_volume_loss``: local volume lost at an elbow or knee at its largest flexion in
  the motion (a fan of tetrahedra from the joint over the nearby triangles of its two
  bones). Linear blend skinning collapses hinges: about 17 % at 90 degrees, 25 % at 120,
  30 % at 140 for these weights (rigid parts alone: 4, 6, 7 %); an elbow that also twists
  the forearm (the canonical skeleton has no twist bone) loses about 34 % at 135.
* ``arm_in_torso_share``: share of the forearm vertices more than 1 cm inside the torso
  (elliptic cylinders fitted to the vertices each torso bone dominates) in the median
  frame: common poses must be clean. The worst frame is reported too, without a
  tolerance: a performer's hand resting on their hip puts the forearm of a character with
  wider hips a few centimetres inside (the CMU walk's hand-on-hip frames: about 25 %).
"""

_ARM = ("LowerArm",)


def _canonical_motion(src, frame_step: int):
    """A motion on the canonical skeleton from a BVH path or a Motion: mapped, turned into
    synthetic landmarks and solved (:mod:`mocap.synth`, :mod:`mocap.solve`)."""
    from mocap.bvh import load_bvh
    from mocap.motion import Motion
    from mocap.skeleton import canonical_skeleton
    from mocap.solve import solve_motion
    from mocap.synth import synth_mapping, synth_markers

    m = src if isinstance(src, Motion) else load_bvh(src)
    if m.n_frames > 1 and frame_step > 1:
        m = m.slice(step=frame_step)
    if m.skeleton.same_topology(canonical_skeleton()):
        return m
    return solve_motion(synth_markers(m, mapping=synth_mapping(m)))


def _rest_is_canonical_pose(sk, max_deg: float = 10.0) -> bool:
    """Whether every limb bone of ``sk`` (canonical names) points the way the canonical
    T-pose's does, within ``max_deg``."""
    from mocap.skeleton import canonical_skeleton

    canon = canonical_skeleton()
    P, Pc = sk.rest_positions(), canon.rest_positions()
    for side in ("left", "right"):
        for a, b in (("UpperArm", "LowerArm"), ("LowerArm", "Hand"), ("UpperLeg", "LowerLeg"), ("LowerLeg", "Foot")):
            u = P[sk.index(side + b)] - P[sk.index(side + a)]
            v = Pc[canon.index(side + b)] - Pc[canon.index(side + a)]
            c = float(u @ v) / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-12)
            if c < np.cos(np.radians(max_deg)):
                return False
    return True


def _on_rig(rig, motion):
    """The canonical ``motion`` on the rig's skeleton (same joint names). A rig resting in
    the canonical T-pose takes the rotations as they are, the root track scaled by the
    ratio of hip heights; another rest (an A-pose, e.g. from :mod:`retarget.autorig`) goes
    through :func:`retarget.retarget.retarget` (world-space rest alignment; no foot IK),
    so the posed bones point where the motion's do."""
    from mocap.motion import Motion

    sk = rig.skeleton
    if not _rest_is_canonical_pose(sk):
        from .retarget import retarget

        return retarget(motion, rig, foot_ik=False).motion
    src = motion.skeleton
    idx = [src.index(n) for n in sk.names]
    k = sk.rest_positions()[0, 1] / max(src.rest_positions()[0, 1], 1e-9)
    return Motion(skeleton=sk, rotations=motion.rotations[:, idx], root_positions=motion.root_positions * k,
                  fps=motion.fps, timestamps=motion.timestamps, meta=dict(motion.meta))


def _torso_proxy(rig, mesh) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per torso bone (hips, spine, chest, upperChest): an upright elliptic cylinder in
    the bone's rest frame fitted to the vertices it dominates (centre and 90th-percentile
    half-widths in x and z, their y range): ``(joint, centre_xz, half_xz, y_range)``."""
    sk = rig.skeleton
    dom = mesh.joints[np.arange(len(mesh.joints)), np.argmax(mesh.weights, axis=1)]
    out = []
    for name in ("hips", "spine", "chest", "upperChest"):
        j = sk.index(name)
        v = mesh.vertices[dom == j]
        if len(v) < 20:
            continue
        c = np.median(v[:, [0, 2]], axis=0)
        half = np.percentile(np.abs(v[:, [0, 2]] - c), 90, axis=0)
        out.append((j, c, half, np.array([v[:, 1].min(), v[:, 1].max()])))
    return out


def character_check(
    path: str | os.PathLike,
    *,
    motions: Sequence[Any] = (),
    frame_step: int = 4,
    height_m: float | None = None,
    tolerances: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Figures of a saved character (any GLB whose joints carry the canonical names and
    rest in the canonical T-pose, as :func:`save_character` writes), and whether they
    are within ``tolerances`` (default :data:`CHECK_TOLERANCES`).

    Static: watertightness (:func:`mesh_edges_manifold`), height, joints, bone map, shape
    keys, influences per vertex and weight sums. Posed: each of ``motions`` (BVH paths or
    :class:`~mocap.motion.Motion`; e.g. the CMU walk, hop and salsa in ``shared/mocap``)
    is brought onto the canonical skeleton (synthetic landmarks solved by
    :func:`mocap.solve.solve_motion`), every ``frame_step``-th frame put on the character's
    skeleton and skinned by :func:`retarget.rig.skin_vertices` (linear blend skinning);
    reported per motion: ``max_offset_ratio``, ``max_edge_stretch``, ``volume_change``,
    the elbows' and knees' largest flexion and local volume change there (a fan of
    tetrahedra from the joint over its two bones' triangles within 35 % of their mean
    length of it), and the share of forearm vertices more than 1 cm inside the torso
    (elliptic cylinders fitted to the vertices each torso bone dominates): in the median
    frame (``arm_in_torso_share``), the worst (``..._max``) and the share of frames with
    any (``arm_in_torso_frames``). :data:`CHECK_TOLERANCES` explains each tolerance.

    Returns a JSON-ready dict; ``passed`` is False and ``failures`` names each figure
    outside its tolerance.
    """
    from .rig import load_rig, skin_vertices

    tol = dict(CHECK_TOLERANCES)
    tol.update(tolerances or {})
    rig = load_rig(path)
    skinned = [m for m in rig.meshes if m.skinned and m.joints is not None]
    if not skinned:
        raise RigError(f"{path}: no skinned mesh to check")
    mesh = max(skinned, key=lambda m: len(m.vertices))
    sk = rig.skeleton
    from mocap.skeleton import canonical_skeleton

    missing = [n for n in canonical_skeleton().names if n not in sk]
    if missing:
        raise RigError(f"{path}: character_check needs the canonical joint names; missing {missing[:6]}")
    failures: list[str] = []
    V0, F = mesh.vertices, mesh.faces
    edges = mesh_edges_manifold(F)
    watertight = edges["boundary"] == 0 and edges["nonmanifold"] == 0 and edges["misoriented"] == 0
    if not watertight:
        failures.append(f"mesh is not closed: {edges}")
    height = float(np.ptp(V0[:, 1]))
    if height_m is not None and abs(height - height_m) > tol["height_error_m"]:
        failures.append(f"height {height:.4f} m, asked {height_m} m")
    wsum = np.where(mesh.joints >= 0, mesh.weights, 0.0).sum(axis=1)
    influences = int(np.max(np.sum(mesh.weights > 0, axis=1)))
    report: dict[str, Any] = {
        "path": str(path), "vertices": int(len(V0)), "triangles": int(len(F)), "edges": edges,
        "watertight": bool(watertight), "height_m": height, "joints": len(sk),
        "bonemap": rig.bonemap.name if rig.bonemap else None, "shape_keys": len(mesh.morph_target_names),
        "max_influences": influences, "weight_sum_error": float(np.max(np.abs(wsum - 1.0))),
        "rest_volume_m3": float(mesh_volume(V0, F)), "motions": {}, "tolerances": tol,
    }
    if not np.isfinite(report["rest_volume_m3"]) or report["rest_volume_m3"] <= 0:
        failures.append(f"rest volume {report['rest_volume_m3']} is not positive (inside-out faces?)")

    P0 = sk.rest_positions()
    diag = float(np.linalg.norm(np.ptp(V0, axis=0)))
    e = np.unique(np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1), axis=0)
    rest_len = np.linalg.norm(V0[e[:, 0]] - V0[e[:, 1]], axis=1)
    vol0 = float(mesh_volume(V0, F))
    dom = mesh.joints[np.arange(len(V0)), np.argmax(mesh.weights, axis=1)]
    dom_name = np.array(sk.names)[dom]
    arm = np.array([any(a in n for a in _ARM) for n in dom_name])
    torso = _torso_proxy(rig, mesh)
    hinges = {}
    for side in ("left", "right"):
        for key, (a, j, b) in {"elbow": ("UpperArm", "LowerArm", "Hand"), "knee": ("UpperLeg", "LowerLeg", "Foot")}.items():
            ia, ij, ib = (sk.index(side + n) for n in (a, j, b))
            radius = 0.35 * 0.5 * (np.linalg.norm(P0[ij] - P0[ia]) + np.linalg.norm(P0[ib] - P0[ij]))
            near = (np.linalg.norm(V0 - P0[ij], axis=1) < radius) & np.isin(dom, [ia, ij])
            patch = F[near[F].all(axis=1)]
            hinges[f"{side}_{key}"] = (ia, ij, ib, patch, float(mesh_volume(V0, patch, P0[ij])))

    for src in motions:
        name = Path(src).stem if not hasattr(src, "skeleton") else str(src.meta.get("source", "motion"))
        motion = _on_rig(rig, _canonical_motion(src, int(frame_step)))
        T = motion.n_frames
        pos, _ = motion.fk()
        offset = stretch = 0.0
        vol_change = np.zeros(T)
        inside = np.zeros(T)
        flex = {h: np.zeros(T) for h in hinges}
        local = {h: np.zeros(T) for h in hinges}
        for t0 in range(0, T, 32):
            part = motion.slice(t0, min(t0 + 32, T))
            Vt = skin_vertices(rig, part, rig.meshes.index(mesh))
            Pt, Gt = part.fk()
            offset = max(offset, float(np.max(np.linalg.norm(Vt - Pt[:, :1], axis=2))) / diag)
            ln = np.linalg.norm(Vt[:, e[:, 0]] - Vt[:, e[:, 1]], axis=2)
            stretch = max(stretch, float(np.max(ln / np.maximum(rest_len, 1e-9))))
            sl = slice(t0, t0 + len(Vt))
            vol_change[sl] = mesh_volume(Vt, F) / vol0 - 1.0
            for h, (ia, ij, ib, patch, v0) in hinges.items():
                u = Pt[:, ij] - Pt[:, ia]
                w = Pt[:, ib] - Pt[:, ij]
                cosang = np.einsum("ti,ti->t", u, w) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1))
                flex[h][sl] = np.degrees(np.arccos(np.clip(cosang, -1, 1)))
                local[h][sl] = mesh_volume(Vt, patch, Pt[:, ij]) / v0 - 1.0
            if torso and arm.any():
                from mocap.glossary import Q2R

                A = Vt[:, arm]
                deep = np.zeros(A.shape[:2], dtype=bool)
                for j, c, half, yr in torso:
                    R = Q2R(Gt[:, j])
                    q = np.einsum("tji,tnj->tni", R, A - Pt[:, j][:, None]) + P0[j]
                    rr = np.sqrt(((q[..., 0] - c[0]) / half[0]) ** 2 + ((q[..., 2] - c[1]) / half[1]) ** 2)
                    depth = (1.0 - rr) * min(half)
                    deep |= (depth > 0.01) & (q[..., 1] > yr[0]) & (q[..., 1] < yr[1])
                inside[sl] = deep.mean(axis=1)
        res = {
            "frames": int(T), "frame_step": int(frame_step), "max_offset_ratio": offset, "max_edge_stretch": stretch,
            "volume_change": float(np.max(np.abs(vol_change))),
            "arm_in_torso_share": float(np.median(inside)), "arm_in_torso_share_max": float(inside.max()),
            "arm_in_torso_frames": float(np.mean(inside > 0)),
        }
        for h in hinges:
            t_max = int(np.argmax(flex[h]))
            res[h] = {"max_flexion_deg": float(flex[h][t_max]), "volume_change": float(local[h][t_max])}
        report["motions"][name] = res
        if offset > tol["max_offset_ratio"]:
            failures.append(f"{name}: a vertex flew {offset:.2f} x the body's size from the hips")
        if stretch > tol["max_edge_stretch"]:
            failures.append(f"{name}: an edge stretched {stretch:.2f} x")
        if res["volume_change"] > tol["volume_change"]:
            failures.append(f"{name}: mesh volume changed {100 * res['volume_change']:.1f} %")
        for h in hinges:
            if -res[h]["volume_change"] > tol["joint_volume_loss"]:
                failures.append(f"{name}: {h} lost {-100 * res[h]['volume_change']:.0f} % of its volume at "
                                f"{res[h]['max_flexion_deg']:.0f} deg")
        if res["arm_in_torso_share"] > tol["arm_in_torso_share"]:
            failures.append(f"{name}: {100 * res['arm_in_torso_share']:.1f} % of the forearm vertices are inside "
                            f"the torso in the median frame")
    report["passed"] = not failures
    report["failures"] = failures
    return report


# -- preview renders ---------------------------------------------------------------------------


def render_preview(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    yaw_deg: float = 0.0,
    size: tuple[int, int] = (256, 384),
    fov_deg: float = 30.0,
    background: tuple[float, float, float] = (0.55, 0.6, 0.65),
) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 sRGB picture of a mesh (``vertices (N, 3)`` in the house
    frame, ``faces (F, 3)``, ``colors (N, 3)`` linear RGB or None for grey) standing in
    the middle, seen from a camera at chest height ``yaw_deg`` around the vertical axis
    from the front (0 = from +Z, the character's face; 45 = three-quarter from its left),
    framed to the mesh's bounding box; ``size`` = (width, height) pixels.

    Uses pyrender and trimesh (OpenGL; headless with ``PYOPENGL_PLATFORM=egl``), imported here only;
    raises :class:`~mocap.errors.UsageError` with the install hint when it is missing."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import pyrender
    except ImportError as e:
        raise UsageError(f"render_preview needs pyrender (pip install pyrender; headless: libegl1): {e}") from e
    import trimesh

    V = np.asarray(vertices, dtype=np.float32)
    F = np.asarray(faces, dtype=np.int64)
    col = np.full((len(V), 3), 0.6) if colors is None else np.asarray(colors, dtype=float)
    rgba = np.concatenate([np.round(255 * _srgb(col)), np.full((len(V), 1), 255)], axis=1).astype(np.uint8)
    tm = trimesh.Trimesh(V, F, vertex_colors=rgba, process=False)
    tm.vertex_normals = _vertex_normals(V.astype(float), F)
    scene = pyrender.Scene(bg_color=[*background, 1.0], ambient_light=[0.45, 0.45, 0.45])
    scene.add(pyrender.Mesh.from_trimesh(tm, smooth=True))
    w, h = size
    pose = preview_camera(V, yaw_deg=yaw_deg, size=size, fov_deg=fov_deg)
    scene.add(pyrender.PerspectiveCamera(yfov=np.radians(fov_deg), aspectRatio=w / h), pose=pose)
    key = pose.copy()
    key[:3, :3] = key[:3, :3] @ _rot_x(-0.5)  # the key light from above the camera
    scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.5), pose=key)
    r = pyrender.OffscreenRenderer(w, h)
    try:
        rgb, _ = r.render(scene)
    finally:
        r.delete()
    return np.ascontiguousarray(rgb[..., :3])


def preview_camera(vertices: np.ndarray, *, yaw_deg: float = 0.0, size: tuple[int, int] = (256, 384),
                   fov_deg: float = 30.0) -> np.ndarray:
    """The ``(4, 4)`` camera-to-world pose :func:`render_preview` uses for ``vertices``
    (OpenGL camera: looks along its -Z, +Y up): at chest height, ``yaw_deg`` around the
    vertical from the front, far enough for the bounding box to fill 93 % of the frame."""
    V = np.asarray(vertices, dtype=float)
    lo, hi = V.min(axis=0), V.max(axis=0)
    centre = 0.5 * (lo + hi)
    w, h = size
    half = 0.5 * max(float(hi[1] - lo[1]), float(hi[0] - lo[0]) * h / w) * 1.08
    dist = half / np.tan(np.radians(fov_deg) / 2) + 0.5 * float(hi[2] - lo[2])
    a = np.radians(yaw_deg)
    eye = centre + dist * np.array([np.sin(a), 0.0, np.cos(a)])
    fwd = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(right, fwd), -fwd, eye
    return pose


def project_preview(points: np.ndarray, vertices: np.ndarray, *, yaw_deg: float = 0.0,
                    size: tuple[int, int] = (256, 384), fov_deg: float = 30.0) -> np.ndarray:
    """Pixel coordinates ``(K, 2)`` (x right, y down) of world ``points (K, 3)`` in the
    picture :func:`render_preview` makes of ``vertices`` with the same arguments."""
    pose = preview_camera(vertices, yaw_deg=yaw_deg, size=size, fov_deg=fov_deg)
    w, h = size
    f = 0.5 * h / np.tan(np.radians(fov_deg) / 2)
    q = (np.asarray(points, dtype=float) - pose[:3, 3]) @ pose[:3, :3]  # camera frame
    return np.stack([w / 2 + f * q[:, 0] / -q[:, 2], h / 2 - f * q[:, 1] / -q[:, 2]], axis=1)
