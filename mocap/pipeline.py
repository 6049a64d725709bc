"""Take -> clean skeletal motion: the solve pipeline as named stages over arrays.

==========  =======================================================  =====================
stage       what                                                     module
==========  =======================================================  =====================
lift        hips translation in camera space from the 2D/3D fit,     :mod:`mocap.root`
            the floor plane, world frame (+Y up, floor at 0)
depth       each bone's depth from its 2D landmarks and length       :mod:`mocap.depth`
            (:func:`solve_take` only; ``depth_refine``)
clean       swap repair, spikes, gaps, zero-phase filter (offline)   :mod:`mocap.cleanup`
            or One Euro (live), per-take bone lengths enforced
solve       local rotations on the canonical skeleton                :mod:`mocap.solve`
contacts    foot contacts from height and speed (across the view   :mod:`mocap.contacts`
            on a take), hysteresis, drifting ones cut
lock        planted feet: leg IK + root correction, no penetration   :mod:`mocap.contacts`
==========  =======================================================  =====================

:func:`solve_take` runs them all; :func:`solve_markers` starts from world-frame markers
(synthetic data, or markers cleaned elsewhere). Every stage is a pure function of
arrays; :class:`SolveResult` keeps each stage's output for reports.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import SolveError, UsageError
from .markers import Markers
from .motion import Motion

__all__ = ["SolveOptions", "SolveResult", "solve_take", "solve_markers"]


CONTACT_SPEED_WINDOW_S = 0.2
"""Seconds over which a foot's speed is measured for contact detection (a central
difference): long enough to average out a planted foot's landmark jitter, short enough
to see a step begin."""
CONTACT_PAD_S = 0.04
"""Seconds each detected contact is widened by on both sides (one frame at 30 fps): the
speed test trims a contact's ends, where the foot is still nearly at rest."""


@dataclass
class SolveOptions:
    """The knobs of ``understudy solve`` (defaults in brackets).

    ``mode`` "offline" [zero-phase filters over the whole take] or "live" (causal One
    Euro); ``body_cutoff_hz`` [5], ``hands_cutoff_hz`` [8], ``face_cutoff_hz`` [8]
    override the low-pass cutoffs; ``max_gap_s`` [0.25 body] the longest dropout filled;
    ``limits`` [on] anatomical joint limits; ``foot_lock`` [on];
    ``contact_height_m`` [0.1] and ``contact_speed_m_s`` [0.3] enter a contact (leave
    at 1.6x those; speed over 0.2 s); ``contact_depth_weight`` [None: from the take,
    :func:`mocap.contacts.sight_weight`] how much of a foot's speed along the camera's
    line of sight counts, 0-1 (a MediaPipe take's lifted depth wanders by 0.2-0.4 m/s on
    a planted foot, so it gets 0; markers without a camera use the full speed);
    ``max_slide_m`` [0.05] a contact whose foot drifts further (across the view, for a
    take) is cut into its still parts, and what slides is not locked (pivot, dance
    step); ``finger_cutoff_hz`` [4] low-pass of the
    finger joints' rotations, so fingers ease into a pose when a hand is found again
    instead of popping from the held pose; ``root_smooth_s`` [0.05] smoothing of the camera-space hips path;
    ``fov_deg`` overrides the take's camera field of view; ``depth_refine`` [on] re-estimates
    each bone's depth from the 2D landmarks and the take's bone lengths (:mod:`mocap.depth`;
    :func:`solve_take` only, markers given to :func:`solve_markers` are used as they are).
    """

    mode: str = "offline"
    body_cutoff_hz: float | None = None
    hands_cutoff_hz: float | None = None
    face_cutoff_hz: float | None = None
    max_gap_s: float | None = None
    limits: bool = True
    foot_lock: bool = True
    contact_height_m: float = 0.1
    contact_speed_m_s: float = 0.3
    contact_depth_weight: float | None = None
    max_slide_m: float = 0.05
    finger_cutoff_hz: float = 4.0
    root_smooth_s: float = 0.05
    fov_deg: float | None = None
    depth_refine: bool = True

    def check(self) -> None:
        if self.mode not in ("offline", "live"):
            raise UsageError(f"--mode must be 'offline' or 'live', got {self.mode!r}")
        for name in ("body_cutoff_hz", "hands_cutoff_hz", "face_cutoff_hz", "max_gap_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise UsageError(f"{name} must be positive, got {v}")
        if not (self.contact_height_m > 0 and self.contact_speed_m_s > 0):
            raise UsageError("contact thresholds must be positive")
        if self.contact_depth_weight is not None and not 0.0 <= self.contact_depth_weight <= 1.0:
            raise UsageError(f"contact_depth_weight must be in [0, 1], got {self.contact_depth_weight}")

    def clean_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {}
        for part, v in (("body", self.body_cutoff_hz), ("hands", self.hands_cutoff_hz),
                        ("face", self.face_cutoff_hz)):
            if v is not None:
                p.setdefault(part, {})["cutoff_hz"] = v
        if self.max_gap_s is not None:
            for part in ("body", "hands", "face"):
                p.setdefault(part, {})["max_gap_s"] = self.max_gap_s
        return p


@dataclass
class SolveResult:
    """Everything the pipeline made: the final ``motion`` (foot-locked when asked),
    ``contacts`` per foot ``(T,)`` bool, the ``raw`` and ``clean`` markers, the cleanup
    report, the lift info, notes and per-stage wall times (s)."""

    motion: Motion
    contacts: dict[str, np.ndarray]
    raw: Markers
    clean: Markers
    clean_report: Any
    lift_info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _stage(timings: dict, name: str, bar):
    class _S:
        def __enter__(self):
            self.t0 = time.perf_counter()
            if bar is not None:
                bar.set_description(f"solve: {name}")
            return self

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.t0, 4)
            if bar is not None and exc[0] is None:
                bar.update(1)

    return _S()


_FINGER_WORDS = ("Thumb", "Index", "Middle", "Ring", "Little")


def _ease_fingers(motion: Motion, *, cutoff_hz: float) -> Motion:
    """Low-pass the finger joints' local rotations (zero phase, sign-continuous wxyz,
    renormalised). A hand lost and found again holds its last pose, then jumps to the new
    one; filtered, the fingers move there over ~1/cutoff seconds like a real hand."""
    from .filters import butterworth_zero_phase

    idx = [i for i, n in enumerate(motion.skeleton.names) if any(w in n for w in _FINGER_WORDS)]
    if not idx or motion.n_frames < 16 or not cutoff_hz:
        return motion
    fs = motion.fps
    hz = min(cutoff_hz, 0.4 * fs)
    q = motion.rotations[:, idx].copy()
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumsum(np.concatenate([np.zeros((1, len(idx))), dots < 0]), axis=0) % 2
    q = np.where(flips[..., None] == 1, -q, q)
    f = butterworth_zero_phase(q, motion.timestamps, cutoff_hz=hz)
    f /= np.linalg.norm(f, axis=-1, keepdims=True)
    rot = motion.rotations.copy()
    rot[:, idx] = f
    return Motion(skeleton=motion.skeleton, rotations=rot, root_positions=motion.root_positions, fps=motion.fps,
                  timestamps=motion.timestamps, meta=dict(motion.meta))


def _group_notes(notes: list[str]) -> list[str]:
    """One line for the many 'bone ...: no confident frame' notes of a part never seen."""
    unseen = [n for n in notes if n.startswith("bone '") and "no confident frame" in n]
    if len(unseen) <= 2:
        return notes
    parts = sorted({n.split("'")[1].split(".")[0] for n in unseen})
    rest = [n for n in notes if n not in unseen]
    return rest + [f"{len(unseen)} bones ({', '.join(parts)}) never seen with confidence: their lengths come "
                   "from the canonical proportions and their joints hold the rest pose"]


def solve_markers(markers: Markers, options: SolveOptions | None = None, *, progress: bool = False,
                  lift_info: dict | None = None, _bar=None, _timings=None) -> SolveResult:
    """Clean, solve, detect contacts and lock feet, from world-frame markers."""
    from .cleanup import clean_markers
    from .contacts import detect_contacts, foot_points, lock_feet, planted_contacts, sight_weight
    from .solve import solve_motion

    opts = options or SolveOptions()
    opts.check()
    if markers.frame != "world":
        raise SolveError("solve needs world-frame markers (lift the take first)")
    timings = _timings if _timings is not None else {}
    bar = _bar
    own_bar = False
    if bar is None and progress:
        from tqdm import tqdm

        bar, own_bar = tqdm(total=4, unit="stage", dynamic_ncols=True), True
    try:
        with _stage(timings, "clean", bar):
            clean, report = clean_markers(markers, mode=opts.mode, params=opts.clean_params())
        with _stage(timings, "solve", bar):
            motion = solve_motion(clean, limits=opts.limits)
            motion = _ease_fingers(motion, cutoff_hz=opts.finger_cutoff_hz)
        with _stage(timings, "contacts", bar):
            world = (lift_info or {}).get("world")
            cam = None if world is None else world.camera_position
            fp = foot_points(motion)
            wd, ratio = 1.0, float("nan")
            if cam is not None:
                wd, ratio = sight_weight(fp, motion.timestamps, cam, speed_window_s=CONTACT_SPEED_WINDOW_S,
                                         height_m=opts.contact_height_m, speed_m_s=opts.contact_speed_m_s)
                if opts.contact_depth_weight is not None:
                    wd = opts.contact_depth_weight
            contact_info = {"camera": cam is not None, "depth_weight": wd,
                            "sight_speed_ratio": None if not np.isfinite(ratio) else round(ratio, 3)}
            contacts = {side: detect_contacts(p, motion.timestamps, height_on=opts.contact_height_m,
                                              height_off=1.6 * opts.contact_height_m, speed_on=opts.contact_speed_m_s,
                                              speed_off=1.6 * opts.contact_speed_m_s,
                                              speed_window_s=CONTACT_SPEED_WINDOW_S, pad_s=CONTACT_PAD_S,
                                              view_from=cam, depth_weight=wd)
                        for side, p in fp.items()}
            contacts, n_slides = planted_contacts(motion, contacts, max_drift_m=opts.max_slide_m, view_from=cam,
                                                  depth_weight=wd, split=True)
        with _stage(timings, "foot lock", bar):
            if opts.foot_lock and any(c.any() for c in contacts.values()):
                # where depth is down-weighted the root is the lift's, placed by the whole body in the image: a
                # plant a little off in depth must not drag it (the leg stretches and its foot stops short)
                motion = lock_feet(motion, contacts, hold_height=False, max_root_shift_m=0.0 if wd < 1.0 else None)
    finally:
        if own_bar:
            bar.close()
    notes = list((lift_info or {}).get("notes", [])) + _group_notes(list(getattr(report, "notes", [])))
    if n_slides:
        notes.append(f"{n_slides} foot contact(s) slid more than {100 * opts.max_slide_m:g} cm "
                     "(pivots, slides or steps): only their still parts are locked")
    motion.meta["solve"] = {"options": asdict(opts), "timings_s": timings, "contacts": contact_info}
    motion.meta["cleanup"] = report.to_json()
    if notes:
        motion.meta["notes"] = notes
    return SolveResult(motion=motion, contacts=contacts, raw=markers, clean=clean, clean_report=report,
                       lift_info=lift_info or {}, notes=notes, timings=timings)


def solve_take(take, options: SolveOptions | None = None, *, progress: bool = False) -> SolveResult:
    """The whole pipeline on a :class:`~mocap.take.Take`: lift, depth (``depth_refine``),
    clean, solve, contacts, lock. ``result.raw`` is the lifted markers before the depth pass
    (MediaPipe's own, the baseline); ``result.lift_info["depth"]`` what the pass found."""
    from .root import lift_take
    from .take import Intrinsics

    opts = options or SolveOptions()
    opts.check()
    if not take.present["pose"].any():
        raise SolveError("the take has no frame with a body: nothing to solve")
    intr = None
    if opts.fov_deg is not None:
        intr = Intrinsics.from_hfov(take.source.width, take.source.height, opts.fov_deg, source="user")
    timings: dict[str, float] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=5 + bool(opts.depth_refine), unit="stage", dynamic_ncols=True)
    try:
        with _stage(timings, "lift", bar):
            markers, info = lift_take(take, intrinsics=intr, smooth_s=opts.root_smooth_s)
        lifted = markers
        if opts.depth_refine:
            from .depth import DepthOptions, refine_markers_depth

            # live: no look-ahead, so no smoothing of the depth over time (the cleaner's One Euro filters)
            dopts = DepthOptions(smooth_s=0.0) if opts.mode == "live" else DepthOptions()
            with _stage(timings, "depth", bar):
                markers, info["depth"] = refine_markers_depth(markers, take, info, dopts)
            if info["depth"].get("skipped"):
                info.setdefault("notes", []).append(
                    f"depth pass skipped: the body landmarks' 3D agrees with their pixels within "
                    f"{1000 * info['depth']['mp_across_m']:.0f} mm (nothing to re-estimate)")
        result = solve_markers(markers, opts, lift_info=info, _bar=bar, _timings=timings)
        result.raw = lifted  # the raw baseline stays MediaPipe's lifted landmarks
    finally:
        if bar is not None:
            bar.close()
    return result
