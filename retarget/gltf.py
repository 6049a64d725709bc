"""glTF 2.0 in pure numpy: read ``.glb`` / ``.gltf`` / ``.vrm``, write ``.glb``, validate.

No Blender here (STYLE item 1): this module knows the file format and nothing else.
Rig semantics (which nodes are joints, world-aligned skeletons, retargeted animation)
live in :mod:`retarget.rig`.

The document model
------------------
:func:`load_gltf` decodes a file into a :class:`GltfDocument` of plain dataclasses
holding numpy arrays: :class:`Node` (TRS or matrix), :class:`Mesh` /
:class:`Primitive` (decoded vertex attributes, indices, morph targets), :class:`Skin`
(joints, inverse bind matrices), :class:`Animation` (:class:`Channel` /
:class:`Sampler` with decoded keyframes) and :class:`Image` (the encoded bytes).
Buffers, bufferViews and accessors do not survive decoding: :func:`write_glb` rebuilds
them from the arrays. Everything the model does not interpret (materials, textures,
texture samplers, cameras, ``extras``, ``extensions`` such as ``VRMC_vrm``) is kept as
raw JSON and written back unchanged; since the writer keeps the order of nodes,
meshes, images, materials and textures, indices inside that raw JSON stay valid.

Conventions at the boundary (see :mod:`mocap.glossary`)
-------------------------------------------------------
* Quaternions are **wxyz** in the model; glTF stores xyzw. :attr:`Node.rotation` and
  the output of rotation samplers are converted when reading and writing.
* Matrices are numpy row-major, acting on column vectors (``p' = M @ p``); glTF stores
  them column-major. ``Node.matrix`` and ``Skin.inverse_bind_matrices`` are converted.
* glTF is already +Y up, metres, the character facing +Z: no axis change here.

Decoding rules: normalized integer accessors become float32 (glTF's formulas, e.g.
``max(c / 127, -1)`` for signed bytes); ``JOINTS_n``, indices and integer custom
attributes (``_FOO``) keep their integer type; any other integer attribute (possible
with ``KHR_mesh_quantization``) becomes float32. Sparse accessors are applied and
written back dense.

Not supported (a clear :class:`~mocap.errors.FileFormatError` when the file *requires*
it): ``KHR_draco_mesh_compression`` and ``EXT_meshopt_compression``. When such an
extension is only *used* (uncompressed fallback data present) the fallback is read and
the extension dropped on writing. ``EXT_mesh_gpu_instancing`` and
``KHR_animation_pointer`` data are dropped on writing (their accessors are not kept).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import struct
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocap.errors import FileFormatError, UsageError

__all__ = [
    "GltfDocument",
    "Node",
    "Mesh",
    "Primitive",
    "Skin",
    "Animation",
    "Channel",
    "Sampler",
    "Image",
    "load_gltf",
    "write_glb",
    "validate_glb",
    "sample_animation",
    "sample_sampler",
    "trs_to_matrix",
    "matrix_to_trs",
]

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

COMPONENT_TYPES: dict[int, np.dtype] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
"""glTF componentType -> little-endian numpy dtype."""
_COMPONENT_NAMES = {5120: "BYTE", 5121: "UNSIGNED_BYTE", 5122: "SHORT", 5123: "UNSIGNED_SHORT",
                    5125: "UNSIGNED_INT", 5126: "FLOAT"}
_DTYPE_TO_COMPONENT = {v.str: k for k, v in COMPONENT_TYPES.items()}
TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM_DIVISOR = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

UNSUPPORTED_REQUIRED = {
    "KHR_draco_mesh_compression": "Draco-compressed meshes",
    "EXT_meshopt_compression": "meshopt-compressed buffers",
}
"""Extensions Understudy cannot decode; a file that *requires* one is refused."""
_DROPPED_EXTENSIONS = {"KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_mesh_quantization",
                       "EXT_mesh_gpu_instancing", "KHR_animation_pointer"}
"""Extensions whose data the writer does not keep (it writes plain float/int accessors)."""

_ANIM_WIDTH = {"translation": 3, "rotation": 4, "scale": 3}


# -- small maths helpers (numpy only) -----------------------------------------------------


def _q_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=-1)


def _q2r(q: np.ndarray) -> np.ndarray:
    """:func:`mocap.glossary.Q2R`, with a zero-length quaternion (a broken file) reported
    as a :class:`FileFormatError`."""
    from mocap.glossary import Q2R

    try:
        return Q2R(q)
    except ValueError as e:
        raise FileFormatError(f"glTF rotation: {e}") from None


def _r2q(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` wxyz (w >= 0) from rotation matrices ``(..., 3, 3)``
    (Shepperd's method: the largest of the four candidates, so no cancellation)."""
    R = np.asarray(R, dtype=float)
    m = R.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    k = np.argmax(cands, axis=1)
    q = np.empty((len(m), 4))
    for case in range(4):
        s = k == case
        if not np.any(s):
            continue
        a = m[s]
        if case == 0:
            r = np.sqrt(1.0 + tr[s]) * 2
            q[s] = np.stack([0.25 * r, (a[:, 2, 1] - a[:, 1, 2]) / r, (a[:, 0, 2] - a[:, 2, 0]) / r,
                             (a[:, 1, 0] - a[:, 0, 1]) / r], axis=1)
        elif case == 1:
            r = np.sqrt(1.0 + a[:, 0, 0] - a[:, 1, 1] - a[:, 2, 2]) * 2
            q[s] = np.stack([(a[:, 2, 1] - a[:, 1, 2]) / r, 0.25 * r, (a[:, 0, 1] + a[:, 1, 0]) / r,
                             (a[:, 0, 2] + a[:, 2, 0]) / r], axis=1)
        elif case == 2:
            r = np.sqrt(1.0 + a[:, 1, 1] - a[:, 0, 0] - a[:, 2, 2]) * 2
            q[s] = np.stack([(a[:, 0, 2] - a[:, 2, 0]) / r, (a[:, 0, 1] + a[:, 1, 0]) / r, 0.25 * r,
                             (a[:, 1, 2] + a[:, 2, 1]) / r], axis=1)
        else:
            r = np.sqrt(1.0 + a[:, 2, 2] - a[:, 0, 0] - a[:, 1, 1]) * 2
            q[s] = np.stack([(a[:, 1, 0] - a[:, 0, 1]) / r, (a[:, 0, 2] + a[:, 2, 0]) / r,
                             (a[:, 1, 2] + a[:, 2, 1]) / r, 0.25 * r], axis=1)
    q = np.where(q[:, :1] < 0, -q, q)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.reshape(R.shape[:-2] + (4,))


def trs_to_matrix(t: np.ndarray, q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``(..., 4, 4)`` transforms ``T @ R @ S`` (glTF's node order) from translations
    ``(..., 3)``, wxyz quaternions ``(..., 4)`` and scales ``(..., 3)`` (broadcast)."""
    t = np.asarray(t, dtype=float)
    q = np.asarray(q, dtype=float)
    s = np.asarray(s, dtype=float)
    shape = np.broadcast_shapes(t.shape[:-1], q.shape[:-1], s.shape[:-1])
    M = np.zeros(shape + (4, 4))
    M[..., :3, :3] = _q2r(q) * s[..., None, :]
    M[..., :3, 3] = t
    M[..., 3, 3] = 1.0
    return M


def matrix_to_trs(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translation ``(..., 3)``, wxyz rotation ``(..., 4)`` and scale ``(..., 3)`` of
    affine ``(..., 4, 4)`` transforms without shear (``M = T @ R @ S``). A negative
    determinant is put into the x scale. Shear, if any, is lost (polar decomposition)."""
    M = np.asarray(M, dtype=float)
    A = M[..., :3, :3]
    s = np.linalg.norm(A, axis=-2)
    det = np.linalg.det(A)
    s[..., 0] = np.where(det < 0, -s[..., 0], s[..., 0])
    Rm = A / np.where(s == 0, 1.0, s)[..., None, :]
    U, _, Vt = np.linalg.svd(Rm)
    Rm = U @ Vt
    return M[..., :3, 3].copy(), _r2q(Rm), s


# -- the document model -----------------------------------------------------------------


def _f3(v, default) -> np.ndarray:
    return np.array(default if v is None else v, dtype=float)


@dataclass(eq=False)
class Node:
    """A glTF node. ``rotation`` is **wxyz**. ``matrix`` ``(4, 4)`` (row-major) is kept
    when the file gives one (then ``translation``/``rotation``/``scale`` hold its
    decomposition, for reading only: set ``matrix = None`` to make TRS authoritative).
    ``extra`` holds every other key of the node's JSON (``camera``, ``extras``,
    ``extensions``) unchanged."""

    name: str | None = None
    children: list[int] = field(default_factory=list)
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    matrix: np.ndarray | None = None
    mesh: int | None = None
    skin: int | None = None
    weights: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def local_matrix(self) -> np.ndarray:
        """``(4, 4)`` local transform: ``matrix`` if set, else ``T @ R @ S``."""
        if self.matrix is not None:
            return np.array(self.matrix, dtype=float)
        return trs_to_matrix(self.translation, self.rotation, self.scale)


@dataclass(eq=False)
class Primitive:
    """One draw call of a mesh. ``attributes`` maps a glTF semantic (``POSITION``,
    ``NORMAL``, ``TEXCOORD_0``, ``JOINTS_0``, ``WEIGHTS_0``, ...) to an ``(N, k)``
    array; ``indices`` ``(I,)`` or None; ``targets`` one dict per morph target
    (``POSITION``/``NORMAL``/``TANGENT`` deltas); ``mode`` 4 = triangles."""

    attributes: dict[str, np.ndarray]
    indices: np.ndarray | None = None
    mode: int = 4
    material: int | None = None
    targets: list[dict[str, np.ndarray]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def vertex_count(self) -> int:
        return len(self.attributes["POSITION"]) if "POSITION" in self.attributes else 0


@dataclass(eq=False)
class Mesh:
    """A glTF mesh: primitives, default morph weights, and ``extra`` (``extras`` holds
    ``targetNames`` by the common convention)."""

    name: str | None
    primitives: list[Primitive]
    weights: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_targets(self) -> int:
        return max((len(p.targets) for p in self.primitives), default=0)

    @property
    def target_names(self) -> list[str]:
        """Morph target names from ``extras.targetNames``, or ``target_<k>`` when the
        file does not name them (or names the wrong number)."""
        extras = self.extra.get("extras")
        names = extras.get("targetNames") if isinstance(extras, dict) else None
        n = self.n_targets
        if isinstance(names, list) and len(names) == n and all(isinstance(x, str) for x in names):
            return list(names)
        return [f"target_{k}" for k in range(n)]


@dataclass(eq=False)
class Skin:
    """``joints``: node indices; ``inverse_bind_matrices`` ``(J, 4, 4)`` row-major
    float32, or None (identity, per the spec); ``skeleton`` the optional root hint."""

    joints: list[int]
    inverse_bind_matrices: np.ndarray | None = None
    skeleton: int | None = None
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ibm(self) -> np.ndarray:
        """``(J, 4, 4)`` inverse bind matrices (identities when the file has none)."""
        if self.inverse_bind_matrices is None:
            return np.tile(np.eye(4), (len(self.joints), 1, 1))
        return np.asarray(self.inverse_bind_matrices, dtype=float)


@dataclass(eq=False)
class Sampler:
    """Keyframes: ``input`` ``(K,)`` seconds; ``output`` ``(rows, width)`` with rows = K
    (``LINEAR``/``STEP``) or 3K (``CUBICSPLINE``: in-tangent, value, out-tangent per
    key) and width 3 (translation, scale), 4 (rotation, **wxyz**) or the number of
    morph targets (weights)."""

    input: np.ndarray
    output: np.ndarray
    interpolation: str = "LINEAR"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Channel:
    """Animates ``path`` (``translation``, ``rotation``, ``scale`` or ``weights``) of
    node ``node`` with sampler ``sampler`` (an index into the animation's samplers)."""

    sampler: int
    node: int | None
    path: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Animation:
    name: str | None
    channels: list[Channel]
    samplers: list[Sampler]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max((float(s.input[-1]) for s in self.samplers if len(s.input)), default=0.0)


@dataclass(eq=False)
class Image:
    """An image: ``data`` its encoded bytes (PNG, JPEG, ...) or None when it is an
    external file that could not be read (then ``uri`` is written back as is)."""

    name: str | None = None
    mime_type: str | None = None
    data: bytes | None = None
    uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class GltfDocument:
    """A decoded glTF asset. Lists keep the file's order (so indices in the raw JSON
    parts stay valid). ``scenes`` are raw dicts (``{"nodes": [...], "name": ...}``);
    ``materials``, ``textures``, ``texture_samplers`` and ``cameras`` raw JSON lists;
    ``extra`` the other top-level keys (``asset``, ``extensions``, ``extras``)."""

    nodes: list[Node] = field(default_factory=list)
    meshes: list[Mesh] = field(default_factory=list)
    skins: list[Skin] = field(default_factory=list)
    animations: list[Animation] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    scenes: list[dict[str, Any]] = field(default_factory=list)
    scene: int | None = None
    materials: list[dict[str, Any]] = field(default_factory=list)
    textures: list[dict[str, Any]] = field(default_factory=list)
    texture_samplers: list[dict[str, Any]] = field(default_factory=list)
    cameras: list[dict[str, Any]] = field(default_factory=list)
    extensions_used: list[str] = field(default_factory=list)
    extensions_required: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    # -- queries -------------------------------------------------------------------------
    def copy(self) -> "GltfDocument":
        """A deep copy (arrays included): edit it without touching this document."""
        return copy.deepcopy(self)

    @property
    def extensions(self) -> dict[str, Any]:
        """The top-level ``extensions`` object (e.g. ``VRMC_vrm``), ``{}`` if none."""
        ext = self.extra.get("extensions")
        return ext if isinstance(ext, dict) else {}

    def node_index(self, name: str) -> int:
        """Index of the first node called ``name``."""
        for i, n in enumerate(self.nodes):
            if n.name == name:
                return i
        raise UsageError(f"no node named {name!r} among {len(self.nodes)} nodes")

    def parents(self) -> np.ndarray:
        """``(N,)`` parent node index of every node, -1 for roots."""
        par = np.full(len(self.nodes), -1, dtype=np.int64)
        for i, n in enumerate(self.nodes):
            for c in n.children:
                par[c] = i
        return par

    def topological_order(self) -> list[int]:
        """Every node once, parents before children (depth first from the roots)."""
        par = self.parents()
        order: list[int] = []
        stack = [i for i in range(len(self.nodes)) if par[i] < 0][::-1]
        while stack:
            i = stack.pop()
            order.append(i)
            stack.extend(reversed(self.nodes[i].children))
        return order

    def scene_nodes(self) -> list[int]:
        """Nodes of the default scene (``scene``, else scene 0, else every node), in
        depth-first order."""
        scenes = self.scenes
        if not scenes:
            return self.topological_order()
        sc = scenes[self.scene if self.scene is not None else 0]
        out: list[int] = []
        stack = list(sc.get("nodes", []))[::-1]
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(self.nodes[i].children))
        return out

    def local_matrices(self) -> np.ndarray:
        """``(N, 4, 4)`` local transforms of all nodes."""
        return np.stack([n.local_matrix() for n in self.nodes]) if self.nodes else np.zeros((0, 4, 4))

    def world_matrices(self, local: np.ndarray | None = None) -> np.ndarray:
        """World transforms ``(..., N, 4, 4)`` from local ones (default: the nodes'
        own). ``local`` may carry leading batch axes, e.g. ``(T, N, 4, 4)`` for an
        animation sampled at T times: one pass over the nodes, vectorised over frames."""
        L = self.local_matrices() if local is None else np.asarray(local, dtype=float)
        W = np.empty_like(L)
        par = self.parents()
        for i in self.topological_order():
            p = par[i]
            W[..., i, :, :] = L[..., i, :, :] if p < 0 else W[..., p, :, :] @ L[..., i, :, :]
        return W


# -- reading the container ----------------------------------------------------------------


def _mime_from_bytes(data: bytes) -> str | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:12] == b"\xabKTX 20\xbb\r\n\x1a\n":
        return "image/ktx2"
    return None


def _data_uri(uri: str) -> bytes | None:
    if not uri.startswith("data:"):
        return None
    head, _, payload = uri.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(payload)
    return urllib.parse.unquote_to_bytes(payload)


def _read_container(path: Path) -> tuple[dict, list[bytes | None]]:
    """The JSON and the raw buffers of a .glb/.gltf/.vrm. Raises FileFormatError naming
    the problem (magic, version, truncated chunk, JSON, missing buffer)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot read ({e})") from None
    bin_chunk: bytes | None = None
    if raw[:4] == GLB_MAGIC:
        if len(raw) < 12:
            raise FileFormatError(f"{path}: truncated GLB header ({len(raw)} bytes, need 12)")
        _, version, length = struct.unpack_from("<4sII", raw, 0)
        if version != 2:
            raise FileFormatError(f"{path}: GLB container version {version}, only version 2 (glTF 2.0) is supported")
        if length > len(raw):
            raise FileFormatError(f"{path}: truncated file: the GLB header says {length} bytes, the file has {len(raw)}")
        if length < len(raw):
            raise FileFormatError(f"{path}: the GLB header says {length} bytes but the file has {len(raw)} "
                                  f"(trailing data)")
        pos = 12
        chunks: list[tuple[int, bytes]] = []
        while pos < length:
            if pos + 8 > length:
                raise FileFormatError(f"{path}: truncated chunk header at byte {pos}")
            clen, ctype = struct.unpack_from("<II", raw, pos)
            if pos + 8 + clen > length:
                kind = {CHUNK_JSON: "JSON", CHUNK_BIN: "BIN"}.get(ctype, f"0x{ctype:08x}")
                raise FileFormatError(f"{path}: truncated {kind} chunk at byte {pos}: it declares {clen} bytes, "
                                      f"only {length - pos - 8} remain")
            chunks.append((ctype, raw[pos + 8:pos + 8 + clen]))
            pos += 8 + clen
        if not chunks or chunks[0][0] != CHUNK_JSON:
            raise FileFormatError(f"{path}: the first GLB chunk must be JSON")
        text = chunks[0][1]
        for ctype, data in chunks[1:]:
            if ctype == CHUNK_BIN:
                if bin_chunk is not None:
                    raise FileFormatError(f"{path}: more than one BIN chunk")
                bin_chunk = data
    else:
        stripped = raw.lstrip()
        if path.suffix.lower() != ".gltf" and not stripped.startswith(b"{"):
            raise FileFormatError(f"{path}: not a glTF file: magic {raw[:4]!r}, expected {GLB_MAGIC!r} "
                                  f"(binary .glb/.vrm) or a JSON .gltf")
        text = raw
    try:
        js = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: bad JSON in the glTF: {e}") from None
    if not isinstance(js, dict):
        raise FileFormatError(f"{path}: bad JSON in the glTF: the top level is {type(js).__name__}, not an object")
    asset = js.get("asset")
    version = asset.get("version") if isinstance(asset, dict) else None
    if not isinstance(version, str) or not version.startswith("2."):
        raise FileFormatError(f"{path}: asset.version is {version!r}; only glTF 2.x is supported")
    buffers: list[bytes | None] = []
    for i, b in enumerate(js.get("buffers", [])):
        if not isinstance(b, dict) or not isinstance(b.get("byteLength"), int):
            raise FileFormatError(f"{path}: buffer {i} has no integer byteLength")
        uri = b.get("uri")
        data: bytes | None
        if uri is None:
            if i == 0 and bin_chunk is not None:
                data = bin_chunk
            elif (b.get("extensions") or {}).get("EXT_meshopt_compression", {}).get("fallback"):
                data = None  # placeholder buffer of meshopt-compressed files
            else:
                raise FileFormatError(f"{path}: buffer {i} has no uri and no GLB BIN chunk holds it")
        else:
            try:
                data = _data_uri(uri)
            except ValueError as e:
                raise FileFormatError(f"{path}: buffer {i}: bad data URI ({e})") from None
            if data is None:
                ext = path.parent / urllib.parse.unquote(uri)
                try:
                    data = ext.read_bytes()
                except OSError as e:
                    raise FileFormatError(f"{path}: buffer {i}: cannot read {uri!r} ({e})") from None
        if data is not None and len(data) < b["byteLength"]:
            raise FileFormatError(f"{path}: truncated buffer {i}: byteLength {b['byteLength']}, "
                                  f"only {len(data)} bytes present")
        buffers.append(data)
    return js, buffers


# -- accessors ----------------------------------------------------------------------------


def _elem_layout(ctype: int, atype: str) -> tuple[int, int, int]:
    """(element byte size, columns, bytes per column) of one accessor element; matrices
    of 1- and 2-byte components pad each column to 4 bytes."""
    csize = COMPONENT_TYPES[ctype].itemsize
    n = TYPE_SIZES[atype]
    if atype.startswith("MAT"):
        rows = int(atype[3])
        col = rows * csize
        col = (col + 3) // 4 * 4
        return rows * col, rows, col
    return n * csize, 1, n * csize


def _accessor_problems(js: dict, buffers: list[bytes | None], i: int) -> list[str]:
    """Everything structurally wrong with accessor ``i`` (bounds, types, alignment)."""
    accs = js.get("accessors", [])
    if not isinstance(i, int) or not 0 <= i < len(accs):
        return [f"accessor {i} does not exist ({len(accs)} accessors)"]
    a = accs[i]
    out: list[str] = []
    ctype, atype, count = a.get("componentType"), a.get("type"), a.get("count")
    if ctype not in COMPONENT_TYPES:
        return [f"accessor {i}: unsupported componentType {ctype!r} (expected one of "
                f"{', '.join(f'{k} {v}' for k, v in _COMPONENT_NAMES.items())})"]
    if atype not in TYPE_SIZES:
        return [f"accessor {i}: unknown type {atype!r}"]
    if not isinstance(count, int) or count < 1:
        return [f"accessor {i}: count must be a positive integer, got {count!r}"]
    if a.get("normalized") and ctype in (5125, 5126):
        out.append(f"accessor {i}: normalized {_COMPONENT_NAMES[ctype]} is not allowed")
    elem, _, _ = _elem_layout(ctype, atype)
    csize = COMPONENT_TYPES[ctype].itemsize
    views = js.get("bufferViews", [])

    def view_problem(v, what) -> tuple[str | None, int, int, int]:
        if not isinstance(v, int) or not 0 <= v < len(views):
            return f"accessor {i}{what}: bufferView {v} does not exist ({len(views)} bufferViews)", 0, 0, 0
        bv = views[v]
        b = bv.get("buffer")
        if not isinstance(b, int) or not 0 <= b < len(buffers):
            return f"bufferView {v}: buffer {b} does not exist", 0, 0, 0
        off, ln = bv.get("byteOffset", 0), bv.get("byteLength")
        if not isinstance(ln, int) or not isinstance(off, int) or off < 0 or ln < 1:
            return f"bufferView {v}: bad byteOffset/byteLength ({off!r}, {ln!r})", 0, 0, 0
        blen = js["buffers"][b]["byteLength"]
        data = buffers[b]
        if data is None:
            return f"accessor {i}{what}: buffer {b} has no data (compressed-only buffer)", 0, 0, 0
        if off + ln > blen or off + ln > len(data):
            return (f"bufferView {v}: bytes {off}..{off + ln} lie past the end of buffer {b} "
                    f"({min(blen, len(data))} bytes)"), 0, 0, 0
        return None, off, ln, bv.get("byteStride") or 0

    bv_index = a.get("bufferView")
    if bv_index is not None:
        prob, _, ln, stride = view_problem(bv_index, "")
        if prob:
            out.append(prob)
        else:
            aoff = a.get("byteOffset", 0)
            if stride and (stride < elem or stride % csize):
                out.append(f"accessor {i}: bufferView {bv_index} byteStride {stride} does not fit "
                           f"{atype} {_COMPONENT_NAMES[ctype]} elements of {elem} bytes")
            step = stride or elem
            end = aoff + step * (count - 1) + elem
            if not isinstance(aoff, int) or aoff < 0:
                out.append(f"accessor {i}: bad byteOffset {aoff!r}")
            elif end > ln:
                out.append(f"accessor {i}: {count} x {atype} {_COMPONENT_NAMES[ctype]} reads bytes "
                           f"{aoff}..{end} of bufferView {bv_index}, past its end ({ln} bytes)")
            if isinstance(aoff, int) and (aoff + views[bv_index].get("byteOffset", 0)) % csize:
                out.append(f"accessor {i}: offset {aoff} in bufferView {bv_index} is not a multiple of "
                           f"the component size {csize}")
    sp = a.get("sparse")
    if sp is not None:
        scount = sp.get("count")
        if not isinstance(scount, int) or not 1 <= scount <= count:
            out.append(f"accessor {i}: sparse.count {scount!r} must be in 1..{count}")
            return out
        ind, val = sp.get("indices", {}), sp.get("values", {})
        ict = ind.get("componentType")
        if ict not in (5121, 5123, 5125):
            out.append(f"accessor {i}: sparse indices componentType {ict!r} must be 5121, 5123 or 5125")
            return out
        for part, size, d in (("indices", COMPONENT_TYPES[ict].itemsize, ind), ("values", elem, val)):
            prob, _, ln, _ = view_problem(d.get("bufferView"), f" sparse {part}")
            if prob:
                out.append(prob)
                continue
            end = d.get("byteOffset", 0) + size * scount
            if end > ln:
                out.append(f"accessor {i}: sparse {part} read bytes ..{end}, past the end of bufferView "
                           f"{d.get('bufferView')} ({ln} bytes)")
    return out


class _Decoder:
    """Decodes accessors of one file (cached by index, so shared accessors stay shared
    arrays and are written once)."""

    def __init__(self, js: dict, buffers: list[bytes | None], path: Path):
        self.js, self.buffers, self.path = js, buffers, path
        self._cache: dict[tuple[int, bool], np.ndarray] = {}

    def fail(self, msg: str) -> FileFormatError:
        return FileFormatError(f"{self.path}: {msg}")

    def _read(self, view: int, offset: int, count: int, ctype: int, atype: str) -> np.ndarray:
        bv = self.js["bufferViews"][view]
        buf = self.buffers[bv["buffer"]]
        dt = COMPONENT_TYPES[ctype]
        elem, cols, colbytes = _elem_layout(ctype, atype)
        stride = bv.get("byteStride") or elem
        start = bv.get("byteOffset", 0) + offset
        n = TYPE_SIZES[atype]
        if cols > 1 and colbytes != (n // cols) * dt.itemsize:  # padded matrix columns
            rows = n // cols
            raw = np.ndarray((count, elem), dtype=np.uint8, buffer=buf, offset=start, strides=(stride, 1))
            parts = [raw[:, c * colbytes:c * colbytes + rows * dt.itemsize] for c in range(cols)]
            packed = np.ascontiguousarray(np.concatenate(parts, axis=1))
            return packed.view(dt).reshape(count, n).copy()
        arr = np.ndarray((count, n), dtype=dt, buffer=buf, offset=start, strides=(stride, dt.itemsize))
        return arr.copy()

    def accessor(self, i: int, *, keep_int: bool = True, what: str = "") -> np.ndarray:
        """Decoded accessor: ``(count,)`` SCALAR, ``(count, n)`` VECn, ``(count, n, n)``
        MATn (row-major). Normalized integers become float32; other integers become
        float32 too unless ``keep_int``."""
        key = (i, keep_int)
        if key in self._cache:
            return self._cache[key]
        probs = _accessor_problems(self.js, self.buffers, i)
        if probs:
            raise self.fail(probs[0] + (f" ({what})" if what else ""))
        a = self.js["accessors"][i]
        ctype, atype, count = a["componentType"], a["type"], a["count"]
        n = TYPE_SIZES[atype]
        if a.get("bufferView") is not None:
            data = self._read(a["bufferView"], a.get("byteOffset", 0), count, ctype, atype)
        else:
            data = np.zeros((count, n), dtype=COMPONENT_TYPES[ctype])
        sp = a.get("sparse")
        if sp is not None:
            ind, val = sp["indices"], sp["values"]
            idx = self._read(ind["bufferView"], ind.get("byteOffset", 0), sp["count"], ind["componentType"],
                             "SCALAR")[:, 0].astype(np.int64)
            if np.any(idx >= count):
                raise self.fail(f"accessor {i}: sparse index {int(idx.max())} >= count {count}")
            data[idx] = self._read(val["bufferView"], val.get("byteOffset", 0), sp["count"], ctype, atype)
        if a.get("normalized") and ctype in _NORM_DIVISOR:
            data = np.maximum(data.astype(np.float32) / np.float32(_NORM_DIVISOR[ctype]), np.float32(-1.0))
        elif ctype != 5126 and not keep_int:
            data = data.astype(np.float32)
        if atype == "SCALAR":
            data = data[:, 0]
        elif atype.startswith("MAT"):
            k = int(atype[3])
            data = data.reshape(count, k, k).transpose(0, 2, 1).copy()  # column-major -> row-major
        data.setflags(write=True)
        self._cache[key] = data
        return data


# -- decoding the document ----------------------------------------------------------------


def _rest(d: dict, *known: str) -> dict:
    return {k: copy.deepcopy(v) for k, v in d.items() if k not in known}


def _int_attr(name: str) -> bool:
    return name.startswith("JOINTS_") or name.startswith("_")


def load_gltf(path: str | os.PathLike) -> GltfDocument:
    """Read a ``.glb``, ``.gltf`` (external or embedded buffers) or ``.vrm`` into a
    :class:`GltfDocument`.

    Raises :class:`~mocap.errors.FileFormatError` whose message starts with the path
    and names the problem: bad magic, a GLB version other than 2, truncated chunks or
    buffers, bad JSON, an accessor reading past its bufferView, an unsupported
    componentType, dangling indices, or a required extension Understudy cannot decode.
    """
    path = Path(path)
    js, buffers = _read_container(path)
    for ext in js.get("extensionsRequired", []) or []:
        if ext in UNSUPPORTED_REQUIRED:
            raise FileFormatError(
                f"{path}: requires {ext} ({UNSUPPORTED_REQUIRED[ext]}), which Understudy cannot decode; "
                f"re-export it uncompressed (e.g. Blender's glTF exporter with compression off)"
            )
    dec = _Decoder(js, buffers, path)
    doc = GltfDocument(source=path)
    try:
        _decode(doc, js, dec)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        if isinstance(e, FileFormatError):
            raise
        raise FileFormatError(f"{path}: malformed glTF ({type(e).__name__}: {e})") from None
    return doc


def _check_index(dec: _Decoder, v, n: int, what: str) -> None:
    if v is not None and (not isinstance(v, int) or not 0 <= v < n):
        raise dec.fail(f"{what} refers to index {v!r}, which does not exist ({n} present)")


def _decode(doc: GltfDocument, js: dict, dec: _Decoder) -> None:
    nn = len(js.get("nodes", []))
    for i, n in enumerate(js.get("nodes", [])):
        node = Node(name=n.get("name"), children=list(n.get("children", [])), mesh=n.get("mesh"),
                    skin=n.get("skin"), weights=n.get("weights"),
                    extra=_rest(n, "name", "children", "translation", "rotation", "scale", "matrix", "mesh",
                                "skin", "weights"))
        for c in node.children:
            _check_index(dec, c, nn, f"node {i} children")
        _check_index(dec, node.mesh, len(js.get("meshes", [])), f"node {i} mesh")
        _check_index(dec, node.skin, len(js.get("skins", [])), f"node {i} skin")
        if "matrix" in n:
            m = np.array(n["matrix"], dtype=float)
            if m.shape != (16,):
                raise dec.fail(f"node {i} matrix must have 16 numbers, got {len(m)}")
            node.matrix = m.reshape(4, 4).T.copy()
            node.translation, node.rotation, node.scale = matrix_to_trs(node.matrix)
        else:
            node.translation = _f3(n.get("translation"), [0.0, 0.0, 0.0])
            xyzw = _f3(n.get("rotation"), [0.0, 0.0, 0.0, 1.0])
            node.rotation = xyzw[[3, 0, 1, 2]]
            node.scale = _f3(n.get("scale"), [1.0, 1.0, 1.0])
            if node.translation.shape != (3,) or node.rotation.shape != (4,) or node.scale.shape != (3,):
                raise dec.fail(f"node {i} has a malformed translation/rotation/scale")
        doc.nodes.append(node)
    parent = {}
    for i, node in enumerate(doc.nodes):
        for c in node.children:
            if c in parent:
                raise dec.fail(f"node {c} has two parents ({parent[c]} and {i}): the node hierarchy is not a forest")
            parent[c] = i
    # cycles: every node must reach a root
    for i in range(nn):
        seen, k = set(), i
        while k in parent:
            if k in seen:
                raise dec.fail(f"node {i} is in a cycle of the node hierarchy")
            seen.add(k)
            k = parent[k]

    for mi, m in enumerate(js.get("meshes", [])):
        prims = []
        for pi, p in enumerate(m.get("primitives", [])):
            where = f"mesh {mi} ({m.get('name')!r}) primitive {pi}"
            attrs = {}
            for sem, acc in p.get("attributes", {}).items():
                attrs[sem] = dec.accessor(acc, keep_int=_int_attr(sem), what=f"{sem} of {where}")
            indices = None
            if p.get("indices") is not None:
                indices = dec.accessor(p["indices"], what=f"indices of {where}")
            targets = [{sem: dec.accessor(acc, keep_int=False, what=f"morph target {t} {sem} of {where}")
                        for sem, acc in tgt.items()} for t, tgt in enumerate(p.get("targets", []))]
            extra = _rest(p, "attributes", "indices", "mode", "material", "targets")
            exts = extra.get("extensions")
            if isinstance(exts, dict):
                for e in ("KHR_draco_mesh_compression",):
                    exts.pop(e, None)
                if not exts:
                    extra.pop("extensions")
            _check_index(dec, p.get("material"), len(js.get("materials", [])), f"{where} material")
            prims.append(Primitive(attributes=attrs, indices=indices, mode=p.get("mode", 4),
                                   material=p.get("material"), targets=targets, extra=extra))
        doc.meshes.append(Mesh(name=m.get("name"), primitives=prims, weights=m.get("weights"),
                               extra=_rest(m, "name", "primitives", "weights")))

    for si, s in enumerate(js.get("skins", [])):
        joints = list(s.get("joints", []))
        for j in joints:
            _check_index(dec, j, nn, f"skin {si} joints")
        ibm = None
        if s.get("inverseBindMatrices") is not None:
            ibm = dec.accessor(s["inverseBindMatrices"], what=f"inverseBindMatrices of skin {si}")
            if ibm.shape[1:] != (4, 4) or len(ibm) < len(joints):
                raise dec.fail(f"skin {si}: inverseBindMatrices has {len(ibm)} x {ibm.shape[1:]} elements, "
                               f"need {len(joints)} MAT4")
            ibm = ibm[: len(joints)].astype(np.float32)
        _check_index(dec, s.get("skeleton"), nn, f"skin {si} skeleton")
        doc.skins.append(Skin(joints=joints, inverse_bind_matrices=ibm, skeleton=s.get("skeleton"),
                              name=s.get("name"), extra=_rest(s, "joints", "inverseBindMatrices", "skeleton", "name")))

    for ai, a in enumerate(js.get("animations", [])):
        raw_samplers = a.get("samplers", [])
        channels = []
        path_of: dict[int, str] = {}
        for c in a.get("channels", []):
            tgt = c.get("target", {})
            _check_index(dec, c.get("sampler"), len(raw_samplers), f"animation {ai} channel sampler")
            _check_index(dec, tgt.get("node"), nn, f"animation {ai} channel target node")
            channels.append(Channel(sampler=c["sampler"], node=tgt.get("node"), path=tgt.get("path"),
                                    extra=_rest(c, "sampler", "target")))
            path_of.setdefault(c["sampler"], tgt.get("path"))
        samplers = []
        for k, s in enumerate(raw_samplers):
            what = f"animation {ai} ({a.get('name')!r}) sampler {k}"
            inp = dec.accessor(s["input"], keep_int=False, what=f"input of {what}").astype(np.float32, copy=False)
            out = dec.accessor(s["output"], keep_int=False, what=f"output of {what}").astype(np.float32,
                                                                                                copy=False)
            interp = s.get("interpolation", "LINEAR")
            rows = len(inp) * (3 if interp == "CUBICSPLINE" else 1)
            path = path_of.get(k)
            if path == "weights" or out.ndim == 1:
                flat = out.reshape(-1)
                if rows == 0 or len(flat) % rows:
                    raise dec.fail(f"{what}: {len(flat)} output values do not divide into {rows} keyframe rows")
                out = flat.reshape(rows, -1)
            if path == "rotation":
                out = out[:, [3, 0, 1, 2]]
            samplers.append(Sampler(input=inp, output=out, interpolation=interp,
                                    extra=_rest(s, "input", "output", "interpolation")))
        doc.animations.append(Animation(name=a.get("name"), channels=channels, samplers=samplers,
                                        extra=_rest(a, "name", "channels", "samplers")))

    for ii, im in enumerate(js.get("images", [])):
        img = Image(name=im.get("name"), mime_type=im.get("mimeType"),
                    extra=_rest(im, "name", "mimeType", "uri", "bufferView"))
        if im.get("bufferView") is not None:
            v = im["bufferView"]
            _check_index(dec, v, len(js.get("bufferViews", [])), f"image {ii} bufferView")
            bv = js["bufferViews"][v]
            buf = dec.buffers[bv["buffer"]]
            off = bv.get("byteOffset", 0)
            if buf is None or off + bv["byteLength"] > len(buf):
                raise dec.fail(f"image {ii}: bufferView {v} lies past the end of its buffer")
            img.data = bytes(buf[off:off + bv["byteLength"]])
        elif im.get("uri") is not None:
            uri = im["uri"]
            data = _data_uri(uri)
            if data is None:
                with contextlib.suppress(OSError):
                    data = (dec.path.parent / urllib.parse.unquote(uri)).read_bytes()
            if data is None:
                img.uri = uri
            img.data = data
        if img.data is not None and img.mime_type is None:
            img.mime_type = _mime_from_bytes(img.data)
        doc.images.append(img)

    doc.scenes = copy.deepcopy(js.get("scenes", []))
    for si, sc in enumerate(doc.scenes):
        for r in sc.get("nodes", []):
            _check_index(dec, r, nn, f"scene {si} nodes")
    doc.scene = js.get("scene")
    _check_index(dec, doc.scene, len(doc.scenes), "'scene'")
    doc.materials = copy.deepcopy(js.get("materials", []))
    doc.textures = copy.deepcopy(js.get("textures", []))
    doc.texture_samplers = copy.deepcopy(js.get("samplers", []))
    doc.cameras = copy.deepcopy(js.get("cameras", []))
    doc.extensions_used = [e for e in js.get("extensionsUsed", []) if e not in _DROPPED_EXTENSIONS]
    doc.extensions_required = [e for e in js.get("extensionsRequired", []) if e not in _DROPPED_EXTENSIONS]
    doc.extra = _rest(js, "nodes", "meshes", "skins", "animations", "images", "scenes", "scene", "materials",
                      "textures", "samplers", "cameras", "extensionsUsed", "extensionsRequired", "buffers",
                      "bufferViews", "accessors")


# -- writing ------------------------------------------------------------------------------


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


class _Packer:
    """Builds one binary buffer with its bufferViews and accessors (4-byte aligned)."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self._by_id: dict[tuple[int, str], int] = {}
        self._keep: list[np.ndarray] = []  # keeps ids unique while packing

    def view(self, data: bytes, *, target: int | None = None, stride: int | None = None) -> int:
        pad = _pad4(len(self.blob)) - len(self.blob)
        self.blob += b"\0" * pad
        v = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if stride:
            v["byteStride"] = stride
        if target:
            v["target"] = target
        self.blob += data
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, arr: np.ndarray, atype: str, *, target: int | None = None, minmax: bool = False,
                 kind: str = "float") -> int:
        """``kind``: 'float' (float32), 'joints' (uint8/uint16), 'index' (uint8/16/32
        kept or chosen), 'int' (keep the integer type)."""
        key = (id(arr), f"{atype}/{kind}/{target}/{minmax}")
        if key in self._by_id:
            return self._by_id[key]
        a = np.asarray(arr)
        if kind == "float":
            a = a.astype("<f4")
        elif kind == "joints":
            if a.dtype.str not in ("<u1", "|u1", "<u2"):
                if a.size and (a.min() < 0 or a.max() > 65535):
                    raise UsageError(f"joint indices must be in 0..65535, got {a.min()}..{a.max()}")
                a = a.astype("<u1" if (a.size == 0 or a.max() < 256) else "<u2")
        elif kind == "index":
            if a.dtype.str not in ("<u2", "<u4", "|u1", "<u1"):
                if a.size and a.min() < 0:
                    raise UsageError(f"indices must be non-negative, got {a.min()}")
                a = a.astype("<u2" if (a.size == 0 or a.max() < 65535) else "<u4")
        else:
            if a.dtype.str.lstrip("<|") not in ("i1", "u1", "i2", "u2", "u4", "f4"):
                a = a.astype("<f4") if a.dtype.kind == "f" else a.astype("<u4")
        ctype = _DTYPE_TO_COMPONENT[a.dtype.newbyteorder("<").str]
        count = a.shape[0]
        if atype.startswith("MAT"):
            k = int(atype[3])
            flat = np.ascontiguousarray(a.reshape(count, k, k).transpose(0, 2, 1)).reshape(count, k * k)
        else:
            flat = np.ascontiguousarray(a.reshape(count, TYPE_SIZES[atype]))
        if atype.startswith("MAT") and a.dtype.itemsize < 4:
            raise UsageError(f"{atype} accessors are written as float only, got {a.dtype}")
        elem = flat.shape[1] * flat.dtype.itemsize
        stride = None
        data = flat.astype(flat.dtype.newbyteorder("<"), copy=False).tobytes()
        if target == ARRAY_BUFFER and elem % 4:
            stride = _pad4(elem)
            padded = np.zeros((count, stride), dtype=np.uint8)
            padded[:, :elem] = np.frombuffer(data, dtype=np.uint8).reshape(count, elem)
            data = padded.tobytes()
        v = self.view(data, target=target, stride=stride)
        acc = {"bufferView": v, "componentType": ctype, "count": int(count), "type": atype}
        if minmax:
            acc["min"] = [float(x) if ctype == 5126 else int(x) for x in flat.min(axis=0)]
            acc["max"] = [float(x) if ctype == 5126 else int(x) for x in flat.max(axis=0)]
        self.accessors.append(acc)
        self._by_id[key] = len(self.accessors) - 1
        self._keep.append(arr)
        return self._by_id[key]


    def sparse_accessor(self, arr: np.ndarray, atype: str, *, minmax: bool = False) -> int:
        """A float accessor stored as glTF 2.0 ``accessor.sparse`` (no ``bufferView``:
        zeros, then the listed rows) when that is smaller than dense, i.e. when fewer than
        half of the rows are non-zero; else a dense accessor (:meth:`accessor`). Morph
        targets touch a small part of a mesh (a face's shape keys: 5-15 % of a body's
        vertices), so this shrinks a character's 52 targets about tenfold. Indices are
        strictly increasing (as the specification requires), the smallest unsigned type
        that holds them; ``min``/``max`` cover the whole decoded array, zeros included."""
        key = (id(arr), f"{atype}/sparse/{minmax}")
        if key in self._by_id:
            return self._by_id[key]
        a = np.asarray(arr)
        count = a.shape[0]
        flat = np.ascontiguousarray(a.reshape(count, TYPE_SIZES[atype]).astype("<f4"))
        rows = np.flatnonzero(np.any(flat != 0, axis=1))
        if atype.startswith("MAT") or count == 0 or 2 * len(rows) >= count:
            return self.accessor(arr, atype, target=ARRAY_BUFFER, minmax=minmax)
        acc: dict[str, Any] = {"componentType": 5126, "count": int(count), "type": atype}
        if len(rows):
            itype = "<u1" if rows[-1] < 256 else "<u2" if rows[-1] < 65536 else "<u4"
            iv = self.view(rows.astype(itype).tobytes())
            vv = self.view(flat[rows].tobytes())
            acc["sparse"] = {"count": int(len(rows)),
                             "indices": {"bufferView": iv, "componentType": _DTYPE_TO_COMPONENT[np.dtype(itype).str]},
                             "values": {"bufferView": vv}}
        if minmax:
            lo = flat.min(axis=0) if len(rows) == count else np.minimum(flat.min(axis=0), 0.0)
            hi = flat.max(axis=0) if len(rows) == count else np.maximum(flat.max(axis=0), 0.0)
            acc["min"] = [float(x) for x in lo]
            acc["max"] = [float(x) for x in hi]
        self.accessors.append(acc)
        self._by_id[key] = len(self.accessors) - 1
        self._keep.append(arr)
        return self._by_id[key]


def _atype_of(arr: np.ndarray) -> str:
    a = np.asarray(arr)
    if a.ndim == 1:
        return "SCALAR"
    if a.ndim == 2 and 2 <= a.shape[1] <= 4:
        return f"VEC{a.shape[1]}"
    if a.ndim == 3 and a.shape[1] == a.shape[2] and a.shape[1] in (2, 3, 4):
        return f"MAT{a.shape[1]}"
    raise UsageError(f"cannot store an array of shape {a.shape} in a glTF accessor")


def _floats(v) -> list[float]:
    return [float(x) for x in np.asarray(v, dtype=float).reshape(-1)]


def _document_json(doc: GltfDocument) -> tuple[dict, bytes]:
    pk = _Packer()
    out: dict[str, Any] = {}
    asset = dict(doc.extra.get("asset") or {})
    asset["version"] = "2.0"
    asset["generator"] = "Understudy retarget.gltf"
    asset.pop("minVersion", None)
    out["asset"] = asset
    for k, v in doc.extra.items():
        if k != "asset":
            out[k] = copy.deepcopy(v)
    if doc.extensions_used:
        out["extensionsUsed"] = list(doc.extensions_used)
    if doc.extensions_required:
        out["extensionsRequired"] = list(doc.extensions_required)
    if doc.scene is not None:
        out["scene"] = doc.scene
    if doc.scenes:
        out["scenes"] = copy.deepcopy(doc.scenes)

    nodes = []
    for n in doc.nodes:
        d: dict[str, Any] = {}
        if n.name is not None:
            d["name"] = n.name
        if n.children:
            d["children"] = [int(c) for c in n.children]
        if n.matrix is not None:
            d["matrix"] = _floats(np.asarray(n.matrix, dtype=float).T)
        else:
            t, q, s = (np.asarray(x, dtype=float) for x in (n.translation, n.rotation, n.scale))
            if np.any(t != 0):
                d["translation"] = _floats(t)
            if np.any(q != np.array([1.0, 0, 0, 0])):
                d["rotation"] = _floats(q[[1, 2, 3, 0]])
            if np.any(s != 1):
                d["scale"] = _floats(s)
        if n.mesh is not None:
            d["mesh"] = int(n.mesh)
        if n.skin is not None:
            d["skin"] = int(n.skin)
        if n.weights is not None:
            d["weights"] = _floats(n.weights)
        extra = copy.deepcopy(n.extra)
        exts = extra.get("extensions")
        if isinstance(exts, dict):
            for e in _DROPPED_EXTENSIONS:
                exts.pop(e, None)
            if not exts:
                extra.pop("extensions")
        d.update(extra)
        nodes.append(d)
    if nodes:
        out["nodes"] = nodes

    meshes = []
    for m in doc.meshes:
        prims = []
        for p in m.primitives:
            attrs = {}
            for sem, arr in p.attributes.items():
                a = np.asarray(arr)
                if _int_attr(sem) and a.dtype.kind in "iu":
                    kind = "joints" if sem.startswith("JOINTS_") else "int"
                else:
                    kind = "float"
                attrs[sem] = pk.accessor(arr, _atype_of(a), target=ARRAY_BUFFER, minmax=(sem == "POSITION"),
                                         kind=kind)
            d = {"attributes": attrs}
            if p.indices is not None:
                d["indices"] = pk.accessor(p.indices, "SCALAR", target=ELEMENT_ARRAY_BUFFER, kind="index")
            if p.mode != 4:
                d["mode"] = int(p.mode)
            if p.material is not None:
                d["material"] = int(p.material)
            if p.targets:
                d["targets"] = [{sem: pk.sparse_accessor(arr, _atype_of(arr), minmax=(sem == "POSITION"))
                                 for sem, arr in t.items()} for t in p.targets]
            d.update(copy.deepcopy(p.extra))
            prims.append(d)
        d = {"primitives": prims}
        if m.name is not None:
            d["name"] = m.name
        if m.weights is not None:
            d["weights"] = _floats(m.weights)
        d.update(copy.deepcopy(m.extra))
        meshes.append(d)
    if meshes:
        out["meshes"] = meshes

    skins = []
    for s in doc.skins:
        d = {"joints": [int(j) for j in s.joints]}
        if s.inverse_bind_matrices is not None:
            d["inverseBindMatrices"] = pk.accessor(s.inverse_bind_matrices, "MAT4")
        if s.skeleton is not None:
            d["skeleton"] = int(s.skeleton)
        if s.name is not None:
            d["name"] = s.name
        d.update(copy.deepcopy(s.extra))
        skins.append(d)
    if skins:
        out["skins"] = skins

    anims = []
    for a in doc.animations:
        paths = {}
        for c in a.channels:
            paths.setdefault(c.sampler, c.path)
        samplers = []
        for k, s in enumerate(a.samplers):
            o = np.asarray(s.output, dtype=np.float32)
            path = paths.get(k)
            if path == "rotation":
                o = o[:, [1, 2, 3, 0]]
                otype = "VEC4"
            elif path in ("translation", "scale"):
                otype = "VEC3"
            else:
                o = o.reshape(-1)
                otype = "SCALAR"
            out_acc = pk.accessor(o, otype)
            d = {"input": pk.accessor(s.input, "SCALAR", minmax=True), "output": out_acc}
            if s.interpolation != "LINEAR":
                d["interpolation"] = s.interpolation
            d.update(copy.deepcopy(s.extra))
            samplers.append(d)
        chans = []
        for c in a.channels:
            if c.node is None:  # e.g. KHR_animation_pointer: not kept
                continue
            d = {"sampler": int(c.sampler), "target": {"node": int(c.node), "path": c.path}}
            d.update(copy.deepcopy(c.extra))
            chans.append(d)
        if not chans:
            continue
        d = {"channels": chans, "samplers": samplers}
        if a.name is not None:
            d["name"] = a.name
        d.update(copy.deepcopy(a.extra))
        anims.append(d)
    if anims:
        out["animations"] = anims

    images = []
    for im in doc.images:
        d: dict[str, Any] = {}
        if im.name is not None:
            d["name"] = im.name
        if im.data is not None:
            d["bufferView"] = pk.view(bytes(im.data))
            d["mimeType"] = im.mime_type or _mime_from_bytes(im.data) or "image/png"
        elif im.uri is not None:
            d["uri"] = im.uri
            if im.mime_type:
                d["mimeType"] = im.mime_type
        d.update(copy.deepcopy(im.extra))
        images.append(d)
    if images:
        out["images"] = images
    for key, val in (("materials", doc.materials), ("textures", doc.textures),
                     ("samplers", doc.texture_samplers), ("cameras", doc.cameras)):
        if val:
            out[key] = copy.deepcopy(val)
    if pk.accessors:
        out["accessors"] = pk.accessors
    if pk.views:
        out["bufferViews"] = pk.views
    blob = bytes(pk.blob) + b"\0" * (_pad4(len(pk.blob)) - len(pk.blob))
    if blob:
        out["buffers"] = [{"byteLength": len(blob)}]
    return out, blob


def write_glb(doc: GltfDocument, path: str | os.PathLike) -> Path:
    """Write ``doc`` as a binary glTF (``.glb``; a ``.vrm`` name is allowed too).

    Buffers, bufferViews and accessors are rebuilt from the arrays (one bufferView per
    accessor, 4-byte aligned; arrays shared between primitives are written once);
    ``min``/``max`` are written for ``POSITION`` (and morph-target positions) and for
    animation inputs, as the spec requires. The file goes to a temporary file in the
    same folder and is renamed into place, so a failure never leaves half a file.
    Returns the path.
    """
    if not isinstance(doc, GltfDocument):
        raise UsageError(f"write_glb needs a GltfDocument, got {type(doc).__name__}")
    path = Path(path)
    if path.suffix.lower() == ".gltf":
        raise UsageError(f"cannot write {path}: write_glb writes binary glTF; name the file .glb")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    js, blob = _document_json(doc)
    try:
        text = json.dumps(js, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
    except ValueError as e:
        raise UsageError(f"cannot write {path}: the document holds a non-finite number ({e})") from None
    text += b" " * (_pad4(len(text)) - len(text))
    total = 12 + 8 + len(text) + (8 + len(blob) if blob else 0)
    parts = [struct.pack("<4sII", GLB_MAGIC, 2, total), struct.pack("<II", len(text), CHUNK_JSON), text]
    if blob:
        parts += [struct.pack("<II", len(blob), CHUNK_BIN), blob]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for p in parts:
                f.write(p)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# -- validation ---------------------------------------------------------------------------


def validate_glb(path: str | os.PathLike) -> list[str]:
    """Structural problems of a glTF file (``.glb``, ``.gltf`` or ``.vrm``), one line
    each; an empty list means valid as far as these checks go.

    Checked: the container (magic, version, chunks, JSON); every accessor's type,
    componentType and bounds (in its bufferView, the bufferView in its buffer, sparse
    parts); ``min``/``max`` present (and true) on ``POSITION`` and animation inputs;
    dangling indices; the node hierarchy is a forest and scene roots are roots; skin
    joints are nodes and ``inverseBindMatrices`` has one matrix per joint; animation
    samplers have as many outputs as inputs (x3 for CUBICSPLINE, x morph targets for
    weights) and strictly increasing, non-negative input times; a mesh's primitives
    agree on their morph target count (and with ``weights``/``targetNames``);
    primitives' attributes have equal counts and indices are below the vertex count;
    ``JOINTS_0`` indices are below the skin's joint count and ``WEIGHTS_0`` rows sum to 1
    (within 0.01) where a node uses the mesh with a skin. This is not the Khronos
    validator: materials, textures and extension payloads are not checked.
    """
    path = Path(path)
    try:
        js, buffers = _read_container(path)
    except FileFormatError as e:
        return [str(e)]
    probs: list[str] = []
    accs = js.get("accessors", [])
    bad_acc = set()
    for i in range(len(accs)):
        p = _accessor_problems(js, buffers, i)
        if p:
            bad_acc.add(i)
            probs += p
    dec = _Decoder(js, buffers, path)

    def get(i, what, keep_int=True):
        if not isinstance(i, int) or not 0 <= i < len(accs):
            probs.append(f"{what}: accessor {i!r} does not exist ({len(accs)} accessors)")
            return None
        if i in bad_acc:
            return None
        try:
            return dec.accessor(i, keep_int=keep_int)
        except FileFormatError as e:
            probs.append(f"{what}: {e}")
            return None

    def minmax(i, what):
        a = accs[i]
        if "min" not in a or "max" not in a:
            probs.append(f"{what}: accessor {i} lacks the required min/max")
            return
        data = get(i, what, keep_int=False)
        if data is None:
            return
        flat = np.asarray(data, dtype=float).reshape(len(data), -1)
        lo, hi = np.asarray(a["min"], dtype=float), np.asarray(a["max"], dtype=float)
        if lo.shape != flat.shape[1:] or hi.shape != flat.shape[1:]:
            probs.append(f"{what}: accessor {i} min/max have {lo.size}/{hi.size} values, need {flat.shape[1]}")
            return
        tol = 1e-6 * np.maximum(1.0, np.abs(flat).max(axis=0))
        if np.any(flat.min(axis=0) < lo - tol) or np.any(flat.max(axis=0) > hi + tol):
            probs.append(f"{what}: accessor {i} data {flat.min(axis=0).tolist()}..{flat.max(axis=0).tolist()} "
                         f"lies outside its min/max {lo.tolist()}..{hi.tolist()}")

    nodes = js.get("nodes", [])
    nn = len(nodes)
    parent: dict[int, int] = {}
    for i, n in enumerate(nodes):
        for c in n.get("children", []):
            if not isinstance(c, int) or not 0 <= c < nn:
                probs.append(f"node {i}: child {c!r} does not exist ({nn} nodes)")
            elif c in parent:
                probs.append(f"node {c} has two parents ({parent[c]} and {i}): the hierarchy is not a forest")
            else:
                parent[c] = i
        for key, coll in (("mesh", "meshes"), ("skin", "skins"), ("camera", "cameras")):
            v = n.get(key)
            if v is not None and (not isinstance(v, int) or not 0 <= v < len(js.get(coll, []))):
                probs.append(f"node {i}: {key} {v!r} does not exist")
        if "matrix" in n and any(k in n for k in ("translation", "rotation", "scale")):
            probs.append(f"node {i}: has both matrix and TRS")
        if "rotation" in n:
            q = np.asarray(n["rotation"], dtype=float)
            if q.shape != (4,) or abs(np.linalg.norm(q) - 1) > 1e-3:
                probs.append(f"node {i}: rotation {n['rotation']} is not a unit quaternion")
    for i in range(nn):
        seen, k = set(), i
        while k in parent:
            if k in seen:
                probs.append(f"node {i} is in a cycle: the hierarchy is not a forest")
                break
            seen.add(k)
            k = parent[k]
    for si, sc in enumerate(js.get("scenes", [])):
        for r in sc.get("nodes", []):
            if not isinstance(r, int) or not 0 <= r < nn:
                probs.append(f"scene {si}: node {r!r} does not exist")
            elif r in parent:
                probs.append(f"scene {si}: node {r} is listed as a root but has parent {parent[r]}")

    skins = js.get("skins", [])
    for si, s in enumerate(skins):
        joints = s.get("joints", [])
        if not joints:
            probs.append(f"skin {si}: no joints")
        for j in joints:
            if not isinstance(j, int) or not 0 <= j < nn:
                probs.append(f"skin {si}: joint {j!r} is not a node ({nn} nodes)")
        if len(set(joints)) != len(joints):
            probs.append(f"skin {si}: a joint is listed twice")
        if s.get("inverseBindMatrices") is not None:
            i = s["inverseBindMatrices"]
            ibm = get(i, f"skin {si} inverseBindMatrices")
            if ibm is not None:
                if accs[i].get("type") != "MAT4" or accs[i].get("componentType") != 5126:
                    probs.append(f"skin {si}: inverseBindMatrices accessor {i} must be MAT4 FLOAT")
                if len(ibm) != len(joints):
                    probs.append(f"skin {si}: {len(ibm)} inverseBindMatrices for {len(joints)} joints")

    meshes = js.get("meshes", [])
    mesh_targets: dict[int, int] = {}
    for mi, m in enumerate(meshes):
        counts = []
        for pi, p in enumerate(m.get("primitives", [])):
            where = f"mesh {mi} ({m.get('name')!r}) primitive {pi}"
            attrs = p.get("attributes", {})
            nvert = None
            for sem, acc in attrs.items():
                if sem == "POSITION" and isinstance(acc, int) and 0 <= acc < len(accs):
                    minmax(acc, f"{where} POSITION")
                if isinstance(acc, int) and 0 <= acc < len(accs):
                    c = accs[acc].get("count")
                    if nvert is None:
                        nvert = c
                    elif c != nvert:
                        probs.append(f"{where}: attribute {sem} has {c} elements, others {nvert}")
                else:
                    probs.append(f"{where}: attribute {sem} accessor {acc!r} does not exist")
            if p.get("indices") is not None:
                idx = get(p["indices"], f"{where} indices")
                if idx is not None and nvert is not None and len(idx) and int(idx.max()) >= nvert:
                    probs.append(f"{where}: index {int(idx.max())} >= vertex count {nvert}")
            for t, tgt in enumerate(p.get("targets", [])):
                for sem, acc in tgt.items():
                    if isinstance(acc, int) and 0 <= acc < len(accs):
                        if nvert is not None and accs[acc].get("count") != nvert:
                            probs.append(f"{where}: morph target {t} {sem} has {accs[acc].get('count')} "
                                         f"elements, the primitive {nvert}")
                        if sem == "POSITION":
                            minmax(acc, f"{where} morph target {t} POSITION")
                    else:
                        probs.append(f"{where}: morph target {t} {sem} accessor {acc!r} does not exist")
            counts.append(len(p.get("targets", [])))
        if len(set(counts)) > 1:
            probs.append(f"mesh {mi} ({m.get('name')!r}): primitives have different morph target counts {counts}")
        nt = max(counts, default=0)
        mesh_targets[mi] = nt
        if m.get("weights") is not None and len(m["weights"]) != nt:
            probs.append(f"mesh {mi}: {len(m['weights'])} default weights for {nt} morph targets")
        names = (m.get("extras") or {}).get("targetNames") if isinstance(m.get("extras"), dict) else None
        if names is not None and len(names) != nt:
            probs.append(f"mesh {mi}: {len(names)} targetNames for {nt} morph targets")

    checked = set()
    for ni, n in enumerate(nodes):
        mi, si = n.get("mesh"), n.get("skin")
        if not isinstance(mi, int) or not 0 <= mi < len(meshes):
            continue
        if n.get("weights") is not None and len(n["weights"]) != mesh_targets.get(mi, 0):
            probs.append(f"node {ni}: {len(n['weights'])} weights for mesh {mi} with {mesh_targets.get(mi, 0)} "
                         f"morph targets")
        if not isinstance(si, int) or not 0 <= si < len(skins) or (mi, si) in checked:
            continue
        checked.add((mi, si))
        nj = len(skins[si].get("joints", []))
        for pi, p in enumerate(meshes[mi].get("primitives", [])):
            where = f"mesh {mi} primitive {pi} (skin {si}, node {ni})"
            attrs = p.get("attributes", {})
            if "JOINTS_0" not in attrs or "WEIGHTS_0" not in attrs:
                probs.append(f"{where}: a skinned mesh needs JOINTS_0 and WEIGHTS_0")
                continue
            k = 0
            wsum = None
            while f"JOINTS_{k}" in attrs:
                J = get(attrs[f"JOINTS_{k}"], f"{where} JOINTS_{k}")
                W = get(attrs.get(f"WEIGHTS_{k}"), f"{where} WEIGHTS_{k}", keep_int=False)
                if J is not None and W is not None:
                    if len(J) and int(np.max(J)) >= nj:
                        probs.append(f"{where}: JOINTS_{k} index {int(np.max(J))} >= {nj} skin joints")
                    wsum = W.sum(axis=1) if wsum is None else wsum + W.sum(axis=1)
                    if np.any(np.asarray(W) < 0):
                        probs.append(f"{where}: WEIGHTS_{k} has negative weights")
                k += 1
            if wsum is not None:
                bad = np.abs(wsum - 1.0) > 0.01
                if np.any(bad):
                    v = int(np.argmax(bad))
                    probs.append(f"{where}: {int(bad.sum())} vertices' weights do not sum to 1 "
                                 f"(vertex {v}: {float(wsum[v]):.4f})")

    for ai, a in enumerate(js.get("animations", [])):
        samplers = a.get("samplers", [])
        paths: dict[int, tuple[str, int | None]] = {}
        for ci, c in enumerate(a.get("channels", [])):
            tgt = c.get("target", {})
            s = c.get("sampler")
            if not isinstance(s, int) or not 0 <= s < len(samplers):
                probs.append(f"animation {ai} channel {ci}: sampler {s!r} does not exist")
                continue
            node = tgt.get("node")
            if node is not None and (not isinstance(node, int) or not 0 <= node < nn):
                probs.append(f"animation {ai} channel {ci}: target node {node!r} does not exist")
                continue
            if tgt.get("path") not in ("translation", "rotation", "scale", "weights"):
                if node is not None:
                    probs.append(f"animation {ai} channel {ci}: unknown path {tgt.get('path')!r}")
                continue
            paths[s] = (tgt["path"], node)
        for si, s in enumerate(samplers):
            where = f"animation {ai} ({a.get('name')!r}) sampler {si}"
            inp = s.get("input")
            if isinstance(inp, int) and 0 <= inp < len(accs):
                minmax(inp, f"{where} input")
            t = get(inp, f"{where} input", keep_int=False)
            o_i = s.get("output")
            o = get(o_i, f"{where} output", keep_int=False)
            interp = s.get("interpolation", "LINEAR")
            if interp not in ("LINEAR", "STEP", "CUBICSPLINE"):
                probs.append(f"{where}: unknown interpolation {interp!r}")
            if t is None or o is None:
                continue
            if accs[inp].get("type") != "SCALAR" or accs[inp].get("componentType") != 5126:
                probs.append(f"{where}: input accessor {inp} must be SCALAR FLOAT")
            if len(t) > 1 and np.any(np.diff(t) <= 0):
                k = int(np.argmax(np.diff(t) <= 0))
                probs.append(f"{where}: input times not strictly increasing (key {k} at {t[k]} s, "
                             f"key {k + 1} at {t[k + 1]} s)")
            if len(t) and t[0] < 0:
                probs.append(f"{where}: negative input time {t[0]}")
            path, node = paths.get(si, (None, None))
            per = 3 if interp == "CUBICSPLINE" else 1
            mult = 1
            if path == "weights" and node is not None:
                mi = nodes[node].get("mesh")
                mult = mesh_targets.get(mi, 0) if isinstance(mi, int) else 0
                if mult == 0:
                    probs.append(f"{where}: animates weights of node {node}, which has no morph targets")
                    continue
            n_out = accs[o_i].get("count")
            if n_out != len(t) * per * mult:
                probs.append(f"{where}: {n_out} outputs for {len(t)} input times"
                             f"{' x 3 (CUBICSPLINE)' if per == 3 else ''}"
                             f"{f' x {mult} morph targets' if mult > 1 else ''}")
            want = {"translation": "VEC3", "scale": "VEC3", "rotation": "VEC4", "weights": "SCALAR"}.get(path)
            if want and accs[o_i].get("type") != want:
                probs.append(f"{where}: {path} output accessor {o_i} must be {want}, is {accs[o_i].get('type')}")
    return probs


# -- sampling animations ------------------------------------------------------------------


def _slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray) -> np.ndarray:
    d = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(d < 0, -q1, q1)
    d = np.abs(d).clip(0, 1)
    th = np.arccos(d)
    s = np.sin(th)
    near = s < 1e-6
    safe = np.where(near, 1.0, s)
    u = u[:, None]
    a = np.where(near, 1 - u, np.sin((1 - u) * th) / safe)
    b = np.where(near, u, np.sin(u * th) / safe)
    q = a * q0 + b * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def sample_sampler(sampler: Sampler, times: np.ndarray, *, rotation: bool = False) -> np.ndarray:
    """Values ``(len(times), width)`` of a sampler at ``times`` (seconds; clamped to the
    keyed range), following glTF's interpolation rules: LINEAR (slerp for rotations),
    STEP, CUBICSPLINE (Hermite, tangents scaled by the key interval; rotations
    renormalised)."""
    t = np.asarray(sampler.input, dtype=float)
    out = np.asarray(sampler.output, dtype=float)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    K = len(t)
    cubic = sampler.interpolation == "CUBICSPLINE"
    vals = out[1::3] if cubic else out
    if K == 1:
        return np.repeat(vals[:1], len(times), axis=0)
    tc = np.clip(times, t[0], t[-1])
    k = np.clip(np.searchsorted(t, tc, side="right") - 1, 0, K - 2)
    dt = t[k + 1] - t[k]
    u = (tc - t[k]) / dt
    if sampler.interpolation == "STEP":
        res = vals[np.where(tc >= t[-1], K - 1, k)]
        return res
    if cubic:
        p0, p1 = vals[k], vals[k + 1]
        m0 = out[3 * k + 2] * dt[:, None]  # out-tangent of key k
        m1 = out[3 * (k + 1)] * dt[:, None]  # in-tangent of key k+1
        u1 = u[:, None]
        u2, u3 = u1 * u1, u1 * u1 * u1
        res = (2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u1) * m0 + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * m1
        if rotation:
            res = res / np.linalg.norm(res, axis=1, keepdims=True)
        return res
    if rotation:
        return _slerp(vals[k], vals[k + 1], u)
    return vals[k] + (vals[k + 1] - vals[k]) * u[:, None]


def sample_animation(doc: GltfDocument, animation: int | str, times: Iterable[float] | np.ndarray,
                     ) -> np.ndarray:
    """Local node transforms ``(len(times), N, 4, 4)`` of every node with ``animation``
    (index or name) applied at ``times`` (seconds); unanimated nodes keep their own
    transform. Feed the result to :meth:`GltfDocument.world_matrices`."""
    anim = _find_animation(doc, animation)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    T, N = len(times), len(doc.nodes)
    tr = np.stack([n.translation for n in doc.nodes]) if N else np.zeros((0, 3))
    rot = np.stack([n.rotation for n in doc.nodes]) if N else np.zeros((0, 4))
    sc = np.stack([n.scale for n in doc.nodes]) if N else np.zeros((0, 3))
    tr = np.broadcast_to(tr, (T, N, 3)).copy()
    rot = np.broadcast_to(rot, (T, N, 4)).copy()
    sc = np.broadcast_to(sc, (T, N, 3)).copy()
    animated = set()
    for c in anim.channels:
        if c.node is None or c.path not in _ANIM_WIDTH:
            continue
        v = sample_sampler(anim.samplers[c.sampler], times, rotation=c.path == "rotation")
        {"translation": tr, "rotation": rot, "scale": sc}[c.path][:, c.node] = v
        animated.add(c.node)
    L = trs_to_matrix(tr, rot, sc)
    for i, n in enumerate(doc.nodes):
        if n.matrix is not None and i not in animated:
            L[:, i] = n.matrix
    return L


def _find_animation(doc: GltfDocument, animation: int | str) -> Animation:
    if isinstance(animation, (int, np.integer)):
        if not 0 <= animation < len(doc.animations):
            raise UsageError(f"animation {animation} out of range ({len(doc.animations)} animations)")
        return doc.animations[int(animation)]
    for a in doc.animations:
        if a.name == animation:
            return a
    names = [a.name for a in doc.animations]
    raise UsageError(f"no animation named {animation!r}; the file has {names}")
