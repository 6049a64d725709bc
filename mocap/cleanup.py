"""World-frame marker cleanup: swaps repaired, spikes out, gaps filled, noise smoothed,
bones held at one length. Pure numpy/scipy, on :class:`~mocap.markers.Markers`.

Input: the lifted markers (:func:`mocap.root.lift_take`), ``points (T, N, 3)`` metres,
+Y up, NaN where a marker was not seen. :func:`clean_markers` runs these named passes,
each a function from arrays to arrays, on each *part* -- body ``pose.*``, hands
``left_hand.*`` / ``right_hand.*``, face ``face.*`` (other names pass through untouched):

a. :func:`repair_swaps` -- MediaPipe now and then gives the left leg the right leg's
   labels (knee, ankle, heel, toe; sometimes the hips), or swaps the two hands, for a
   few frames. Per :data:`SWAP_GROUPS` group a two-state path ("as labelled" /
   "swapped") is chosen by continuity; the swapped frames get their labels back.
   *Precondition:* none. *After:* labels continuous.
b. spike rejection (:func:`mocap.filters.reject_spikes`), floors in metres per part;
c. gap filling (:func:`mocap.filters.fill_gaps`); gaps longer than ``max_gap_s`` stay
   NaN with confidence 0;
d. smoothing: offline zero-phase Butterworth (or Savitzky-Golay), live one-euro.
   b-d are the stages of :func:`mocap.filters.clean_track`, with the metre settings of
   :data:`WORLD_DEFAULTS`. ``pose.mid_hip`` / ``pose.mid_shoulder`` are then recomputed
   as the midpoints of the cleaned left/right points (their definition).
e. :func:`estimate_bone_lengths` + :func:`enforce_bone_lengths` -- one length per
   bone for the whole take (a median over confident frames with the noise taken out,
   left and right averaged) and every frame moved onto it, walking out from the hips
   and shoulders; each hand hangs from the corrected pose wrist (:func:`anchor_hands`).
   *Precondition:* smoothed points. *After:* every bone of :func:`limb_bones` has
   exactly its length wherever both ends exist.

Everything is vectorised over frames except the swap chain's Viterbi recursion, a loop
of scalar operations (about a quarter of a microsecond per frame and group). A 10-minute
take at 30 fps (18000 frames) cleans offline in about 0.4 s with 58 body and face
markers, 0.7 s with 84 (both hands too), on two cores.

``mode="live"`` runs :class:`LiveCleaner`, which is frame-causal throughout (see there
for what that costs); ``clean_markers(..., mode="live")`` is exactly the result of
pushing the frames one by one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import filters as F  # noqa: N812
from .errors import UsageError
from .landmarks import HAND
from .markers import Markers

__all__ = [
    "WORLD_DEFAULTS",
    "SWAP_DEFAULTS",
    "BONE_DEFAULTS",
    "LIVE_DEFAULTS",
    "SWAP_GROUPS",
    "BODY_BONES",
    "HAND_BONES",
    "FILLED_CONFIDENCE",
    "Bone",
    "CleanReport",
    "LiveCleaner",
    "clean_markers",
    "part_of",
    "part_indices",
    "limb_bones",
    "bone_length_tracks",
    "repair_swaps",
    "estimate_bone_lengths",
    "debiased_length",
    "enforce_bone_lengths",
    "anchor_hands",
]

PARTS = ("body", "hands", "face")

# -- settings -------------------------------------------------------------------------

WORLD_DEFAULTS: dict[str, dict[str, Any]] = {
    "body": {**F.DEFAULTS["body"], "cutoff_hz": "auto", "auto_range_hz": (3.0, 8.0)},
    "hands": {
        "units": "m",
        "spike_threshold": 5.0,
        "spike_floor": 0.04,
        "max_gap_s": 0.15,
        "filter": "butterworth",
        "cutoff_hz": "auto",
        "auto_range_hz": (4.0, 8.0),
        "order": 4,
        "window_s": 0.25,
        "polyorder": 3,
        "min_cutoff": 0.5,
        "beta": 10.0,
        "d_cutoff": 0.5,
    },
    "face": {
        "units": "m",
        "spike_threshold": 5.0,
        "spike_floor": 0.015,
        "max_gap_s": 0.2,
        "filter": "butterworth",
        "cutoff_hz": "auto",
        "auto_range_hz": (4.0, 8.0),
        "order": 4,
        "window_s": 0.25,
        "polyorder": 3,
        "min_cutoff": 1.0,
        "beta": 25.0,
        "d_cutoff": 1.0,
    },
}
"""Cleanup settings per part for world-frame markers, **all lengths in metres** (the
keys of :data:`mocap.filters.DEFAULTS`, whose hands and face entries are in pixels).
Cutoffs in Hz, gaps and windows in seconds, ``beta`` in 1/m.

body
    :data:`mocap.filters.DEFAULTS` ``["body"]`` (already in metres: 0.25 s gaps, 5 cm
    spike floor, one-euro 0.1 Hz / 6 per m) except the offline cutoff, ``"auto"``: chosen
    per take by residual analysis (:func:`mocap.filters.residual_cutoff`) within
    ``auto_range_hz`` 3-8 Hz. Clean data keeps up to 8 Hz; MediaPipe-like noise of 10-20
    mm brings it down to 3.5-5 Hz. A number fixes it (``--body-cutoff``).
hands
    The pixel settings converted at the ~550 px per metre of a full-body 1080p shot,
    then checked against hand sizes. ``spike_floor=0.04`` m: a finger snapping onto its
    neighbour jumps 2-4 cm (20 px / 550 = 36 mm), and a hand stopping dead from 3 m/s
    bends its path by ~33 mm at 30 fps, so smaller jumps are not glitches. Offline
    ``cutoff_hz="auto"`` (residual analysis within 4-8 Hz; 8 keeps flicks and finger taps); ``max_gap_s=0.15`` (4 frames)
    because a hand changes shape too fast to guess longer. Live ``min_cutoff=0.5`` Hz,
    ``beta=10`` 1/m (0.02 1/px x 550 px/m = 11): a hand at 2 m/s gets 0.5 + 10 x 2 =
    20.5 Hz, a lag of 2 / (2 pi 20.5) = 16 mm, never more than 1 / (2 pi 10) = 16 mm.
face
    Face points move little relative to the head and the mesh is steady, but blinks and
    lip closures last 100-200 ms: ``cutoff_hz="auto"`` within 4-8 Hz. ``spike_floor=0.015`` m (8 px / 550,
    rounded up): a lip or eyelid moves at most ~1.5 cm in a frame. ``max_gap_s=0.2``.
    Live ``min_cutoff=1`` Hz, ``beta=25`` 1/m (0.05 1/px x 550): a lip moving at
    0.2 m/s gets 6 Hz, 5 mm of lag.
"""

SWAP_DEFAULTS: dict[str, float] = {
    "switch_m": 0.03,
    "prior_m_per_s": 0.15,
    "unmatched_m": 0.1,
    "max_gap_s": 0.5,
}
"""Settings of :func:`repair_swaps`, in metres of mean per-marker displacement.

``switch_m`` (the hysteresis): the price of changing between "as labelled" and
"swapped" between two frames. ``prior_m_per_s``: the price of each second spent
"swapped" (0.005 m per frame at 30 fps), so the labels as given win whenever
continuity does not clearly say otherwise, and a wrong choice cannot persist.
A swap of ``k`` frames whose two sides are ``d`` metres apart is repaired when
``2 d > 2 switch_m + k * prior``: for legs (d ~ 0.15-0.5 m) that is any swap shorter
than ~2 s at 30 fps. ``unmatched_m``: the cost charged to a labelling with no marker seen
in both frames. ``max_gap_s``: frames further apart than this are not compared.
"""

BONE_DEFAULTS: dict[str, Any] = {
    "enforce": True,
    "min_confidence": 0.5,
    "lengths_m": None,
    "estimate_cutoff_hz": 3.0,
    "anchor_hands": "auto",
}
"""Settings of the bone stage. ``min_confidence``: a frame counts for a bone's length
only if both ends had at least this confidence and were observed (not filled).
``lengths_m``: a dict ``{bone: metres}`` (keys as in :attr:`CleanReport.bone_lengths_m`)
to use instead of estimating, e.g. from a calibration take; ``enforce=False`` only
measures. ``estimate_cutoff_hz``: the lengths are measured on a copy low-passed at this
cutoff (zero phase), steadier than the output; 3 Hz still follows a bone turning at
1.5 Hz (gain 0.996), and what noise remains is taken out (:func:`estimate_bone_lengths`).
``anchor_hands``: hang each hand from the corrected pose wrist (:func:`anchor_hands`), as
:func:`mocap.root.lift_take` placed it. ``"auto"`` does so for a side when the input's hand
wrist is on its pose wrist (median distance < 5 mm over the frames seeing both); ``True``
always, ``False`` never (markers from elsewhere, whose hand wrist is a separate
measurement: moving the hand by the difference of two noisy wrists adds their noise)."""

LIVE_DEFAULTS: dict[str, float] = {
    "calib_s": 1.0,
    "max_reject": 2,
    "scale_tau_s": 1.0,
}
"""Settings only :class:`LiveCleaner` uses. ``calib_s``: seconds of confident frames
over which each bone's length is measured before it is frozen and enforced.
``max_reject``: consecutive frames a marker may be gated out before its jump is
believed. ``scale_tau_s``: time constant of the running noise scale of the spike gate."""

FILLED_CONFIDENCE = 0.25
"""Confidence given to a filled-in sample (a bridged gap or a replaced spike): below the
0.5 that counts as "seen", above 0 ("missing")."""

# -- names: parts, swap groups, bones -------------------------------------------------

_PREFIX = {"pose": "body", "left_hand": "hands", "right_hand": "hands", "face": "face"}


def part_of(name: str) -> str | None:
    """``"body"``, ``"hands"``, ``"face"`` or ``None`` for a marker name."""
    return _PREFIX.get(name.split(".", 1)[0])


def part_indices(names) -> dict[str, np.ndarray]:
    """Marker indices of each part present in ``names`` (``{part: (k,) int}``)."""
    out: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        p = part_of(n)
        if p is not None:
            out.setdefault(p, []).append(i)
    return {p: np.asarray(v, dtype=np.int64) for p, v in out.items()}


_ARM_POSE = ("wrist", "pinky", "index", "thumb")
SWAP_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hips": (("pose.left_hip",), ("pose.right_hip",)),
    "legs": tuple(tuple(f"pose.{s}_{n}" for n in ("knee", "ankle", "heel", "foot_index"))
                  for s in ("left", "right")),
    "arms": tuple(tuple(f"pose.{s}_{n}" for n in _ARM_POSE) + tuple(f"{s}_hand.{n}" for n in HAND)
                  for s in ("left", "right")),
}  # fmt: skip
"""Markers that MediaPipe swaps together, as ``(left names, right names)`` in matching
order. The hips are a group of their own so that a leg swap with or without them is
repaired; the arm group is the pose wrist, pinky, index and thumb with the whole hand."""

BODY_BONES: tuple[tuple[str, str, str], ...] = (
    ("thigh", "hip", "knee"),
    ("shin", "knee", "ankle"),
    ("heel", "ankle", "heel"),
    ("foot", "ankle", "foot_index"),
    ("upper_arm", "shoulder", "elbow"),
    ("forearm", "elbow", "wrist"),
    ("hand_index", "wrist", "index"),
    ("hand_pinky", "wrist", "pinky"),
    ("hand_thumb", "wrist", "thumb"),
)
"""Limb bones of the body as ``(bone, parent, child)`` pose landmarks without the side,
in the order they are enforced (each parent is a root -- hip, shoulder -- or the child
of an earlier bone). The limb edges of :data:`mocap.landmarks.POSE_EDGES`, with the
foot as a tree (ankle->heel, ankle->toe; the heel-toe edge closes a triangle that a
tree cannot hold)."""

HAND_BONES: tuple[tuple[str, str], ...] = (
    ("wrist", "thumb_cmc"), ("thumb_cmc", "thumb_mcp"), ("thumb_mcp", "thumb_ip"), ("thumb_ip", "thumb_tip"),
    ("wrist", "index_mcp"), ("index_mcp", "index_pip"), ("index_pip", "index_dip"), ("index_dip", "index_tip"),
    ("wrist", "middle_mcp"), ("middle_mcp", "middle_pip"), ("middle_pip", "middle_dip"), ("middle_dip", "middle_tip"),
    ("wrist", "ring_mcp"), ("ring_mcp", "ring_pip"), ("ring_pip", "ring_dip"), ("ring_dip", "ring_tip"),
    ("wrist", "pinky_mcp"), ("pinky_mcp", "pinky_pip"), ("pinky_pip", "pinky_dip"), ("pinky_dip", "pinky_tip"),
)  # fmt: skip
"""Hand bones ``(parent, child)``, enforced from the wrist out: the finger chains of
:data:`mocap.landmarks.HAND_EDGES` and one metacarpal from the wrist to each knuckle
(the rigid bones of the palm; ``HAND_EDGES`` draws the palm knuckle to knuckle, which
is a cycle, not a tree)."""


@dataclass(frozen=True)
class Bone:
    """One bone on one side: ``key`` is shared by left and right (``"thigh"``,
    ``"hand.index_mcp-index_pip"``), ``parent`` and ``child`` are marker names."""

    key: str
    side: str
    parent: str
    child: str


def limb_bones(names) -> list[Bone]:
    """The bones of :data:`BODY_BONES` and :data:`HAND_BONES` whose two markers are
    both in ``names``, in enforcement order (body first, then the hands)."""
    have = set(names)
    out = []
    for side in ("left", "right"):
        for key, p, c in BODY_BONES:
            b = Bone(key, side, f"pose.{side}_{p}", f"pose.{side}_{c}")
            if b.parent in have and b.child in have:
                out.append(b)
    for side in ("left", "right"):
        for p, c in HAND_BONES:
            b = Bone(f"hand.{p}-{c}", side, f"{side}_hand.{p}", f"{side}_hand.{c}")
            if b.parent in have and b.child in have:
                out.append(b)
    return out


def bone_length_tracks(markers: Markers) -> dict[str, np.ndarray]:
    """Length over time ``(T,)`` metres (NaN where an end is missing) of every bone of
    :func:`limb_bones`, keyed ``"<side>.<key>"``, e.g. ``"left.thigh"``."""
    out = {}
    for b in limb_bones(markers.names):
        d = markers.get(b.child) - markers.get(b.parent)
        out[f"{b.side}.{b.key}"] = np.sqrt(np.sum(d * d, axis=-1))
    return out


# -- the report -----------------------------------------------------------------------


@dataclass
class CleanReport:
    """What :func:`clean_markers` did. Counts are marker-frames (one marker in one frame).

    ``swaps``: frames repaired per swap group; ``swap_frames``: their indices.
    ``spikes`` / ``filled`` / ``missing``: per part, samples rejected as spikes, samples
    filled in (spikes and dropouts), samples still missing after cleaning (gaps longer
    than ``max_gap_s``, the ends); ``missing_in``: missing in the input.
    ``bone_lengths_m``: the length enforced (or, with ``enforce=False``, measured) per
    bone key, the same for left and right. ``cutoffs_hz``: the cutoff chosen per part
    when it was ``"auto"``. ``params``: the settings used, by part.
    """

    mode: str
    frames: int
    swaps: dict[str, int] = field(default_factory=dict)
    swap_frames: dict[str, list[int]] = field(default_factory=dict)
    spikes: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    missing_in: dict[str, int] = field(default_factory=dict)
    bone_lengths_m: dict[str, float] = field(default_factory=dict)
    cutoffs_hz: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (plain Python numbers, lists and strings)."""
        return _json_safe(asdict(self))


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json_safe(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# -- parameters -----------------------------------------------------------------------


def _resolve(params: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Defaults overlaid with ``params`` = ``{"body": {...}, "hands": {...}, "face": {...},
    "swap": {...}, "bones": {...}, "live": {...}}``; unknown keys raise."""
    base: dict[str, dict[str, Any]] = {p: dict(WORLD_DEFAULTS[p]) for p in PARTS}
    base["swap"] = dict(SWAP_DEFAULTS)
    base["bones"] = dict(BONE_DEFAULTS)
    base["live"] = dict(LIVE_DEFAULTS)
    for sect, over in (params or {}).items():
        if sect not in base:
            raise UsageError(f"clean_markers: unknown params section {sect!r}; known: {sorted(base)}")
        if not isinstance(over, dict):
            raise UsageError(f"clean_markers: params[{sect!r}] must be a dict, got {type(over).__name__}")
        unknown = sorted(set(over) - set(base[sect]))
        if unknown:
            raise UsageError(f"clean_markers: unknown settings {unknown} in params[{sect!r}]; "
                             f"known: {sorted(base[sect])}")
        base[sect].update(over)
    for k in ("switch_m", "prior_m_per_s", "unmatched_m", "max_gap_s"):
        v = base["swap"][k]
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise UsageError(f"clean_markers: params['swap'][{k!r}] must be a number >= 0, got {v!r}")
    lengths = base["bones"]["lengths_m"]
    if lengths is not None and not isinstance(lengths, dict):
        raise UsageError(f"clean_markers: params['bones']['lengths_m'] must be a dict or None, got {lengths!r}")
    return base


# -- a. left/right swaps --------------------------------------------------------------


def _swap_maps(names, groups) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group present in ``names``: ``(G, Gs)``, the indices of its markers as
    labelled (left then right) and swapped (right then left)."""
    ix = {n: i for i, n in enumerate(names)}
    out = {}
    for g, (left, right) in groups.items():
        pairs = [(ix[a], ix[b]) for a, b in zip(left, right) if a in ix and b in ix]
        if pairs:
            li, ri = np.array(pairs).T
            out[g] = (np.concatenate([li, ri]), np.concatenate([ri, li]))
    return out


def _pair_costs(prev: np.ndarray, cur: np.ndarray, cur_sw: np.ndarray, unmatched: float):
    """Continuity costs ``(stay, switch)`` ``(n,)`` between frames ``prev`` and ``cur``
    ``(n, k, 3)``: the mean displacement of the markers seen in both, for the current
    frame as labelled (``cur``) and swapped (``cur_sw``); ``unmatched`` where none."""
    out = []
    for c in (cur, cur_sw):
        e = c - prev
        e *= e
        if e.shape[-1] == 3:  # the sum over x, y, z spelled out, in np.sum's order (faster)
            d = np.sqrt((e[..., 0] + e[..., 1]) + e[..., 2])  # (n, k), NaN if unseen in either
        else:
            d = np.sqrt(np.sum(e, axis=-1))
        ok = ~np.isnan(d)
        cnt = ok.sum(axis=1)
        s = np.where(ok, d, 0.0).sum(axis=1)
        out.append(np.where(cnt > 0, s / np.maximum(cnt, 1), unmatched))
    return out[0], out[1]


def _swap_costs(X: np.ndarray, t: np.ndarray, G: np.ndarray, Gs: np.ndarray, p: dict[str, Any]):
    """For the frames where the group has any marker (``usable``): for each, the costs of
    staying / switching since the previous usable frame (0 / ``switch_m`` if there is
    none within ``max_gap_s``) and the prior for being swapped."""
    usable = np.flatnonzero(np.any(~np.isnan(X[:, G, 0]), axis=1))
    n = usable.size
    stay = np.zeros(n)
    switch = np.zeros(n)
    prior = np.zeros(n)
    if n == 0:
        return usable, stay, switch, prior
    dts = np.diff(t[usable])
    if n > 1:
        Au = X[usable[:, None], G[None, :]]  # (n, k, 3): the group in the usable frames
        pos = {int(g): i for i, g in enumerate(G)}
        if len(pos) == len(G) and all(int(g) in pos for g in Gs):  # Gs reorders G: reuse Au
            cur_sw = Au[1:, [pos[int(g)] for g in Gs]]
        else:
            cur_sw = X[usable[1:, None], Gs[None, :]]
        s0, s1 = _pair_costs(Au[:-1], Au[1:], cur_sw, p["unmatched_m"])
        near = dts <= p["max_gap_s"] + 1e-9
        stay[1:] = np.where(near, s0, 0.0)
        switch[1:] = np.where(near, s1, 0.0)
    dt_med = float(np.median(dts)) if n > 1 else 1.0 / 30.0
    prior[:] = p["prior_m_per_s"] * dt_med
    switch += p["switch_m"]
    return usable, stay, switch, prior


def _viterbi2(stay: np.ndarray, switch: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Cheapest two-state path (0 = as labelled, 1 = swapped): state 1 costs ``prior[i]``
    per step, a change of state ``switch[i]`` (including the hysteresis), keeping it
    ``stay[i]``. The costs are symmetric, so the per-step cost of a transition depends
    only on whether the state changes. Returns ``(n,)`` bool."""
    n = stay.size
    if n == 0:
        return np.zeros(0, bool)
    # scalar recursion on Python floats (the same operations, in the same order, as
    # min() and the normalisation by the smaller cost); back pointers in bytearrays
    back0 = bytearray(n)  # 1: state 0 at i came from state 1
    back1 = bytearray(n)
    m0, m1 = 0.0, float(prior[0])
    st, sw, pr = stay.tolist(), switch.tolist(), prior.tolist()
    for i in range(1, n):
        s, w = st[i], sw[i]
        a0, b0 = m0 + s, m1 + w
        a1, b1 = m1 + s, m0 + w
        if b0 < a0:
            back0[i] = 1
            a0 = b0
        if b1 < a1:
            back1[i] = 1
            a1 = b1
        m0, m1 = a0, a1 + pr[i]
        lo = m1 if m1 < m0 else m0
        m0, m1 = m0 - lo, m1 - lo
    path = bytearray(n)
    s = int(m1 < m0)
    for i in range(n - 1, -1, -1):
        path[i] = s
        if (back1 if s else back0)[i]:
            s = 1 - s
    return np.frombuffer(bytes(path), dtype=np.uint8).astype(bool)


def repair_swaps(X: np.ndarray, conf: np.ndarray, t: np.ndarray, names, *,
                 groups: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
                 **settings: Any) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Put swapped left/right labels back, offline (the whole take at once).

    ``X`` ``(T, N, 3)`` metres (NaN = unseen), ``conf`` ``(T, N)``, ``t`` ``(T,)`` s,
    ``names`` ``(N,)``. ``groups`` defaults to :data:`SWAP_GROUPS`; ``settings`` override
    :data:`SWAP_DEFAULTS`. Returns ``(X, conf, swapped)``: copies with the swapped
    frames' left and right markers exchanged, and per group a ``(T,)`` bool mask of the
    frames that were swapped.

    Each group is a two-state chain over the frames where any of its markers is seen:
    "as labelled" or "swapped". Moving from one frame to the next costs the mean
    displacement of the group's markers (the previous frame is the prediction: at 30 fps
    a walking ankle moves <= 13 cm a frame, the two ankles are 15-50 cm apart), plus
    ``switch_m`` when the state changes (hysteresis); each frame spent swapped costs
    ``prior_m_per_s * dt`` (the labels as given are right most of the time). The
    cheapest path (Viterbi) decides every frame from the whole take.
    :class:`LiveCleaner` runs the same chain forwards only.
    """
    p = {**SWAP_DEFAULTS, **settings}
    X = np.array(X, dtype=float)
    conf = np.array(conf, dtype=float)
    t = np.asarray(t, dtype=float)
    T = X.shape[0]
    out: dict[str, np.ndarray] = {}
    for g, (G, Gs) in _swap_maps(names, SWAP_GROUPS if groups is None else groups).items():
        usable, stay, switch, prior = _swap_costs(X, t, G, Gs, p)
        mask = np.zeros(T, bool)
        mask[usable] = _viterbi2(stay, switch, prior)
        if np.any(mask):
            rows = np.flatnonzero(mask)[:, None]
            X[rows, G[None, :]] = X[rows, Gs[None, :]]
            conf[rows, G[None, :]] = conf[rows, Gs[None, :]]
        out[g] = mask
    return X, conf, out


# -- e. bone lengths -------------------------------------------------------------------


_CHI3_MEDIAN_SQ = 2.365973884375338
"""Median of a chi-square with 3 degrees of freedom: the median squared length of a 3-D
standard normal vector."""


def _ncx2_3_median(lam: np.ndarray) -> np.ndarray:
    """Median of a noncentral chi-square with 3 degrees of freedom and noncentrality
    ``lam``, by Sankaran's approximation (Biometrika 46, 1959; within 1.5 % of scipy's
    ``ncx2.median`` for every ``lam``, exact in the limits)."""
    h = 3.0 + lam
    return h * (1.0 - 2.0 * (3.0 + 2.0 * lam) / (9.0 * h * h)) ** 3


_LAM = np.concatenate([[0.0], np.geomspace(1e-4, 1e6, 600)])
_LAM_MEDIAN = _ncx2_3_median(_LAM)


def debiased_length(median_sq: float, s2: float) -> float:
    """The length ``L`` of a fixed vector whose noisy copies ``b + e`` (``e`` 3-D normal,
    ``s2`` m^2 per coordinate) have median squared length ``median_sq`` m^2.

    ``|b + e|^2 / s2`` is noncentral chi-square (3 dof, noncentrality ``L^2 / s2``), so
    ``L`` is found by inverting its median. Noise makes the plain median length too long:
    a 20 mm phalanx seen with 20 mm of noise per coordinate has a median length of ~37 mm,
    which this brings back to ~20 mm. ``s2 <= 0`` returns ``sqrt(median_sq)``; a median
    below the pure-noise value returns 0.
    """
    if not (s2 > 0):
        return math.sqrt(max(median_sq, 0.0))
    r = median_sq / s2
    if r <= _LAM_MEDIAN[0]:
        return 0.0
    lam = float(np.interp(r, _LAM_MEDIAN, _LAM))
    return math.sqrt(lam * s2)


def _noise_gains(t: np.ndarray, cutoff_hz: float) -> tuple[float, float]:
    """For white noise sampled at ``t`` through :func:`mocap.filters.butterworth_zero_phase`
    at ``cutoff_hz``: the share of its variance that passes (``gamma``) and the share left
    in the residual noise - filtered (``rho``). Measured on a fixed pseudo-random draw, so
    run edges and irregular timing are accounted for exactly."""
    e = np.random.default_rng(12345).standard_normal((t.shape[0], 4, 3))
    f = F.butterworth_zero_phase(e, t, cutoff_hz=cutoff_hz)
    return float(np.mean(f * f)), float(np.mean((e - f) ** 2))


def estimate_bone_lengths(X: np.ndarray, good: np.ndarray, bones: list[Bone], names, *,
                          raw: np.ndarray | None = None, gains: tuple[float, float] | None = None,
                          ) -> tuple[dict[str, float], dict[str, dict[str, float]], list[str]]:
    """One length per bone key: a robust median over ``good`` frames on each side, then
    the mean of the two sides (one side alone if the other has no good frame).

    ``X`` ``(T, N, 3)`` metres, low-passed; ``good`` ``(T, N)`` bool (seen, confident, not
    filled). Without ``raw`` the length of a side is the median bone length over its good
    frames. With ``raw`` (the unsmoothed ``(T, N, 3)`` that was filtered into ``X``) and
    ``gains = (gamma, rho)`` of that filter (see :func:`_noise_gains`) the noise left in
    ``X`` is estimated and taken out of the median (:func:`debiased_length`): the noise
    of the bone vector per coordinate is ``median |raw - X|^2 / 2.366 / rho`` before the
    filter, ``gamma`` times that after. That matters for short bones (phalanges).

    Returns ``(lengths, per_side, notes)``: ``{key: m}``, ``{key: {side: m}}``, and a note
    per bone with no good frame at all (not enforced).
    """
    ix = {n: i for i, n in enumerate(names)}
    per_side: dict[str, dict[str, float]] = {}
    # the markers of the bones, once: marker-major contiguous copies (the per-bone work
    # then reads contiguous memory) and where each is usable
    used = sorted({ix[b.parent] for b in bones} | {ix[b.child] for b in bones})
    at = {m: k for k, m in enumerate(used)}
    Xm = np.moveaxis(X, 1, 0)[used]  # (k, T, 3)
    Rm = None if raw is None else np.moveaxis(raw, 1, 0)[used]
    use = np.moveaxis(good, 1, 0)[used] & ~np.isnan(Xm[..., 0])  # (k, T)

    def sum3(a: np.ndarray) -> np.ndarray:  # np.sum(a, axis=-1) for (T, 3), in its order
        return (a[:, 0] + a[:, 1]) + a[:, 2] if a.shape[-1] == 3 else np.sum(a, axis=-1)

    for b in bones:
        i, j = at[ix[b.parent]], at[ix[b.child]]
        ok = use[i] & use[j]
        if not np.any(ok):
            continue
        # elementwise over all frames, then the usable ones picked (same values, same order)
        with np.errstate(invalid="ignore", over="ignore"):
            d = Xm[j] - Xm[i]
            sq = sum3(d * d)[ok]
        if Rm is None or gains is None or sq.size < 8:
            L = float(np.sqrt(np.median(sq)))
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                res = (Rm[j] - Rm[i]) - d
                r2 = sum3(res * res)[ok]
            r2 = r2[np.isfinite(r2)]
            s2 = gains[0] * float(np.median(r2)) / _CHI3_MEDIAN_SQ / gains[1] if r2.size else 0.0
            L = debiased_length(float(np.median(sq)), s2)
        per_side.setdefault(b.key, {})[b.side] = L
    lengths = {k: float(np.mean(list(v.values()))) for k, v in per_side.items()}
    notes = [f"bone {k!r}: no confident frame, length not enforced"
             for k in dict.fromkeys(b.key for b in bones) if k not in lengths]
    return lengths, per_side, notes


def anchor_hands(X: np.ndarray, names, sides=("left", "right")) -> np.ndarray:
    """Translate each hand (``left_hand.*``, ``right_hand.*``) so that its wrist sits on
    ``pose.<side>_wrist``, in every frame where both exist. ``X`` ``(..., N, 3)``; returns
    a copy. :func:`mocap.root.lift_take` places the hands that way; cleaning the body and
    the hands with different filters would part them by a few millimetres."""
    X = np.array(X, dtype=float)
    ix = {n: i for i, n in enumerate(names)}
    for side in sides:
        w, pw = ix.get(f"{side}_hand.wrist"), ix.get(f"pose.{side}_wrist")
        if w is None or pw is None:
            continue
        hand = [i for n, i in ix.items() if n.startswith(f"{side}_hand.")]
        d = X[..., pw, :] - X[..., w, :]
        d = np.where(np.isnan(d), 0.0, d)
        X[..., hand, :] += d[..., None, :]
    return X


def enforce_bone_lengths(X: np.ndarray, bones: list[Bone], lengths: dict[str, float], names, *,
                         anchor=("left", "right")) -> np.ndarray:
    """Move each bone's child along the bone so the bone has its length, in the order of
    ``bones`` (parents first), vectorised over frames. ``X`` ``(..., N, 3)``; returns a
    copy. The direction is from the (already corrected) parent to the child as it is;
    frames where either end is NaN, or the two coincide, keep the child as it is.
    ``anchor``: the sides whose hand :func:`anchor_hands` hangs from the corrected pose
    wrist before the first hand bone, so the chain runs shoulder -> elbow -> wrist ->
    fingers (empty: none)."""
    X = np.array(X, dtype=float)
    ix = {n: i for i, n in enumerate(names)}
    # the bones' markers as a marker-major copy M (M[k] is X[..., used[k], :], contiguous),
    # written back into X before anchoring the hands and at the end
    used = sorted({ix[b.parent] for b in bones} | {ix[b.child] for b in bones})
    at = {m: k for k, m in enumerate(used)}
    M = np.moveaxis(X, -2, 0)[used]
    moved: set[int] = set()

    def write_back() -> None:
        for k in sorted(moved):
            X[..., used[k], :] = M[k]
        moved.clear()

    def anchor_in_m() -> bool:
        # anchor_hands on M, when every marker it moves is there (the usual case: the
        # hand bones reach every hand point)
        plan = []
        for side in anchor:
            w, pw = ix.get(f"{side}_hand.wrist"), ix.get(f"pose.{side}_wrist")
            if w is None or pw is None:
                continue
            hand = [i for n, i in ix.items() if n.startswith(f"{side}_hand.")]
            if not all(k in at for k in (w, pw, *hand)):
                return False
            plan.append((at[w], at[pw], [at[k] for k in hand]))
        for kw, kpw, ks in plan:
            d = M[kpw] - M[kw]
            d = np.where(np.isnan(d), 0.0, d)
            for k in ks:
                M[k] += d
                moved.add(k)
        return True

    anchored = not anchor
    for b in bones:
        if not anchored and b.key.startswith("hand."):
            if not anchor_in_m():
                write_back()
                X = anchor_hands(X, names, anchor)
                M = np.moveaxis(X, -2, 0)[used]
            anchored = True
        L = lengths.get(b.key)
        if L is None:
            continue
        i, j = at[ix[b.parent]], at[ix[b.child]]
        d = M[j] - M[i]
        e = d * d
        if e.shape[-1] == 3:  # np.sum(e, axis=-1, keepdims=True), in its order
            n = np.sqrt((e[..., 0] + e[..., 1]) + e[..., 2])[..., None]
        else:
            n = np.sqrt(np.sum(e, axis=-1, keepdims=True))
        ok = np.isfinite(n) & (n > 1e-9)
        with np.errstate(invalid="ignore", divide="ignore"):
            M[j] = np.where(ok, M[i] + d * (L / n), M[j])
        moved.add(j)
    write_back()
    if not anchored:
        X = anchor_hands(X, names, anchor)
    return X


def _anchor_sides(setting, X: np.ndarray, names) -> tuple[str, ...]:
    """The sides to anchor for ``anchor_hands`` = True / False / "auto" (see
    :data:`BONE_DEFAULTS`), judged on the input ``X`` ``(T, N, 3)``."""
    if setting is True or setting is False:
        return ("left", "right") if setting else ()
    if setting != "auto":
        raise UsageError(f"clean_markers: params['bones']['anchor_hands'] must be True, False or 'auto', "
                         f"got {setting!r}")
    ix = {n: i for i, n in enumerate(names)}
    out = []
    for side in ("left", "right"):
        w, pw = ix.get(f"{side}_hand.wrist"), ix.get(f"pose.{side}_wrist")
        if w is None or pw is None:
            continue
        d = np.sqrt(np.sum((X[:, w] - X[:, pw]) ** 2, axis=-1))
        d = d[np.isfinite(d)]
        if d.size and float(np.median(d)) < 0.005:
            out.append(side)
    return tuple(out)


def _midpoints(X: np.ndarray, names) -> np.ndarray:
    """``pose.mid_hip`` / ``pose.mid_shoulder`` set to the midpoint of their left/right
    markers wherever both exist (in place; returns ``X``)."""
    ix = {n: i for i, n in enumerate(names)}
    for mid, a, b in (("pose.mid_hip", "pose.left_hip", "pose.right_hip"),
                      ("pose.mid_shoulder", "pose.left_shoulder", "pose.right_shoulder")):
        if mid in ix and a in ix and b in ix:
            m = 0.5 * (X[..., ix[a], :] + X[..., ix[b], :])
            X[..., ix[mid], :] = np.where(np.isnan(m), X[..., ix[mid], :], m)
    return X


# -- the offline chain ----------------------------------------------------------------


def _flat_view(a: np.ndarray) -> np.ndarray | None:
    """``a`` ``(T, ...)`` as a ``(T, C)`` view (writing to it writes ``a``), or ``None`` if
    its strides do not allow one."""
    v = a.view()
    try:
        v.shape = (a.shape[0], -1)
    except AttributeError:
        return None
    return v


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice when it is a run of consecutive indices (indexing with it then
    gives views instead of copies), else as it is."""
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


_PARALLEL_PARTS = 100_000
"""Frames x markers from which :func:`clean_markers` cleans the parts on parallel threads."""


def clean_markers(markers: Markers, *, mode: str = "offline",
                  params: dict[str, Any] | None = None) -> tuple[Markers, CleanReport]:
    """Clean world-frame markers; returns ``(cleaned markers, report)``.

    ``markers``: :class:`Markers` ``(T, N, 3)`` metres, NaN where unseen. ``mode``:

    * ``"offline"`` (a recorded take): swap repair by Viterbi over the whole take,
      :func:`mocap.filters.reject_spikes`, :func:`mocap.filters.fill_gaps`, zero-phase
      Butterworth (or Savitzky-Golay), bone lengths from the whole take. Nothing lags.
    * ``"live"``: :class:`LiveCleaner`, every stage causal (output at frame ``t`` uses
      frames ``<= t`` only); the result equals pushing the frames one at a time.

    ``params``: ``{"body"|"hands"|"face": {...}}`` overrides :data:`WORLD_DEFAULTS`;
    ``{"swap": {...}}`` :data:`SWAP_DEFAULTS`, ``{"bones": {...}}`` :data:`BONE_DEFAULTS`,
    ``{"live": {...}}`` :data:`LIVE_DEFAULTS`.

    The cleaned markers keep names and timestamps; confidence is the input's where a
    marker was seen, :data:`FILLED_CONFIDENCE` where it was filled in and 0 where it is
    still missing; ``meta["cleanup"]`` holds the report.
    """
    if not isinstance(markers, Markers):
        raise UsageError(f"clean_markers: expected Markers, got {type(markers).__name__}")
    if mode not in ("offline", "live"):
        raise UsageError(f"clean_markers: mode must be 'offline' or 'live', got mode={mode!r}")
    p = _resolve(params)
    if mode == "live":
        lc = LiveCleaner(markers.names, params=params)
        T, N = len(markers), len(markers.names)
        out = np.full((T, N, 3), np.nan)
        cout = np.zeros((T, N))
        for i in range(T):
            out[i], cout[i] = lc.push(markers.points[i], markers.timestamps[i], markers.confidence[i])
        report = lc.report()
        return markers.with_points(out, confidence=cout,
                                   meta={**markers.meta, "cleanup": report.to_json()}), report

    names = markers.names
    t = markers.timestamps
    T = len(markers)
    parts = part_indices(names)
    report = CleanReport(mode=mode, frames=T, params={k: v for k, v in p.items() if k != "live"})
    if T == 0:
        report.notes.append("no frames")
        return markers.with_points(markers.points.copy(), meta={**markers.meta, "cleanup": report.to_json()}), report
    others = [n for n in names if part_of(n) is None]
    if others:
        report.notes.append(f"{len(others)} markers outside pose/hands/face left as they are "
                            f"(e.g. {others[0]!r})")
    X0 = markers.points
    seen_in = ~np.isnan(X0[..., 0])

    # a. swaps
    X, conf, swapped = repair_swaps(X0, markers.confidence, t, names, **p["swap"])
    for g, m in swapped.items():
        report.swaps[g] = int(m.sum())
        report.swap_frames[g] = np.flatnonzero(m).tolist()
    seen = ~np.isnan(X[..., 0])

    # b-d. spikes, gaps, smoothing, per part
    filled = np.zeros((T, len(names)), bool)
    raw = np.full_like(X, np.nan)  # after swaps and spikes: what the filters see where seen
    est = np.full_like(X, np.nan)  # low-passed harder, only to measure bone lengths
    fs = 1.0 / F._median_dt(t)
    est_hz = min(p["bones"]["estimate_cutoff_hz"], 0.4 * fs)
    bones = limb_bones(names)
    ix = {n: i for i, n in enumerate(names)}
    # the markers whose low-passed copy (est) measures bone lengths
    est_markers = set() if p["bones"]["lengths_m"] is not None else {
        ix[n] for b in bones for n in (b.parent, b.child)}

    def clean_part(part: str, idx_arr: np.ndarray):
        """Spikes, gaps and smoothing of one part, into its own columns of X, raw, est and
        filled; returns its notes, its residual-analysis cutoff (or None) and its counts
        (spikes, filled, missing in the input) for the report."""
        pp = p[part]
        notes: list[str] = []
        cutoff = None
        idx = _as_slice(idx_arr)  # a part's markers are usually contiguous: views, not copies
        x, spikes = F.reject_spikes(X[:, idx], t, threshold=pp["spike_threshold"], floor=pp["spike_floor"])
        raw[:, idx] = x
        xf, fmask = F.fill_gaps(x, t, max_gap_s=pp["max_gap_s"])
        if pp["filter"] == "butterworth":
            hz = pp["cutoff_hz"]
            if hz == "auto":
                lo, hi = pp.get("auto_range_hz", (3.0, 8.0))
                seen_frames = int(np.isfinite(xf).reshape(T, -1).any(axis=1).sum())
                cands = np.arange(lo, 0.45 * fs + 1e-9, 0.5)
                if (cands < 0.5 * fs).sum() < 4:  # too slow a take (< ~10 fps) to compare cutoffs
                    hz = min(hi, 0.4 * fs)
                    notes.append(f"{part}: {fs:.3g} fps is too low for residual analysis; cutoff {hz:.3g} Hz "
                                 f"(0.4 x the frame rate, at most {hi:g} Hz)")
                elif seen_frames >= 16:
                    pick = F.residual_cutoff(xf, t, lo_hz=lo, hi_hz=hi)
                    hz = pick["cutoff_hz"]
                    notes.append(f"{part}: cutoff {hz:g} Hz from residual analysis "
                                 f"(noise about {1000 * pick['noise_rms']:.0f} mm RMS)")
                else:
                    hz = hi
                cutoff = hz
            if T > 1 and hz > 0.4 * fs:
                notes.append(f"{part}: cutoff_hz lowered from {hz} to {0.4 * fs:.3g} (0.4 x {fs:.3g} fps)")
                hz = 0.4 * fs
            # the output and the bone-length copy (butterworth_zero_phase at hz and at est_hz)
            # in one pass over the runs; the copy only where a bone's length is measured
            # (the face has no bones, the body's head points neither)
            est_k = [k for k, i in enumerate(idx_arr.tolist()) if i in est_markers] if T > 1 else []
            both = len(est_k) == idx_arr.size
            specs = [(hz, pp["order"])] + ([(est_hz, 4)] if both else [])
            xf, _ = F._as_track(xf, t, "butterworth_zero_phase")
            # (X[:, idx] is a view only for a slice; an index array would give a copy)
            dest = [None]
            if isinstance(idx, slice):
                dest = [_flat_view(X[:, idx]), _flat_view(est[:, idx])][:len(specs)]
            if any(d is None for d in dest):  # not views: filter into new arrays and copy
                outs = F._lowpass_bank(xf, t, specs, "butterworth_zero_phase")
                X[:, idx] = outs[0].reshape(xf.shape)
                if both:
                    est[:, idx] = outs[1].reshape(xf.shape)
            else:  # straight into the output arrays
                F._lowpass_bank(xf, t, specs, "butterworth_zero_phase", out=dest)
            if est_k and not both:  # each column is filtered on its own: the same numbers
                sub = xf[:, est_k]
                est[:, idx_arr[est_k]] = F._lowpass_bank(sub, t, [(est_hz, 4)],
                                                         "butterworth_zero_phase")[0].reshape(sub.shape)
        elif pp["filter"] == "savgol":
            X[:, idx] = F.savgol(xf, t, window_s=pp["window_s"], polyorder=pp["polyorder"])
            if T > 1:
                est[:, idx] = F.butterworth_zero_phase(xf, t, cutoff_hz=est_hz)
        else:
            raise UsageError(f"clean_markers: params[{part!r}]['filter'] must be 'butterworth' or "
                             f"'savgol', got {pp['filter']!r}")
        filled[:, idx] = fmask[..., 0]
        counts = (int(spikes[..., 0].sum()), int(filled[:, idx].sum()), int((~seen_in[:, idx]).sum()))
        return notes, cutoff, counts

    # the parts write disjoint columns, so they may run side by side (numpy and the filters
    # release the GIL); the report is filled afterwards in the parts' order either way
    items = list(parts.items())
    if len(items) > 1 and F._WORKERS > 1 and T * len(names) >= _PARALLEL_PARTS:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(items), F._WORKERS), thread_name_prefix="mocap-clean") as ex:
            done = list(ex.map(lambda kv: clean_part(*kv), items))
    else:
        done = [clean_part(part, idx_arr) for part, idx_arr in items]
    for (part, _), (notes, cutoff, (n_spikes, n_filled, n_missing_in)) in zip(items, done):
        report.notes += notes
        if cutoff is not None:
            report.cutoffs_hz[part] = cutoff
        report.spikes[part] = n_spikes
        report.filled[part] = n_filled
        report.missing_in[part] = n_missing_in
    _midpoints(X, names)

    # e. bones
    good = seen & ~filled & ~np.isnan(raw[..., 0]) & (conf >= p["bones"]["min_confidence"])
    if p["bones"]["lengths_m"] is not None:
        lengths = {str(k): float(v) for k, v in p["bones"]["lengths_m"].items()}
    else:
        gains = _noise_gains(t, est_hz) if T > 1 else None
        lengths, _, notes = estimate_bone_lengths(est, good, bones, names, raw=raw, gains=gains)
        report.notes += notes
    anchor = _anchor_sides(p["bones"]["anchor_hands"], X0, names)
    if anchor:
        report.notes.append(f"hands hung from the pose wrist: {', '.join(anchor)}")
    if p["bones"]["enforce"]:
        X = enforce_bone_lengths(X, bones, lengths, names, anchor=anchor)
    report.bone_lengths_m = lengths

    missing = np.isnan(X[..., 0])
    for part, idx in parts.items():
        report.missing[part] = int(missing[:, idx].sum())
    cout = np.where(missing, 0.0, np.where(filled, FILLED_CONFIDENCE, conf))
    # markers outside the parts were not touched: keep their input exactly
    keep = [i for i, n in enumerate(names) if part_of(n) is None]
    if keep:
        X[:, keep] = X0[:, keep]
        cout[:, keep] = markers.confidence[:, keep]
    return markers.with_points(X, confidence=cout, meta={**markers.meta, "cleanup": report.to_json()}), report


# -- live -----------------------------------------------------------------------------


class LiveCleaner:
    """The cleanup chain for a live camera, one frame at a time, strictly causal.

    >>> lc = LiveCleaner(markers.names)
    >>> points, confidence = lc.push(points_N3, t, confidence_N)  # per frame, t in s

    What each stage does live, and what it costs compared with offline:

    a. **Swaps**: the chain of :func:`repair_swaps`, run forwards only (the cheapest
       state *now*, given the past). A swap is repaired from its first frame when the
       jump into it costs more than ``switch_m + prior``; only the start of a take, or
       a swap that begins at a crossing, can be missed until continuity says so.
    b. **Spikes**: a gate instead of :func:`~mocap.filters.reject_spikes` (which needs
       two frames ahead). A marker is rejected when it lands further than
       ``max(spike_floor, spike_threshold * s)`` from the constant-velocity prediction of
       its last two accepted samples, ``s`` being a running robust estimate of that
       prediction's error per part (median over the part's markers, exponential average
       over ``scale_tau_s``). After ``max_reject`` rejections in a row the jump is
       believed. With MediaPipe-like 5-10 mm noise it catches jumps of >= 5-8 cm; a
       one-frame spike that the prediction cannot tell from a sudden move is kept.
    c. **Gaps**: the last output is held for up to ``max_gap_s`` (marked filled, with
       confidence :data:`FILLED_CONFIDENCE`), then the marker is missing (NaN) and its
       filter restarts when it reappears. No look-ahead, so no cubic bridge.
    d. **Smoothing**: :class:`mocap.filters.OneEuroFilter` per part (one speed per
       marker), the settings of :data:`WORLD_DEFAULTS`: it lags a little on fast moves.
    e. **Bones**: each bone's length is the median over its first ``calib_s`` seconds of
       confident frames (left and right averaged), then frozen and enforced from then on;
       before that the bone is not enforced. Pass ``params={"bones": {"lengths_m":
       ...}}`` (e.g. from an offline take of the same performer) to enforce from frame 0.

    ``pose.mid_hip`` / ``pose.mid_shoulder`` are recomputed from the cleaned sides, as
    offline. :meth:`report` summarises what was done so far.
    """

    def __init__(self, names, *, params: dict[str, Any] | None = None) -> None:
        self.names = tuple(names)
        self.p = _resolve(params)
        self._parts = part_indices(self.names)
        self._groups = _swap_maps(self.names, SWAP_GROUPS)
        self._bones = limb_bones(self.names)
        self._ix = {n: i for i, n in enumerate(self.names)}
        N = len(self.names)
        self._filters = {
            part: F.OneEuroFilter(min_cutoff=self.p[part]["min_cutoff"], beta=self.p[part]["beta"],
                                  d_cutoff=self.p[part]["d_cutoff"], speed_axis=-1)
            for part in self._parts
        }
        # swap chains: per group, forward costs (as labelled, swapped) and the last usable frame
        self._swap_m = {g: None for g in self._groups}
        self._swap_prev: dict[str, tuple[np.ndarray, float]] = {}
        # spike gate: last two accepted samples per marker
        self._a1 = np.full((N, 3), np.nan)
        self._a2 = np.full((N, 3), np.nan)
        self._ta1 = np.full(N, np.nan)
        self._ta2 = np.full(N, np.nan)
        self._rejects = np.zeros(N, np.int64)
        self._scale = {part: None for part in self._parts}
        # gaps
        self._last_out = np.full((N, 3), np.nan)
        self._t_seen = np.full(N, -np.inf)
        self._max_gap = np.full(N, 0.0)
        for part, idx in self._parts.items():
            self._max_gap[idx] = self.p[part]["max_gap_s"]
        # bones
        given = self.p["bones"]["lengths_m"]
        self._lengths: dict[str, float] = {str(k): float(v) for k, v in (given or {}).items()}
        self._calib: dict[str, dict[str, list[float]]] = {}
        self._calib_t0: dict[str, float] = {}
        self._anchor_setting = self.p["bones"]["anchor_hands"]
        _anchor_sides(self._anchor_setting, np.zeros((0, N, 3)), self.names)  # checks the setting
        self._anchor: tuple[str, ...] = ("left", "right") if self._anchor_setting is True else ()
        self.t_prev: float | None = None
        self._dt_sum = 0.0
        self._n = 0
        self._counts = {k: {part: 0 for part in self._parts} for k in ("spikes", "filled", "missing", "missing_in")}
        self._swaps = {g: [] for g in self._groups}

    # -- stages -------------------------------------------------------------------------
    def _dt_typ(self) -> float:
        return self._dt_sum / (self._n - 1) if self._n > 1 else 1.0 / 30.0

    def _swap_stage(self, x: np.ndarray, c: np.ndarray, t: float) -> None:
        ps = self.p["swap"]
        for g, (G, Gs) in self._groups.items():
            A = x[G]
            if not np.any(~np.isnan(A[:, 0])):
                continue  # nothing of the group this frame: the state carries over
            prior = ps["prior_m_per_s"] * self._dt_typ()
            m = self._swap_m[g]
            prev = self._swap_prev.get(g)
            if m is None:
                m0, m1 = 0.0, prior
            else:
                if prev is not None and t - prev[1] <= ps["max_gap_s"] + 1e-9:
                    s0, s1 = _pair_costs(prev[0][None], A[None], x[Gs][None], ps["unmatched_m"])
                    stay, switch = float(s0[0]), float(s1[0])
                else:
                    stay, switch = 0.0, 0.0
                switch += ps["switch_m"]
                m0 = min(m[0] + stay, m[1] + switch)
                m1 = min(m[1] + stay, m[0] + switch) + prior
            lo = min(m0, m1)
            self._swap_m[g] = (m0 - lo, m1 - lo)
            self._swap_prev[g] = (A.copy(), t)  # as labelled: the states are relative to the labels
            if m1 < m0:
                x[G], c[G] = x[Gs].copy(), c[Gs].copy()
                self._swaps[g].append(self._n)

    def _gate_stage(self, x: np.ndarray, t: float) -> np.ndarray:
        """Reject spikes in place (set to NaN); returns the bool mask of rejections."""
        dt = self._dt_typ()
        with np.errstate(invalid="ignore"):
            recent1 = t - self._ta1 <= self._max_gap + 1.5 * dt  # NaN (no history) -> False
            recent2 = recent1 & (t - self._ta2 <= self._max_gap + 2.5 * dt)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (self._a1 - self._a2) / (self._ta1 - self._ta2)[:, None]
            pred = np.where(recent2[:, None], self._a1 + v * (t - self._ta1)[:, None],
                            np.where(recent1[:, None], self._a1, np.nan))
        r = np.sqrt(np.sum((x - pred) ** 2, axis=-1))  # NaN where no history or unseen
        a = 1.0 - math.exp(-dt / self.p["live"]["scale_tau_s"])
        rejected = np.zeros(x.shape[0], bool)
        for part, idx in self._parts.items():
            rp = r[idx]
            ok = ~np.isnan(rp)
            if not np.any(ok):
                continue
            s = self._scale[part]
            pp = self.p[part]
            if s is not None:
                limit = max(pp["spike_floor"], pp["spike_threshold"] * s)
                rejected[idx[ok & (rp > limit) & (self._rejects[idx] < self.p["live"]["max_reject"])]] = True
            sigma = float(np.median(rp[ok])) / F._CHI_MEDIAN[3]  # median 3-D length -> sigma
            self._scale[part] = sigma if s is None else s + a * (sigma - s)
        x[rejected] = np.nan
        acc = ~np.isnan(x[:, 0])
        self._rejects = np.where(rejected, self._rejects + 1, np.where(acc, 0, self._rejects))
        # accepted samples shift into the history; a stale previous sample is dropped
        self._a2 = np.where(acc[:, None], np.where(recent1[:, None], self._a1, np.nan), self._a2)
        self._ta2 = np.where(acc, np.where(recent1, self._ta1, np.nan), self._ta2)
        self._a1 = np.where(acc[:, None], x, self._a1)
        self._ta1 = np.where(acc, t, self._ta1)
        return rejected

    def _bones_stage(self, y: np.ndarray, good: np.ndarray, t: float) -> np.ndarray:
        calib_s = self.p["live"]["calib_s"]
        for b in self._bones:
            if b.key in self._lengths:
                continue
            i, j = self._ix[b.parent], self._ix[b.child]
            if good[i] and good[j]:
                d = y[j] - y[i]
                self._calib.setdefault(b.key, {}).setdefault(b.side, []).append(float(np.sqrt(d @ d)))
                self._calib_t0.setdefault(b.key, t)
        for key, sides in self._calib.items():
            if key not in self._lengths and t - self._calib_t0[key] >= calib_s:
                self._lengths[key] = float(np.mean([np.median(v) for v in sides.values()]))
        if self.p["bones"]["enforce"]:
            y = enforce_bone_lengths(y, self._bones, self._lengths, self.names, anchor=self._anchor)
        return y

    # -- the frame ----------------------------------------------------------------------
    def push(self, points: Any, t: float, confidence: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Clean one frame: ``points`` ``(N, 3)`` metres (NaN = unseen) at time ``t`` s,
        ``confidence`` ``(N,)`` (default: 1 where seen). Returns ``(points (N, 3),
        confidence (N,))``, using only this and earlier frames."""
        N = len(self.names)
        x = np.array(points, dtype=float)
        if x.shape != (N, 3):
            raise UsageError(f"LiveCleaner.push: points must be ({N}, 3), got {x.shape}")
        c = np.where(np.isnan(x[:, 0]), 0.0, 1.0) if confidence is None else np.array(confidence, dtype=float)
        if c.shape != (N,):
            raise UsageError(f"LiveCleaner.push: confidence must be ({N},), got {c.shape}")
        t = float(t)
        if self.t_prev is not None:
            if not t > self.t_prev:
                raise UsageError(f"LiveCleaner.push: timestamps must increase, got t_prev={self.t_prev!r}, t={t!r}")
            self._dt_sum += t - self.t_prev
        x0, c0 = x.copy(), c.copy()
        seen_in = ~np.isnan(x[:, 0])
        if self._anchor_setting == "auto":  # judged on each frame as it comes
            self._anchor = _anchor_sides("auto", x0[None], self.names)

        self._swap_stage(x, c, t)
        rejected = self._gate_stage(x, t)
        seen = ~np.isnan(x[:, 0])
        self._t_seen = np.where(seen, t, self._t_seen)
        hold = ~seen & (t - self._t_seen <= self._max_gap + 1e-9) & ~np.isnan(self._last_out[:, 0])
        x[hold] = self._last_out[hold]
        y = np.full((N, 3), np.nan)
        for part, idx in self._parts.items():
            y[idx] = self._filters[part](x[idx], t)
        _midpoints(y, self.names)
        good = seen & (c >= self.p["bones"]["min_confidence"])
        y = self._bones_stage(y, good, t)
        self._last_out = np.where(np.isnan(y), self._last_out, y)
        self._last_out[~seen & ~hold] = np.nan

        missing = np.isnan(y[:, 0])
        cout = np.where(missing, 0.0, np.where(hold, FILLED_CONFIDENCE, c))
        outside = [i for i, n in enumerate(self.names) if part_of(n) is None]
        if outside:
            y[outside] = x0[outside]
            cout[outside] = c0[outside]
        for part, idx in self._parts.items():
            self._counts["spikes"][part] += int(rejected[idx].sum())
            self._counts["filled"][part] += int(hold[idx].sum())
            self._counts["missing"][part] += int(missing[idx].sum())
            self._counts["missing_in"][part] += int((~seen_in[idx]).sum())
        self.t_prev = t
        self._n += 1
        return y, cout

    def report(self) -> CleanReport:
        """What was done so far, as a :class:`CleanReport` (``mode="live"``)."""
        notes = ["live: causal swap chain, spike gate, hold-last gap fill, one-euro; bone lengths "
                 "from the first calib_s seconds"]
        pending = sorted(k for k in self._calib if k not in self._lengths)
        if pending:
            notes.append(f"bones still calibrating, not enforced yet: {pending}")
        return CleanReport(
            mode="live", frames=self._n,
            swaps={g: len(v) for g, v in self._swaps.items()},
            swap_frames={g: list(v) for g, v in self._swaps.items()},
            spikes=dict(self._counts["spikes"]), filled=dict(self._counts["filled"]),
            missing=dict(self._counts["missing"]), missing_in=dict(self._counts["missing_in"]),
            bone_lengths_m=dict(self._lengths), params=dict(self.p), notes=notes)

