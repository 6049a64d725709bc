"""Lift a take into the world: the body's position from one camera, the floor, a world frame.

MediaPipe gives the body twice: as pixels (``pose_image``) and as metric 3D landmarks
centred between the hips (``pose_world``, turned into our camera frame by the tracker).
Neither says *where* the performer is. Three passes put a take in the world.

1. :func:`camera_translation`. The metric pose ``P_i`` (hip-centred) seen from the
   camera at an unknown offset ``t`` projects to the pixels ``(u_i, v_i)``. In our camera
   frame (+x right, +y up, +z towards the camera, so the depth of a point is ``-z``) the
   pinhole model reads ``a_i = (u_i - cx)/fx = X/d`` and ``b_i = (v_i - cy)/fy = -Y/d``
   with ``X = P_ix + t_x``, ``Y = P_iy + t_y``, ``d = -(P_iz + t_z)``. Multiplying out the
   depth gives two equations per landmark that are *linear* in ``t``::

       t_x + a_i t_z = -P_ix - a_i P_iz          (from u)
       t_y - b_i t_z =  b_i P_iz - P_iy          (from v)

   so each frame is one weighted 3x3 least-squares solve (batched over frames, weights
   = visibility). That minimises the reprojection error scaled by each point's depth;
   a few Gauss-Newton steps on the true pixel error finish the job. With 33 landmarks
   at 4 m the fit is exact on exact input; with 20 mm of noise on every landmark (metric
   and, independently, before projection) it is off by ~4 cm RMS in depth and < 1 cm
   across: the depth comes from the body's apparent size, so it is the noisy axis, and
   :func:`smooth_track` over 0.05 s brings it to ~1.7 cm.

2. :func:`estimate_floor`. A planted foot is slow and at the floor. For each foot and
   frame take its lowest landmark (heel, toe, ankle) along the current "up"; keep the
   frames where the foot moves slower than ``speed_max`` (or is among its slowest
   quarter of frames); fit a plane to those points robustly (RANSAC, then Tukey-weighted
   total least squares), re-select with the new up (dropping slow feet that are raised),
   and fit again. Up is the plane's normal pointing towards the hips. The fitted plane
   passes through the foot *landmarks*, which sit ``sole_offset`` (2 cm) above the
   ground under a flat foot, so the floor is that much lower. When the contacts never
   span more than 3 cm in some direction (one foot, feet in a line) the tilt about that
   direction comes from the body's up (hips to shoulders) and a note says so. When the
   feet are never seen, the floor falls back to the camera's up and a floor the
   estimated hip height below the hips, and a note says so: never silently.

3. :func:`lift_take`. World frame (stated once, used everywhere): **+Y is the floor's
   normal (up); +Z is the camera's +z axis (from the scene back towards the lens)
   projected onto the floor, i.e. the horizontal direction from the performer towards
   the camera; +X = Y x Z** (right-handed; a performer facing the camera faces +Z and
   has their left at +X, as :mod:`mocap.glossary` wants). The origin is on the floor
   (y = 0) straight below the hips in the first frame with a body. The body is
   ``pose_world + t`` turned into that frame. Hands and face only have pixels plus a
   relative depth; each point is back-projected at the depth of its anchor (the pose
   wrist for a hand, the pose nose for the face) plus its own relative depth (MediaPipe's
   z, on the scale of x: ``metres = px * depth / f``), and the part is then moved so its
   wrist (nose tip) sits on the pose's wrist (nose).

Units: metres, seconds, pixels for images. Shapes are in each docstring. Everything is
vectorised over frames; the only Python loops are over Gauss-Newton and IRLS iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import landmarks as L
from .errors import SolveError, UsageError
from .markers import Markers

__all__ = [
    "SOLE_OFFSET",
    "DEFAULT_HIP_HEIGHT",
    "WorldFrame",
    "camera_translation",
    "smooth_track",
    "estimate_floor",
    "lift_take",
    "FOOT_LANDMARKS",
]

SOLE_OFFSET = 0.02
"""Metres between the floor and MediaPipe's heel / toe landmarks under a flat foot (the
canonical skeleton's toe joint is 2 cm above its floor too)."""

DEFAULT_HIP_HEIGHT = 0.93
"""Hip height of the canonical 1.75 m performer, metres: the last-resort floor distance."""

HIP_HEIGHT_PER_TORSO = 1.9
"""Hip height / (mid-hip to mid-shoulder) of an adult (canonical: 0.93 / 0.49)."""

FOOT_LANDMARKS: dict[str, tuple[str, ...]] = {
    "left": ("left_ankle", "left_heel", "left_foot_index"),
    "right": ("right_ankle", "right_heel", "right_foot_index"),
}
"""The body landmarks that make a foot, per side."""

_CAMERA_UP = np.array([0.0, 1.0, 0.0])
_CAMERA_BACK = np.array([0.0, 0.0, 1.0])


# -- 1. camera-space translation ---------------------------------------------------------


def _normal_solve(H: np.ndarray, g: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Batched ``H x = g`` for the frames in ``ok`` (others NaN). ``H`` (T,3,3), ``g`` (T,3)."""
    x = np.full(g.shape, np.nan)
    if np.any(ok):
        x[ok] = np.linalg.solve(H[ok], g[ok][..., None])[..., 0]
    return x


def camera_translation(
    pose_world: np.ndarray,
    pose_image: np.ndarray,
    intrinsics,
    *,
    weights: np.ndarray | None = None,
    iterations: int = 3,
    min_points: int = 4,
) -> np.ndarray:
    """Camera-space position ``(T, 3)`` metres of the origin of ``pose_world`` (the hips).

    ``pose_world`` ``(T, N, 3)`` metric landmarks in the camera frame, hip-centred;
    ``pose_image`` ``(T, N, 2+)`` their pixels (+y down); ``intrinsics`` anything with
    ``fx, fy, cx, cy`` (pixels, :class:`mocap.take.Intrinsics`); ``weights`` ``(T, N)``
    >= 0, e.g. visibility (default 1). Solves the linear system of the module docstring
    per frame, then ``iterations`` Gauss-Newton steps on the pixel reprojection error.

    A frame gets NaN when fewer than ``min_points`` landmarks have weight > 0 and finite
    values, when the system is singular, or when the solution puts the body behind the
    camera.
    """
    P = np.asarray(pose_world, dtype=float)
    uv = np.asarray(pose_image, dtype=float)[..., :2]
    if P.ndim != 3 or P.shape[-1] != 3 or uv.shape != P.shape[:-1] + (2,):
        raise UsageError(f"pose_world must be (T, N, 3) and pose_image (T, N, 2+) alike, got "
                         f"{P.shape} and {np.shape(pose_image)}")
    fx, fy, cx, cy = (float(intrinsics.fx), float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy))
    if not (fx > 0 and fy > 0):
        raise UsageError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
    w = np.ones(P.shape[:2]) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != P.shape[:2]:
        raise UsageError(f"weights must be (T, N) = {P.shape[:2]}, got {w.shape}")
    good = np.all(np.isfinite(P), axis=-1) & np.all(np.isfinite(uv), axis=-1) & np.isfinite(w) & (w > 0)
    w = np.where(good, w, 0.0)
    P = np.where(good[..., None], P, 0.0)
    a = np.where(good, (uv[..., 0] - cx) / fx, 0.0)
    b = np.where(good, (uv[..., 1] - cy) / fy, 0.0)
    ok = np.count_nonzero(good, axis=1) >= max(int(min_points), 2)

    # Linear (algebraic) solution: rows r1 = [1, 0, a], r2 = [0, 1, -b].
    y1 = -P[..., 0] - a * P[..., 2]
    y2 = b * P[..., 2] - P[..., 1]
    sw = w.sum(1)
    H = np.zeros((len(P), 3, 3))
    H[:, 0, 0] = H[:, 1, 1] = sw
    H[:, 0, 2] = H[:, 2, 0] = (w * a).sum(1)
    H[:, 1, 2] = H[:, 2, 1] = -(w * b).sum(1)
    H[:, 2, 2] = (w * (a * a + b * b)).sum(1)
    g = np.stack([(w * y1).sum(1), (w * y2).sum(1), (w * (a * y1 - b * y2)).sum(1)], axis=-1)
    ok &= np.abs(np.linalg.det(np.where(ok[:, None, None], H, np.eye(3)))) > 1e-12 * np.maximum(sw, 1.0) ** 3
    t = _normal_solve(H, g, ok)
    ok &= np.isfinite(t[:, 2]) & (t[:, 2] < 0)

    # Gauss-Newton on the pixel error: r_u = fx (X/d - a), r_v = fy (-Y/d - b).
    for _ in range(int(iterations)):
        if not np.any(ok):
            break
        X = P + np.where(ok[:, None], t, 0.0)[:, None, :]
        d = -X[..., 2]
        wi = np.where(d > 1e-6, w, 0.0)
        d = np.where(d > 1e-6, d, 1.0)
        ru = fx * (X[..., 0] / d - a)
        rv = fy * (-X[..., 1] / d - b)
        Ju = fx * np.stack([1.0 / d, np.zeros_like(d), X[..., 0] / d**2], axis=-1)
        Jv = fy * np.stack([np.zeros_like(d), -1.0 / d, -X[..., 1] / d**2], axis=-1)
        H = np.einsum("tn,tni,tnj->tij", wi, Ju, Ju) + np.einsum("tn,tni,tnj->tij", wi, Jv, Jv)
        g = np.einsum("tn,tni,tn->ti", wi, Ju, ru) + np.einsum("tn,tni,tn->ti", wi, Jv, rv)
        step_ok = ok & (np.abs(np.linalg.det(np.where(ok[:, None, None], H, np.eye(3)))) > 0)
        step = _normal_solve(H, g, step_ok)
        t = np.where(step_ok[:, None], t - np.nan_to_num(step), t)
        ok &= np.isfinite(t[:, 2]) & (t[:, 2] < 0)
    t[~ok] = np.nan
    return t


# -- 2. the floor and the world frame ------------------------------------------------------


@dataclass(frozen=True)
class WorldFrame:
    """The floor and the world frame, as found by :func:`estimate_floor`.

    ``R_cam_to_world`` ``(3, 3)`` and ``offset`` ``(3,)`` metres map camera-frame points to
    the world: ``p_world = R_cam_to_world @ p_cam + offset`` (+Y up, floor at y = 0, +Z
    from the performer towards the camera, origin under the first-frame hips).
    ``up_cam`` ``(3,)`` is the floor normal in the camera frame and ``floor_cam`` its
    offset: the floor is ``{p : up_cam . p = floor_cam}`` (so ``-floor_cam`` is the
    camera's height above the floor, metres). ``fallback`` is True when the feet gave no
    floor; ``notes`` say what was assumed; ``n_points`` is the number of foot points the
    final fit kept (weight > 0.5).
    """

    R_cam_to_world: np.ndarray
    offset: np.ndarray
    up_cam: np.ndarray
    floor_cam: float
    fallback: bool = False
    n_points: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_world(self, p_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(..., 3)`` -> world points ``(..., 3)``, metres."""
        return np.asarray(p_cam, dtype=float) @ self.R_cam_to_world.T + self.offset

    @property
    def T_world_from_camera(self) -> np.ndarray:
        """``(4, 4)`` the camera's pose in the world (camera frame -> world)."""
        T = np.eye(4)
        T[:3, :3] = self.R_cam_to_world
        T[:3, 3] = self.offset
        return T

    @property
    def camera_position(self) -> np.ndarray:
        """``(3,)`` the camera's centre in the world, metres."""
        return self.offset.copy()

    @property
    def camera_height(self) -> float:
        """Height of the camera above the floor, metres."""
        return float(self.offset[1])

    @property
    def camera_pitch_deg(self) -> float:
        """Angle of the camera's view direction below the horizon, degrees (+ = looking down)."""
        view = self.R_cam_to_world @ -_CAMERA_BACK
        return float(np.degrees(np.arcsin(np.clip(-view[1], -1.0, 1.0))))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _windowed_speed(x: np.ndarray, timestamps: np.ndarray, window_s: float) -> np.ndarray:
    """Speed ``(T, ...)`` m/s of tracks ``(T, ..., 3)`` by central differences over about
    ``window_s`` seconds (at least one frame each side; clamped at the ends)."""
    T = len(timestamps)
    if T < 2:
        return np.zeros(x.shape[:-1])
    dt = float(np.median(np.diff(timestamps)))
    h = max(1, int(round(0.5 * window_s / dt)))
    i = np.arange(T)
    i0, i1 = np.clip(i - h, 0, T - 1), np.clip(i + h, 0, T - 1)
    span = (timestamps[i1] - timestamps[i0]).reshape((T,) + (1,) * (x.ndim - 2))
    return np.linalg.norm(x[i1] - x[i0], axis=-1) / span


def _plane_tls(p: np.ndarray, w: np.ndarray, prior: np.ndarray, lam: float):
    """Weighted total-least-squares plane through ``p`` (M,3), its normal pulled towards
    ``prior`` where the points have less spread than sqrt(lam) metres. Returns
    ``(n, h, spreads)`` with ``n . p = h`` and the in-plane standard deviations."""
    sw = w.sum()
    c = (w[:, None] * p).sum(0) / sw
    q = p - c
    C = (w[:, None, None] * q[:, :, None] * q[:, None, :]).sum(0) / sw
    ev, V = np.linalg.eigh(C - lam * np.outer(prior, prior))
    n = V[:, 0]
    if n @ prior < 0:
        n = -n
    # spreads of the points within the plane (for the degeneracy note)
    ev_c = np.linalg.eigvalsh(C - np.outer(n, n) * (n @ C @ n))
    spreads = np.sqrt(np.clip(np.sort(ev_c)[1:], 0, None))
    return n, float(n @ c), spreads


def _robust_plane(p: np.ndarray, prior: np.ndarray, *, inlier_m: float, max_tilt_deg: float,
                  prior_sigma: float, n_per_sample: float, iterations: int = 10, seed: int = 0):
    """RANSAC (3-point planes within ``max_tilt_deg`` of ``prior``), then Tukey-weighted
    total least squares with the normal pulled towards ``prior``.

    The pull is a Gaussian prior of ``prior_sigma`` radians on the normal: in the TLS cost
    (mean squared distance) it weighs ``lam = s^2 / (n_eff prior_sigma^2)``, with ``s`` the
    robust residual scale and ``n_eff`` the kept points divided by ``n_per_sample``
    (neighbouring frames are not independent). Exact feet give s -> 0 and no pull; noisy
    feet spread over a few centimetres in one direction lean on the prior there.
    """
    M = len(p)
    best = None
    if M >= 3:
        rng = np.random.default_rng(seed)
        k = min(400, 4 * M)
        tri = rng.integers(0, M, size=(k, 3))
        n = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
        nn = np.linalg.norm(n, axis=-1)
        n = n / np.where(nn > 0, nn, 1.0)[:, None]
        n *= np.where(n @ prior < 0, -1.0, 1.0)[:, None]
        ok = (nn > 1e-6) & (n @ prior > np.cos(np.radians(max_tilt_deg)))
        if np.any(ok):
            n, tri = n[ok], tri[ok]
            h = np.einsum("ki,ki->k", n, p[tri[:, 0]])
            score = (np.abs(p @ n.T - h) < inlier_m).sum(0)
            j = int(np.argmax(score))
            best = (n[j], h[j])
    if best is None:
        best = (prior, float(np.median(p @ prior)))
    n, h = best
    w = (np.abs(p @ n - h) < 3 * inlier_m).astype(float)
    if w.sum() < 3:
        w = np.ones(M)
    spreads = np.zeros(2)
    s = 0.003
    for _ in range(iterations):
        n_eff = max(1.0, float(np.count_nonzero(w > 0.5)) / max(n_per_sample, 1.0))
        n, h, spreads = _plane_tls(p, w, prior, s * s / (n_eff * prior_sigma**2))
        r = p @ n - h
        s = max(1.4826 * float(np.median(np.abs(r[w > 0] - np.median(r[w > 0])))), 0.003)
        c = 4.685 * s
        w = np.where(np.abs(r) < c, (1.0 - (r / c) ** 2) ** 2, 0.0)
        if w.sum() < 3:
            break
    return n, h, w, spreads


def _world_frame(up: np.ndarray, floor_h: float, hips0: np.ndarray, notes: list[str]):
    """Rotation and offset of the world frame (see the module docstring)."""
    z = _CAMERA_BACK - (_CAMERA_BACK @ up) * up
    if np.linalg.norm(z) < 1e-3:  # camera looking straight down (or up): use its -y
        z = -_CAMERA_UP - (-_CAMERA_UP @ up) * up
        notes.append("camera looks straight along the vertical: world +Z taken from the camera's "
                     "-y axis projected on the floor")
    z = _unit(z)
    x = np.cross(up, z)
    R = np.stack([x, up, z])
    foot0 = hips0 - (hips0 @ up - floor_h) * up  # hips dropped onto the floor
    return R, -R @ foot0


def estimate_floor(
    foot_points_cam: np.ndarray,
    contacts_hint: np.ndarray | None = None,
    *,
    hips_cam: np.ndarray,
    timestamps: np.ndarray,
    up_hint_cam: np.ndarray | None = None,
    hip_height: float | None = None,
    sole_offset: float = SOLE_OFFSET,
    speed_max: float = 0.3,
    slow_quantile: float = 0.25,
    raised_max: float = 0.05,
    inlier_m: float = 0.02,
    max_tilt_deg: float = 35.0,
    min_points: int = 10,
    min_spread: float = 0.03,
    up_prior_deg: float = 5.0,
    camera_up_prior_deg: float = 20.0,
    correlation_s: float = 0.1,
) -> WorldFrame:
    """The floor plane and the world frame from the feet of a take.

    ``foot_points_cam`` ``(T, F, k, 3)`` metres, camera frame: F feet (usually 2) of k
    landmarks each (ankle, heel, toe), NaN where not seen. ``contacts_hint`` ``(T, F)`` or
    ``(T,)`` bool: frames known to be in contact (replaces the speed test). ``hips_cam``
    ``(T, 3)`` mid-hip track (up points towards it; the origin goes under its first finite
    frame; the fallback floor hangs below it). ``timestamps`` ``(T,)`` s. ``up_hint_cam``
    ``(3,)`` a prior up (e.g. hips to shoulders), default the camera's +y.

    Defaults: a foot is "at rest" below ``speed_max`` = 0.3 m/s, or when it is among its
    own slowest ``slow_quantile`` = 25% of frames (noisy depth makes every foot look fast);
    a resting foot more than ``raised_max`` = 5 cm above the first plane is dropped
    (standing on one leg); RANSAC inliers are within ``inlier_m`` = 2 cm and planes more
    than ``max_tilt_deg`` = 35 deg from the prior are refused; ``sole_offset`` = 2 cm
    separates the landmarks from the floor. The prior up counts as a measurement good to
    ``up_prior_deg`` = 5 deg (``camera_up_prior_deg`` = 20 deg when it is only the camera's
    +y); foot points within ``correlation_s`` = 0.1 s of each other count as one sample
    when weighing the prior against the feet (see :func:`_robust_plane`).

    Fallback (fewer than ``min_points`` resting foot points): up = the camera's +y, floor
    ``hip_height`` below the median hips (default :data:`DEFAULT_HIP_HEIGHT`), with notes.
    Raises :class:`~mocap.errors.SolveError` when there is no finite hip position at all.
    """
    F4 = np.asarray(foot_points_cam, dtype=float)
    if F4.ndim != 4 or F4.shape[-1] != 3:
        raise UsageError(f"foot_points_cam must be (T, F, k, 3), got {F4.shape}")
    T, F = F4.shape[:2]
    hips = np.asarray(hips_cam, dtype=float)
    ts = np.asarray(timestamps, dtype=float)
    if hips.shape != (T, 3) or ts.shape != (T,):
        raise UsageError(f"hips_cam must be ({T}, 3) and timestamps ({T},), got {hips.shape}, {ts.shape}")
    finite_hips = np.all(np.isfinite(hips), axis=1)
    if not np.any(finite_hips):
        raise SolveError("cannot place a floor: the hips are not located in any frame")
    hips0 = hips[np.argmax(finite_hips)]
    hip_med = np.median(hips[finite_hips], axis=0)
    prior = _unit(np.asarray(up_hint_cam, dtype=float)) if up_hint_cam is not None else _CAMERA_UP.copy()
    prior_deg = up_prior_deg if up_hint_cam is not None else camera_up_prior_deg
    n_per_sample = correlation_s / float(np.median(np.diff(ts))) if T > 1 else 1.0
    notes: list[str] = []

    # resting frames per foot
    pt_ok = np.all(np.isfinite(F4), axis=-1)  # (T, F, k)
    foot_ok = np.any(pt_ok, axis=2)  # (T, F): some landmark of the foot seen
    if contacts_hint is not None:
        hint = np.asarray(contacts_hint, dtype=bool)
        if hint.shape == (T,):
            hint = np.repeat(hint[:, None], F, axis=1)
        if hint.shape != (T, F):
            raise UsageError(f"contacts_hint must be ({T},) or ({T}, {F}), got {hint.shape}")
        rest = hint & foot_ok
    else:
        n_ok = np.maximum(pt_ok.sum(2), 1)[..., None]
        centre = np.where(pt_ok[..., None], F4, 0.0).sum(2) / n_ok
        centre[~foot_ok] = np.nan
        speed = _windowed_speed(centre, ts, 0.1)
        speed = np.where(np.isfinite(speed), speed, np.inf)
        rest = np.zeros((T, F), bool)
        for f in range(F):
            s = speed[:, f][np.isfinite(speed[:, f])]
            if len(s):
                thr = max(speed_max, float(np.quantile(s, slow_quantile)))
                rest[:, f] = speed[:, f] <= thr
        rest &= foot_ok

    if np.count_nonzero(rest) < min_points:
        seen = np.count_nonzero(foot_ok)
        why = ("the feet are not visible in any frame" if seen == 0 else
               f"only {np.count_nonzero(rest)} frame(s) show a foot at rest (need {min_points})")
        if hip_height is None:
            hip_height, src = DEFAULT_HIP_HEIGHT, "the default adult hip height"
        else:
            src = "the estimated hip height"
        up = _CAMERA_UP.copy()
        floor_h = float(hip_med @ up) - float(hip_height)
        notes.append(f"floor fallback: {why}; assumed the camera is level (up = camera +y) and the "
                     f"floor {hip_height:.2f} m ({src}) below the median hip position")
        R, off = _world_frame(up, floor_h, hips0, notes)
        return WorldFrame(R, off, up, floor_h, fallback=True, n_points=0, notes=tuple(notes))

    up = prior
    h = None
    w = np.zeros(0)
    spreads = np.zeros(2)
    for it in range(2):
        heights = np.where(pt_ok, np.nan_to_num(F4) @ up, np.inf)
        low = np.argmin(heights, axis=2)  # lowest landmark of each foot along up
        pts = np.take_along_axis(F4, low[..., None, None], axis=2)[:, :, 0]  # (T, F, 3)
        sel = rest.copy()
        if it > 0:
            sel &= (pts @ up - h) < raised_max
            if np.count_nonzero(sel) < min_points:
                sel = rest
        cand = pts[sel]
        up, h, w, spreads = _robust_plane(cand, prior, inlier_m=inlier_m, max_tilt_deg=max_tilt_deg,
                                          prior_sigma=np.radians(prior_deg), n_per_sample=n_per_sample)
    if up @ hip_med - h < 0:  # normal must point from the floor towards the hips
        up, h = -up, -h
    if spreads[0] < min_spread:
        notes.append(f"the resting feet span only {100 * spreads[0]:.1f} cm in one direction on the floor: "
                     "the floor's tilt about that direction follows the body's up, not the feet")
    floor_h = h - float(sole_offset)
    R, off = _world_frame(up, floor_h, hips0, notes)
    return WorldFrame(R, off, up, floor_h, fallback=False, n_points=int(np.count_nonzero(w > 0.5)),
                      notes=tuple(notes))


# -- 3. lifting the take --------------------------------------------------------------------


def _backproject(uv: np.ndarray, depth: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """Pixels ``(..., 2)`` at depths ``(...)`` (metres, > 0) -> camera-frame points ``(..., 3)``."""
    x = (uv[..., 0] - cx) / fx * depth
    y = -(uv[..., 1] - cy) / fy * depth
    return np.stack([x, y, -depth], axis=-1)


def _anchored_part(img: np.ndarray, ref: int, anchor_cam: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """Metricise a part seen only in pixels: ``img`` ``(T, n, 3)`` px (z relative depth on
    the scale of x, smaller = nearer), back-projected at the anchor's depth plus each
    point's relative depth, then moved so point ``ref`` lands on ``anchor_cam`` ``(T, 3)``."""
    d0 = -anchor_cam[:, 2]  # anchor depth, metres
    mpp = d0 / fx  # metres per pixel at that depth
    depth = d0[:, None] + (img[..., 2] - img[:, ref : ref + 1, 2]) * mpp[:, None]
    depth = np.where(depth > 0.05, depth, np.nan)
    p = _backproject(img[..., :2], depth, fx, fy, cx, cy)
    return p - p[:, ref : ref + 1] + anchor_cam[:, None, :]


def _hip_height_from_pose(P: np.ndarray, vis: np.ndarray, vis_min: float) -> tuple[float | None, str]:
    """Estimate hip height (m) from hip-knee-ankle lengths, else from the torso."""
    ix = {n: L.index("pose", n) for n in L.POSE}
    legs = []
    for s in ("left", "right"):
        a, b, c = ix[f"{s}_hip"], ix[f"{s}_knee"], ix[f"{s}_ankle"]
        ok = np.all(vis[:, [a, b, c]] >= vis_min, axis=1)
        if np.count_nonzero(ok) >= 5:
            ln = np.linalg.norm(P[ok, b] - P[ok, a], axis=-1) + np.linalg.norm(P[ok, c] - P[ok, b], axis=-1)
            legs.append(np.median(ln))
    if legs:
        return float(np.mean(legs)) + 0.08, "hip-knee-ankle lengths + 8 cm ankle height"
    hip = 0.5 * (P[:, ix["left_hip"]] + P[:, ix["right_hip"]])
    sh = 0.5 * (P[:, ix["left_shoulder"]] + P[:, ix["right_shoulder"]])
    torso = np.linalg.norm(sh - hip, axis=-1)
    torso = torso[np.isfinite(torso)]
    if len(torso):
        return HIP_HEIGHT_PER_TORSO * float(np.median(torso)), f"{HIP_HEIGHT_PER_TORSO} x the torso length"
    return None, ""


def lift_take(
    take,
    *,
    intrinsics=None,
    visibility_min: float = 0.5,
    sole_offset: float = SOLE_OFFSET,
    gn_iterations: int = 3,
    smooth_s: float = 0.05,
    contacts_hint: np.ndarray | None = None,
) -> tuple[Markers, dict]:
    """World-frame :class:`~mocap.markers.Markers` of a take, and what was found on the way.

    Markers: ``pose.<name>`` (33), ``pose.mid_hip``, ``pose.mid_shoulder``,
    ``left_hand.<name>`` / ``right_hand.<name>`` (21 each), ``face.<FACE_POINTS name>``;
    metres in the world frame of the module docstring, NaN where not seen. Confidence:
    body = visibility x presence (a midpoint takes the lower of its two), hands and face =
    1 where the part was found and its anchor located, else 0.

    ``intrinsics`` overrides ``take.source.intrinsics`` (else a 60 deg field of view is
    assumed, with a note). Feet below ``visibility_min`` do not count for the floor.
    ``smooth_s`` (seconds, 0 = off) smooths the camera-space translation with
    :func:`smooth_track` before anything else: its depth, read from the body's apparent
    size, is 3-5x noisier than its other axes, and smoothing the translation alone leaves
    the limbs' own motion untouched. The default 0.05 s takes the depth jitter of 20 mm
    landmark noise from 3.9 to 1.7 cm RMS and moves a walker's exact track by under 2 mm.
    ``contacts_hint`` ``(T, 2)`` (left, right) is passed to :func:`estimate_floor`.

    Returns ``(markers, info)``; ``info`` holds ``translation_cam`` ``(T, 3)`` (hips in
    the camera frame, smoothed; ``translation_cam_raw`` before smoothing),
    ``reprojection_rms_px`` ``(T,)`` (of the smoothed placement), ``world`` (:class:`WorldFrame`),
    ``T_world_from_camera`` ``(4, 4)``, ``intrinsics`` and ``notes`` (list of str).
    Raises :class:`~mocap.errors.SolveError` when no frame has a body.
    """
    from .take import Intrinsics

    notes: list[str] = []
    intr = intrinsics or take.source.intrinsics
    if intr is None:
        intr = Intrinsics.from_hfov(take.source.width, take.source.height)
        notes.append(f"no camera intrinsics: assumed a {intr.hfov_deg(take.source.width):.0f} deg "
                     "horizontal field of view")
    fx, fy, cx, cy = intr.fx, intr.fy, intr.cx, intr.cy
    T = len(take)
    has_pose = np.asarray(take.present["pose"], bool)
    Pw = np.asarray(take.pose_world, dtype=float)
    img = np.asarray(take.pose_image, dtype=float)
    vis = np.nan_to_num(np.asarray(take.pose_visibility, dtype=float))
    # presence is NaN where the tracker does not report it (legacy Holistic): no information, 1
    pres = np.nan_to_num(np.asarray(take.pose_presence, dtype=float), nan=1.0)
    Pw = np.where(has_pose[:, None, None], Pw, np.nan)

    t = camera_translation(Pw, img, intr, weights=vis * has_pose[:, None], iterations=gn_iterations)
    if not np.any(np.isfinite(t[:, 0])):
        raise SolveError("cannot lift the take: no frame has a body that fits the camera "
                         f"({np.count_nonzero(has_pose)} of {T} frames have a pose)")
    lost = np.count_nonzero(has_pose & ~np.isfinite(t[:, 0]))
    if lost:
        notes.append(f"{lost} frame(s) with a body could not be placed (too few visible landmarks)")
    t_raw = t
    t = smooth_track(t, np.asarray(take.timestamps, float), smooth_s)
    body_cam = Pw + t[:, None, :]

    # reprojection error (diagnostic)
    d = -body_cam[..., 2]
    proj = np.stack([cx + fx * body_cam[..., 0] / d, cy - fy * body_cam[..., 1] / d], axis=-1)
    err2 = np.sum((proj - img[..., :2]) ** 2, axis=-1)
    wv = np.where(np.isfinite(err2), vis, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.nansum(wv * np.nan_to_num(err2), axis=1) / wv.sum(1))

    # the floor
    ix = {n: L.index("pose", n) for n in L.POSE}
    feet_idx = [[ix[n] for n in FOOT_LANDMARKS[s]] for s in ("left", "right")]
    feet = body_cam[:, feet_idx]  # (T, 2, 3, 3)
    feet_vis = vis[:, feet_idx] >= visibility_min
    feet = np.where(feet_vis[..., None], feet, np.nan)
    hips_cam = 0.5 * (body_cam[:, ix["left_hip"]] + body_cam[:, ix["right_hip"]])
    sh_w = 0.5 * (Pw[:, ix["left_shoulder"]] + Pw[:, ix["right_shoulder"]])
    hip_w = 0.5 * (Pw[:, ix["left_hip"]] + Pw[:, ix["right_hip"]])
    torso = _unit(sh_w - hip_w)
    torso = torso[np.all(np.isfinite(torso), axis=1)]
    up_hint = _unit(np.median(torso, axis=0)) if len(torso) else None
    hip_height, hh_src = _hip_height_from_pose(Pw, vis * has_pose[:, None], visibility_min)
    world = estimate_floor(feet, contacts_hint, hips_cam=hips_cam, timestamps=np.asarray(take.timestamps, float),
                           up_hint_cam=up_hint, hip_height=hip_height, sole_offset=sole_offset)
    notes.extend(world.notes)
    if world.fallback and hip_height is not None:
        notes.append(f"the fallback hip height ({hip_height:.2f} m) came from {hh_src}")

    # hands and face, anchored on the body
    names: list[str] = [f"pose.{n}" for n in L.POSE] + ["pose.mid_hip", "pose.mid_shoulder"]
    pts = [body_cam, hips_cam[:, None], (0.5 * (body_cam[:, ix["left_shoulder"]] + body_cam[:, ix["right_shoulder"]]))[:, None]]
    conf_pose = vis * pres * has_pose[:, None]
    confs = [conf_pose,
             np.minimum(conf_pose[:, ix["left_hip"]], conf_pose[:, ix["right_hip"]])[:, None],
             np.minimum(conf_pose[:, ix["left_shoulder"]], conf_pose[:, ix["right_shoulder"]])[:, None]]
    for side in ("left", "right"):
        part = f"{side}_hand"
        himg = np.where(np.asarray(take.present[part], bool)[:, None, None],
                        np.asarray(take.image(part), dtype=float), np.nan)
        p = _anchored_part(himg, L.index(part, "wrist"), body_cam[:, ix[f"{side}_wrist"]], fx, fy, cx, cy)
        names += [f"{part}.{n}" for n in L.HAND]
        pts.append(p)
        confs.append(np.all(np.isfinite(p), axis=-1).astype(float))
    fnames = list(L.FACE_POINTS)
    fidx = [L.index("face", n) for n in fnames]
    fimg = np.where(np.asarray(take.present["face"], bool)[:, None, None],
                    np.asarray(take.face_image, dtype=float)[:, fidx], np.nan)
    p = _anchored_part(fimg, fnames.index("nose_tip"), body_cam[:, ix["nose"]], fx, fy, cx, cy)
    names += [f"face.{n}" for n in fnames]
    pts.append(p)
    confs.append(np.all(np.isfinite(p), axis=-1).astype(float))

    P_cam = np.concatenate(pts, axis=1)
    conf = np.concatenate(confs, axis=1)
    P_world = world.to_world(P_cam)
    conf = np.where(np.all(np.isfinite(P_world), axis=-1), conf, 0.0)
    markers = Markers(names=tuple(names), points=P_world, timestamps=np.asarray(take.timestamps, float),
                      confidence=conf, frame="world",
                      meta={"source": "lift_take", "notes": list(notes),
                            "T_world_from_camera": world.T_world_from_camera.tolist()})
    info = {
        "translation_cam": t,
        "translation_cam_raw": t_raw,
        "reprojection_rms_px": rms,
        "world": world,
        "T_world_from_camera": world.T_world_from_camera,
        "intrinsics": intr,
        "notes": notes,
    }
    return markers, info


def smooth_track(x: np.ndarray, timestamps: np.ndarray, sigma_s: float) -> np.ndarray:
    """Gaussian-weighted local *linear* regression of a track ``(T, d)`` over time.

    ``sigma_s`` is the kernel's standard deviation in seconds (the window spans +-3
    sigma). A local line instead of a local mean keeps constant-velocity motion unbiased,
    also at the clip's ends, where a plain Gaussian would drag a walker back by about
    ``speed x sigma``. NaN samples get no weight; a frame whose window has fewer than
    two samples is returned as it was. Frames are assumed about evenly spaced (the
    median step sets the kernel's width in frames).
    """
    x = np.asarray(x, dtype=float)
    ts = np.asarray(timestamps, dtype=float)
    if sigma_s <= 0 or len(ts) < 3:
        return x.copy()
    from scipy.ndimage import correlate1d

    dt = float(np.median(np.diff(ts)))
    s = sigma_s / dt
    r = max(1, int(np.ceil(3 * s)))
    tau = np.arange(-r, r + 1, dtype=float)
    k = np.exp(-0.5 * (tau / s) ** 2)
    ok = np.all(np.isfinite(x), axis=1).astype(float)
    y = np.where(ok[:, None] > 0, x, 0.0)

    def conv(a, kern):
        return correlate1d(a, kern, axis=0, mode="constant", cval=0.0)

    S0, S1, S2 = conv(ok, k), conv(ok, k * tau), conv(ok, k * tau * tau)
    Y0, Y1 = conv(y, k), conv(y, k * tau)
    den = S0 * S2 - S1 * S1
    good = (den > 1e-9 * np.maximum(S0, 1e-12) ** 2) & (ok > 0)
    out = x.copy()
    est = (S2[:, None] * Y0 - S1[:, None] * Y1) / np.where(good, den, 1.0)[:, None]
    out[good] = est[good]
    return out
