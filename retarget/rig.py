"""A character rig as arrays: a world-aligned :class:`~mocap.motion.Skeleton`, the rig's
own rest orientations, its meshes and bind data, and the glTF document to re-export.

Two frames per joint
--------------------
A rigged character's joints are glTF nodes with their own local axes ("bone roll"):
a MakeHuman forearm's local Y runs along the bone, a Mixamo hand's X does. Our
:class:`~mocap.motion.Motion` knows nothing of that: its skeleton is **world-aligned**,
``offset[j]`` is the joint's rest position minus its parent's in the character's world
frame, and all-identity local rotations are the rest pose. :class:`Rig` keeps both:

* ``skeleton``: world-aligned (offsets are global rest-position differences, metres,
  +Y up, facing +Z), what every retargeting pass works on;
* ``rest_global_rotations`` ``(J, 4)`` wxyz: ``R_j``, each joint node's global rest
  orientation, and ``parent_rest_matrices`` ``(J, 4, 4)``: the global rest transform
  of each joint node's *parent node* (which may be a non-joint node such as Blender's
  "Armature"; for a scene root it is the file-to-world turn ``world_from_file``).

Converting a motion to node rotations (:func:`motion_to_node_rotations`)
--------------------------------------------------------------------------
Let ``a_j`` be the world-aligned local rotation (the motion's) and ``A_j`` its global
one (``A_j = A_p a_j``, ``p`` the skeleton parent). Posing the rig turns each joint's
rest frame rigidly by ``A_j``, so the node's new global orientation is ``A_j R_j``;
a non-joint node between ``p`` and ``j`` (rest global orientation ``P_j``) follows
``p``, so its new orientation is ``A_p P_j``. The node's local rotation is then

    q_j = (A_p P_j)^-1 (A_j R_j) = P_j^-1 A_p^-1 A_p a_j R_j = P_j^-1 a_j R_j

(``P_j = R_p`` when the node parent is the joint parent). The inverse is
``a_j = P_j q_j R_j^-1`` (:func:`node_to_motion_rotations`). The root's translation
is the root position brought into its parent node's frame:
``t = inverse(parent_rest_matrices[root]) @ p``. This is exact for rigs whose node
scales are uniform (true of the shared characters up to float32 noise); a non-uniform
scale on a joint's ancestors would shear and is not supported.

Formats (one loader each, STYLE item 3): ``.glb``/``.gltf`` (the skins' joints),
``.vrm`` (glTF plus the VRM 0.x ``VRM`` or 1.0 ``VRMC_vrm`` humanoid, which also gives
the bone map), ``.bvh`` (skeleton only). :func:`formats` lists them.

``import retarget.rig`` needs numpy only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.errors import FileFormatError, RigError, UsageError
from mocap.glossary import Q2R, Q_apply, Q_inv, Q_mul
from mocap.motion import Motion, Skeleton

from . import gltf
from .bonemap import BoneMap, canonical_names, detect_profile

__all__ = [
    "Rig",
    "RigMesh",
    "formats",
    "load_rig",
    "rig_from_gltf",
    "motion_to_node_rotations",
    "node_to_motion_rotations",
    "root_to_node_translations",
    "node_to_root_positions",
    "animation_to_motion",
    "skin_vertices",
    "export_glb",
]

_Y180 = np.diag([-1.0, 1.0, -1.0, 1.0])
"""A half turn about +Y: VRM 0.x models face -Z, ours face +Z."""

# VRM 0.x thumb names -> VRM 1.0 (0.x had no metacarpal: its "proximal" is 1.0's metacarpal)
_VRM0_RENAME = {
    "leftThumbProximal": "leftThumbMetacarpal", "leftThumbIntermediate": "leftThumbProximal",
    "rightThumbProximal": "rightThumbMetacarpal", "rightThumbIntermediate": "rightThumbProximal",
}


@dataclass(eq=False)
class RigMesh:
    """A mesh of the character in its rest pose, in the character's world frame.

    ``vertices`` ``(N, 3)`` and ``normals`` ``(N, 3)`` (or None) after the rest-pose
    skinning (so they line up with ``rig.skeleton.rest_positions()``); ``faces``
    ``(F, 3)`` triangle vertex indices (strips and fans converted, points and lines
    give none); ``joints``/``weights`` ``(N, K)``: indices into **the rig's skeleton**
    (not the glTF skin) and their weights, ``-1``/0 where unused. A mesh rigidly
    parented to a bone (no skin) gets K = 1 and weight 1 on that joint; a mesh attached
    to no joint has ``joints = weights = None``. ``morph_targets`` ``(M, N, 3)``
    position deltas in the same frame, named by ``morph_target_names``.
    """

    name: str
    node_index: int
    vertices: np.ndarray
    normals: np.ndarray | None
    faces: np.ndarray
    joints: np.ndarray | None
    weights: np.ndarray | None
    morph_target_names: tuple[str, ...] = ()
    morph_targets: np.ndarray | None = None
    skinned: bool = True

    def __repr__(self) -> str:
        kind = "skinned" if self.skinned else ("rigid" if self.joints is not None else "static")
        return (f"RigMesh({self.name!r}, {len(self.vertices)} vertices, {len(self.faces)} triangles, {kind}, "
                f"{len(self.morph_target_names)} morph targets)")


@dataclass(eq=False)
class Rig:
    """A character: world-aligned skeleton, rest orientations, meshes, bind data.

    ==========================  =============  ==========================================
    ``skeleton``                Skeleton       world-aligned (see the module docstring)
    ``rest_global_rotations``   ``(J, 4)``     wxyz, each joint node's global rest
                                               orientation in the character's world
    ``node_index``              ``(J,)`` int   the joint's node in ``doc``
    ``meshes``                  list           :class:`RigMesh`, rest pose, world frame
    ``bonemap``                 BoneMap/None   detected (or given, or from the VRM file)
    ``source``                  Path/None      the file it came from
    ``doc``                     GltfDocument   the loaded document, for re-export
    ``parent_rest_matrices``    ``(J, 4, 4)``  global rest transform of each joint
                                               node's parent node, world frame
    ``world_from_file``         ``(4, 4)``     file frame -> ours (identity, or a half
                                               turn about Y for VRM 0.x)
    ``units``, ``up``, ``notes``  str, tuple   human-readable conventions and remarks
    ==========================  =============  ==========================================
    """

    skeleton: Skeleton
    rest_global_rotations: np.ndarray
    node_index: np.ndarray
    meshes: list[RigMesh]
    bonemap: BoneMap | None
    source: Path | None
    doc: gltf.GltfDocument | None
    parent_rest_matrices: np.ndarray
    world_from_file: np.ndarray = field(default_factory=lambda: np.eye(4))
    units: str = "metres"
    up: str = "+Y up, facing +Z"
    notes: tuple[str, ...] = ()

    @property
    def n_joints(self) -> int:
        return len(self.skeleton)

    @property
    def parent_rest_rotations(self) -> np.ndarray:
        """``(J, 4)`` wxyz global rest orientation of each joint node's parent node."""
        return _polar_q(self.parent_rest_matrices[:, :3, :3])

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` rest positions of the joints, world frame, metres."""
        return self.skeleton.rest_positions()

    def vertex_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(min (3,), max (3,))`` over every mesh vertex in the rest pose."""
        if not self.meshes:
            raise RigError(f"rig {self.source.name if self.source else ''} has no mesh")
        v = np.concatenate([m.vertices for m in self.meshes])
        return v.min(axis=0), v.max(axis=0)

    def facing(self) -> np.ndarray | None:
        """The horizontal unit vector the character faces in its rest pose, from its
        left/right upper arms (else upper legs) found through ``bonemap``:
        ``forward = (left - right) x up``. None without a bone map or those bones. A
        glTF/VRM-1.0 character (and every rig after loading) should give ~``[0, 0, 1]``."""
        if self.bonemap is None:
            return None
        found = self.bonemap.resolve(self.skeleton.names)
        P = self.rest_positions()
        for a, b in (("leftUpperArm", "rightUpperArm"), ("leftUpperLeg", "rightUpperLeg")):
            if a in found and b in found:
                lateral = P[self.skeleton.index(found[a])] - P[self.skeleton.index(found[b])]
                f = np.cross(lateral, [0.0, 1.0, 0.0])
                n = np.linalg.norm(f)
                if n > 1e-9:
                    return f / n
        return None

    def __repr__(self) -> str:
        src = self.source.name if self.source else "?"
        bm = self.bonemap.name if self.bonemap else None
        return (f"Rig({src!r}, {len(self.skeleton)} joints, {len(self.meshes)} meshes, bonemap={bm!r}, "
                f"root {self.skeleton.names[0]!r})")


# -- helpers ------------------------------------------------------------------------------


def _polar_q(A: np.ndarray) -> np.ndarray:
    """wxyz quaternions of the rotation nearest to each ``(..., 3, 3)`` (scale removed)."""
    A = np.asarray(A, dtype=float)
    U, _, Vt = np.linalg.svd(A)
    R = U @ Vt
    det = np.linalg.det(R)
    if np.any(det < 0):
        raise RigError("a joint's rest transform is mirrored (negative scale); mirrored joints are not supported")
    return gltf._r2q(R)


def _unique_names(names: list[str | None], nodes: list[int]) -> list[str]:
    out, seen = [], set()
    for n, i in zip(names, nodes):
        base = n if n else f"node{i}"
        name, k = base, 1
        while name in seen:
            name = f"{base}.{k:03d}"
            k += 1
        seen.add(name)
        out.append(name)
    return out


def _triangles(indices: np.ndarray, mode: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64)
    if mode == 4:
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode == 5:  # strip: alternate winding
        if len(idx) < 3:
            return np.zeros((0, 3), dtype=np.int64)
        k = np.arange(len(idx) - 2)
        tri = np.stack([idx[k], idx[k + 1], idx[k + 2]], axis=1)
        odd = k % 2 == 1
        tri[odd] = tri[odd][:, [1, 0, 2]]
        return tri
    if mode == 6:  # fan
        if len(idx) < 3:
            return np.zeros((0, 3), dtype=np.int64)
        k = np.arange(1, len(idx) - 1)
        return np.stack([np.full_like(k, idx[0]), idx[k], idx[k + 1]], axis=1)
    return np.zeros((0, 3), dtype=np.int64)


# -- building a rig from a glTF document --------------------------------------------------


def rig_from_gltf(
    doc: gltf.GltfDocument,
    *,
    extra_joints: list[int] | tuple[int, ...] = (),
    world_from_file: np.ndarray | None = None,
    bonemap: BoneMap | None = None,
    detect: bool = True,
    notes: tuple[str, ...] = (),
) -> Rig:
    """A :class:`Rig` from a decoded document: the joints are the union of every skin's
    joints and ``extra_joints`` (node indices); when they have several roots, their
    lowest common ancestor node joins them as the root. The rest pose is the nodes'
    own TRS. ``world_from_file`` turns the file's world into ours. ``bonemap`` None and
    ``detect`` True: the best built-in profile, or None when none fits."""
    C = np.eye(4) if world_from_file is None else np.asarray(world_from_file, dtype=float)
    src = doc.source
    where = src.name if src else "the document"
    joint_set = {j for s in doc.skins for j in s.joints} | set(int(j) for j in extra_joints)
    if not joint_set:
        raise RigError(f"{where} has no skin (and no humanoid bones): it is not a rigged character")
    par = doc.parents()

    def joint_ancestor(i: int) -> int:
        a = par[i]
        while a >= 0 and a not in joint_set:
            a = par[a]
        return int(a)

    roots = sorted(j for j in joint_set if joint_ancestor(j) < 0)
    if len(roots) > 1:
        def chain(i):
            out = []
            while i >= 0:
                out.append(int(i))
                i = par[i]
            return out

        common = chain(roots[0])
        for r in roots[1:]:
            c = set(chain(r))
            common = [a for a in common if a in c]
        if not common:
            names = [doc.nodes[r].name for r in roots]
            raise RigError(f"{where}: the skins' joints have {len(roots)} roots with no common ancestor node "
                           f"({names}); cannot build one skeleton")
        joint_set.add(common[0])
    order = [i for i in doc.topological_order() if i in joint_set]
    node_of = np.array(order, dtype=np.int64)
    idx_of = {n: k for k, n in enumerate(order)}
    parents = np.array([-1 if joint_ancestor(n) < 0 else idx_of[joint_ancestor(n)] for n in order], dtype=np.int64)
    names = _unique_names([doc.nodes[n].name for n in order], order)

    W = C @ doc.world_matrices()  # (N, 4, 4) in our frame
    P = W[node_of, :3, 3]
    R = _polar_q(W[node_of, :3, :3])
    PM = np.stack([C if par[n] < 0 else W[par[n]] for n in order])
    offsets = P.copy()
    offsets[1:] = P[1:] - P[parents[1:]]

    # end sites: a leaf joint's single non-joint, mesh-free child node (e.g. "Head_end")
    ends = {}
    has_child = set(int(p) for p in parents[1:])
    for k, n in enumerate(order):
        if k in has_child:
            continue
        kids = [c for c in doc.nodes[n].children if c not in joint_set]
        kids = [c for c in kids if doc.nodes[c].mesh is None and not doc.nodes[c].children]
        if len(kids) == 1:
            ends[names[k]] = W[kids[0], :3, 3] - P[k]
    skeleton = Skeleton(names, parents, offsets, ends)

    meshes = _rig_meshes(doc, W, idx_of, joint_ancestor, C)
    if bonemap is None and detect:
        try:
            bonemap, _ = detect_profile(names)
        except RigError:
            bonemap = None
    rig = Rig(skeleton=skeleton, rest_global_rotations=R, node_index=node_of, meshes=meshes, bonemap=bonemap,
              source=src, doc=doc, parent_rest_matrices=PM, world_from_file=C, notes=tuple(notes))
    f = rig.facing()
    if f is not None and f[2] < 0.9:
        rig.notes += (f"the rest pose faces {np.round(f, 2).tolist()} (from its left/right limbs), not +Z",)
    return rig


def _rig_meshes(doc, W, idx_of, joint_ancestor, C) -> list[RigMesh]:
    out = []
    for ni in doc.scene_nodes():
        node = doc.nodes[ni]
        if node.mesh is None:
            continue
        mesh = doc.meshes[node.mesh]
        skin = doc.skins[node.skin] if node.skin is not None else None
        prims = [p for p in mesh.primitives if "POSITION" in p.attributes]
        if not prims:
            continue
        skinned = skin is not None and all("JOINTS_0" in p.attributes and "WEIGHTS_0" in p.attributes
                                           for p in prims)
        M = mesh.n_targets
        verts, norms, faces, js, ws, tg = [], [], [], [], [], []
        base = 0
        have_normals = all("NORMAL" in p.attributes for p in prims)
        K = 0
        if skinned:
            K = 4 * max(sum(1 for k in p.attributes if k.startswith("JOINTS_")) for p in prims)
        for p in prims:
            v = np.asarray(p.attributes["POSITION"], dtype=float)
            n = len(v)
            verts.append(v)
            if have_normals:
                norms.append(np.asarray(p.attributes["NORMAL"], dtype=float))
            idx = p.indices if p.indices is not None else np.arange(n)
            faces.append(_triangles(idx, p.mode) + base)
            base += n
            if skinned:
                J = np.zeros((n, K), dtype=np.int64)
                Wt = np.zeros((n, K))
                k = 0
                while f"JOINTS_{k}" in p.attributes:
                    J[:, 4 * k:4 * k + 4] = p.attributes[f"JOINTS_{k}"]
                    Wt[:, 4 * k:4 * k + 4] = p.attributes.get(f"WEIGHTS_{k}", 0.0)
                    k += 1
                js.append(J)
                ws.append(Wt)
            d = np.zeros((M, n, 3))
            for t, tgt in enumerate(p.targets):
                if "POSITION" in tgt:
                    d[t] = tgt["POSITION"]
            tg.append(d)
        V = np.concatenate(verts)
        Nn = np.concatenate(norms) if have_normals else None
        F = np.concatenate(faces) if faces else np.zeros((0, 3), dtype=np.int64)
        D = np.concatenate(tg, axis=1)
        if skinned:
            J = np.concatenate(js)
            Wt = np.concatenate(ws)
            if np.any(J >= len(skin.joints)):
                raise RigError(f"mesh {mesh.name!r}: a JOINTS index is >= the skin's {len(skin.joints)} joints")
            mats = W[np.asarray(skin.joints)] @ skin.ibm()  # (Js, 4, 4): bind -> world (ours)
            B = np.einsum("nk,nkij->nij", Wt, mats[J])
            jmap = np.array([idx_of[j] for j in skin.joints], dtype=np.int64)
            joints = np.where(Wt > 0, jmap[J], -1)
            weights = Wt
        else:
            B = np.broadcast_to(W[ni], (len(V), 4, 4))
            anc = ni if ni in idx_of else joint_ancestor(ni)
            if anc >= 0:
                joints = np.full((len(V), 1), idx_of[anc], dtype=np.int64)
                weights = np.ones((len(V), 1))
            else:
                joints = weights = None
        Vw = np.einsum("nij,nj->ni", B[:, :3, :3], V) + B[:, :3, 3]
        if Nn is not None:
            Nn = np.einsum("nij,nj->ni", B[:, :3, :3], Nn)
            Nn /= np.maximum(np.linalg.norm(Nn, axis=1, keepdims=True), 1e-12)
        Dw = np.einsum("nij,mnj->mni", B[:, :3, :3], D) if M else None
        out.append(RigMesh(name=mesh.name or node.name or f"mesh{node.mesh}", node_index=ni, vertices=Vw,
                           normals=Nn, faces=F, joints=joints, weights=weights,
                           morph_target_names=tuple(mesh.target_names), morph_targets=Dw, skinned=skinned))
    return out


# -- loaders (one per format) -------------------------------------------------------------


def _load_gltf_rig(path: Path, bonemap: BoneMap | None) -> Rig:
    doc = gltf.load_gltf(path)
    return rig_from_gltf(doc, bonemap=bonemap)


def _load_vrm_rig(path: Path, bonemap: BoneMap | None) -> Rig:
    doc = gltf.load_gltf(path)
    ext = doc.extensions
    if "VRMC_vrm" in ext:
        hb = ((ext["VRMC_vrm"].get("humanoid") or {}).get("humanBones")) or {}
        if not isinstance(hb, dict):
            raise FileFormatError(f"{path}: VRMC_vrm humanoid.humanBones must be an object (VRM 1.0)")
        bones = {name: v.get("node") for name, v in hb.items() if isinstance(v, dict)}
        C = np.eye(4)
        notes = ("VRM 1.0 (VRMC_vrm): +Y up, facing +Z, as ours",)
    elif "VRM" in ext:
        hb = ((ext["VRM"].get("humanoid") or {}).get("humanBones")) or []
        if not isinstance(hb, list):
            raise FileFormatError(f"{path}: VRM 0.x humanoid.humanBones must be a list")
        bones = {_VRM0_RENAME.get(b.get("bone"), b.get("bone")): b.get("node") for b in hb if isinstance(b, dict)}
        C = _Y180
        notes = ("VRM 0.x (VRM extension) faces -Z: turned 180 degrees about +Y to face +Z",)
    else:
        raise FileFormatError(f"{path}: no VRM extension (neither VRMC_vrm 1.0 nor VRM 0.x) in this .vrm")
    n = len(doc.nodes)
    bad = {b: i for b, i in bones.items() if not isinstance(i, int) or not 0 <= i < n}
    if bad:
        raise FileFormatError(f"{path}: humanBones refer to missing nodes: {bad}")
    rig = rig_from_gltf(doc, extra_joints=sorted(set(bones.values())), world_from_file=C, bonemap=bonemap,
                        detect=False, notes=notes)
    if bonemap is None:
        canon = set(canonical_names())
        name_of = {int(ni): rig.skeleton.names[k] for k, ni in enumerate(rig.node_index)}
        mapping = {b: name_of[i] for b, i in bones.items() if b in canon}
        rig.bonemap = BoneMap(name="vrm-file", bones=mapping, source=path,
                              description=f"humanBones of {path.name}")
    return rig


def _load_bvh_rig(path: Path, bonemap: BoneMap | None) -> Rig:
    from mocap.bvh import load_bvh

    sk = load_bvh(path).skeleton
    J = len(sk)
    P = sk.rest_positions()
    PM = np.tile(np.eye(4), (J, 1, 1))
    PM[1:, :3, 3] = P[sk.parents[1:]]
    if bonemap is None:
        try:
            bonemap, _ = detect_profile(sk.names)
        except RigError:
            bonemap = None
    return Rig(skeleton=sk, rest_global_rotations=np.tile([1.0, 0, 0, 0], (J, 1)), node_index=np.arange(J),
               meshes=[], bonemap=bonemap, source=path, doc=_skeleton_doc(sk), parent_rest_matrices=PM,
               notes=("BVH: skeleton only, rest pose = identity rotations",))


def _skeleton_doc(sk: Skeleton) -> gltf.GltfDocument:
    """Nodes only (joint j = node j), for exporting a skeleton without a mesh."""
    doc = gltf.GltfDocument(extra={"asset": {"version": "2.0"}})
    for j, name in enumerate(sk.names):
        kids = [int(c) for c in np.flatnonzero(sk.parents == j)]
        doc.nodes.append(gltf.Node(name=name, children=kids, translation=np.array(sk.offsets[j], dtype=float)))
    doc.scenes = [{"nodes": [0]}]
    doc.scene = 0
    return doc


_LOADERS = {".glb": _load_gltf_rig, ".gltf": _load_gltf_rig, ".vrm": _load_vrm_rig, ".bvh": _load_bvh_rig}


def formats() -> dict[str, str]:
    """File types :func:`load_rig` reads, suffix -> what it gives."""
    return {".glb": "binary glTF 2.0: skins, meshes, morph targets", ".gltf": "glTF 2.0 JSON (+ .bin / data URIs)",
            ".vrm": "VRM 0.x / 1.0 (glTF + humanoid bone map)", ".bvh": "BVH: skeleton only"}


def load_rig(path: str | os.PathLike, *, bonemap: BoneMap | None = None) -> Rig:
    """Load a character (or a bare skeleton) by file extension; see :func:`formats`.

    ``bonemap`` overrides detection (a .vrm otherwise gets its own humanBones as the
    map ``"vrm-file"``; other files the best built-in profile, or None). Raises
    :class:`~mocap.errors.FileFormatError` for an unknown extension or a malformed
    file and :class:`~mocap.errors.RigError` for a file without a usable skeleton.
    """
    path = Path(path)
    if bonemap is not None and not isinstance(bonemap, BoneMap):
        raise UsageError(f"bonemap must be a BoneMap, got {type(bonemap).__name__}")
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise FileFormatError(f"{path}: cannot load a rig from {path.suffix or 'a file without extension'!r}; "
                              f"supported: {', '.join(_LOADERS)}")
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    return loader(path, bonemap)


# -- motion <-> node rotations ------------------------------------------------------------


def _rotations(rig: Rig, motion_or_rotations) -> np.ndarray:
    Q = motion_or_rotations.rotations if isinstance(motion_or_rotations, Motion) else motion_or_rotations
    Q = np.asarray(Q, dtype=float)
    if Q.shape[-2:] != (rig.n_joints, 4):
        raise UsageError(f"rotations must be (..., {rig.n_joints}, 4) for this rig, got {Q.shape}")
    return Q


def motion_to_node_rotations(rig: Rig, motion: Motion | np.ndarray) -> np.ndarray:
    """The rig's own node-local rotations ``(..., J, 4)`` wxyz for world-aligned local
    rotations (a :class:`Motion` on ``rig.skeleton``, or its ``(..., J, 4)`` array):
    ``q_j = P_j^-1 a_j R_j`` (derivation in the module docstring). Identity input gives
    the nodes' rest rotations (up to their scale)."""
    Q = _rotations(rig, motion)
    return Q_mul(Q_mul(Q_inv(rig.parent_rest_rotations), Q), rig.rest_global_rotations)


def node_to_motion_rotations(rig: Rig, node_rotations: np.ndarray) -> np.ndarray:
    """Inverse of :func:`motion_to_node_rotations`: ``a_j = P_j q_j R_j^-1``."""
    Q = _rotations(rig, node_rotations)
    return Q_mul(Q_mul(rig.parent_rest_rotations, Q), Q_inv(rig.rest_global_rotations))


def root_to_node_translations(rig: Rig, root_positions: np.ndarray) -> np.ndarray:
    """The root node's local translation ``(..., 3)`` that puts the root joint at
    ``root_positions`` ``(..., 3)`` (world, metres)."""
    p = np.asarray(root_positions, dtype=float)
    Minv = np.linalg.inv(rig.parent_rest_matrices[0])
    return p @ Minv[:3, :3].T + Minv[:3, 3]


def node_to_root_positions(rig: Rig, translations: np.ndarray) -> np.ndarray:
    """Inverse of :func:`root_to_node_translations`."""
    t = np.asarray(translations, dtype=float)
    M = rig.parent_rest_matrices[0]
    return t @ M[:3, :3].T + M[:3, 3]


def _continuous(Q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so consecutive quaternions are in the same hemisphere
    (keyframe interpolation then takes the short way)."""
    if len(Q) < 2:
        return Q.copy()
    d = np.where(np.sum(Q[1:] * Q[:-1], axis=-1) < 0, -1.0, 1.0)
    s = np.concatenate([np.ones((1,) + d.shape[1:]), np.cumprod(d, axis=0)])
    return Q * s[..., None]


def animation_to_motion(rig: Rig, animation: int | str, *, fps: float = 30.0) -> Motion:
    """Sample one of the rig's glTF animations at ``fps`` into a :class:`Motion` on
    ``rig.skeleton`` (world-aligned). Animated non-root translations become
    ``local_offsets``. Exact at the sampled times up to float32 keyframes."""
    if rig.doc is None:
        raise RigError("this rig has no glTF document")
    anim = gltf._find_animation(rig.doc, animation)
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise UsageError(f"fps must be positive, got {fps}")
    T = int(np.floor(anim.duration * fps + 1e-6)) + 1
    times = np.arange(T) / fps
    L = gltf.sample_animation(rig.doc, animation, times)
    W = rig.world_from_file @ rig.doc.world_matrices(L)[:, rig.node_index]  # (T, J, 4, 4)
    P = W[..., :3, 3]
    G = Q_mul(_polar_q(W[..., :3, :3]), Q_inv(rig.rest_global_rotations))  # aligned global rotations
    par = rig.skeleton.parents
    local = G.copy()
    local[:, 1:] = Q_mul(Q_inv(G[:, par[1:]]), G[:, 1:])
    off = np.zeros_like(P)
    off[:, 1:] = Q_apply(Q_inv(G[:, par[1:]]), P[:, 1:] - P[:, par[1:]])
    local_offsets = None
    if np.abs(off[:, 1:] - rig.skeleton.offsets[1:]).max(initial=0.0) > 1e-6:
        local_offsets = off
    name = anim.name if anim.name is not None else str(animation)
    return Motion(skeleton=rig.skeleton, rotations=_continuous(local), root_positions=P[:, 0], fps=fps,
                  local_offsets=local_offsets, meta={"source": str(rig.source), "animation": name})


def skin_vertices(rig: Rig, motion: Motion, mesh: int | str = 0) -> np.ndarray:
    """Linear-blend-skinned vertices ``(T, N, 3)`` of one of ``rig.meshes`` (index or
    name) posed by ``motion`` (on ``rig.skeleton``), computed from the world-aligned
    motion: each joint moves its rest neighbourhood rigidly, ``v' = sum_k w_k (A_k
    (v - p_k) + p'_k)``. Static meshes do not move."""
    if isinstance(mesh, str):
        names = [m.name for m in rig.meshes]
        if mesh not in names:
            raise UsageError(f"no mesh named {mesh!r}; meshes: {names}")
        mesh = names.index(mesh)
    m = rig.meshes[mesh]
    pos, glob = motion.fk()
    T = len(pos)
    if m.joints is None:
        return np.broadcast_to(m.vertices, (T,) + m.vertices.shape).copy()
    R = Q2R(glob)  # (T, J, 3, 3)
    rest = rig.skeleton.rest_positions()
    out = np.zeros((T, len(m.vertices), 3))
    for k in range(m.joints.shape[1]):
        j = m.joints[:, k]
        w = np.where(j >= 0, m.weights[:, k], 0.0)
        jj = np.maximum(j, 0)
        rel = m.vertices - rest[jj]
        moved = np.einsum("tnab,nb->tna", R[:, jj], rel) + pos[:, jj]
        out += w[None, :, None] * moved
    return out


# -- export -------------------------------------------------------------------------------


def export_glb(
    rig: Rig,
    motion: Motion,
    path: str | os.PathLike,
    *,
    morph_weights: Mapping[str, np.ndarray] | None = None,
    name: str = "understudy",
    keep_animations: bool = False,
) -> Path:
    """Write the character (meshes, skins, materials, images passed through) with
    ``motion`` as a new glTF animation called ``name``.

    ``motion`` must be on ``rig.skeleton`` (same joint names and parents; retarget
    first). Each joint gets a rotation channel (:func:`motion_to_node_rotations`), the
    root a translation channel (:func:`root_to_node_translations`), joints whose
    ``motion.local_offsets`` differ from the rest a translation channel. Keyframe times
    are ``motion.timestamps`` shifted to start at 0, LINEAR.

    ``morph_weights`` maps a morph target name (e.g. ``"Surprised"``) to ``(T,)``
    weights; every mesh node with a target of that name gets a ``weights`` channel
    (its other targets stay at their default weights). The file's own animations are
    dropped unless ``keep_animations``. A VRM 0.x character (which faces -Z) is put
    under a new root node turning it 180 degrees about Y, so the file faces +Z like
    the motion. Returns the path (written atomically by :func:`gltf.write_glb`).
    """
    if not isinstance(rig, Rig):
        raise UsageError(f"export_glb needs a Rig, got {type(rig).__name__}")
    if not isinstance(motion, Motion):
        raise UsageError(f"export_glb needs a Motion, got {type(motion).__name__}")
    if rig.doc is None:
        raise RigError("this rig has no glTF document to export")
    sk = rig.skeleton
    if not motion.skeleton.same_topology(sk):
        missing = [n for n in sk.names if n not in motion.skeleton]
        raise UsageError(
            f"the motion's skeleton ({len(motion.skeleton)} joints, root {motion.skeleton.names[0]!r}) is not "
            f"this rig's ({len(sk)} joints, root {sk.names[0]!r})"
            + (f"; missing e.g. {missing[:5]}" if missing else "; same joints in another order or hierarchy")
            + ". Retarget the motion onto rig.skeleton first"
        )
    doc = rig.doc.copy()
    if not keep_animations:
        doc.animations = []
    T = len(motion.rotations)
    times = (motion.timestamps - motion.timestamps[0]).astype(np.float32)
    if T > 1 and np.any(np.diff(times) <= 0):
        raise UsageError("the motion's timestamps are too close together for float32 keyframe times")
    Nq = _continuous(motion_to_node_rotations(rig, motion.rotations))
    samplers: list[gltf.Sampler] = []
    channels: list[gltf.Channel] = []

    def add(node: int, path: str, values: np.ndarray) -> None:
        samplers.append(gltf.Sampler(input=times, output=np.asarray(values, dtype=np.float32)))
        channels.append(gltf.Channel(sampler=len(samplers) - 1, node=int(node), path=path))

    for j, ni in enumerate(rig.node_index):
        node = doc.nodes[ni]
        if node.matrix is not None:  # animated nodes must use TRS
            node.translation, node.rotation, node.scale = gltf.matrix_to_trs(node.matrix)
            node.matrix = None
        add(ni, "rotation", Nq[:, j])
    add(rig.node_index[0], "translation", root_to_node_translations(rig, motion.root_positions))
    if motion.local_offsets is not None:
        rest = sk.rest_positions()
        lo = np.asarray(motion.local_offsets, dtype=float)
        for j in range(1, len(sk)):
            if np.abs(lo[:, j] - sk.offsets[j]).max() <= 1e-9:
                continue
            Minv = np.linalg.inv(rig.parent_rest_matrices[j])
            target = rest[sk.parents[j]] + lo[:, j]
            add(rig.node_index[j], "translation", target @ Minv[:3, :3].T + Minv[:3, 3])

    if morph_weights:
        found = set()
        available = set()
        for ni, node in enumerate(doc.nodes):
            if node.mesh is None or doc.meshes[node.mesh].n_targets == 0:
                continue
            mesh = doc.meshes[node.mesh]
            tnames = mesh.target_names
            available.update(tnames)
            hits = [k for k, t in enumerate(tnames) if t in morph_weights]
            if not hits:
                continue
            base = node.weights or mesh.weights or [0.0] * len(tnames)
            Wm = np.tile(np.asarray(base, dtype=float), (T, 1))
            for k in hits:
                w = np.asarray(morph_weights[tnames[k]], dtype=float)
                if w.shape != (T,) or not np.all(np.isfinite(w)):
                    raise UsageError(f"morph weights for {tnames[k]!r} must be ({T},) finite numbers, "
                                     f"got shape {w.shape}")
                Wm[:, k] = w
                found.add(tnames[k])
            add(ni, "weights", Wm)
        unknown = sorted(set(morph_weights) - found)
        if unknown:
            raise UsageError(f"no mesh has morph target(s) {unknown}; the character's targets: "
                             f"{sorted(available) or 'none'}")

    if not np.allclose(rig.world_from_file, np.eye(4)):
        roots = list(doc.scenes[doc.scene or 0]["nodes"]) if doc.scenes else \
            [i for i, p in enumerate(doc.parents()) if p < 0]
        t, q, s = gltf.matrix_to_trs(rig.world_from_file)
        doc.nodes.append(gltf.Node(name="understudy_world", children=roots, translation=t, rotation=q, scale=s))
        if doc.scenes:
            doc.scenes[doc.scene or 0]["nodes"] = [len(doc.nodes) - 1]
        else:
            doc.scenes, doc.scene = [{"nodes": [len(doc.nodes) - 1]}], 0
    doc.animations.append(gltf.Animation(name=name, channels=channels, samplers=samplers))
    return gltf.write_glb(doc, path)
