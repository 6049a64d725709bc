"""Quality report: what cleanup did to a take, in numbers and plots, raw beside clean.

:func:`quality_report` compares the lifted markers (``raw``) with the cleaned ones
(``clean``, from :func:`mocap.cleanup.clean_markers`) and returns a JSON-ready dict;
:func:`format_report` turns it into a few lines for the CLI. Units are in every key:
``_m_s3`` (jerk, m/s^3), ``_mm``, ``_cm``, ``_s``, ``share`` (0..1).

Sections
--------
``jitter_m_s3``
    Mean jerk magnitude (:func:`mocap.filters.jitter`) per part (body, hands, face) and
    overall, raw and clean, and ``ratio`` = raw / clean. White noise has a lot of jerk and
    smooth motion little (10 mm of noise at 30 fps alone gives ~1900 m/s^3; a walk's true
    markers ~30), so the ratio is how much noise went.
``gaps``
    Per part: ``count`` of NaN runs (summed over markers), the ``longest`` in frames and
    seconds, ``missing_share`` (marker-frames missing) and ``part_lost_share`` (frames in
    which the whole part is missing), raw and clean.
``visibility``
    With the take's ``pose_visibility`` ``(T, 33)``: the share of landmark-frames, and of
    frames with any limb landmark, below 0.5; the worst landmarks.
``bones_mm``
    Per limb bone and side (:func:`mocap.cleanup.bone_length_tracks`): mean, ``std`` and
    ``range`` (max - min) of its length over the take, raw and clean. A rigid bone has
    std 0; raw MediaPipe bones wobble by centimetres.
``feet``
    Contacts (given, else :func:`mocap.contacts.detect_contacts` on the *clean* foot
    markers: ankle, heel, toe), the share of frames in contact per foot, and for raw and
    clean markers (and the solved motion, when given) :func:`mocap.contacts.foot_skate`:
    centimetres slid while in contact per foot, and floor penetration (max depth cm,
    share of frames). The same contacts are used for raw and clean so the two compare;
    raw foot tracks are held across their gaps (a gap slides nothing, the jump after it
    counts).
``motion``
    With a solved :class:`~mocap.motion.Motion`: frames, joints, and how far its joints
    are from the clean markers they follow (``fit_mm``, per the skeleton spec's markers).
``cleanup``
    The :class:`~mocap.cleanup.CleanReport` kept in ``clean.meta["cleanup"]``, if any.

With ``out_dir`` the dict is also written to ``report.json`` (atomically) with four PNG
plots beside it (matplotlib's Agg canvas, no pyplot state): ``jitter.png``,
``trajectories.png``, ``bone_lengths.png``, ``feet.png``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import filters as F  # noqa: N812
from .cleanup import bone_length_tracks, part_indices
from .errors import UsageError
from .markers import Markers

__all__ = ["SCHEMA", "SCHEMA_VERSION", "LOW_VISIBILITY", "PLOTS", "quality_report", "format_report"]

SCHEMA = "understudy.quality"
SCHEMA_VERSION = 1
LOW_VISIBILITY = 0.5
"""Visibility below which a landmark-frame counts as poorly seen."""
PLOTS = ("jitter.png", "trajectories.png", "bone_lengths.png", "feet.png")
"""The plot files :func:`quality_report` writes into ``out_dir``."""

_PARTS = ("body", "hands", "face")
_FOOT = ("ankle", "heel", "foot_index")
_LIMBS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel", "foot_index")


def _num(x: Any, nd: int = 4) -> float | None:
    """A JSON number (rounded to ``nd`` significant digits), ``None`` for NaN / inf."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{nd}g}")


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*a, **k)


# -- sections ---------------------------------------------------------------------------


def _jitter(m: Markers, parts: dict[str, np.ndarray]) -> dict[str, float | None]:
    out = {p: _num(F.jitter(m.points[:, idx], m.timestamps)) for p, idx in parts.items()}
    allidx = np.concatenate(list(parts.values())) if parts else np.zeros(0, int)
    out["overall"] = _num(F.jitter(m.points[:, allidx], m.timestamps)) if allidx.size else None
    return out


def _gaps(m: Markers, parts: dict[str, np.ndarray], dt: float) -> dict[str, dict[str, Any]]:
    out = {}
    for p, idx in parts.items():
        miss = np.isnan(m.points[:, idx, 0])  # (T, k)
        T = miss.shape[0]
        pad = np.zeros((1, miss.shape[1]), np.int8)
        d = np.diff(np.vstack([pad, miss.astype(np.int8), pad]), axis=0)
        starts = np.argwhere(d == 1)
        stops = np.argwhere(d == -1)
        order_s = np.lexsort((starts[:, 0], starts[:, 1]))
        order_e = np.lexsort((stops[:, 0], stops[:, 1]))
        lengths = stops[order_e, 0] - starts[order_s, 0]
        longest = int(lengths.max()) if lengths.size else 0
        out[p] = {
            "count": int(lengths.size),
            "longest_frames": longest,
            "longest_s": _num(longest * dt),
            "missing_share": _num(miss.mean() if miss.size else 0.0),
            "part_lost_share": _num(np.all(miss, axis=1).mean() if T else 0.0),
        }
    return out


def _visibility(visibility: Any) -> dict[str, Any] | None:
    if visibility is None:
        return None
    from .landmarks import POSE

    v = getattr(visibility, "pose_visibility", visibility)
    v = np.asarray(v, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(POSE):
        raise UsageError(f"quality_report: visibility must be (T, {len(POSE)}) pose visibility or a Take, "
                         f"got shape {v.shape}")
    low = ~(v >= LOW_VISIBILITY)  # NaN counts as low
    limbs = [i for i, n in enumerate(POSE) if any(n.endswith(s) and n.startswith(("left_", "right_"))
                                                  for s in _LIMBS)]
    per = low.mean(axis=0) if v.shape[0] else np.zeros(len(POSE))
    worst = np.argsort(-per, kind="stable")[:5]
    return {
        "threshold": LOW_VISIBILITY,
        "low_share": _num(low.mean() if low.size else 0.0),
        "frames_with_low_limb_share": _num(np.any(low[:, limbs], axis=1).mean() if v.shape[0] else 0.0),
        "worst": {POSE[i]: _num(per[i]) for i in worst if per[i] > 0},
    }


def _bone_stats(tracks: dict[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    out = {}
    for k, ln in tracks.items():
        ok = ln[np.isfinite(ln)]
        if ok.size < 2:
            out[k] = {"mean": _num(ok.mean() * 1e3) if ok.size else None, "std": None, "range": None}
            continue
        out[k] = {"mean": _num(ok.mean() * 1e3), "std": _num(ok.std() * 1e3), "range": _num(np.ptp(ok) * 1e3)}
    return out


def _foot_points(m: Markers) -> dict[str, np.ndarray]:
    out = {}
    for side in ("left", "right"):
        names = [f"pose.{side}_{n}" for n in _FOOT if f"pose.{side}_{n}" in m]
        if names:
            out[side] = m.select(names)
    return out


def _hold(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaN frames of ``(T, k, 3)`` per point (then back-fill the start)."""
    T = x.shape[0]
    ok = ~np.isnan(x[..., 0])  # (T, k)
    idx = np.where(ok, np.arange(T)[:, None], -1)
    idx = np.maximum.accumulate(idx, axis=0)
    first = np.argmax(ok, axis=0)
    idx = np.where(idx < 0, first[None, :], idx)
    return np.take_along_axis(x, idx[..., None], axis=0)


def _skate_summary(sk: dict, sides) -> dict[str, Any]:
    per_foot = {}
    for side in sides:
        cs = [c for c in sk["per_contact"] if c["foot"] == side]
        slides = [c["slide_cm"] for c in cs if math.isfinite(c["slide_cm"])]
        per_foot[side] = {
            "contacts": len(cs),
            "slide_cm": _num(sum(slides)),
            "slide_cm_per_contact": _num(np.mean(slides)) if slides else None,
            "slide_cm_max": _num(max(slides)) if slides else None,
        }
    fp = sk["floor_penetration"]
    return {"per_foot": per_foot,
            "floor_penetration": {"max_depth_cm": _num(fp["max_depth_cm"]),
                                  "share_frames": _num(fp["share_frames"])}}


def _feet(raw: Markers, clean: Markers, contacts: dict | None, motion) -> tuple[dict[str, Any] | None, dict]:
    from . import contacts as C

    fc = _foot_points(clean)
    if not fc:
        return None, {}
    T = len(clean)
    if contacts is None:
        source = "detected on the clean foot markers (mocap.contacts.detect_contacts)"
        cts = {s: C.detect_contacts(p, clean.timestamps) for s, p in fc.items()}
    else:
        source = "given"
        cts = {}
        for s, v in contacts.items():
            v = np.asarray(v, dtype=bool)
            if v.shape != (T,):
                raise UsageError(f"quality_report: contacts[{s!r}] must be ({T},) bool, got shape {v.shape}")
            if s in fc:
                cts[s] = v
    out: dict[str, Any] = {
        "contacts_source": source,
        "contact_share": {s: _num(v.mean() if v.size else 0.0) for s, v in cts.items()},
    }
    fr = {s: _hold(p) for s, p in _foot_points(raw).items() if s in cts}
    out["raw"] = _skate_summary(C.foot_skate(fr, {s: cts[s] for s in fr}), fr)
    out["clean"] = _skate_summary(C.foot_skate({s: _hold(fc[s]) for s in cts}, cts), cts)
    if motion is not None:
        try:
            mc = cts if len(motion) == T else C.motion_contacts(motion)
            out["motion"] = _skate_summary(C.foot_skate(motion, mc), mc)
        except (UsageError, KeyError) as e:  # a skeleton without the canonical legs
            out["motion"] = None
            out["motion_note"] = f"foot skate of the motion not measured: {e}"
    return out, cts


def _motion(motion, clean: Markers) -> dict[str, Any]:
    from .skeleton import canonical_spec

    sk = motion.skeleton
    P = motion.positions()
    fit = {}
    errs = []
    for joint, marker in canonical_spec().markers.items():
        if joint in sk and marker in clean and len(motion) == len(clean):
            d = np.sqrt(np.sum((P[:, sk.index(joint)] - clean.get(marker)) ** 2, axis=-1))
            d = d[np.isfinite(d)]
            if d.size:
                fit[joint] = _num(d.mean() * 1e3)
                errs.append(d)
    e = np.concatenate(errs) if errs else np.zeros(0)
    return {
        "frames": int(len(motion)),
        "joints": int(len(sk)),
        "fps": _num(motion.fps),
        "fit_mm": {"mean": _num(e.mean() * 1e3) if e.size else None,
                   "max": _num(e.max() * 1e3) if e.size else None,
                   "per_joint": fit},
    }


# -- the report -------------------------------------------------------------------------


def quality_report(raw: Markers, clean: Markers, *, motion=None, contacts: dict | None = None,
                   visibility=None, out_dir: str | os.PathLike | None = None) -> dict:
    """Cleanup quality, raw beside clean, as a JSON-ready dict (sections in the module
    docstring).

    ``raw``, ``clean``: :class:`Markers` with the same names and timestamps (the lifted
    markers and :func:`mocap.cleanup.clean_markers` of them). ``motion``: the solved
    :class:`~mocap.motion.Motion`, optional. ``contacts``: ``{"left": (T,) bool,
    "right": ...}``; detected on the clean markers when not given. ``visibility``: the
    take's ``pose_visibility`` ``(T, 33)``, or the :class:`~mocap.take.Take` itself.
    ``out_dir``: write ``report.json`` and the :data:`PLOTS` there (created if needed);
    the dict's ``files`` lists them, relative to ``out_dir``.
    """
    for what, m in (("raw", raw), ("clean", clean)):
        if not isinstance(m, Markers):
            raise UsageError(f"quality_report: {what} must be Markers, got {type(m).__name__}")
    if raw.names != clean.names or raw.points.shape != clean.points.shape:
        raise UsageError(f"quality_report: raw and clean must have the same markers and frames, got "
                         f"{raw.points.shape} and {clean.points.shape}")
    if not np.allclose(raw.timestamps, clean.timestamps):
        raise UsageError("quality_report: raw and clean timestamps differ")
    t = clean.timestamps
    T = len(clean)
    dt = float(np.median(np.diff(t))) if T > 1 else 0.0
    parts = part_indices(clean.names)
    parts = {p: parts[p] for p in _PARTS if p in parts}

    jr, jc = _jitter(raw, parts), _jitter(clean, parts)
    ratio = {k: _num(jr[k] / jc[k]) if jr[k] is not None and jc[k] else None for k in jr}
    br, bc = _bone_stats(bone_length_tracks(raw)), _bone_stats(bone_length_tracks(clean))

    def _agg(stats, key):
        v = [s[key] for s in stats.values() if s[key] is not None]
        return {"mean": _num(np.mean(v)) if v else None, "max": _num(np.max(v)) if v else None}

    feet, cts = _feet(raw, clean, contacts, motion)
    d: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "frames": T,
        "duration_s": _num(t[-1] - t[0] if T else 0.0),
        "fps": _num(1.0 / dt) if dt > 0 else None,
        "markers": len(clean.names),
        "parts": {p: int(idx.size) for p, idx in parts.items()},
        "jitter_m_s3": {"raw": jr, "clean": jc, "ratio": ratio},
        "gaps": {"raw": _gaps(raw, parts, dt), "clean": _gaps(clean, parts, dt)},
        "visibility": _visibility(visibility),
        "bones_mm": {
            "summary": {"raw_std": _agg(br, "std"), "clean_std": _agg(bc, "std"),
                        "raw_range": _agg(br, "range"), "clean_range": _agg(bc, "range")},
            "per_bone": {k: {"raw": br[k], "clean": bc[k]} for k in bc},
        },
        "feet": feet,
        "motion": _motion(motion, clean) if motion is not None else None,
        "cleanup": clean.meta.get("cleanup"),
    }
    d = _jsonable(d)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        d["files"] = ["report.json", *PLOTS]
        _plots(out, raw, clean, parts, jr, jc, cts)
        _atomic_write(out / "report.json", (json.dumps(d, indent=2, allow_nan=False) + "\n").encode("utf-8"))
    return d


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- plots ------------------------------------------------------------------------------


def _save(fig, path: Path) -> None:
    """Render ``fig`` on an Agg canvas and write the PNG atomically."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _atomic_write(path, buf.getvalue())


def _first(m: Markers, *names: str) -> str | None:
    return next((n for n in names if n in m), None)


def _plots(out: Path, raw: Markers, clean: Markers, parts, jr, jc, cts) -> None:
    from matplotlib.figure import Figure

    t = clean.timestamps
    raw_kw = {"color": "0.6", "lw": 0.8, "label": "raw"}
    clean_kw = {"color": "C0", "lw": 1.4, "label": "clean"}

    # 1. jitter per part, raw vs clean (log scale: they differ by an order of magnitude)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    keys = [k for k in (*parts, "overall") if jr.get(k) is not None]
    x = np.arange(len(keys))
    ax.bar(x - 0.2, [jr[k] for k in keys], 0.4, color="0.6", label="raw")
    ax.bar(x + 0.2, [jc[k] or 0.0 for k in keys], 0.4, color="C0", label="clean")
    ax.set_xticks(x, keys)
    if keys:
        ax.set_yscale("log")
    ax.set_ylabel("mean jerk (m/s³)")
    ax.set_title("Jitter per part")
    ax.legend()
    fig.tight_layout()
    _save(fig, out / "jitter.png")

    # 2. height of an ankle and a wrist over time
    fig = Figure(figsize=(8, 5))
    for k, name in enumerate((_first(clean, "pose.left_ankle", "pose.right_ankle"),
                              _first(clean, "pose.left_wrist", "pose.right_wrist"))):
        ax = fig.add_subplot(2, 1, k + 1)
        if name is not None:
            ax.plot(t, raw.get(name)[:, 1], **raw_kw)
            ax.plot(t, clean.get(name)[:, 1], **clean_kw)
            ax.set_title(f"{name}: height")
            ax.legend(loc="upper right")
        ax.set_ylabel("y (m)")
    ax.set_xlabel("time (s)")
    fig.tight_layout()
    _save(fig, out / "trajectories.png")

    # 3. thigh and forearm length over time
    br, bc = bone_length_tracks(raw), bone_length_tracks(clean)
    fig = Figure(figsize=(8, 5))
    for k, bone in enumerate(("thigh", "forearm")):
        ax = fig.add_subplot(2, 1, k + 1)
        key = next((f"{s}.{bone}" for s in ("left", "right") if f"{s}.{bone}" in bc), None)
        if key is not None:
            ax.plot(t, 100 * br[key], **raw_kw)
            ax.plot(t, 100 * bc[key], **clean_kw)
            ax.set_title(f"{key} length")
            ax.legend(loc="upper right")
        ax.set_ylabel("length (cm)")
    ax.set_xlabel("time (s)")
    fig.tight_layout()
    _save(fig, out / "bone_lengths.png")

    # 4. foot height (lowest foot marker) with the contacts shaded
    fig = Figure(figsize=(8, 5))
    fr, fc = _foot_points(raw), _foot_points(clean)
    for k, side in enumerate(("left", "right")):
        ax = fig.add_subplot(2, 1, k + 1)
        if side in fc:
            ax.plot(t, _quiet(np.nanmin, fr[side][..., 1], axis=1), **raw_kw)
            ax.plot(t, _quiet(np.nanmin, fc[side][..., 1], axis=1), **clean_kw)
            from .contacts import contact_segments

            for j, (s, e) in enumerate(contact_segments(cts.get(side, np.zeros(len(t), bool)))):
                ax.axvspan(t[s], t[min(e, len(t) - 1)], color="C2", alpha=0.2, lw=0,
                           label="contact" if j == 0 else None)
            ax.axhline(0.0, color="k", lw=0.6)
            ax.set_title(f"{side} foot: lowest marker")
            ax.legend(loc="upper right")
        ax.set_ylabel("height (m)")
    ax.set_xlabel("time (s)")
    fig.tight_layout()
    _save(fig, out / "feet.png")


# -- text -------------------------------------------------------------------------------


def _f(x: Any, fmt: str = ".3g") -> str:
    return "n/a" if x is None else format(x, fmt)


def format_report(d: dict) -> str:
    """A short human-readable summary of a :func:`quality_report` dict, for the CLI."""
    lines = [f"quality: {d.get('frames')} frames, {_f(d.get('duration_s'), '.1f')} s at {_f(d.get('fps'))} fps, "
             f"{d.get('markers')} markers"]
    j = d.get("jitter_m_s3") or {}
    parts = [k for k in (j.get("raw") or {})]
    lines.append("jitter (mean jerk, m/s^3) raw -> clean: " + "; ".join(
        f"{k} {_f(j['raw'][k], '.0f')} -> {_f(j['clean'][k], '.0f')} ({_f(j['ratio'][k], '.3g')}x)" for k in parts))
    g = (d.get("gaps") or {})
    if g.get("raw"):
        lines.append("missing raw -> clean: " + "; ".join(
            f"{p} {100 * (g['raw'][p]['missing_share'] or 0):.1f}% -> {100 * (g['clean'][p]['missing_share'] or 0):.1f}%"
            f" (longest gap {g['clean'][p]['longest_frames']} frames)" for p in g["raw"]))
    c = d.get("cleanup")
    if c:
        sw = ", ".join(f"{k} {v}" for k, v in (c.get("swaps") or {}).items())
        sp = ", ".join(f"{k} {v}" for k, v in (c.get("spikes") or {}).items())
        lines.append(f"cleanup ({c.get('mode')}): swapped frames repaired: {sw or 'none'}; spikes: {sp or 'none'}")
    b = (d.get("bones_mm") or {}).get("summary")
    if b:
        lines.append(f"bone length std (mm) raw -> clean: mean {_f(b['raw_std']['mean'])} -> {_f(b['clean_std']['mean'])}, "
                     f"worst {_f(b['raw_std']['max'])} -> {_f(b['clean_std']['max'])}")
    v = d.get("visibility")
    if v:
        lines.append(f"low visibility (< {v['threshold']}): {100 * (v['low_share'] or 0):.1f}% of landmark-frames, "
                     f"{100 * (v['frames_with_low_limb_share'] or 0):.1f}% of frames have a limb landmark below it")
    f = d.get("feet")
    if f:
        for key in ("raw", "clean", "motion"):
            s = f.get(key)
            if not s:
                continue
            slide = ", ".join(f"{side} {_f(p['slide_cm'], '.1f')} cm in {p['contacts']} contacts"
                              for side, p in s["per_foot"].items())
            fp = s["floor_penetration"]
            lines.append(f"feet {key}: slid {slide}; floor penetration max {_f(fp['max_depth_cm'], '.1f')} cm "
                         f"({100 * (fp['share_frames'] or 0):.0f}% of frames)")
    m = d.get("motion")
    if m:
        lines.append(f"motion: {m['frames']} frames, {m['joints']} joints, joints from markers "
                     f"{_f(m['fit_mm']['mean'])} mm mean, {_f(m['fit_mm']['max'])} mm max")
    return "\n".join(lines)
