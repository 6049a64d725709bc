"""Skeletal motion as arrays: a :class:`Skeleton` (names, a parents array, rest offsets)
and a :class:`Motion` (per-frame local rotations and a root track on that skeleton).

Conventions (see :mod:`mocap.glossary`): metres, seconds, +Y up, the character faces +Z;
quaternions are wxyz. T frames, J joints.

The skeleton is a **topologically sorted parents array** (smplx-style): joint 0 is the one
root (``parents[0] == -1``) and every other joint's parent comes before it
(``0 <= parents[j] < j``). Forward kinematics is then one Python loop over joints,
vectorised over frames::

    global_R[j] = global_R[parent] @ R_local[j]
    global_p[j] = global_p[parent] + global_R[parent] @ offset[j]
    global_R[root] = R_local[root],   global_p[root] = root_positions

``offset[j]`` is the joint's rest position relative to its parent, in the parent's frame
(so the rest pose is "all local rotations identity"); the root's offset is its rest
position in the world. A rotation therefore turns the joint's *children*, not the joint's
own position, exactly as in BVH.

Both classes check their arrays on construction and raise :class:`~mocap.errors.UsageError`
naming the problem (shape, unsorted parents, duplicate names, non-unit quaternions, ...).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import UsageError

__all__ = ["Skeleton", "Motion", "fk", "quat_rotate", "slerp"]

_UNIT_TOL = 1e-3
"""How far from 1 a quaternion's norm may be before :class:`Motion` refuses it (it
renormalises anything closer; text formats round to ~6 digits)."""


# -- free functions on raw arrays ------------------------------------------------------


def quat_rotate(Q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``(..., 3)`` by unit quaternions ``(..., 4)`` wxyz (broadcast).

    The same result as :func:`mocap.glossary.Q_apply`, without building matrices:
    ``v' = v + 2w (u x v) + 2 u x (u x v)`` with ``u`` the vector part. Assumes unit ``Q``.
    """
    Q = np.asarray(Q, dtype=float)
    v = np.asarray(v, dtype=float)
    w = Q[..., :1]
    u = Q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def fk(
    parents: np.ndarray,
    offsets: np.ndarray,
    rotations: np.ndarray,
    root_positions: np.ndarray,
    *,
    joints: Iterable[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics on raw arrays, vectorised over frames.

    ``parents`` ``(J,)`` int, topologically sorted (``parents[0] == -1``,
    ``parents[j] < j``); ``offsets`` ``(J, 3)`` rest offsets from the parent in metres, or
    ``(..., J, 3)`` per frame (the root's row is not used: ``root_positions`` places it);
    ``rotations`` ``(..., J, 4)`` wxyz local rotations (unit); ``root_positions``
    ``(..., 3)`` world position of the root joint.

    Returns ``(positions (..., J, 3), global rotations (..., J, 4) wxyz)``. One loop over
    joints; every step is a whole-batch numpy operation (no per-frame Python): about
    0.15 s for 31 joints x 100,000 frames. Shapes and the parents order are checked, the
    values are not (unit quaternions, finiteness); :meth:`Motion.fk` is the checked entry.

    ``joints``: only these joint indices, ``(..., len(joints), 3)`` and ``(..., len(joints),
    4)`` in that order. Only they and their ancestors are computed (the same operations,
    so the same numbers as the full solve): the two legs of a 52-joint skeleton (9 joints
    with the hips) cost a sixth of the whole.
    """
    parents = np.asarray(parents)
    rotations = np.asarray(rotations, dtype=float)
    offsets = np.asarray(offsets, dtype=float)
    root_positions = np.asarray(root_positions, dtype=float)
    J = parents.shape[0]
    sorted_ok = parents.ndim == 1 and J > 0 and parents[0] == -1
    sorted_ok = sorted_ok and bool(np.all((parents[1:] >= 0) & (parents[1:] < np.arange(1, J))))
    if not sorted_ok:
        raise UsageError(f"parents must be (J,) topologically sorted with parents[0] == -1, got {parents}")
    if rotations.shape[-2:] != (J, 4):
        raise UsageError(f"rotations must be (..., {J}, 4) for {J} joints, got {rotations.shape}")
    batch = rotations.shape[:-2]
    if root_positions.shape != batch + (3,):
        raise UsageError(f"root_positions must be {batch + (3,)}, got {root_positions.shape}")
    if offsets.shape[-2:] != (J, 3):
        raise UsageError(f"offsets must be ({J}, 3) or (..., {J}, 3), got {offsets.shape}")
    want = list(range(J)) if joints is None else [int(j) for j in joints]
    if any(not 0 <= j < J for j in want):
        raise UsageError(f"joints must be indices in 0..{J - 1}, got {want}")
    # the joints and all their ancestors, in order (parents still come first)
    keep: set[int] = set()
    for j in want:
        while j >= 0 and j not in keep:
            keep.add(j)
            j = int(parents[j])
    sub = sorted(keep)
    at = {j: k for k, j in enumerate(sub)}
    pick = [at[j] for j in want]
    sub_parents = [-1 if parents[j] < 0 else at[int(parents[j])] for j in sub]

    # Work component-major, (k, 4, N): each joint's w, x, y, z over all N frames is one
    # contiguous row, so every step below is a fast elementwise pass. The whole skeleton
    # changes layout in one transpose each way (they cost about as much as the
    # arithmetic; the strided alternative is ~4x slower); a few joints, a (T, 4) column at
    # a time (only the joints needed are touched).
    N = int(np.prod(batch, dtype=np.int64))
    whole = len(sub) == J
    if whole:
        Ql = rotations.reshape(N, J * 4).T.copy().reshape(J, 4, N)
    else:
        R = rotations.reshape(N, J, 4)
        Ql = np.empty((len(sub), 4, N))
        for k, j in enumerate(sub):
            Ql[k] = R[:, j].T
    if offsets.ndim > 2:
        O = np.broadcast_to(offsets, batch + (J, 3)).reshape(N, J, 3)
        off = np.empty((len(sub), 3, N))
        for k, j in enumerate(sub):
            off[k] = O[:, j].T
    else:
        off = offsets[sub][:, :, None]  # (k, 3, 1), broadcast over frames
    P, Qg = _fk(sub_parents, off, Ql, root_positions.reshape(N, 3).T)
    if whole and pick == sub:
        positions = P.reshape(J * 3, N).T.copy()
        global_rotations = Qg.reshape(J * 4, N).T.copy()
    else:
        positions = np.empty((N, len(pick), 3))
        global_rotations = np.empty((N, len(pick), 4))
        for i, k in enumerate(pick):
            positions[:, i] = P[k].T
            global_rotations[:, i] = Qg[k].T
    return positions.reshape(batch + (len(pick), 3)), global_rotations.reshape(batch + (len(pick), 4))


def _fk(parents: list[int], off: np.ndarray, Ql: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The work of :func:`fk`, component-major: ``off`` ``(J, 3, N)`` or ``(J, 3, 1)``,
    local rotations ``Ql`` ``(J, 4, N)`` (overwritten with the global ones, which are
    returned), ``root`` ``(3, N)``. Returns ``(P (J, 3, N), Qg (J, 4, N))``."""
    J, _, N = Ql.shape
    Qg = Ql  # overwritten joint by joint with global rotations (parents come first)
    P = np.empty((J, 3, N))
    for j in range(J):
        p = parents[j]
        if p < 0:
            P[j] = root
            continue
        # global_R[j] = global_R[p] @ R_local[j]  (Hamilton product, as glossary.Q_mul)
        w1, x1, y1, z1 = Qg[p]
        w2, x2, y2, z2 = Ql[j]
        Qg[j] = (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        )
        # global_p[j] = global_p[p] + global_R[p] @ offset[j]  (as quat_rotate)
        vx, vy, vz = off[j]
        tx = 2.0 * (y1 * vz - z1 * vy)
        ty = 2.0 * (z1 * vx - x1 * vz)
        tz = 2.0 * (x1 * vy - y1 * vx)
        P[j, 0] = P[p, 0] + vx + w1 * tx + (y1 * tz - z1 * ty)
        P[j, 1] = P[p, 1] + vy + w1 * ty + (z1 * tx - x1 * tz)
        P[j, 2] = P[p, 2] + vz + w1 * tz + (x1 * ty - y1 * tx)
    return P, Qg


def slerp(Q0: np.ndarray, Q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions ``(..., 4)`` wxyz at ``t`` in [0, 1]
    (broadcast against ``Q0[..., 0]``), along the shorter arc. ``t=0`` gives ``Q0``."""
    Q0 = np.asarray(Q0, dtype=float)
    Q1 = np.asarray(Q1, dtype=float)
    t = np.asarray(t, dtype=float)[..., None]
    dot = np.sum(Q0 * Q1, axis=-1, keepdims=True)
    Q1 = np.where(dot < 0, -Q1, Q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    near = s < 1e-6  # almost the same rotation: lerp is exact to ~1e-12
    safe = np.where(near, 1.0, s)
    a = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    b = np.where(near, t, np.sin(t * theta) / safe)
    out = a * Q0 + b * Q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# -- Skeleton ---------------------------------------------------------------------------


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint hierarchy in its rest pose.

    ``names`` ``(J,)`` unique joint names; ``parents`` ``(J,)`` int, ``-1`` for the root
    (joint 0), otherwise ``0 <= parents[j] < j``; ``offsets`` ``(J, 3)`` metres, each
    joint's rest position relative to its parent (the root's: its rest position in the
    world); ``end_sites`` maps a joint name to the ``(3,)`` offset of the leaf point beyond
    it (BVH ``End Site``: a head top, a toe tip), in that joint's frame.

    Immutable: the arrays are read-only copies, and the methods return new skeletons.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    end_sites: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        J = len(names)
        if J == 0:
            raise UsageError("a skeleton needs at least one joint")
        seen: dict[str, int] = {}
        for j, n in enumerate(names):
            if n in seen:
                raise UsageError(f"duplicate joint name {n!r} (joints {seen[n]} and {j})")
            seen[n] = j
        parents = np.asarray(self.parents)
        if parents.shape != (J,):
            raise UsageError(f"parents must have shape ({J},) for {J} names, got {parents.shape}")
        if not np.issubdtype(parents.dtype, np.integer):
            if not (np.issubdtype(parents.dtype, np.floating) and np.all(parents == np.round(parents))):
                raise UsageError(f"parents must be integers, got dtype {parents.dtype}")
        parents = parents.astype(np.int64)
        if parents[0] != -1:
            raise UsageError(
                f"joint 0 ({names[0]!r}) must be the root (parent -1), its parent is {parents[0]}"
            )
        for j in range(1, J):
            if not 0 <= parents[j] < j:
                what = "a second root" if parents[j] < 0 else f"parent {parents[j]}"
                raise UsageError(
                    f"parents must be topologically sorted with one root (0 <= parents[j] < j): "
                    f"joint {j} ({names[j]!r}) has {what}"
                )
        offsets = np.asarray(self.offsets, dtype=float)
        if offsets.shape != (J, 3):
            raise UsageError(f"offsets must have shape ({J}, 3), got {offsets.shape}")
        if not np.all(np.isfinite(offsets)):
            bad = int(np.argwhere(~np.isfinite(offsets))[0, 0])
            raise UsageError(f"offset of joint {names[bad]!r} is not finite: {offsets[bad]}")
        ends: dict[str, np.ndarray] = {}
        for n, v in dict(self.end_sites or {}).items():
            if n not in seen:
                raise UsageError(f"end site given for unknown joint {n!r}")
            v = np.asarray(v, dtype=float)
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise UsageError(f"end site of {n!r} must be 3 finite numbers, got {v!r}")
            ends[n] = _frozen(v)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "parents", _frozen(parents))
        object.__setattr__(self, "offsets", _frozen(offsets))
        object.__setattr__(self, "end_sites", ends)
        object.__setattr__(self, "_index", seen)

    # -- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_joints(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def index(self, name: str | int) -> int:
        """The index of joint ``name`` (an int is checked and passed through)."""
        if isinstance(name, (int, np.integer)):
            if not 0 <= name < len(self):
                raise UsageError(f"joint index {name} out of range for {len(self)} joints")
            return int(name)
        try:
            return self._index[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self.names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UsageError(f"no joint named {name!r} in this {len(self)}-joint skeleton{hint}") from None

    def parent(self, name: str | int) -> int:
        """Index of the parent of a joint, -1 for the root."""
        return int(self.parents[self.index(name)])

    def children(self, name: str | int) -> list[int]:
        """Indices of the direct children of a joint (name or index), in order."""
        j = self.index(name)
        return [int(c) for c in np.flatnonzero(self.parents == j)]

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` world positions of the joints in the rest pose (all rotations
        identity), metres."""
        P = np.empty((len(self), 3))
        for j, p in enumerate(self.parents):
            P[j] = self.offsets[j] if p < 0 else P[p] + self.offsets[j]
        return P

    def rest_end_sites(self) -> dict[str, np.ndarray]:
        """World positions ``(3,)`` of the end sites in the rest pose, by joint name."""
        P = self.rest_positions()
        return {n: P[self._index[n]] + v for n, v in self.end_sites.items()}

    def bone_lengths(self) -> np.ndarray:
        """``(J,)`` metres from each joint's parent to the joint (0 for the root)."""
        L = np.linalg.norm(self.offsets, axis=1)
        L[0] = 0.0
        return L

    # -- derived skeletons ---------------------------------------------------------------
    def scaled(self, k: float) -> "Skeleton":
        """All lengths (offsets, end sites) multiplied by ``k``."""
        k = float(k)
        if not np.isfinite(k) or k <= 0:
            raise UsageError(f"scale must be a positive number, got {k}")
        return Skeleton(
            self.names, self.parents, self.offsets * k, {n: v * k for n, v in self.end_sites.items()}
        )

    def rename(self, mapping: Mapping[str, str] | Callable[[str], str]) -> "Skeleton":
        """The same skeleton with joints renamed by a dict (names not in it are kept) or
        a function. Unknown keys in a dict are an error (they are usually typos)."""
        if callable(mapping):
            fn = mapping
        else:
            unknown = sorted(set(mapping) - set(self.names))
            if unknown:
                raise UsageError(f"rename: no joints named {unknown}")
            fn = lambda n: mapping.get(n, n)  # noqa: E731
        names = tuple(fn(n) for n in self.names)
        ends = {names[self._index[n]]: v for n, v in self.end_sites.items()}
        return Skeleton(names, self.parents, self.offsets, ends)

    def subset(self, keep: Iterable[str | int]) -> "Skeleton":
        """The skeleton restricted to the joints in ``keep`` (names or indices; the root
        must be among them), in their original order. A kept joint whose parent is dropped
        hangs from its nearest kept ancestor, with the rest offset between the two, so the
        rest pose is unchanged. End sites of kept joints are kept."""
        idx = sorted({self.index(k) for k in keep})
        if not idx or idx[0] != 0:
            raise UsageError(f"subset must keep the root joint {self.names[0]!r}")
        new_of = {old: new for new, old in enumerate(idx)}
        P = self.rest_positions()
        parents = np.empty(len(idx), dtype=np.int64)
        offsets = np.empty((len(idx), 3))
        for new, old in enumerate(idx):
            a = int(self.parents[old])
            while a >= 0 and a not in new_of:
                a = int(self.parents[a])
            parents[new] = -1 if a < 0 else new_of[a]
            offsets[new] = self.offsets[old] if a < 0 else P[old] - P[a]
        names = tuple(self.names[i] for i in idx)
        ends = {n: v for n, v in self.end_sites.items() if n in names}
        return Skeleton(names, parents, offsets, ends)

    def same_topology(self, other: "Skeleton") -> bool:
        """True when ``other`` has the same names and parents (offsets may differ)."""
        return self.names == other.names and np.array_equal(self.parents, other.parents)

    def __repr__(self) -> str:
        height = np.ptp(self.rest_positions()[:, 1])
        return f"Skeleton({len(self)} joints, root {self.names[0]!r}, rest height span {height:.3f} m)"


# -- Motion -----------------------------------------------------------------------------


@dataclass(eq=False)
class Motion:
    """A skeletal motion: T frames on one :class:`Skeleton`.

    ================  ===============  ===================================================
    ``skeleton``      :class:`Skeleton`
    ``rotations``     ``(T, J, 4)``    wxyz **local** rotations (in the parent's frame,
                                       applied on top of the rest offsets; identity =
                                       rest pose); renormalised on construction
    ``root_positions`` ``(T, 3)``      metres, world position of the root joint
    ``fps``           float            nominal frame rate, Hz
    ``timestamps``    ``(T,)``         seconds, strictly increasing; default
                                       ``arange(T) / fps``
    ``local_offsets`` ``(T, J, 3)``    optional per-frame offsets that replace
                      or None          ``skeleton.offsets`` (animated bone translations,
                                       e.g. BVH position channels on non-root joints);
                                       the root's row is unused
    ``meta``          dict             provenance (e.g. ``bvh_scale``, the source path)
    ================  ===============  ===================================================
    """

    skeleton: Skeleton
    rotations: np.ndarray
    root_positions: np.ndarray
    fps: float
    timestamps: np.ndarray | None = None
    local_offsets: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sk = self.skeleton
        if not isinstance(sk, Skeleton):
            raise UsageError(f"skeleton must be a Skeleton, got {type(sk).__name__}")
        J = len(sk)
        R = np.asarray(self.rotations, dtype=float)
        if R.ndim != 3 or R.shape[1:] != (J, 4):
            raise UsageError(f"rotations must be (T, {J}, 4) wxyz for a {J}-joint skeleton, got {R.shape}")
        T = R.shape[0]
        if T < 1:
            raise UsageError("a motion needs at least one frame")
        # the norms as np.linalg.norm has them, bit for bit (w^2 + x^2, + y^2, + z^2 in that
        # order), but ~3x faster than its reduction over a 4-long last axis; a NaN or an
        # infinity anywhere in a quaternion makes its squared norm non-finite
        # (two (T, J) buffers reused: big fresh temporaries cost page faults)
        sq = np.multiply(R[..., 0], R[..., 0])
        tmp = np.empty_like(sq)
        for c in (1, 2, 3):
            sq += np.multiply(R[..., c], R[..., c], out=tmp)
        if not np.isfinite(sq).all() and not np.all(np.isfinite(R)):
            t, j = np.argwhere(~np.all(np.isfinite(R), axis=-1))[0]
            raise UsageError(f"rotation of joint {sk.names[j]!r} at frame {t} is not finite: {R[t, j]}")
        n = np.sqrt(sq, out=sq)
        off = np.abs(np.subtract(n, 1.0, out=tmp), out=tmp)
        if np.any(off > _UNIT_TOL):
            t, j = np.unravel_index(int(np.argmax(off)), off.shape)
            raise UsageError(
                f"rotations must be unit quaternions (wxyz): joint {sk.names[j]!r} at frame {t} "
                f"has norm {n[t, j]:.6g}"
            )
        self.rotations = R / n[..., None]

        P = np.asarray(self.root_positions, dtype=float)
        if P.shape != (T, 3):
            raise UsageError(f"root_positions must be ({T}, 3) for {T} frames, got {P.shape}")
        if not np.all(np.isfinite(P)):
            t = int(np.argwhere(~np.isfinite(P))[0, 0])
            raise UsageError(f"root position at frame {t} is not finite: {P[t]}")
        self.root_positions = P

        fps = float(self.fps)
        if not np.isfinite(fps) or fps <= 0:
            raise UsageError(f"fps must be a positive number, got {self.fps!r}")
        self.fps = fps

        if self.timestamps is None:
            ts = np.arange(T) / fps
        else:
            ts = np.asarray(self.timestamps, dtype=float)
            if ts.shape != (T,):
                raise UsageError(f"timestamps must be ({T},) for {T} frames, got {ts.shape}")
            if not np.all(np.isfinite(ts)):
                raise UsageError("timestamps must be finite")
            if T > 1 and np.any(np.diff(ts) <= 0):
                k = int(np.argmax(np.diff(ts) <= 0))
                raise UsageError(
                    f"timestamps must increase strictly: frame {k} at {ts[k]} s, "
                    f"frame {k + 1} at {ts[k + 1]} s"
                )
        self.timestamps = ts

        if self.local_offsets is not None:
            lo = np.asarray(self.local_offsets, dtype=float)
            if lo.shape != (T, J, 3):
                raise UsageError(f"local_offsets must be ({T}, {J}, 3) or None, got {lo.shape}")
            if not np.all(np.isfinite(lo)):
                raise UsageError("local_offsets must be finite")
            self.local_offsets = lo
        self.meta = dict(self.meta or {})

    # -- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def n_frames(self) -> int:
        return len(self)

    @property
    def n_joints(self) -> int:
        return len(self.skeleton)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame, seconds."""
        return float(self.timestamps[-1] - self.timestamps[0])

    def fk(self, joints: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (T, J, 3) metres, global rotations (T, J, 4) wxyz)``, see :func:`fk`
        (``joints``: only those joint indices, in that order)."""
        offsets = self.skeleton.offsets if self.local_offsets is None else self.local_offsets
        return fk(self.skeleton.parents, offsets, self.rotations, self.root_positions, joints=joints)

    def positions(self) -> np.ndarray:
        """``(T, J, 3)`` world joint positions, metres."""
        return self.fk()[0]

    def end_site_positions(self) -> dict[str, np.ndarray]:
        """World positions ``(T, 3)`` of the skeleton's end sites (head top, toe tips, ...),
        by the name of the joint they hang from."""
        P, Qg = self.fk()
        ix = self.skeleton._index
        return {n: P[:, ix[n]] + quat_rotate(Qg[:, ix[n]], v) for n, v in self.skeleton.end_sites.items()}

    # -- derived motions -----------------------------------------------------------------
    def _replace(self, **kw: Any) -> "Motion":
        d = dict(
            skeleton=self.skeleton,
            rotations=self.rotations,
            root_positions=self.root_positions,
            fps=self.fps,
            timestamps=self.timestamps,
            local_offsets=self.local_offsets,
            meta=dict(self.meta),
        )
        d.update(kw)
        return Motion(**d)

    def slice(self, start: int = 0, stop: int | None = None, step: int = 1) -> "Motion":
        """Frames ``start:stop:step`` (Python slice rules; ``step >= 1``). Timestamps are
        kept (the clip does not restart at 0); ``fps`` becomes ``fps / step``."""
        step = int(step)
        if step < 1:
            raise UsageError(f"slice step must be >= 1, got {step}")
        s = slice(start, stop, step)
        if len(range(*s.indices(len(self)))) == 0:
            raise UsageError(f"slice {start}:{stop}:{step} of a {len(self)}-frame motion is empty")
        return self._replace(
            rotations=self.rotations[s],
            root_positions=self.root_positions[s],
            fps=self.fps / step,
            timestamps=self.timestamps[s],
            local_offsets=None if self.local_offsets is None else self.local_offsets[s],
        )

    def resample(self, fps: float) -> "Motion":
        """The motion sampled at ``fps`` Hz from its first timestamp to its last:
        ``floor(duration * fps) + 1`` frames. Rotations are slerped between the two
        neighbouring frames (shorter arc), the root and any local offsets are lerped.

        Example: 994 frames at 120 Hz (8.275 s) -> 249 frames at 30 Hz; output frame k is
        input frame 4k exactly.
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise UsageError(f"fps must be a positive number, got {fps}")
        t0 = self.timestamps[0]
        n = int(np.floor(self.duration_s * fps + 1e-9)) + 1
        t = t0 + np.arange(n) / fps
        ts = self.timestamps
        i = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, max(len(ts) - 2, 0))
        if len(ts) == 1:
            w = np.zeros(n)
            i1 = i
        else:
            i1 = i + 1
            w = np.clip((t - ts[i]) / (ts[i1] - ts[i]), 0.0, 1.0)
        rot = slerp(self.rotations[i], self.rotations[i1], w[:, None])
        lerp = lambda a: a[i] + w.reshape((-1,) + (1,) * (a.ndim - 1)) * (a[i1] - a[i])  # noqa: E731
        return self._replace(
            rotations=rot,
            root_positions=lerp(self.root_positions),
            fps=fps,
            timestamps=t,
            local_offsets=None if self.local_offsets is None else lerp(self.local_offsets),
        )

    def scaled(self, k: float) -> "Motion":
        """All lengths (skeleton, root track, local offsets) multiplied by ``k``."""
        return self._replace(
            skeleton=self.skeleton.scaled(k),
            root_positions=self.root_positions * float(k),
            local_offsets=None if self.local_offsets is None else self.local_offsets * float(k),
        )

    def rename(self, mapping: Mapping[str, str] | Callable[[str], str]) -> "Motion":
        """The same motion with joints renamed (see :meth:`Skeleton.rename`)."""
        return self._replace(skeleton=self.skeleton.rename(mapping))

    def __repr__(self) -> str:
        return (
            f"Motion({len(self)} frames at {self.fps:g} fps, {self.duration_s:.3f} s, "
            f"{len(self.skeleton)} joints, root {self.skeleton.names[0]!r})"
        )
