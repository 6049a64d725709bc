"""Auto-rigging: an unrigged humanoid mesh -> a character with the canonical skeleton.

Meshes from text-to-3D and image-to-3D generators (and scans, and sculpts) come without a
skeleton. :func:`autorig` gives one such mesh the canonical 52-joint skeleton
(:mod:`mocap.skeleton`) and smooth skin weights; :func:`save_autorig` writes it as a GLB
that :func:`retarget.rig.load_rig`, Blender and ``understudy retarget`` use like any
rigged character. :func:`load_mesh` reads GLB/glTF, OBJ (:mod:`retarget.obj`) and PLY
(:mod:`retarget.ply`); :func:`mesh_formats` lists them.

What the mesh must be: one standing humanoid (both feet on the ground, legs apart at the
crotch, arms held out from the body between a T-pose and an A-pose about 60 degrees
below horizontal), any up axis, any facing, any unit (the skeleton follows the mesh's
size; the output keeps the input's scale, so metres in, metres out). Holes, several
separate pieces (clothes over a body, eyes, hair) and uneven triangle sizes are fine:
every measurement is made on points sampled uniformly over the surface.

The passes (plain arrays in, plain arrays out; each states what it needs)
-------------------------------------------------------------------------
1. :func:`surface_samples`: points spread uniformly over the surface (area-weighted,
   fixed seed), so dense parts of a mesh (a detailed face) do not outvote the rest.
2. :func:`normalise_orientation`: principal axes of the samples; the *depth* axis is the
   one of least extent, the *lateral* axis the one across which the figure is its own
   mirror image (mean distance of the mirrored samples to the nearest sample), the
   other one is *up*. Up points away from the feet: the lowest slice of a humanoid has a
   gap on its mid-plane (two feet), the highest does not (the head). Forward is where
   the toes point: the feet reach farther in front of the shins than behind; the nose
   decides when the feet do not. Left = up x forward. The mesh is rotated into the
   house frame (+Y up, facing +Z, the character's left +X), the soles on y = 0, the
   mirror plane at x = 0.
3. :func:`place_joints`: cross-sections. The crotch is the lowest surface point on the
   mid-plane; each leg's joints are centroids of its horizontal slices at the canonical
   fractions of the leg (knee, ankle; the hips 10 % of the height above the crotch), the toes from the foot's forward reach. Each
   arm's axis is a line fitted to the centroids of its vertical slices (perpendicular to
   x), which holds for T- and A-poses; the shoulder is where that line meets the torso's
   side, elbow and wrist lie at the canonical fractions of shoulder-to-fingertip, refined
   to the centroid of the arm's cross-section there. Spine joints divide hips-to-neck at
   the canonical fractions, each at the centroid of the torso's slice; the head joint is
   at the narrowest slice of the neck. **Fingers are approximated**: the canonical hand
   is scaled to the wrist-to-fingertip length and turned with the arm; the fingers of
   the mesh are not found one by one. Every joint that ends up outside the surface
   (generalised winding number < 0.5) is moved inside, just under the nearest surface
   point.
4. :func:`autorig_weights`: each vertex's *owner* is the bone nearest it in units of that
   bone's thickness (distance to the bone segment / the median distance of the surface
   points the bone is nearest to), so an A-pose arm's inner side stays the arm's and the
   torso's flank the torso's; then :func:`retarget.character._skin_weights` (Gaussian
   falloff over the owner's neighbourhood, Laplacian smoothing over the mesh graph, four
   influences, normalised).

Errors are :class:`~mocap.errors.RigError` with the reason: too many vertices
(``max_vertices``), no volume (flat or degenerate), not a humanoid (no gap between the
legs, no arms reaching beyond the torso, a shape far from mirror-symmetric).

Optional check, :func:`pose_check` (``understudy character rig --verify``): the rigged mesh is
rendered from the front (pyrender) and MediaPipe Pose is run on the picture; the shoulders,
elbows, wrists, hips, knees and ankles it finds are compared with ours projected into the
same picture, in percent of the figure's height.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocap.errors import FileFormatError, RigError, UsageError
from mocap.motion import Skeleton

__all__ = [
    "AutoRig",
    "MAX_VERTICES",
    "autorig",
    "autorig_file",
    "autorig_weights",
    "load_mesh",
    "mesh_formats",
    "normalise_orientation",
    "place_joints",
    "pose_check",
    "save_autorig",
    "surface_samples",
    "winding_numbers",
]

MAX_VERTICES = 400_000
"""Default vertex limit: above it the weights' dense (N, 52) arrays need gigabytes; decimate
the mesh first."""


# -- reading meshes ---------------------------------------------------------------------------


def _load_gltf_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from . import gltf
    from .rig import _triangles

    doc = gltf.load_gltf(path)
    W = doc.world_matrices()
    Vs, Fs, n = [], [], 0
    for ni, node in enumerate(doc.nodes):
        if node.mesh is None:
            continue
        for p in doc.meshes[node.mesh].primitives:
            if "POSITION" not in p.attributes:
                continue
            idx = p.indices if p.indices is not None else np.arange(p.vertex_count)
            tri = _triangles(np.asarray(idx), p.mode)
            if len(tri) == 0:
                continue
            V = np.asarray(p.attributes["POSITION"], dtype=float)
            V = V @ W[ni][:3, :3].T + W[ni][:3, 3]
            Vs.append(V)
            Fs.append(tri + n)
            n += len(V)
    if not Fs:
        raise FileFormatError(f"{path}: no triangle mesh in the file")
    return np.concatenate(Vs), np.concatenate(Fs).astype(np.int64)


def _loaders() -> dict[str, Any]:
    from .obj import load_obj
    from .ply import load_ply

    return {".glb": _load_gltf_mesh, ".gltf": _load_gltf_mesh, ".obj": load_obj, ".ply": load_ply}


def mesh_formats() -> dict[str, str]:
    """Mesh file types :func:`load_mesh` reads, suffix -> what is taken from it."""
    return {".glb": "binary glTF: every mesh node's triangles, placed by the node transforms (skins ignored)",
            ".gltf": "glTF JSON, as .glb", ".obj": "Wavefront OBJ: v and f records", ".ply": "PLY, ASCII or binary"}


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (N, 3), faces (F, 3) int64)`` of a mesh file (:func:`mesh_formats`);
    all meshes of a glTF scene are merged. Raises
    :class:`~mocap.errors.FileFormatError` for a missing, unknown or malformed file."""
    path = Path(path)
    loader = _loaders().get(path.suffix.lower())
    if loader is None:
        raise FileFormatError(f"{path}: cannot read a mesh from {path.suffix or 'a file without extension'!r}; "
                              f"supported: {', '.join(mesh_formats())}")
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    return loader(path)


# -- 1. surface samples -----------------------------------------------------------------------


def surface_samples(V: np.ndarray, F: np.ndarray, n: int = 60_000, seed: int = 0, *,
                    with_normals: bool = False):
    """``(n, 3)`` points spread uniformly over the triangles (area-weighted choice,
    uniform barycentric coordinates), deterministic for ``seed``; with ``with_normals``
    also ``(n, 3)`` unit normals of their triangles (outward for counter-clockwise faces)."""
    a, b, c = V[F[:, 0]], V[F[:, 1]], V[F[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = float(area.sum())
    if not np.isfinite(total) or total <= 0:
        raise RigError("the mesh has no surface area (all triangles degenerate)")
    rng = np.random.default_rng(seed)
    t = rng.choice(len(F), size=n, p=area / total)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    S = a[t] + u[:, None] * (b[t] - a[t]) + v[:, None] * (c[t] - a[t])
    if not with_normals:
        return S
    nrm = np.cross(b[t] - a[t], c[t] - a[t])
    return S, nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-20)


# -- 2. orientation ---------------------------------------------------------------------------


def _mirror_error(S: np.ndarray, axis: np.ndarray, tree) -> float:
    c = S.mean(axis=0)
    X = S[::7] - c
    M = X - 2.0 * np.outer(X @ axis, axis)
    d, _ = tree.query(M + c)
    return float(np.mean(d))


def normalise_orientation(S: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The rigid transform ``T (4, 4)`` taking the samples ``S (n, 3)`` of a standing
    humanoid into the house frame (+Y up, facing +Z, left +X, soles on y = 0, mirror
    plane x = 0), and what was found (``info``: the input's up/forward/left axes,
    ``symmetry`` = mean mirror distance / height, the cue that decided the facing).
    Raises :class:`~mocap.errors.RigError` for a flat mesh or one that is not humanoid."""
    from scipy.spatial import cKDTree

    c = S.mean(axis=0)
    X = S - c
    evals, evecs = np.linalg.eigh(X.T @ X / len(X))
    ext = np.ptp(X @ evecs, axis=0)
    if ext[0] < 0.02 * ext[2]:
        raise RigError(f"the mesh has no volume: it is {ext[0]:.3g} thick for {ext[2]:.3g} long (flat)")
    depth = evecs[:, 0]
    tree = cKDTree(S)
    cand = [evecs[:, 1], evecs[:, 2]]
    err = [_mirror_error(S, a, tree) for a in cand]
    lat_i = int(np.argmin(err))
    lateral, up = cand[lat_i], cand[1 - lat_i]
    y = X @ up
    H = float(np.ptp(y))
    sym = err[lat_i] / H
    if sym > 0.03:
        raise RigError(f"not a humanoid in a T- or A-pose: no mirror symmetry (mean mirror distance "
                       f"{100 * sym:.1f} % of the height; a standing figure has under 3 %)")
    x = X @ lateral
    x0 = float(np.median(x))

    def midplane_share(sel):
        return float(np.mean(np.abs(x[sel] - x0) < 0.02 * H)) if sel.any() else 0.0

    lo, hi = y < y.min() + 0.04 * H, y > y.max() - 0.04 * H
    share_lo, share_hi = midplane_share(lo), midplane_share(hi)
    if min(share_lo, share_hi) > 0.05:
        raise RigError("not a humanoid: neither end of the mesh has a gap on its mid-plane (no two legs; "
                       f"{100 * share_lo:.0f} % and {100 * share_hi:.0f} % of the end slices lie on it)")
    if share_hi < share_lo:
        up = -up
        y = -y
    # forward: toes reach farther ahead of the ankles than the heels behind them
    z = X @ depth
    feet = y < y.min() + 0.05 * H
    shins = (y > y.min() + 0.05 * H) & (y < y.min() + 0.10 * H)  # the ankles
    zs = float(np.median(z[shins])) if shins.any() else float(np.median(z[feet]))
    ahead, behind = float(z[feet].max() - zs), float(zs - z[feet].min())
    cue = "feet"
    if max(ahead, behind) < 1.3 * min(ahead, behind):  # flat-footed: ask the nose
        face = (y > y.max() - 0.12 * H) & (y < y.max() - 0.06 * H)
        zf = float(np.median(z[face]))
        ahead, behind = float(z[face].max() - zf), float(zf - z[face].min())
        cue = "nose"
    fwd = depth if ahead >= behind else -depth
    left = np.cross(up, fwd)
    R = np.stack([left, up, fwd])
    T = np.eye(4)
    T[:3, :3] = R
    Y = X @ R.T
    T[:3, 3] = -R @ c - np.array([float(np.mean(Y[:, 0])), float(Y[:, 1].min()), 0.0])
    info = {"up": up.tolist(), "forward": fwd.tolist(), "left": left.tolist(), "symmetry": sym,
            "facing_cue": cue, "height": H}
    return T, info


def _apply(T: np.ndarray, P: np.ndarray) -> np.ndarray:
    return P @ T[:3, :3].T + T[:3, 3]


# -- 3. joints --------------------------------------------------------------------------------


def _canonical():
    from mocap.skeleton import canonical_skeleton

    sk = canonical_skeleton()
    return sk, sk.rest_positions(), sk.rest_end_sites()


def _centroid(S: np.ndarray, sel: np.ndarray, what: str) -> np.ndarray:
    if int(sel.sum()) < 5:
        raise RigError(f"not a humanoid: found no surface at the {what}")
    return S[sel].mean(axis=0)


def winding_numbers(V: np.ndarray, F: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Generalised winding number ``(K,)`` of points ``P (K, 3)`` with respect to the
    triangles (Jacobson et al. 2013; the solid angle of each triangle after Van Oosterom
    and Strackee 1983, over 4 pi): about 1 inside a closed outward surface, 0 outside,
    and still meaningful for meshes with holes or several overlapping pieces."""
    out = np.zeros(len(P))
    for k, p in enumerate(np.asarray(P, dtype=float)):
        a, b, c = (V[F[:, i]] - p for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la
               + np.einsum("ij,ij->i", c, a) * lb)
        out[k] = 2 * np.arctan2(num, den).sum() / (4 * np.pi)
    return out


def _arm(S: np.ndarray, s: float, H: float, crotch: float, torso_x: float) -> dict[str, Any]:
    """One arm (``s`` = +1 left, -1 right) in the normalised frame: fingertip, the axis
    line fitted to slice centroids ``y(x), z(x)``, its elevation."""
    xs = s * S[:, 0]
    arm = (xs > torso_x) & (S[:, 1] > crotch)
    if int(arm.sum()) < 50:
        raise RigError("not a humanoid: no arms reach out beyond the torso (arms must be held away from "
                       "the body, T- to A-pose)")
    tip_x = float(xs[arm].max())
    grid = np.linspace(torso_x + 0.02 * H, tip_x - 0.14 * H, 14)
    cx, cy, cz = [], [], []
    for g in grid:
        sel = arm & (np.abs(xs - g) < 0.006 * H)
        if int(sel.sum()) < 6:
            continue
        ys = S[sel, 1]
        # keep the slice's arm part only: the cluster around the highest-density band
        med = np.median(ys)
        sel2 = sel & (np.abs(S[:, 1] - med) < 0.08 * H)
        cx.append(g)
        cy.append(float(np.mean(S[sel2, 1])))
        cz.append(float(np.mean(S[sel2, 2])))
    if len(cx) < 4:
        raise RigError("not a humanoid: the arms are too short or too close to the body to follow")
    cx = np.asarray(cx)
    ky = np.polyfit(cx, cy, 1)
    kz = np.polyfit(cx, cz, 1)
    tip_sel = arm & (xs > tip_x - 0.01 * H)
    tip = S[tip_sel].mean(axis=0)
    return {"tip": tip, "ky": ky, "kz": kz, "z_near": float(np.mean(cz[:3])),
            "elevation_deg": float(np.degrees(np.arctan(ky[0])))}


def place_joints(S: np.ndarray, N: np.ndarray | None = None) -> tuple[Skeleton, dict[str, Any]]:
    """The canonical skeleton fitted to surface samples ``S (n, 3)`` of a humanoid in the
    house frame (:func:`normalise_orientation` applied), ``N (n, 3)`` their normals
    (optional; they tell the crotch from thighs that touch): returns the skeleton (world-
    aligned offsets, end sites at the head top, finger tips and toe tips) and the
    measurements (``crotch_y``, ``arm_elevation_deg``, ``height``). Raises
    :class:`~mocap.errors.RigError` when a humanoid part is not found."""
    csk, CP, CE = _canonical()
    ci = csk.index
    H = float(np.ptp(S[:, 1]))
    y0 = float(S[:, 1].min())
    S = S - [0.0, y0, 0.0]
    x, y, z = S[:, 0], S[:, 1], S[:, 2]
    cH = float(CE["head"][1])  # the canonical head top: 1.72 m
    P = np.zeros_like(CP)
    # the crotch: the lowest surface on the mid-plane facing down (where thick thighs touch,
    # the surface on the mid-plane faces forwards or backwards)
    mid = (np.abs(x) < 0.012 * H) & (y < 0.7 * H)
    if N is not None:
        mid &= N[:, 1] < -0.5
    if not mid.any():
        raise RigError("not a humanoid: no crotch (no surface on the mid-plane below 70 % of the height)")
    crotch = float(y[mid].min())
    if crotch < 0.25 * H:
        raise RigError(f"not a humanoid: the legs part only {100 * crotch / H:.0f} % of the height above the "
                       "ground (a standing figure: 40-50 %)")
    # legs
    hip_y = crotch + 0.10 * H  # the hip joints' centres: about 10 % of the height above the crotch
    toes = {}
    for side, s in (("left", 1.0), ("right", -1.0)):
        leg = (s * x > 0) & (s * x < 0.16 * H) & (y < crotch)
        thigh = _centroid(S, leg & (y > crotch - 0.04 * H), f"{side} thigh")
        ank_c = _centroid(S, leg & (np.abs(y - 0.085 * H) < 0.012 * H), f"{side} ankle")
        ankle = np.array([ank_c[0], (0.08 / cH) * H, ank_c[2]])
        hip = np.array([thigh[0], hip_y, thigh[2]])
        f_knee = (CP[ci("leftUpperLeg"), 1] - CP[ci("leftLowerLeg"), 1]) / (CP[ci("leftUpperLeg"), 1] -
                                                                              CP[ci("leftFoot"), 1])
        ky = hip_y + f_knee * (ankle[1] - hip_y)
        kc = _centroid(S, leg & (np.abs(y - ky) < 0.01 * H), f"{side} knee")
        knee = np.array([kc[0], ky, kc[2]])
        foot = leg & (y < 0.06 * H)
        tip_z = float(np.percentile(z[foot], 99.5))
        tz = ankle[2] + 0.72 * (tip_z - ankle[2])
        tx = float(np.mean(x[foot & (np.abs(z - tz) < 0.02 * H)])) if (foot & (np.abs(z - tz) < 0.02 * H)).any() \
            else ankle[0]
        P[ci(f"{side}UpperLeg")], P[ci(f"{side}LowerLeg")], P[ci(f"{side}Foot")] = hip, knee, ankle
        P[ci(f"{side}Toes")] = [tx, (0.02 / cH) * H, tz]
        toes[side] = np.array([tx, (0.02 / cH) * H, tip_z])
    # torso width below the armpits (chest slices, arms excluded by |x| < 0.2 H)
    # (the first empty band out from the mid-plane: an A-pose arm hangs beside the chest)
    chest_sel = np.abs(y - 0.72 * H) < 0.01 * H
    counts, edges = np.histogram(np.abs(x[chest_sel]), bins=60, range=(0.0, 0.3 * H))
    empty = np.flatnonzero(counts[4:] == 0)
    torso_x = float(edges[4 + empty[0]]) if len(empty) else 0.12 * H
    torso_x = min(max(torso_x, 0.07 * H), 0.18 * H)
    arms = {}
    sh_x = (CP[ci("leftUpperArm"), 0] / cH) * H * 1.0
    for side, s in (("left", 1.0), ("right", -1.0)):
        a = _arm(S, s, H, crotch, torso_x + 0.03 * H)
        arms[side] = a
        # y on the arm's axis line; z where the arm leaves the torso (an A-pose arm's line
        # tilts forward towards the hand, so its z is not extrapolated)
        shoulder = np.array([s * sh_x, np.polyval(a["ky"], sh_x), a["z_near"]])
        tip = a["tip"]
        L = tip - shoulder
        seg = [np.linalg.norm(CP[ci("leftLowerArm")] - CP[ci("leftUpperArm")]),
               np.linalg.norm(CP[ci("leftHand")] - CP[ci("leftLowerArm")]),
               np.linalg.norm(CE["leftMiddleDistal"] - CP[ci("leftHand")])]
        total = sum(seg)
        d = L / np.linalg.norm(L)
        pts = {}
        for name, f in (("LowerArm", seg[0] / total), ("Hand", (seg[0] + seg[1]) / total)):
            p = shoulder + f * L
            rel = S - p
            along = rel @ d
            perp = np.linalg.norm(rel - np.outer(along, d), axis=1)
            sel = (np.abs(along) < 0.008 * H) & (perp < 0.06 * H)
            pts[name] = _centroid(S, sel, f"{side} {name.lower()}") if sel.sum() >= 5 else p
        P[ci(f"{side}UpperArm")] = shoulder
        P[ci(f"{side}LowerArm")] = pts["LowerArm"]
        P[ci(f"{side}Hand")] = pts["Hand"]
        P[ci(f"{side}Shoulder")] = [s * (0.02 / cH) * H, shoulder[1] - (0.02 / cH) * H, shoulder[2]]
        # fingers: the canonical hand, scaled to wrist-to-fingertip and turned with the arm
        wrist = pts["Hand"]
        hand_len = float(np.linalg.norm(tip - wrist))
        k = hand_len / seg[2]
        dh = (tip - wrist) / max(hand_len, 1e-9)
        cd = np.array([s, 0.0, 0.0])
        R = _rotation_between(cd, dh)
        for j, n in enumerate(csk.names):
            if n.startswith(side) and any(f in n for f in ("Thumb", "Index", "Middle", "Ring", "Little")):
                P[j] = wrist + k * (R @ (CP[j] - CP[ci(f"{side}Hand")]))
        arms[side]["hand_R"], arms[side]["hand_k"], arms[side]["wrist"] = R, k, wrist
    # spine
    hips = 0.5 * (P[ci("leftUpperLeg")] + P[ci("rightUpperLeg")])
    hips[0] = 0.0
    sh_y = 0.5 * (P[ci("leftUpperArm"), 1] + P[ci("rightUpperArm"), 1])
    # the neck: the narrowest slice between the shoulders and the head top
    best, head_y = np.inf, sh_y + 0.06 * H
    for gy in np.linspace(sh_y + 0.03 * H, 0.93 * H, 24):
        sel = (np.abs(y - gy) < 0.005 * H) & (np.abs(x) < torso_x)
        if int(sel.sum()) < 5:
            continue
        w = float(np.percentile(np.abs(x[sel]), 95))
        if w < best:
            best, head_y = w, gy
    neck_y = sh_y + 0.3 * (head_y - sh_y)  # conventions differ: canonical at the shoulders, others higher
    P[0] = hips
    for name, f in (("spine", 0.204), ("chest", 0.449), ("upperChest", 0.694)):
        gy = hips[1] + f * (neck_y - hips[1])
        c = _centroid(S, (np.abs(y - gy) < 0.01 * H) & (np.abs(x) < 0.7 * torso_x), name)
        P[ci(name)] = [0.0, gy, c[2]]
    cn = _centroid(S, (np.abs(y - neck_y) < 0.008 * H) & (np.abs(x) < 0.05 * H), "neck")
    ch = _centroid(S, (np.abs(y - head_y) < 0.008 * H) & (np.abs(x) < 0.05 * H), "head")
    P[ci("neck")] = [0.0, neck_y, cn[2]]
    P[ci("head")] = [0.0, head_y, ch[2]]
    P[:, 1] += y0
    # end sites (offsets in the joint's world-aligned frame)
    ends = {"head": np.array([0.0, (H + y0) - P[ci("head"), 1], 0.0])}
    for side in ("left", "right"):
        a = arms[side]
        for f in ("Thumb", "Index", "Middle", "Ring", "Little"):
            n = f"{side}{f}Distal"
            tipc = CE[n] if n in CE else CE[f"left{f}Distal"] * [1 if side == "left" else -1, 1, 1]
            e = a["wrist"] + a["hand_k"] * (a["hand_R"] @ (tipc - CP[ci(f"{side}Hand")]))
            ends[n] = e + [0.0, y0, 0.0] - P[ci(n)]
        ends[f"{side}Toes"] = toes[side] + [0.0, y0, 0.0] - P[ci(f"{side}Toes")]
    offsets = P.copy()
    offsets[1:] = P[1:] - P[csk.parents[1:]]
    sk = Skeleton(csk.names, csk.parents, offsets, ends)
    info = {"height": H, "crotch_y": crotch + y0, "arm_elevation_deg": {s: -arms[s]["elevation_deg"] for s in arms},
            "torso_half_width": torso_x}
    return sk, info


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation ``(3, 3)`` taking unit ``a`` onto unit ``b``."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else -np.eye(3)
    K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + K + K @ K * (1.0 / (1.0 + c))


def _pull_inside(sk: Skeleton, V: np.ndarray, F: np.ndarray, normals: np.ndarray) -> tuple[Skeleton, list[str]]:
    """Move each joint outside the surface (winding number < 0.5) just under the nearest
    vertex (a quarter of the local thickness, at most 1 % of the height, along the inward
    normal); the names of the moved joints."""
    from scipy.spatial import cKDTree

    P = sk.rest_positions()
    w = winding_numbers(V, F, P)
    out = np.flatnonzero(w < 0.5)
    if len(out) == 0:
        return sk, []
    H = float(np.ptp(V[:, 1]))
    tree = cKDTree(V)
    moved = []
    ends = {n: sk.rest_end_sites()[n] for n in sk.end_sites}
    for j in out:
        _, i = tree.query(P[j])
        depth = 0.004 * H
        for _ in range(6):
            q = V[i] - normals[i] * depth
            if winding_numbers(V, F, q[None])[0] >= 0.5:
                break
            depth *= 1.5
        P[j] = q
        moved.append(sk.names[j])
    offsets = P.copy()
    offsets[1:] = P[1:] - P[sk.parents[1:]]
    ends = {n: e - P[sk.index(n)] for n, e in ends.items()}
    return Skeleton(sk.names, sk.parents, offsets, ends), moved


# -- 4. weights -------------------------------------------------------------------------------


def autorig_weights(sk: Skeleton, V: np.ndarray, F: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(joints (N, 4) uint8, weights (N, 4) float32)`` for vertices ``V`` of the mesh
    in the frame of ``sk``; ``S`` the surface samples (same frame). Owners by distance in
    units of each bone's thickness, then :func:`retarget.character._skin_weights`."""
    from .character import _adjacency, _bone_segments, _segment_distance, _skin_weights

    Pj, Bj = _bone_segments(sk)
    J = len(sk)

    def dist(X):
        return np.stack([_segment_distance(X, Pj[j], Bj[j]) for j in range(J)], axis=1)

    Ds = dist(S)
    near = np.argmin(Ds, axis=1)
    H = float(np.ptp(S[:, 1]))
    radius = np.full(J, 0.01 * H)
    for j in range(J):
        d = Ds[near == j, j]
        if len(d) >= 10:
            radius[j] = max(float(np.median(d)), 0.004 * H)
    owner = np.empty(len(V), dtype=np.int64)
    for a in range(0, len(V), 20_000):
        owner[a:a + 20_000] = np.argmin(dist(V[a:a + 20_000]) / radius, axis=1)
    A = _adjacency(F, len(V))
    return _skin_weights(sk, V, owner, A)


# -- the whole -------------------------------------------------------------------------------


@dataclass(eq=False)
class AutoRig:
    """An auto-rigged mesh, in the house frame (+Y up, facing +Z, left +X, soles on
    y = 0; the input's scale).

    ``skeleton`` the canonical 52 joints fitted to the mesh; ``vertices (N, 3)``,
    ``faces (F, 3)``, ``normals (N, 3)``; ``joints``/``weights`` ``(N, 4)`` (uint8,
    float32 rows summing to 1); ``transform (4, 4)`` input frame -> house frame (apply
    it to anything given in the input's coordinates); ``info``: orientation cues,
    measurements, the joints pulled inside, timings.
    """

    skeleton: Skeleton
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    transform: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def autorig(vertices: np.ndarray, faces: np.ndarray, *, max_vertices: int = MAX_VERTICES) -> AutoRig:
    """Rig a humanoid mesh (``vertices (N, 3)`` any unit/axes, ``faces (F, 3)``); see the
    module docstring for the passes and what the mesh must be. About 2-6 s for 10-60k
    vertices on two cores. Raises :class:`~mocap.errors.RigError` (too large, no volume,
    not a humanoid) and :class:`~mocap.errors.UsageError` for malformed arrays."""
    import time

    from .character import _vertex_normals

    t0 = time.perf_counter()
    V = np.asarray(vertices, dtype=float)
    F = np.asarray(faces)
    if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3:
        raise UsageError(f"autorig needs vertices (N, 3) and faces (F, 3), got {V.shape} and {F.shape}")
    if len(V) > max_vertices:
        raise RigError(f"the mesh has {len(V)} vertices, more than the limit of {max_vertices}; decimate it "
                       "first (e.g. Blender's Decimate modifier) or raise max_vertices")
    if len(F) == 0 or len(V) < 100:
        raise RigError(f"the mesh is too small to be a character ({len(V)} vertices, {len(F)} triangles)")
    if not np.all(np.isfinite(V)):
        raise RigError("the mesh has non-finite vertex coordinates")
    if F.min() < 0 or F.max() >= len(V):
        raise UsageError(f"face indices must be in 0..{len(V) - 1}")
    F = F.astype(np.int64)
    # drop unused vertices (they would get no weights from the mesh graph)
    used = np.unique(F)
    if len(used) < len(V):
        remap = np.full(len(V), -1)
        remap[used] = np.arange(len(used))
        V, F = V[used], remap[F]
    S0, N0 = surface_samples(V, F, with_normals=True)
    T, orient = normalise_orientation(S0)
    Vn, S = _apply(T, V), _apply(T, S0)
    sk, meas = place_joints(S, N0 @ T[:3, :3].T)
    normals = _vertex_normals(Vn, F)
    sk, moved = _pull_inside(sk, Vn, F, normals)
    joints, weights = autorig_weights(sk, Vn, F, S)
    info = {"orientation": orient, "measurements": meas, "pulled_inside": moved, "vertices": int(len(Vn)),
            "triangles": int(len(F)), "fingers": "approximated from the hand's extent (canonical hand, scaled)",
            "seconds": round(time.perf_counter() - t0, 3)}
    return AutoRig(skeleton=sk, vertices=Vn, faces=F, normals=normals, joints=joints, weights=weights,
                   transform=T, info=info)


def save_autorig(result: AutoRig, path: str | os.PathLike) -> Path:
    """Write an :class:`AutoRig` as a skinned GLB (canonical joint names, rest = the
    fitted pose with world-aligned joints, one mesh with ``POSITION``, ``NORMAL``,
    ``JOINTS_0``, ``WEIGHTS_0``, a grey material; ``extras.understudy_autorig`` holds
    ``info`` and the input transform). Returns the path."""
    from . import gltf
    from .character import _jsonable

    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise UsageError(f"a rigged character is written as .glb, got {path.name!r}")
    sk = result.skeleton
    J = len(sk)
    info = dict(result.info)
    info["transform_from_input"] = result.transform.tolist()
    doc = gltf.GltfDocument(extra={"asset": {"version": "2.0"}, "extras": {"understudy_autorig": _jsonable(info)}})
    for j, name in enumerate(sk.names):
        kids = [int(c) for c in np.flatnonzero(sk.parents == j)]
        doc.nodes.append(gltf.Node(name=name, children=kids, translation=np.array(sk.offsets[j], dtype=float)))
    ibm = np.tile(np.eye(4), (J, 1, 1))
    ibm[:, :3, 3] = -sk.rest_positions()
    doc.skins.append(gltf.Skin(joints=list(range(J)), inverse_bind_matrices=ibm.astype(np.float32), skeleton=0,
                               name="understudy_skeleton"))
    prim = gltf.Primitive(attributes={"POSITION": result.vertices.astype(np.float32),
                                      "NORMAL": result.normals.astype(np.float32),
                                      "JOINTS_0": result.joints.astype(np.uint8),
                                      "WEIGHTS_0": result.weights.astype(np.float32)},
                          indices=result.faces.reshape(-1).astype(np.uint32), material=0)
    doc.meshes.append(gltf.Mesh(name="body", primitives=[prim]))
    doc.nodes.append(gltf.Node(name="body", mesh=0, skin=0))
    doc.materials = [{"name": "understudy_autorig", "pbrMetallicRoughness": {
        "baseColorFactor": [0.7, 0.7, 0.7, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.8}}]
    doc.scenes = [{"name": "character", "nodes": [0, J]}]
    doc.scene = 0
    return gltf.write_glb(doc, path)


_POSE_JOINTS = {11: "leftUpperArm", 12: "rightUpperArm", 13: "leftLowerArm", 14: "rightLowerArm", 15: "leftHand",
                16: "rightHand", 23: "leftUpperLeg", 24: "rightUpperLeg", 25: "leftLowerLeg", 26: "rightLowerLeg",
                27: "leftFoot", 28: "rightFoot"}
"""MediaPipe Pose landmark index -> our joint (MediaPipe's "left" is the person's left too)."""


def pose_check(result: AutoRig, *, size: tuple[int, int] = (384, 512)) -> dict[str, Any]:
    """Render the rigged mesh from the front (:func:`retarget.character.render_preview`)
    and run MediaPipe Pose (static image, model complexity 1) on it. Returns ``found``
    (a pose was detected), ``errors`` per joint of :data:`_POSE_JOINTS` (distance between
    MediaPipe's landmark and our projected joint, over the figure's height in the
    picture) and their ``mean``. A mean of a few percent says the joints sit where a
    person detector sees them; MediaPipe's hip landmarks sit lower and wider than
    anatomical hip joints, so 3-6 % is usual there. Needs pyrender and mediapipe."""
    import mediapipe as mp

    from .character import project_preview, render_preview

    img = render_preview(result.vertices, result.faces, None, size=size)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        r = pose.process(img)
    if r.pose_landmarks is None:
        return {"found": False, "errors": {}, "mean": None}
    sk = result.skeleton
    P = sk.rest_positions()
    names = list(_POSE_JOINTS.values())
    ours = project_preview(P[[sk.index(n) for n in names]], result.vertices, size=size)
    lo, hi = result.vertices.min(axis=0), result.vertices.max(axis=0)
    top, bottom = project_preview(np.array([[0.0, hi[1], 0.0], [0.0, lo[1], 0.0]]), result.vertices, size=size)
    height_px = abs(bottom[1] - top[1])
    lm = r.pose_landmarks.landmark
    w, h = size
    errors = {}
    for (i, n), q in zip(_POSE_JOINTS.items(), ours):
        errors[n] = float(np.hypot(lm[i].x * w - q[0], lm[i].y * h - q[1]) / height_px)
    return {"found": True, "errors": errors, "mean": float(np.mean(list(errors.values())))}


def autorig_file(mesh_path: str | os.PathLike, out: str | os.PathLike, *,
                 max_vertices: int = MAX_VERTICES) -> AutoRig:
    """:func:`load_mesh` -> :func:`autorig` -> :func:`save_autorig`; returns the result."""
    out = Path(out)
    if out.suffix.lower() != ".glb":
        raise UsageError(f"a rigged character is written as .glb, got {out.name!r}")
    V, F = load_mesh(mesh_path)
    res = autorig(V, F, max_vertices=max_vertices)
    res.info["source"] = str(mesh_path)
    save_autorig(res, out)
    return res
