"""Depth from the 2D landmarks and the bone lengths: the ``depth`` pass of the solve.

MediaPipe's image landmarks are accurate (3.5-7 px on the round trip, docs/accuracy.md)
but its metric world landmarks are not, mostly along the camera's line of sight (the
error in depth is 1.5-2.3x the error across the image). Once the take's bone lengths
are known, the image says a lot about depth (Taylor 2000, "Reconstruction of articulated
objects from point correspondences in a single uncalibrated image", here with the
perspective camera): the child of a bone whose parent ``P`` is placed lies on the ray
through its pixel, ``X = s r`` (``r`` unit, camera frame), at a distance ``L`` from
``P``::

    s = t +- m,   t = r . P,   m = sqrt(L^2 - h^2),   h = |P - t r| (P's distance from the ray)

so the bone's extent along the ray is ``q = s - t = +-m``: the size from the image and
the length, the sign (towards or away from the camera) not. When ``h > L`` (the bone
looks longer than it is) there is no root and the tangent point ``q = 0`` is nearest.

:func:`refine_depth` walks the kinematic tree (:data:`TREE`) outward from the pelvis,
whose camera-space position is the lift's (:func:`mocap.root.lift_take`), and places each
child on its ray. The two roots are weighed against MediaPipe's own extent along the
ray, ``a = (X_mp - P_mp) . r``, as a two-component Gaussian mixture: each root ``k m``
(``k = +-1``) has an uncertainty ``sigma_m`` from the pixel noise and the bone-length
spread (``m`` is ill-conditioned where the bone is nearly perpendicular to the ray, i.e.
``m`` small: there ``sigma_m`` grows and the answer leans on MediaPipe), MediaPipe's
extent has ``sigma_a``; the result is the posterior mean, so where the two roots are
about equally likely (MediaPipe says the bone is side-on but the image says it is
foreshortened) it blends towards MediaPipe's depth instead of picking a side. The pelvis
and shoulder bars are kept symmetric about their midpoints; the extents are smoothed over
time (Gaussian, ``smooth_s``). Points off the tree follow their anchor: the face and the
head landmarks the nose, each hand its pose wrist.

The pass runs only when MediaPipe's 3D visibly disagrees with its own pixels
(``DepthOptions.min_disagreement_m``): a 3D that lands on its rays has nothing to gain.

Everything is vectorised over frames; the only Python loop is over the ~25 bones.
Units: metres, pixels; camera frame of :mod:`mocap.root` (+x right, +y up, +z towards
the camera: depth is ``-z``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .errors import SolveError, UsageError
from .markers import Markers

__all__ = ["DepthOptions", "TREE", "BARS", "refine_depth", "refine_markers_depth", "bone_lengths"]

TREE: tuple[tuple[str, str, str], ...] = (
    ("hip_bar", "mid_hip", "left_hip"), ("hip_bar", "mid_hip", "right_hip"),
    ("spine", "mid_hip", "mid_shoulder"),
    ("shoulder_bar", "mid_shoulder", "left_shoulder"), ("shoulder_bar", "mid_shoulder", "right_shoulder"),
    ("neck", "mid_shoulder", "nose"),
    ("thigh", "left_hip", "left_knee"), ("thigh", "right_hip", "right_knee"),
    ("shin", "left_knee", "left_ankle"), ("shin", "right_knee", "right_ankle"),
    ("heel", "left_ankle", "left_heel"), ("heel", "right_ankle", "right_heel"),
    ("foot", "left_ankle", "left_foot_index"), ("foot", "right_ankle", "right_foot_index"),
    ("upper_arm", "left_shoulder", "left_elbow"), ("upper_arm", "right_shoulder", "right_elbow"),
    ("forearm", "left_elbow", "left_wrist"), ("forearm", "right_elbow", "right_wrist"),
    ("hand_index", "left_wrist", "left_index"), ("hand_index", "right_wrist", "right_index"),
    ("hand_pinky", "left_wrist", "left_pinky"), ("hand_pinky", "right_wrist", "right_pinky"),
    ("hand_thumb", "left_wrist", "left_thumb"), ("hand_thumb", "right_wrist", "right_thumb"),
)  # fmt: skip
"""``(bone key, parent, child)`` pose landmarks (plus the midpoints ``mid_hip``,
``mid_shoulder``), parents before children; left and right share a key (one length)."""

BARS: tuple[tuple[str, str, str], ...] = (
    ("mid_hip", "left_hip", "right_hip"),
    ("mid_shoulder", "left_shoulder", "right_shoulder"),
)
"""``(midpoint, left, right)``: the two ends of a bar stay symmetric in depth about the
midpoint (the midpoint is what the lift and the solve read)."""

_FOLLOW_NOSE = ("left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
                "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right")


@dataclass
class DepthOptions:
    """Settings of :func:`refine_depth`.

    ``pixel_sigma`` [4 px] 2D landmark noise at full visibility (divided by the
    visibility, floored at ``min_visibility`` [0.2]); ``length_sigma`` [0.08] relative
    spread of a bone's length about the take's; ``mp_sigma_m`` [0.08 m] the error of
    MediaPipe's extent of a bone along the ray (``None``: ``depth_ratio`` [1.5] x sqrt(2) x
    its measured error across the ray, see below; 0.5 mm worse on the round trip);
    ``min_disagreement_m`` [0.015 m]: the pass runs only when MediaPipe's 3D points miss
    the rays through their own pixels by at least this much per axis (robust median over
    the take; 22-45 mm on the round trip's MediaPipe takes): a 3D that agrees with its 2D
    (synthetic takes, exact or with 20 mm isotropic noise: 0-11 mm) has nothing to gain
    from it and is returned as it is; ``smooth_s`` [0.1 s] Gaussian smoothing
    of each bone's extent over time (0 = off). ``ambiguity`` ["mean"]: each bone's extent
    is the posterior mean of the two-root mixture (an ambiguous bone shrinks towards
    side-on); ``"mediapipe"`` takes the root on MediaPipe's side and blends into
    MediaPipe's extent as the other becomes as likely (1.6 mm worse PA-MPJPE on the round
    trip). ``visibility_lo`` / ``visibility_hi`` [0, 0: off]: below ``lo`` a child hangs
    MediaPipe's bone from its placed parent instead of following its pixel, blended up
    to ``hi`` (0.3 / 0.7 cost 1.2 mm on the round trip: even a hidden limb's pixel beats
    MediaPipe's depth). ``length_quantile`` [0: off]: when the lengths are estimated, no
    bone shorter than this quantile of its image-plane length (helps a synthetic figure
    with squashed depth, 1.7 mm worse on the round trip at 0.9).
    """

    pixel_sigma: float = 4.0
    length_sigma: float = 0.08
    mp_sigma_m: float | None = 0.08
    depth_ratio: float = 1.5
    min_disagreement_m: float = 0.015
    min_visibility: float = 0.2
    smooth_s: float = 0.1
    ambiguity: str = "mean"
    visibility_lo: float = 0.0
    visibility_hi: float = 0.0
    length_quantile: float = 0.0


def bone_lengths(P: np.ndarray, conf: np.ndarray, names, *, min_confidence: float = 0.5) -> dict[str, float]:
    """One length per :data:`TREE` key (metres): the median over the frames where both
    ends are confident, of each side, then the mean of the sides (as
    :func:`mocap.cleanup.estimate_bone_lengths`). ``P`` ``(T, N, 3)``, ``conf`` ``(T, N)``,
    ``names`` the ``N`` pose names (``mid_hip``, ``left_knee``, ...)."""
    ix = {n: i for i, n in enumerate(names)}
    per: dict[str, list[float]] = {}
    for key, p, c in TREE:
        if p not in ix or c not in ix:
            continue
        ok = (conf[:, ix[p]] >= min_confidence) & (conf[:, ix[c]] >= min_confidence)
        d = np.linalg.norm(P[:, ix[c]] - P[:, ix[p]], axis=-1)
        ok &= np.isfinite(d)
        if np.count_nonzero(ok) >= 3:
            per.setdefault(key, []).append(float(np.median(d[ok])))
    return {k: float(np.mean(v)) for k, v in per.items()}


def _gauss_smooth(x: np.ndarray, timestamps: np.ndarray, sigma_s: float) -> np.ndarray:
    """Gaussian smoothing of ``(T,)`` over time, NaN-aware (normalised weights)."""
    if sigma_s <= 0 or len(x) < 3:
        return x
    from scipy.ndimage import correlate1d

    dt = float(np.median(np.diff(timestamps)))
    s = sigma_s / dt
    r = max(1, int(np.ceil(3 * s)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    ok = np.isfinite(x)
    num = correlate1d(np.where(ok, x, 0.0), k, mode="constant")
    den = correlate1d(ok.astype(float), k, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok & (den > 0), num / den, x)


def refine_depth(P_mp: np.ndarray, uv: np.ndarray, conf: np.ndarray, names, intrinsics, *,
                 lengths: dict[str, float] | None = None, timestamps: np.ndarray | None = None,
                 options: DepthOptions | None = None) -> tuple[np.ndarray, dict]:
    """Re-estimate the depth of the tree's joints from their pixels and the bone lengths.

    ``P_mp`` ``(T, N, 3)`` camera-frame metres (MediaPipe's pose placed by the lift; the
    root ``mid_hip`` is kept), ``uv`` ``(T, N, 2)`` pixels, ``conf`` ``(T, N)`` 0..1
    (visibility), ``names`` ``(N,)`` pose names including ``mid_hip``; ``intrinsics``
    with ``fx, fy, cx, cy``; ``lengths`` per :data:`TREE` key (default
    :func:`bone_lengths` of ``P_mp``); ``timestamps`` ``(T,)`` s for the smoothing.

    Returns ``(P, info)``: ``P`` ``(T, N, 3)`` with every tree child moved onto the ray
    through its pixel (the others unchanged), ``info`` with ``lengths``, ``mp_across_m``
    (MediaPipe's 3D against its pixels, see ``min_disagreement_m``), ``skipped`` (True:
    ``P`` is a copy of ``P_mp``), ``mp_sigma_m`` and, per bone,
    ``ambiguous_share`` (frames whose two roots were within a factor 3 in likelihood) and
    ``no_root_share`` (2D longer than the bone).
    """
    opts = options or DepthOptions()
    if opts.ambiguity not in ("mean", "mediapipe"):
        raise UsageError(f"DepthOptions.ambiguity must be 'mean' or 'mediapipe', got {opts.ambiguity!r}")
    P_mp = np.asarray(P_mp, dtype=float)
    uv = np.asarray(uv, dtype=float)
    T, N = P_mp.shape[:2]
    if uv.shape != (T, N, 2) or np.shape(conf) != (T, N):
        raise SolveError(f"refine_depth: uv must be ({T}, {N}, 2) and conf ({T}, {N}), got {uv.shape}, "
                         f"{np.shape(conf)}")
    ix = {n: i for i, n in enumerate(names)}
    if "mid_hip" not in ix:
        raise SolveError("refine_depth needs the pelvis centre (mid_hip) as its root")
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    ts = np.arange(T) / 30.0 if timestamps is None else np.asarray(timestamps, float)
    conf = np.nan_to_num(np.asarray(conf, float))
    # unit rays through every pixel, camera frame
    ray = np.stack([(uv[..., 0] - cx) / fx, -(uv[..., 1] - cy) / fy, -np.ones((T, N))], axis=-1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    if lengths is None:
        lengths = bone_lengths(P_mp, conf, names)
        if opts.length_quantile:
            # a bone is never shorter than it looks: MediaPipe's squashed depth makes bones that
            # often point at the camera short, the image does not
            look: dict[str, list[float]] = {}
            for key, p, c in TREE:
                if p in ix and c in ix and key in lengths:
                    Pp, r = P_mp[:, ix[p]], ray[:, ix[c]]
                    t = np.sum(r * Pp, axis=-1)
                    h = np.sqrt(np.maximum(np.sum(Pp * Pp, axis=-1) - t * t, 0.0))
                    ok = np.isfinite(h) & (conf[:, ix[p]] >= 0.5) & (conf[:, ix[c]] >= 0.5)
                    if np.count_nonzero(ok) >= 10:
                        look.setdefault(key, []).append(float(np.quantile(h[ok], opts.length_quantile)))
            lengths = {k: max(v, float(np.mean(look[k]))) if k in look else v for k, v in lengths.items()}
    lengths = dict(lengths)
    f = 0.5 * (fx + fy)
    sig_px = opts.pixel_sigma / np.clip(conf, opts.min_visibility, 1.0)  # (T, N)
    # how far MediaPipe's 3D points miss their own pixels' rays: its error across the line
    # of sight (plus the pixels' noise), per axis (the median of a 2D normal's length / 1.1774)
    li = [ix[c] for _, _, c in TREE if c in ix]
    Q, rr = P_mp[:, li], ray[:, li]
    dist = np.linalg.norm(Q - np.sum(Q * rr, axis=-1, keepdims=True) * rr, axis=-1)
    dist = dist[np.isfinite(dist) & (conf[:, li] >= 0.5)]
    across = float(np.median(dist)) / 1.1774 if dist.size else float("nan")
    if not across >= opts.min_disagreement_m:
        return P_mp.copy(), {"lengths": dict(lengths or {}), "bones": {}, "mp_across_m": across, "skipped": True}
    sig_a = opts.mp_sigma_m
    if sig_a is None:  # MediaPipe's depth error from its error across the ray
        sig_a = float(np.clip(opts.depth_ratio * np.sqrt(2.0) * across, 0.005, 0.15))

    P = P_mp.copy()
    q_of: dict[str, np.ndarray] = {}
    info: dict = {"lengths": lengths, "bones": {}, "mp_sigma_m": sig_a, "mp_across_m": across, "skipped": False}
    bar_of = {c: (m, lft, rgt) for m, lft, rgt in BARS for c in (lft, rgt)}
    done: set[str] = {"mid_hip"}
    for key, p, c in TREE:
        if p not in ix or c not in ix or key not in lengths or p not in done:
            continue
        ip, ic = ix[p], ix[c]
        Lb = lengths[key]
        r = ray[:, ic]
        Pp = P[:, ip]
        t = np.sum(r * Pp, axis=-1)
        h2 = np.maximum(np.sum(Pp * Pp, axis=-1) - t * t, 0.0)
        h = np.sqrt(h2)
        D = Lb * Lb - h2
        m = np.sqrt(np.maximum(D, 0.0))
        depth = np.maximum(-Pp[:, 2], 1e-3)
        s_h = np.hypot(sig_px[:, ip], sig_px[:, ic]) * depth / f  # metres, across the ray
        s_D = np.hypot(2 * h * s_h, 2 * Lb * Lb * opts.length_sigma)  # spread of D = L^2 - h^2
        s_m = s_D / (2 * np.maximum(m, np.sqrt(s_D)))  # d m = d D / 2m, capped where m -> 0
        a = np.sum((P_mp[:, ic] - P_mp[:, ip]) * r, axis=-1)  # MediaPipe's extent along the ray
        v = s_m * s_m + sig_a ** 2
        wp = np.exp(-0.5 * (m - a) ** 2 / v)
        wn = np.exp(-0.5 * (m + a) ** 2 / v)
        # the root on MediaPipe's side, its size fused with MediaPipe's; blended into
        # MediaPipe's own extent as the other root becomes as likely
        wsum = wp + wn
        if opts.ambiguity == "mediapipe":
            sgn = np.where(a >= 0, 1.0, -1.0)
            mag = (m * sig_a ** 2 + np.abs(a) * s_m * s_m) / v
            with np.errstate(invalid="ignore", divide="ignore"):
                sure = np.where(wsum > 1e-300, np.abs(wp - wn) / wsum, 1.0)
            q = sure * sgn * mag + (1.0 - sure) * a
        else:  # the posterior mean of the two-root mixture
            mup = (m * sig_a ** 2 + a * s_m * s_m) / v
            mun = (-m * sig_a ** 2 + a * s_m * s_m) / v
            with np.errstate(invalid="ignore", divide="ignore"):
                q = np.where(wsum > 1e-300, (wp * mup + wn * mun) / wsum,
                             np.where(np.abs(m - a) < np.abs(m + a), mup, mun))
        q = _gauss_smooth(q, ts, opts.smooth_s)
        ok = np.isfinite(q) & np.all(np.isfinite(r), axis=-1) & np.all(np.isfinite(Pp), axis=-1)
        with np.errstate(invalid="ignore"):
            amb = (np.minimum(wp, wn) > np.maximum(wp, wn) / 3) & (m > 0)
        info["bones"][f"{p}-{c}"] = {"ambiguous_share": float(np.mean(amb[ok])) if ok.any() else 0.0,
                                     "no_root_share": float(np.mean(D[ok] < 0)) if ok.any() else 0.0}
        q_of[c] = np.where(ok, q, np.nan)
        if c in bar_of:
            mid, lft, rgt = bar_of[c]
            if c == rgt and lft in q_of:
                # one bar: the two ends symmetric in depth about the midpoint
                # (depth of each end found alone; the two placed at the midpoint's depth
                # plus and minus half their difference, on their rays)
                pm = P[:, ix[mid]]
                dep = {}
                for side in (lft, rgt):
                    rr = ray[:, ix[side]]
                    dep[side] = -(np.sum(rr * pm, axis=-1) + q_of[side]) * rr[:, 2]
                half = 0.5 * (dep[lft] - dep[rgt])
                for side, sg in ((lft, 1.0), (rgt, -1.0)):
                    k = ix[side]
                    rr = ray[:, k]
                    d_new = -pm[:, 2] + sg * half
                    good = (np.isfinite(d_new) & (d_new > 0.05))[:, None]
                    P[:, k] = np.where(good, (d_new / -rr[:, 2])[:, None] * rr, P_mp[:, k])
                done.update((lft, rgt))
            continue
        s = t + q
        X = np.where((ok & (s > 0.05))[:, None], s[:, None] * r, P_mp[:, ic])
        # a hidden landmark's pixel is a guess: hang MediaPipe's bone from the placed parent
        if opts.visibility_hi > 0:
            w = np.clip((conf[:, ic] - opts.visibility_lo) / max(opts.visibility_hi - opts.visibility_lo, 1e-6), 0, 1)
        else:
            w = np.ones(T)
        fallback = Pp + (P_mp[:, ic] - P_mp[:, ip])
        P[:, ic] = np.where(np.isfinite(fallback), w[:, None] * X + (1 - w[:, None]) * fallback, X)
        done.add(c)
    return P, info


def refine_markers_depth(markers: Markers, take, lift_info: dict, options: DepthOptions | None = None,
                         ) -> tuple[Markers, dict]:
    """:func:`refine_depth` on the world-frame markers of :func:`mocap.root.lift_take`:
    back to the camera frame (``lift_info["T_world_from_camera"]``), the pose refined from
    ``take.pose_image`` with ``lift_info["intrinsics"]``, ``pose.mid_shoulder`` re-made as
    the shoulders' midpoint, the head landmarks and the face moved with the nose, each hand
    with its pose wrist, and back to the world. Returns ``(markers, info)``."""
    if markers.frame != "world":
        raise SolveError("depth refinement needs the lift's world-frame markers")
    Tw = np.asarray(lift_info["T_world_from_camera"], float)
    R, o = Tw[:3, :3], Tw[:3, 3]
    X = markers.points
    Xc = (X - o) @ R  # world -> camera: R^T (x - o)
    pose_names = [n for n in L.POSE if f"pose.{n}" in markers]
    names = ["mid_hip", "mid_shoulder", *pose_names]
    mk = [markers.index(f"pose.{n}") for n in names]
    img = np.asarray(take.pose_image, float)[..., :2]
    if img.shape[0] != len(markers):
        raise SolveError(f"depth refinement: the take has {img.shape[0]} frames, the markers {len(markers)}")
    uv_pose = img[:, [L.index("pose", n) for n in pose_names]]
    ls, rs = pose_names.index("left_shoulder"), pose_names.index("right_shoulder")
    lh, rh = pose_names.index("left_hip"), pose_names.index("right_hip")
    uv = np.concatenate([0.5 * (uv_pose[:, [lh]] + uv_pose[:, [rh]]), 0.5 * (uv_pose[:, [ls]] + uv_pose[:, [rs]]),
                         uv_pose], axis=1)
    conf = markers.confidence[:, mk]
    P_mp = Xc[:, mk]
    P, info = refine_depth(P_mp, uv, conf, names, lift_info["intrinsics"], timestamps=markers.timestamps,
                           options=options)
    if info["skipped"]:
        return markers, info
    nix = {n: i for i, n in enumerate(names)}
    P[:, nix["mid_shoulder"]] = 0.5 * (P[:, nix["left_shoulder"]] + P[:, nix["right_shoulder"]])
    Xc_new = Xc.copy()
    Xc_new[:, mk] = P
    delta = Xc_new - Xc

    def follow(prefix_or_names, anchor: str) -> None:
        a = markers.index(anchor)
        d = np.nan_to_num(delta[:, a])
        idx = [i for i, n in enumerate(markers.names)
               if (n.startswith(prefix_or_names) if isinstance(prefix_or_names, str) else n in prefix_or_names)]
        if idx:
            Xc_new[:, idx] = Xc[:, idx] + d[:, None, :]

    follow(tuple(f"pose.{n}" for n in _FOLLOW_NOSE), "pose.nose")
    follow("face.", "pose.nose")
    follow("left_hand.", "pose.left_wrist")
    follow("right_hand.", "pose.right_wrist")
    moved = np.linalg.norm(np.nan_to_num(delta[:, mk]), axis=-1)
    info["moved_mm"] = {"median": float(np.median(moved) * 1000), "p95": float(np.quantile(moved, 0.95) * 1000)}
    out = markers.with_points(Xc_new @ R.T + o, meta={**markers.meta, "depth_refine": True})
    return out, info
