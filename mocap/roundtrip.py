"""The accuracy round trip: real motion capture -> rendered footage -> track -> solve ->
compared with the truth (``benchmarks/roundtrip/run.py``, ``tests/test_roundtrip.py``).

A BVH is retargeted onto a textured character (:func:`truth_motion`; the character's
own joints, which move the mesh we render, are the truth), skinned with
:func:`retarget.rig.skin_vertices` and drawn by a small software rasteriser
(:class:`Renderer`: z-buffer, perspective-correct texture lookup, Lambert shading, a
checker floor) from known cameras (:func:`place_cameras`). The footage then goes through
the pipeline as any clip would (:func:`track_and_solve`) and :func:`mocap.evaluate.evaluate`
compares both the solved motion and the raw lifted MediaPipe landmarks with the truth
(:func:`compare`).

Why a rasteriser of our own and not Blender: Cycles needs about 1 s per 320x240 frame
here, Eevee on software GL about 20 s, and a long-lived ``bpy`` process was seen to slow
down and explode skinned meshes after ~90 frames; the full benchmark renders ~4000
frames on two shared cores. The numpy rasteriser draws a 640x480 frame in ~0.1 s,
deterministically, with the character's own textures (or vertex colours); MediaPipe
finds the figure in every frame. What it lacks (shadows, specular, anti-aliasing, motion blur) makes the
footage *easier* than a real video, which the accuracy page says.

Ground truth beside each clip (:func:`save_truth`, schema ``understudy.roundtrip_truth``
v1, an ``.npz`` without pickles plus a readable ``.json``): joint world positions and
global rotations (wxyz), local rotations, the root path, per-foot contacts, the camera's
intrinsics and extrinsics (camera-to-world rotation, glTF camera axes: +X right, +Y up,
looking down -Z) and the world-to-image projection.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileFormatError, UsageError
from .motion import Motion, Skeleton

__all__ = [
    "TRUTH_SCHEMA",
    "TRUTH_VERSION",
    "VIEWS",
    "Character",
    "RoundtripCamera",
    "load_character",
    "truth_motion",
    "truth_contacts",
    "contact_agreement",
    "place_cameras",
    "Renderer",
    "render_clip",
    "save_truth",
    "load_truth",
    "track_and_solve",
    "compare",
]

TRUTH_SCHEMA = "understudy.roundtrip_truth"
TRUTH_VERSION = 1
VIEWS: dict[str, float] = {"front": 0.0, "three_quarter": 45.0, "side": 90.0}
"""Camera name -> yaw (deg) about the performer, from their first-frame facing towards
their left (the glossary's right-handed +Y rotation)."""

_UP = np.array([0.0, 1.0, 0.0])


# -- the character -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Part:
    mesh: int  # index into rig.meshes
    faces: np.ndarray  # (F, 3)
    uv: np.ndarray  # (N, 2) glTF uv (origin top-left)
    texture: np.ndarray  # (H, W, 4) float 0..1, sRGB colour + alpha
    alpha_test: bool  # MASK or BLEND: fragments with alpha < 0.5 are dropped
    colors: np.ndarray | None = None  # (N, 3) sRGB 0..1 vertex colours (glTF COLOR_0), multiplied in


@dataclass(eq=False)
class Character:
    """A rig and what it takes to draw it: per mesh, its triangles, uv and texture."""

    rig: Any  # retarget.rig.Rig
    parts: list[_Part]
    path: Path


def _texture(doc, material: dict) -> np.ndarray:
    import cv2

    pbr = material.get("pbrMetallicRoughness", {})
    factor = np.asarray(pbr.get("baseColorFactor", [1.0, 1.0, 1.0, 1.0]), dtype=float)
    ref = pbr.get("baseColorTexture")
    if ref is None:
        return factor.reshape(1, 1, 4)
    img = doc.images[doc.textures[ref["index"]]["source"]]
    if img.data is None:
        raise FileFormatError(f"texture image {img.name!r} is not embedded in {doc.source}")
    a = cv2.imdecode(np.frombuffer(img.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise FileFormatError(f"texture image {img.name!r} in {doc.source} cannot be decoded")
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, a.dtype)], axis=-1)
    a = a[..., [2, 1, 0, 3]].astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)
    return a * factor.astype(np.float32)


def load_character(path: str | os.PathLike) -> Character:
    """A glTF character (``.glb``) ready to pose and draw: per mesh its base-colour
    texture and factor, and its vertex colours (``COLOR_0``, as our generated characters
    have) when it has them."""
    from retarget.rig import load_rig

    path = Path(path)
    rig = load_rig(path)
    doc = rig.doc
    parts = []
    for k, m in enumerate(rig.meshes):
        mesh = doc.meshes[doc.nodes[m.node_index].mesh]
        prims = [p for p in mesh.primitives if "POSITION" in p.attributes]
        if len({p.material for p in prims}) != 1 or any(p.mode != 4 for p in prims):
            raise FileFormatError(f"{path.name}: mesh {m.name!r} mixes materials or is not triangles; "
                                  "the round-trip renderer draws one material per mesh")
        if not all("TEXCOORD_0" in p.attributes for p in prims):
            uv = np.zeros((len(m.vertices), 2))
        else:
            uv = np.concatenate([np.asarray(p.attributes["TEXCOORD_0"], float) for p in prims])
        mat = doc.materials[prims[0].material] if prims[0].material is not None else {}
        colors = None
        if all("COLOR_0" in p.attributes for p in prims):
            lin = np.clip(np.concatenate([np.asarray(p.attributes["COLOR_0"], float)[:, :3] for p in prims]), 0, 1)
            colors = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)  # linear -> sRGB
        parts.append(_Part(mesh=k, faces=np.asarray(m.faces, np.int64), uv=uv, texture=_texture(doc, mat),
                           alpha_test=mat.get("alphaMode", "OPAQUE") in ("MASK", "BLEND"), colors=colors))
    return Character(rig=rig, parts=parts, path=path)


def truth_motion(bvh: str | os.PathLike, character: Character, *, fps: float = 30.0,
                 start_s: float = 0.0, seconds: float | None = None) -> Motion:
    """The BVH resampled to ``fps`` (frames ``start_s`` .. ``start_s + seconds``, clock
    restarted at 0) and retargeted onto the character: a Motion on ``rig.skeleton``,
    what the rendered mesh follows."""
    from retarget.retarget import retarget

    from .bvh import load_bvh

    src = load_bvh(bvh).resample(fps)
    i0 = int(round(start_s * fps))
    i1 = None if seconds is None else i0 + int(round(seconds * fps)) + 1
    src = src.slice(i0, i1)
    src = Motion(skeleton=src.skeleton, rotations=src.rotations, root_positions=src.root_positions, fps=src.fps,
                 timestamps=src.timestamps - src.timestamps[0], local_offsets=src.local_offsets, meta=dict(src.meta))
    res = retarget(src, character.rig)
    m = res.motion
    m.meta = dict(m.meta, source=str(bvh), retarget_notes=res.notes)
    return m


def truth_contacts(positions: np.ndarray, timestamps: np.ndarray, *, height_m: float = 0.05,
                   speed_m_s: float = 0.1) -> np.ndarray:
    """``(T, 2)`` bool (left, right foot) planted, by the rule of
    :func:`mocap.evaluate.evaluate`: within ``height_m`` of the lowest foot height of the
    clip and moving horizontally slower than ``speed_m_s``. ``positions`` ``(T, 2, 3)``."""
    floor = float(positions[..., 1].min())
    speed = np.linalg.norm(np.gradient(positions[..., [0, 2]], timestamps, axis=0), axis=-1)
    return (positions[..., 1] - floor < height_m) & (speed < speed_m_s)


# -- cameras ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundtripCamera:
    """A pinhole camera: ``rotation`` (3, 3) camera axes (glTF: +X right, +Y up, +Z
    backwards) as columns in world coordinates, ``position`` (3,) m, image ``width`` x
    ``height`` px with horizontal field of view ``hfov_deg``."""

    name: str
    rotation: np.ndarray
    position: np.ndarray
    width: int
    height: int
    hfov_deg: float
    yaw_deg: float = 0.0

    @property
    def focal_px(self) -> float:
        return 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def K(self) -> np.ndarray:
        f = self.focal_px
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> camera frame ``(..., 3)`` (looking down -Z)."""
        return (np.asarray(p, float) - self.position) @ self.rotation

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(..., 3)`` -> (pixels ``(..., 2)``, image +y down; depth ``(...)`` m)."""
        c = self.to_camera(p)
        d = -c[..., 2]
        f = self.focal_px
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.width / 2.0 + f * c[..., 0] / d, self.height / 2.0 - f * c[..., 1] / d], axis=-1)
        return uv, d

    def to_json(self) -> dict:
        return {"name": self.name, "width": self.width, "height": self.height, "hfov_deg": self.hfov_deg,
                "yaw_deg": self.yaw_deg, "K": self.K.tolist(), "position_m": self.position.tolist(),
                "rotation_cam_to_world": self.rotation.tolist(),
                "axes": "camera +X right, +Y up, looks down -Z (glTF); image +y down"}


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = position - target
    z /= np.linalg.norm(z)
    x = np.cross(_UP, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def place_cameras(points: np.ndarray, facing: np.ndarray, *, width: int, height: int, hfov_deg: float = 60.0,
                  views: dict[str, float] | None = None, height_m: float = 1.3, fill: float = 0.9,
                  min_distance_m: float = 3.0) -> dict[str, RoundtripCamera]:
    """One camera per view (name -> yaw, default :data:`VIEWS`) around the performer.

    ``points`` ``(T, N, 3)``: where the figure is over the clip (e.g. skinned vertices of a
    few frames); ``facing`` (3,): the performer's horizontal first-frame facing. Each
    camera stands ``height_m`` above the floor, on the line from the middle of the
    figure's path along ``facing`` turned by the yaw, looks at that middle at the
    figure's half height, and is as close as it can be (not nearer than
    ``min_distance_m``) while every point stays within ``fill`` of the frame."""
    views = VIEWS if views is None else views
    pts = np.asarray(points, float).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    floor = float(lo[1])
    centre = np.array([(lo[0] + hi[0]) / 2, floor + 0.5 * (hi[1] - floor), (lo[2] + hi[2]) / 2])
    f = np.asarray(facing, float).copy()
    f[1] = 0.0
    f /= np.linalg.norm(f)
    out = {}
    for name, yaw in views.items():
        a = math.radians(yaw)
        d = np.array([math.cos(a) * f[0] + math.sin(a) * f[2], 0.0, -math.sin(a) * f[0] + math.cos(a) * f[2]])
        cam = None
        for dist in np.arange(min_distance_m, 40.0, 0.1):
            pos = centre + dist * d
            pos[1] = floor + height_m
            cam = RoundtripCamera(name=name, rotation=_look_at(pos, centre), position=pos, width=width,
                                  height=height, hfov_deg=hfov_deg, yaw_deg=float(yaw))
            uv, depth = cam.project(pts)
            mx, my = (1 - fill) / 2 * width, (1 - fill) / 2 * height
            if (np.all(depth > 0.5) and np.all((uv[:, 0] > mx) & (uv[:, 0] < width - mx))
                    and np.all((uv[:, 1] > my) & (uv[:, 1] < height - my))):
                break
        else:
            raise UsageError(f"camera {name!r}: the figure does not fit the frame within 40 m")
        out[name] = cam
    return out


# -- the rasteriser --------------------------------------------------------------------------------


@dataclass(eq=False)
class Renderer:
    """Draws posed :class:`Character` meshes through a :class:`RoundtripCamera`.

    Z-buffered triangles at pixel centres, perspective-correct uv, nearest-texel
    lookup, alpha-tested cut-outs (hair, brows, lashes), Lambert shading of smooth
    vertex normals (two-sided) under a key light from above the camera plus ambient,
    over a grey checker floor (0.5 m tiles) and a plain backdrop."""

    camera: RoundtripCamera
    floor_y: float = 0.0
    light_cam: tuple[float, float, float] = (-0.35, 0.6, 0.72)
    ambient: float = 0.45
    _background: np.ndarray | None = field(default=None, repr=False)

    def background(self) -> np.ndarray:
        if self._background is not None:
            return self._background
        c = self.camera
        W, H = c.width, c.height
        f = c.focal_px
        xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        dirs = np.stack([(xs - W / 2) / f, -(ys - H / 2) / f, -np.ones_like(xs)], axis=-1) @ c.rotation.T
        img = np.empty((H, W, 3), np.float32)
        sky = 0.78 - 0.12 * (ys / H)
        img[:] = np.stack([sky * 0.92, sky * 0.95, sky], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.floor_y - c.position[1]) / dirs[..., 1]
        hit = np.isfinite(t) & (t > 0) & (t < 60)
        p = c.position + dirs * np.where(hit, t, 0.0)[..., None]
        checker = ((np.floor(p[..., 0] / 0.5) + np.floor(p[..., 2] / 0.5)) % 2).astype(np.float32)
        fade = np.exp(-np.where(hit, t, 0.0) / 25.0)
        tone = (0.55 + 0.1 * checker) * fade + 0.6 * (1 - fade)
        img[hit] = np.stack([tone * 0.98, tone * 0.96, tone * 0.9], axis=-1)[hit]
        self._background = img
        return img

    def draw(self, character: Character, vertices: list[np.ndarray]) -> np.ndarray:
        """``vertices``: per part of ``character``, ``(N, 3)`` posed world positions.
        Returns an ``(H, W, 3)`` uint8 RGB image."""
        c = self.camera
        W, H = c.width, c.height
        f = c.focal_px
        img = self.background().copy()
        light = np.asarray(self.light_cam, float)
        light /= np.linalg.norm(light)
        zbuf_pix, zbuf_depth, frag_info = [], [], []
        for pi, (part, V) in enumerate(zip(character.parts, vertices)):
            F = part.faces
            if len(F) == 0:
                continue
            Vc = c.to_camera(V)
            d = -Vc[:, 2]
            sx = W / 2 + f * Vc[:, 0] / np.maximum(d, 1e-6)
            sy = H / 2 - f * Vc[:, 1] / np.maximum(d, 1e-6)
            # smooth normals, in the camera frame
            e1 = Vc[F[:, 1]] - Vc[F[:, 0]]
            e2 = Vc[F[:, 2]] - Vc[F[:, 0]]
            fn = np.cross(e1, e2)
            vn = np.zeros_like(Vc)
            for k in range(3):
                for a in range(3):
                    vn[:, a] += np.bincount(F[:, k], weights=fn[:, a], minlength=len(Vc))
            vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
            # fragments
            tx, ty, td = sx[F], sy[F], d[F]  # (F, 3)
            ok = np.all(td > 0.05, axis=1)
            x0 = np.ceil(tx.min(1) - 0.5).astype(np.int64)
            x1 = np.floor(tx.max(1) - 0.5).astype(np.int64)
            y0 = np.ceil(ty.min(1) - 0.5).astype(np.int64)
            y1 = np.floor(ty.max(1) - 0.5).astype(np.int64)
            x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
            x1, y1 = np.minimum(x1, W - 1), np.minimum(y1, H - 1)
            w = np.where(ok, np.maximum(x1 - x0 + 1, 0), 0)
            h = np.where(ok, np.maximum(y1 - y0 + 1, 0), 0)
            n = w * h
            total = int(n.sum())
            if total == 0:
                continue
            tri = np.repeat(np.arange(len(F)), n)
            k = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
            px = x0[tri] + k % w[tri]
            py = y0[tri] + k // w[tri]
            ax, ay, bx, by, cx, cy = tx[tri, 0], ty[tri, 0], tx[tri, 1], ty[tri, 1], tx[tri, 2], ty[tri, 2]
            qx, qy = px + 0.5, py + 0.5
            den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
            with np.errstate(divide="ignore", invalid="ignore"):
                l0 = ((by - cy) * (qx - cx) + (cx - bx) * (qy - cy)) / den
                l1 = ((cy - ay) * (qx - cx) + (ax - cx) * (qy - cy)) / den
            l2 = 1.0 - l0 - l1
            eps = -1e-6
            inside = (np.abs(den) > 1e-12) & (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
            tri, px, py, l0, l1, l2 = tri[inside], px[inside], py[inside], l0[inside], l1[inside], l2[inside]
            inv = l0 / td[tri, 0] + l1 / td[tri, 1] + l2 / td[tri, 2]
            depth = 1.0 / inv
            b = np.stack([l0 / td[tri, 0], l1 / td[tri, 1], l2 / td[tri, 2]], axis=1) * depth[:, None]
            uv = np.einsum("nk,nkc->nc", b, part.uv[F[tri]])
            if part.alpha_test:
                a = self._sample(part.texture, uv)[:, 3]
                keep = a >= 0.5
                tri, px, py, depth, b, uv = tri[keep], px[keep], py[keep], depth[keep], b[keep], uv[keep]
            zbuf_pix.append(py * W + px)
            zbuf_depth.append(depth)
            frag_info.append((pi, tri, b, uv, vn))
        if not zbuf_pix:
            return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        pix = np.concatenate(zbuf_pix)
        dep = np.concatenate(zbuf_depth)
        which = np.concatenate([np.full(len(p), i) for i, p in enumerate(zbuf_pix)])
        local = np.concatenate([np.arange(len(p)) for p in zbuf_pix])
        order = np.lexsort((dep, pix))
        first = np.ones(len(order), bool)
        first[1:] = pix[order][1:] != pix[order][:-1]
        win = order[first]
        for i, (pi, tri, b, uv, vn) in enumerate(frag_info):
            sel = win[which[win] == i]
            if len(sel) == 0:
                continue
            li = local[sel]
            part = character.parts[pi]
            F = part.faces
            nrm = np.einsum("nk,nkc->nc", b[li], vn[F[tri[li]]])
            nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
            shade = self.ambient + (1 - self.ambient) * np.abs(nrm @ light)
            col = self._sample(part.texture, uv[li])[:, :3] * shade[:, None]
            if part.colors is not None:
                col = col * np.einsum("nk,nkc->nc", b[li], part.colors[F[tri[li]]])
            p = pix[sel]
            img.reshape(-1, 3)[p] = col
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)

    @staticmethod
    def _sample(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
        Ht, Wt = tex.shape[:2]
        u = np.mod(uv[:, 0], 1.0)
        v = np.mod(uv[:, 1], 1.0)
        xi = np.minimum((u * Wt).astype(np.int64), Wt - 1)
        yi = np.minimum((v * Ht).astype(np.int64), Ht - 1)
        return tex[yi, xi]


def pose_vertices(character: Character, motion: Motion) -> list[np.ndarray]:
    """Per part, ``(T, N, 3)`` skinned vertices of ``character`` posed by ``motion``."""
    from retarget.rig import skin_vertices

    return [skin_vertices(character.rig, motion, p.mesh) for p in character.parts]


def render_clip(character: Character, motion: Motion, camera: RoundtripCamera, path: str | os.PathLike, *,
                progress: bool = True, still: str | os.PathLike | None = None,
                still_frame: int = 0) -> Path:
    """Render ``motion`` on ``character`` through ``camera`` to an H.264 ``.mp4`` at the
    motion's fps (frame k at k / fps s), written atomically. ``still``: also write frame
    ``still_frame`` as a PNG there."""
    import av
    import cv2
    from tqdm import tqdm

    path = Path(path)
    fps = float(motion.fps)
    if abs(fps - round(fps)) > 1e-6:
        raise UsageError(f"render_clip needs a whole fps, got {fps}")
    posed = pose_vertices(character, motion)
    floor = float(min(v[..., 1].min() for v in posed))
    ren = Renderer(camera, floor_y=min(floor, 0.0))
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as out:
            st = out.add_stream("libx264", rate=int(round(fps)))
            st.width, st.height = camera.width, camera.height
            st.pix_fmt = "yuv420p"
            st.options = {"crf": "16", "preset": "veryfast"}
            for t in tqdm(range(motion.n_frames), desc=f"render {path.stem}", unit="frame", disable=not progress,
                          dynamic_ncols=True):
                rgb = ren.draw(character, [v[t] for v in posed])
                if still is not None and t == still_frame:
                    cv2.imwrite(str(still), rgb[..., ::-1])
                for pkt in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# -- ground truth files ---------------------------------------------------------------------------


def save_truth(path: str | os.PathLike, motion: Motion, camera: RoundtripCamera, *, bonemap: str,
               character: str, clip: str) -> Path:
    """Write the truth of one rendered clip: ``path`` (``.npz``, no pickles) and the same
    stem ``.json`` (header, camera, joint names), both atomically. Arrays: ``timestamps``
    ``(T,)`` s; ``positions`` ``(T, J, 3)`` world m; ``global_rotations`` and
    ``local_rotations`` ``(T, J, 4)`` wxyz; ``root_path`` ``(T, 3)`` (pelvis centre:
    midpoint of the upper legs when the bone map has them, else the root joint);
    ``contacts`` ``(T, 2)`` bool (left, right; :func:`truth_contacts`); ``parents``
    ``(J,)``; ``offsets`` ``(J, 3)``; ``K`` ``(3, 3)``; ``camera_rotation`` ``(3, 3)``
    camera-to-world; ``camera_position`` ``(3,)``; ``image_points`` ``(T, J, 2)`` px."""
    from retarget.bonemap import builtin_profiles

    path = Path(path)
    P, G = motion.fk()
    found = builtin_profiles()[bonemap].resolve(motion.skeleton.names)
    if "leftUpperLeg" in found and "rightUpperLeg" in found:
        root = 0.5 * (P[:, motion.skeleton.index(found["leftUpperLeg"])]
                      + P[:, motion.skeleton.index(found["rightUpperLeg"])])
    else:
        root = P[:, 0]
    feet = np.stack([P[:, motion.skeleton.index(found[f])] for f in ("leftFoot", "rightFoot")], axis=1)
    contacts = truth_contacts(feet, motion.timestamps)
    uv, _ = camera.project(P)
    arrays = {
        "timestamps": motion.timestamps.astype(float),
        "positions": P,
        "global_rotations": G,
        "local_rotations": motion.rotations,
        "root_path": root,
        "contacts": contacts,
        "parents": np.asarray(motion.skeleton.parents, np.int64),
        "offsets": np.asarray(motion.skeleton.offsets, float),
        "K": camera.K,
        "camera_rotation": camera.rotation,
        "camera_position": camera.position,
        "image_points": uv,
    }
    header = {
        "schema": TRUTH_SCHEMA,
        "schema_version": TRUTH_VERSION,
        "clip": clip,
        "character": character,
        "bonemap": bonemap,
        "fps": float(motion.fps),
        "frames": int(motion.n_frames),
        "joint_names": list(motion.skeleton.names),
        "units": {"length": "m", "time": "s", "image": "px"},
        "axes": "world +Y up, right-handed; quaternions wxyz; camera glTF axes (+X right, +Y up, looks down -Z)",
        "root_path": "pelvis centre (midpoint of the upper-leg joints)",
        "contacts": "foot within 5 cm of the clip's lowest foot height and slower than 0.1 m/s (mocap.evaluate)",
        "camera": camera.to_json(),
        "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    for target, write in ((path, lambda f: np.savez_compressed(f, **arrays)),
                          (path.with_suffix(".json"),
                           lambda f: f.write(json.dumps(header, indent=2).encode("utf-8")))):
        fd, tmp = tempfile.mkstemp(suffix=target.suffix, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def load_truth(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(header, arrays)`` of a file written by :func:`save_truth`; rejects other files
    and other schema versions with :class:`~mocap.errors.FileFormatError`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise FileFormatError(f"{path}: not a round-trip truth file ({e})") from None
    if "header" not in arrays:
        raise FileFormatError(f"{path}: no header: not a round-trip truth file")
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    if header.get("schema") != TRUTH_SCHEMA:
        raise FileFormatError(f"{path}: schema {header.get('schema')!r}, expected {TRUTH_SCHEMA!r}")
    if header.get("schema_version") != TRUTH_VERSION:
        raise FileFormatError(f"{path}: schema version {header.get('schema_version')}, this reader knows "
                              f"{TRUTH_VERSION}")
    return header, arrays


def truth_from_file(header: dict, arrays: dict[str, np.ndarray]) -> Motion:
    """The truth Motion back from :func:`load_truth`'s output."""
    sk = Skeleton(names=tuple(header["joint_names"]), parents=arrays["parents"], offsets=arrays["offsets"])
    root = arrays["positions"][:, 0]
    return Motion(skeleton=sk, rotations=arrays["local_rotations"], root_positions=root, fps=header["fps"],
                  timestamps=arrays["timestamps"])


# -- the pipeline and the comparison -------------------------------------------------------------


def track_and_solve(video: str | os.PathLike, *, hfov_deg: float | None, progress: bool = True,
                    model_complexity: int = 1):
    """``(take, SolveResult)``: MediaPipe Holistic on ``video``, then the whole solve
    (:func:`mocap.pipeline.solve_take`) with the default options. ``hfov_deg``: the
    camera's field of view if known (else the tracker's default assumption)."""
    from .pipeline import solve_take
    from .sources import open_source
    from .tracking import TrackOptions, track

    with open_source(str(video)) as src:
        take = track(src, options=TrackOptions(hfov_deg=hfov_deg, model_complexity=model_complexity),
                     progress=progress)
    return take, solve_take(take)


def compare(result, truth: Motion, *, truth_map: str) -> dict[str, dict]:
    """Metrics of the solved motion and of the raw lifted MediaPipe landmarks against
    ``truth`` on :data:`mocap.evaluate.LIMB_JOINTS`, one heading angle fitted per clip
    (the solve's world heading is the camera's). Each dict is
    :func:`mocap.evaluate.evaluate`'s, plus ``root_path_percent`` (rigid-aligned root path
    error over the truth's horizontal distance travelled) and ``skate_per_contact``
    (``foot_skate``'s per-contact slide, cm, of the motion; ``skate_per_contact_truth``
    the truth's own); ``out["contacts"]`` is :func:`contact_agreement` of the solve's
    foot contacts with the truth's."""
    from .evaluate import LIMB_JOINTS, evaluate, markers_motion

    raw = markers_motion(result.raw)
    out = {}
    for name, m in (("solved", result.motion), ("raw", raw)):
        r = evaluate(m, truth, motion_map="canonical", truth_map=truth_map, joints=list(LIMB_JOINTS),
                     heading_align=True)
        out[name] = r
    # distance travelled by the truth pelvis (horizontal, on the compared timeline)
    from retarget.bonemap import builtin_profiles

    found = builtin_profiles()[truth_map].resolve(truth.skeleton.names)
    Pt = truth.positions()
    pel = 0.5 * (Pt[:, truth.skeleton.index(found["leftUpperLeg"])] + Pt[:, truth.skeleton.index(found["rightUpperLeg"])])
    for name, m in (("solved", result.motion), ("raw", raw)):
        r = out[name]
        t = m.timestamps
        t = t[(t >= truth.timestamps[0] - 1e-6) & (t <= truth.timestamps[-1] + 1e-6)]
        idx = np.clip(np.round((t - truth.timestamps[0]) * truth.fps).astype(int), 0, truth.n_frames - 1)
        travelled = float(np.sum(np.linalg.norm(np.diff(pel[idx][:, [0, 2]], axis=0), axis=-1)))
        r["distance_travelled_m"] = travelled
        rp = r["root_path_mm"]["rigid_horizontal"]
        r["root_path_percent"] = 100 * rp / 1000 / travelled if travelled > 0.05 else None
        fs = r["foot_skate"]
        r["skate_per_contact"] = {"contacts": fs["contacts"], "mean_cm": fs["motion_cm_per_contact"]}
        r["skate_per_contact_truth"] = {"contacts": fs["contacts"], "mean_cm": fs["truth_cm_per_contact"]}
    feet = np.stack([Pt[:, truth.skeleton.index(found[f])] for f in ("leftFoot", "rightFoot")], axis=1)
    out["contacts"] = contact_agreement(result.contacts, result.motion.timestamps, feet, truth.timestamps)
    return out


def contact_agreement(contacts: dict[str, np.ndarray], timestamps: np.ndarray, truth_feet: np.ndarray,
                      truth_timestamps: np.ndarray, *, swing_height_m: float = 0.10,
                      swing_speed_m_s: float = 0.5) -> dict:
    """How the detected foot contacts compare with the truth's.

    ``contacts`` ``{"left", "right": (T,) bool}`` on ``timestamps`` ``(T,)`` s (a solve's
    output); ``truth_feet`` ``(N, 2, 3)`` world m, the truth's left and right ankles on
    ``truth_timestamps`` ``(N,)``. Each solved frame is matched to the nearest truth frame.
    Returns ``found_percent``: of the truth's contact frames (:func:`truth_contacts`), the
    share detected on the same foot; ``false_percent``: of the detected frames, the share
    on a truly *swinging* foot (its ankle more than ``swing_height_m`` above the clip's
    lowest ankle height or moving faster than ``swing_speed_m_s`` horizontally: not
    merely a foot that the truth's strict 0.1 m/s rule calls "not planted", such as a
    heel rolling off); ``exact_percent``: of the detected frames, the share inside a truth
    contact; and the frame counts. Percentages are None when there is nothing to divide by.
    """
    t = np.asarray(timestamps, dtype=float)
    tt = np.asarray(truth_timestamps, dtype=float)
    fps = (len(tt) - 1) / (tt[-1] - tt[0]) if len(tt) > 1 and tt[-1] > tt[0] else 1.0
    keep = (t >= tt[0] - 1e-6) & (t <= tt[-1] + 1e-6)
    idx = np.clip(np.round((t[keep] - tt[0]) * fps).astype(int), 0, len(tt) - 1)
    truth = truth_contacts(truth_feet, tt)[idx]  # (n, 2)
    floor = float(truth_feet[..., 1].min())
    speed = np.linalg.norm(np.gradient(truth_feet[..., [0, 2]], tt, axis=0), axis=-1)
    swing = ((truth_feet[..., 1] - floor > swing_height_m) | (speed > swing_speed_m_s))[idx]
    det = np.stack([np.asarray(contacts.get(s, np.zeros(len(t), bool)), bool)[keep] for s in ("left", "right")],
                   axis=1)
    n_truth, n_det = int(truth.sum()), int(det.sum())

    def pct(a, b):
        return 100.0 * a / b if b else None

    return {
        "found_percent": pct(int((det & truth).sum()), n_truth),
        "false_percent": pct(int((det & swing).sum()), n_det),
        "exact_percent": pct(int((det & truth).sum()), n_det),
        "truth_frames": n_truth,
        "detected_frames": n_det,
        "swing_height_m": swing_height_m,
        "swing_speed_m_s": swing_speed_m_s,
    }


_MP_TO_CANON = {
    "left_hip": "leftUpperLeg", "right_hip": "rightUpperLeg", "left_knee": "leftLowerLeg",
    "right_knee": "rightLowerLeg", "left_ankle": "leftFoot", "right_ankle": "rightFoot",
    "left_shoulder": "leftUpperArm", "right_shoulder": "rightUpperArm", "left_elbow": "leftLowerArm",
    "right_elbow": "rightLowerArm", "left_wrist": "leftHand", "right_wrist": "rightHand",
}  # fmt: skip
"""MediaPipe body landmark -> the canonical joint at the same anatomical place."""


def tracker_diagnostics(take, truth: Motion, camera: RoundtripCamera, *, truth_map: str) -> dict:
    """Where the error starts: MediaPipe's own output against the truth, before any lift
    or solve. ``image_px``: mean 2D distance (px) between each landmark and the truth
    joint projected by the known camera; ``world_cam``: MediaPipe's metric world
    landmarks against the truth in the camera's axes, both relative to the pelvis centre
    (``mpjpe_mm``, ``pa_mpjpe_mm``, ``bias_mm`` mean signed error per axis x right, y up,
    z towards the camera; ``size_ratio`` MediaPipe's figure over the truth's, sum of the
    limb-bone lengths; ``pa_mpjpe_mm_true_depth`` / ``pa_mpjpe_mm_true_image_plane``: the
    PA-MPJPE with MediaPipe's depths / image-plane coordinates replaced by the truth's,
    which splits the error between depth and the rest). Frames without a body are skipped."""
    from retarget.bonemap import builtin_profiles

    from . import landmarks as L
    from .evaluate import _similarity_align

    found = builtin_profiles()[truth_map].resolve(truth.skeleton.names)
    names = list(_MP_TO_CANON)
    t = np.asarray(take.timestamps, float)
    ok = np.asarray(take.present["pose"], bool) & (t <= truth.timestamps[-1] + 1e-6)
    fi = np.clip(np.round((t[ok] - truth.timestamps[0]) * truth.fps).astype(int), 0, truth.n_frames - 1)
    P = truth.positions()[fi]
    Tw = np.stack([P[:, truth.skeleton.index(found[_MP_TO_CANON[n]])] for n in names], axis=1)
    idx = [L.index("pose", n) for n in names]
    uv, _ = camera.project(Tw)
    img = np.asarray(take.pose_image, float)[ok][:, idx, :2]
    px = np.linalg.norm(uv - img, axis=-1)
    Tc = camera.to_camera(Tw)
    Tc = Tc - 0.5 * (Tc[:, :1] + Tc[:, 1:2])
    Mw = np.asarray(take.pose_world, float)[ok][:, idx]
    Mw = Mw - 0.5 * (Mw[:, :1] + Mw[:, 1:2])
    err = np.linalg.norm(Mw - Tc, axis=-1)
    pa = np.linalg.norm(_similarity_align(Mw, Tc) - Tc, axis=-1)
    bones = [(0, 2), (2, 4), (1, 3), (3, 5), (6, 8), (8, 10), (7, 9), (9, 11)]
    # the same with one part of MediaPipe's answer replaced by the truth: how much is depth?
    true_z = np.concatenate([Mw[..., :2], Tc[..., 2:]], axis=-1)
    true_xy = np.concatenate([Tc[..., :2], Mw[..., 2:]], axis=-1)
    pa_true_z = np.linalg.norm(_similarity_align(true_z, Tc) - Tc, axis=-1)
    pa_true_xy = np.linalg.norm(_similarity_align(true_xy, Tc) - Tc, axis=-1)

    def size(X):
        return float(np.mean(sum(np.linalg.norm(X[:, a] - X[:, b], axis=-1) for a, b in bones)))

    return {
        "frames": int(ok.sum()),
        "image_px": {"mean": float(px.mean()), "per_landmark": {n: float(v) for n, v in zip(names, px.mean(0))}},
        "world_cam": {
            "mpjpe_mm": float(err[:, 2:].mean() * 1000),
            "pa_mpjpe_mm": float(pa.mean() * 1000),
            "pa_mpjpe_mm_true_depth": float(pa_true_z.mean() * 1000),
            "pa_mpjpe_mm_true_image_plane": float(pa_true_xy.mean() * 1000),
            "per_landmark_mm": {n: float(v) for n, v in zip(names, err.mean(0) * 1000)},
            "bias_mm": {"x": float((Mw - Tc)[..., 0].mean() * 1000), "y": float((Mw - Tc)[..., 1].mean() * 1000),
                        "z": float((Mw - Tc)[..., 2].mean() * 1000)},
            "abs_axis_error_mm": {a: float(np.abs(Mw - Tc)[..., k].mean() * 1000) for k, a in enumerate("xyz")},
            "size_ratio": size(Mw) / size(Tc),
        },
        "focal_px": camera.focal_px,
    }
