"""Landmark cleanup: spikes out, short dropouts filled, noise smoothed. Pure numpy/scipy.

Every function takes a track ``x`` of shape ``(T, ...)`` -- T frames, anything after
(typically ``(T, N, 3)``: N landmarks, x y z) -- with **NaN where a landmark was not
found**, and the frame times ``t`` of shape ``(T,)`` in **seconds**, strictly increasing
but not necessarily evenly spaced (phones record at a variable frame rate). Lengths are
in the track's own units: metres for ``pose_world``, pixels for the image tracks. Where
a parameter is in those units, its name or docstring says so.

The pieces, in the order :func:`clean_track` chains them:

1. :func:`reject_spikes` -- one- and two-frame outliers become NaN.
2. :func:`fill_gaps` -- NaN dropouts up to ``max_gap_s`` long are bridged by a cubic
   through the neighbours on both sides; longer ones stay NaN.
3. Smoothing. Offline (a file): :func:`butterworth_zero_phase` (or :func:`savgol`),
   zero phase, so nothing lags. Live (a camera): :class:`OneEuroFilter`, causal, with a
   lag that shrinks as the landmark speeds up.

:data:`DEFAULTS` holds the per-part settings (body in metres, hands and face in pixels)
and why; :func:`jitter` and :func:`mean_abs_acc` measure the result.

All work is vectorised over landmarks. The offline filters group the columns that share
one NaN pattern (a whole part is usually lost at once) and filter each contiguous run of
valid frames of a group at once (one signal per row; several cutoffs share that work,
and long tracks are spread over two threads): :func:`clean_track` cleans a 10-minute
body track (18000 x 33 x 3) in about 0.1 s once scipy is loaded. Outputs are float64.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import UsageError

__all__ = [
    "OneEuroFilter",
    "one_euro",
    "butterworth_zero_phase",
    "savgol",
    "fill_gaps",
    "reject_spikes",
    "DEFAULTS",
    "CleanResult",
    "clean_track",
    "jitter",
    "mean_abs_acc",
]

_HOLE_DT = 5.0
"""A step between consecutive timestamps longer than this many median frame intervals
is a hole in the footage: the offline filters treat it like a NaN gap and filter the two
sides separately instead of smoothing across it."""


# -- shared checks and helpers --------------------------------------------------------


def _as_track(x: Any, t: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as float64 ``(T, ...)`` and ``t`` as float64 ``(T,)``, checked."""
    x = np.asarray(x, dtype=np.float64)  # no copy: callers copy before writing
    t = np.asarray(t, dtype=np.float64)
    if x.ndim == 0:
        raise UsageError(f"{what}: x must be an array of shape (T, ...), got a scalar")
    if t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise UsageError(f"{what}: t must have shape ({x.shape[0]},) to match x of shape "
                         f"{x.shape}, got {t.shape}")
    if not np.all(np.isfinite(t)):
        k = int(np.argmin(np.isfinite(t)))
        raise UsageError(f"{what}: timestamps must be finite, t[{k}]={t[k]}")
    if t.shape[0] > 1:
        d = np.diff(t)
        if np.any(d <= 0):
            k = int(np.argmax(d <= 0))
            raise UsageError(f"{what}: timestamps must increase strictly, t[{k}]={t[k]!r} "
                             f"then t[{k + 1}]={t[k + 1]!r}")
    return x, t


def _median_dt(t: np.ndarray) -> float:
    """Median frame interval in seconds (1/30 for fewer than two frames)."""
    return float(np.median(np.diff(t))) if t.shape[0] > 1 else 1.0 / 30.0


def _check_positive(what: str, **values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v > 0):
            raise UsageError(f"{what}: {name} must be a positive number, got {name}={v!r}")


def _pattern_groups(valid: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Columns of ``valid`` ``(T, C)`` grouped by identical NaN pattern.

    Returns ``[(cols, v), ...]``: the column indices of a group (ascending) and its
    ``(T,)`` pattern (a view into ``valid``).
    """
    T, C = valid.shape
    if C == 0:
        return []
    if T == 0:
        return [(np.arange(C), np.zeros(0, bool))]
    if C == 1 or not np.any(valid[:, 1:] != valid[:, :1]):
        return [(np.arange(C), valid[:, 0])]  # the usual case: one pattern for all
    keys = np.packbits(np.ascontiguousarray(valid.T), axis=1)  # (C, ceil(T/8))
    groups: dict[bytes, list[int]] = {}
    for c in range(C):
        groups.setdefault(keys[c].tobytes(), []).append(c)
    # in the order np.unique would give (by packed pattern): the order runs are met in
    # decides which of two nearly equal frame rates a filter design is made for
    return [(np.asarray(groups[k], dtype=np.int64), valid[:, groups[k][0]]) for k in sorted(groups)]


def _true_runs(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the runs of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], v.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _valid_runs(v: np.ndarray, t: np.ndarray, dt_med: float) -> list[tuple[int, int]]:
    """Runs of valid samples, also split where the timestamps leave a hole."""
    starts, stops = _true_runs(v)
    hole = np.flatnonzero(np.diff(t) > _HOLE_DT * dt_med) + 1  # a run breaks before these
    runs = []
    for s, e in zip(starts.tolist(), stops.tolist()):
        cuts = hole[(hole > s) & (hole < e)].tolist()
        bounds = [s, *cuts, e]
        runs += list(zip(bounds[:-1], bounds[1:]))
    return runs


def _interp_rows(tq: np.ndarray, tk: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows of ``Y`` ``(n, k)`` known at ``tk`` onto ``tq``."""
    k = np.clip(np.searchsorted(tk, tq, side="right") - 1, 0, tk.shape[0] - 2)
    w = ((tq - tk[k]) / (tk[k + 1] - tk[k]))[:, None]
    return Y[k] * (1.0 - w) + Y[k + 1] * w


def _on_uniform_grid(block: np.ndarray, ts: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn(block, fs)`` to a run sampled at ``ts``, evenly spaced or not.

    If the run's intervals are all within 1 % of their median, ``fn`` sees the samples as
    they are. Otherwise they are interpolated (linearly) onto an even grid spanning the
    same time with the run's median interval, filtered there, and interpolated back.
    """
    n = ts.shape[0]
    d = np.diff(ts)
    dt = float(np.median(d))
    if np.all(np.abs(d - dt) <= 0.01 * dt):
        return fn(block, 1.0 / dt)
    span = float(ts[-1] - ts[0])
    m = max(int(round(span / dt)) + 1, n)
    grid = np.linspace(ts[0], ts[-1], m)
    smooth = fn(_interp_rows(grid, ts, block), (m - 1) / span)
    return _interp_rows(ts, grid, smooth)


def _filter_runs(x: np.ndarray, t: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn(block (n, k), fs) -> (n, k)`` to every contiguous valid run of ``x``.

    ``x`` is ``(T, ...)``; columns sharing a NaN pattern are filtered together. NaN
    entries stay NaN and are never read.
    """
    T = x.shape[0]
    out = x.reshape(T, -1).copy()
    if T < 2:
        return out.reshape(x.shape)
    X = x.reshape(T, -1)
    dt_med = _median_dt(t)
    for cols_all, v in _pattern_groups(~np.isnan(X)):
        for s, e in _valid_runs(v, t, dt_med):
            if e - s < 2:
                continue
            for c0 in range(0, cols_all.size, 192):  # bounded memory for the face's 1434 columns
                cols = cols_all[c0:c0 + 192]
                out[s:e, cols] = _on_uniform_grid(X[s:e][:, cols], t[s:e], fn)
    return out.reshape(x.shape)


# -- 1. One Euro filter (live) --------------------------------------------------------


class OneEuroFilter:
    """The 1€ filter: a low-pass whose cutoff rises with speed, for live landmarks.

    Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for Noisy
    Input in Interactive Systems", CHI 2012 (https://gery.casiez.net/1euro/). Each
    sample goes through a first-order low-pass with time constant
    ``tau = 1 / (2 pi cutoff)`` and smoothing factor ``alpha = 1 / (1 + tau / dt)``,
    where ``dt`` is the *real* interval since the previous sample, so an irregular frame
    rate is handled exactly. The cutoff adapts to the speed::

        cutoff [Hz] = min_cutoff [Hz] + beta [Hz per unit/s = 1/unit] * |speed| [unit/s]

    ``speed`` is the step from the previous raw sample divided by ``dt`` (as in the
    authors' reference code), itself low-passed at ``d_cutoff``.

    Parameters (keyword-only)
    -------------------------
    min_cutoff : Hz
        Cutoff when the landmark is still. Lower = steadier, more lag on slow moves.
    beta : Hz per (unit/s), i.e. ``1/unit`` (``1/m`` for metres, ``1/px`` for pixels)
        How much each unit/s of speed raises the cutoff. Higher = less lag when moving.
    d_cutoff : Hz
        Cutoff of the speed estimate (default 1 Hz, the paper's value). Lower makes the
        cutoff less jumpy on noise but slower to open when a move starts.
    speed_axis : int or None
        ``None`` (the paper): every scalar has its own speed. An axis, e.g. ``-1`` for
        ``(N, 3)`` landmarks: the speed is the length of the velocity vector along that
        axis, so x, y and z of one point share one cutoff and a move along x opens the
        filter for y and z too (no anisotropic lag).

    Tuning, with numbers
    --------------------
    At a steady speed ``v`` the output trails by ``v * tau = v / (2 pi (min_cutoff +
    beta v))``, which tends to ``1 / (2 pi beta)`` for fast moves; at rest the cutoff is
    ``min_cutoff`` plus ``beta`` times the speed the noise fakes. So: set ``beta = 0``
    and lower ``min_cutoff`` until a still performer stops shimmering, then raise
    ``beta`` until fast moves stop trailing, and lower ``d_cutoff`` if the shimmer
    comes back.

    * Body landmarks in metres (``pose_world`` at 30 fps, MediaPipe jitter ~5 mm):
      :data:`DEFAULTS` ``["body"]`` is ``min_cutoff=0.1`` Hz, ``beta=6`` 1/m,
      ``d_cutoff=0.5`` Hz. The faked speed of a still wrist is ~0.025 m/s, so its cutoff
      is ~0.1 + 6 x 0.025 = 0.25 Hz and its jitter drops ~6x. A hand moving at 2 m/s
      gets 0.1 + 6 x 2 = 12.1 Hz, a lag of 2 / (2 pi 12.1) = 26 mm; walking pace
      (1.4 m/s) 8.5 Hz and 26 mm; no steady move trails by more than 1 / (2 pi 6) =
      27 mm. The price is the start of a move: the speed estimate (time constant
      1 / (2 pi 0.5) = 0.3 s) opens the cutoff late, so a 0.6 m reach in 0.4 s trails
      by up to ~10 cm mid-reach, and a vigorous dance keeps a few cm behind.
      ``d_cutoff`` is half the paper's 1 Hz because the length of a 3-D velocity is
      noisier than one coordinate's; at 1 Hz a still point keeps ~1/5 of its jitter
      instead of ~1/6.
    * Pixels (image tracks of 1080p footage): a full-body shot maps ~1 m to ~550 px,
      so speeds are ~550x larger and beta ~550x smaller. Hands use ``beta=0.02`` 1/px:
      a hand crossing the frame at 1000 px/s gets 0.5 + 0.02 x 1000 = 20.5 Hz, a lag
      of 1000 / (2 pi 20.5) = 8 px, never more than 1 / (2 pi 0.02) = 8 px.

    State
    -----
    Works on an array of any shape (e.g. ``(N, 3)`` -- all landmarks at once). A NaN
    (or infinite) input entry means "not found": its output is NaN and its state is
    dropped, so the next valid sample starts afresh (output = input) instead of being
    dragged towards where the landmark was before the dropout.

    >>> f = OneEuroFilter(min_cutoff=0.1, beta=6.0, d_cutoff=0.5, speed_axis=-1)
    >>> y = f(landmarks_xyz, t)  # per frame, t in seconds
    """

    def __init__(self, *, min_cutoff: float, beta: float, d_cutoff: float = 1.0,
                 speed_axis: int | None = None) -> None:
        _check_positive("OneEuroFilter", min_cutoff=min_cutoff, d_cutoff=d_cutoff)
        if not (math.isfinite(beta) and beta >= 0):
            raise UsageError(f"OneEuroFilter: beta must be >= 0, got beta={beta!r}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.speed_axis = speed_axis
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample is passed through and starts the state."""
        self.t_prev: float | None = None
        self._x: np.ndarray | None = None  # filtered value
        self._raw: np.ndarray | None = None  # previous input
        self._dx: np.ndarray | None = None  # filtered speed, unit/s
        self._has: np.ndarray | None = None  # which entries hold a state

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        # alpha = 1 / (1 + tau/dt), tau = 1/(2 pi fc)
        return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))

    def __call__(self, x: Any, t: float) -> np.ndarray:
        """Filter one sample ``x`` (any fixed shape) taken at time ``t`` seconds."""
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        if self._x is None:
            if self.speed_axis is not None and x.ndim == 0:
                raise UsageError(f"OneEuroFilter: speed_axis={self.speed_axis} needs array "
                                 "samples, got a scalar")
            self._x = np.full(x.shape, np.nan)
            self._raw = np.full(x.shape, np.nan)
            self._dx = np.zeros(x.shape)
            self._has = np.zeros(x.shape, bool)
            dt = 1.0  # unused: no entry has a state yet
        else:
            if x.shape != self._x.shape:
                raise UsageError(f"OneEuroFilter: sample shape changed from {self._x.shape} "
                                 f"to {x.shape}; use one filter per track")
            dt = t - self.t_prev
            if not dt > 0:
                raise UsageError(f"OneEuroFilter: timestamps must increase, got t_prev="
                                 f"{self.t_prev!r}, t={t!r} (dt={dt!r} s)")
        valid = np.isfinite(x)
        cont = valid & self._has  # continues a state
        with np.errstate(invalid="ignore"):
            dx = np.where(cont, (x - self._raw) / dt, 0.0)
            a_d = self._alpha(self.d_cutoff, dt)
            dx_hat = np.where(cont, a_d * dx + (1.0 - a_d) * self._dx, 0.0)
            if self.speed_axis is None:
                speed = np.abs(dx_hat)
            else:
                speed = np.sqrt(np.sum(dx_hat * dx_hat, axis=self.speed_axis, keepdims=True))
            a = self._alpha(self.min_cutoff + self.beta * speed, dt)
            x_hat = np.where(cont, a * x + (1.0 - a) * self._x, np.where(valid, x, np.nan))
        self._x, self._raw, self._dx, self._has = x_hat, x, dx_hat, valid
        self.t_prev = t
        return x_hat.copy()


def one_euro(x: Any, t: Any, **params: Any) -> np.ndarray:
    """Run a :class:`OneEuroFilter` over a whole track, frame by frame.

    ``x`` ``(T, ...)``, ``t`` ``(T,)`` seconds; ``params`` are the filter's
    (``min_cutoff``, ``beta``, ``d_cutoff``, ``speed_axis`` -- an axis of one *sample*,
    so ``-1`` for ``(T, N, 3)``). The output ``(T, ...)`` is identical to feeding the
    frames one at a time: it is the live result, lag included.
    """
    x, t = _as_track(x, t, "one_euro")
    f = OneEuroFilter(**params)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = f(x[i], t[i])
    return out


# -- 2. zero-phase offline filters ----------------------------------------------------


def butterworth_zero_phase(x: Any, t: Any, *, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Butterworth low-pass run forwards and backwards: no lag, for recorded takes.

    ``x`` ``(T, ...)`` with NaN gaps, ``t`` ``(T,)`` s. Returns ``(T, ...)`` float64.

    ``scipy.signal.butter(order, cutoff_hz, output="sos")`` applied with
    ``sosfiltfilt`` (``filtfilt`` in second-order sections, which stays numerically sound
    at low cutoffs). Forward-backward doubles the order and makes the gain at
    ``cutoff_hz`` 0.5 (-6 dB) instead of 0.71; the phase is exactly zero. For body
    motion 4-6 Hz is the usual choice (Winter's 6 Hz for walking markers; MediaPipe is
    noisier, so :data:`DEFAULTS` uses 5).

    **Irregular timing.** A filter needs evenly spaced samples. Where a run's intervals
    all lie within 1 % of their median it is filtered as it is; otherwise it is
    interpolated linearly onto an even grid with the run's median interval, filtered,
    and interpolated back onto the original timestamps. So a phone's variable frame rate
    and the odd dropped frame cost nothing but a little interpolation.

    **Gaps.** Each contiguous run of valid samples is filtered on its own (NaN never
    enters the filter, so it cannot spread); a timestamp step longer than 5 median
    intervals also splits a run. A run longer than the filter's edge padding
    (``3 * (2 * sections + 1)`` = 15 samples for order 4, half a second at 30 fps) gets
    the standard odd-reflection padding; a shorter run of 4 or more samples is filtered
    with the padding it has (``padlen = n - 1``), so fragments between dropouts are still
    smoothed, a little less well at their ends; runs of 1-3 samples are left as they are
    (unless their timing is irregular: they still go to the even grid and back).

    **Cost.** The filtering is ``sosfiltfilt``'s, step for step (so the same numbers),
    run along contiguous rows (one column of a run per row), with each design made once
    and cached; a long track is split over two threads (18000 frames x 105 columns:
    ~50 ms on one core). A column that is constant over a run (a joint held at rest) is
    copied instead: the filter's gain at 0 Hz is 1.

    Raises :class:`UsageError` if ``cutoff_hz`` is not below the Nyquist frequency
    (half the median frame rate).
    """
    x, t = _as_track(x, t, "butterworth_zero_phase")
    return _lowpass_bank(x, t, [(cutoff_hz, order)], "butterworth_zero_phase")[0].reshape(x.shape)


@functools.lru_cache(maxsize=512)
def _butter_design(order: int, wc: float, fs: float) -> tuple[np.ndarray, np.ndarray, int]:
    """``(sos, zi, padlen)`` of a Butterworth low-pass: ``butter(order, wc, fs=fs,
    output="sos")``, its ``sosfilt_zi`` and sosfiltfilt's default edge padding
    (3 x its taps). Cached: residual analysis asks for the same designs again and again."""
    from scipy.signal import butter, sosfilt_zi

    sos = butter(order, wc, fs=fs, output="sos")
    ntaps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return sos, sosfilt_zi(sos), 3 * ntaps


def _sosfilt_core():
    """scipy's in-place second-order-sections loop, ``_sosfilt(sos, x, zi)`` (what
    ``sosfilt`` runs after copying its input and state), or ``None`` in a scipy that
    does not have it under that name (then the public ``sosfilt`` is used: the same
    numbers, two copies more per pass)."""
    try:
        from scipy.signal._sosfilt import _sosfilt
    except ImportError:
        return None
    return _sosfilt


def _filtfilt_rows(core, sos: np.ndarray, zi: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)`` for ``x`` ``(k, n)``
    (one signal per row, ``0 < padlen < n``), step for step (the same odd extension,
    initial conditions and passes), so the result is identical; it only skips the
    transposes that filtering along axis 0 costs. ``core`` is :func:`_sosfilt_core`'s:
    the passes then filter our own arrays in place (``sosfilt`` copies its input, which
    costs about as much as the filtering itself), else scipy's ``sosfilt`` is used."""
    ext = np.concatenate((2 * x[:, :1] - x[:, padlen:0:-1], x,
                          2 * x[:, -1:] - x[:, -2:-(padlen + 2):-1]), axis=1)
    if core is None:
        from scipy.signal import sosfilt

        z = zi.reshape(zi.shape[0], 1, 2)
        y, _ = sosfilt(sos, ext, axis=-1, zi=z * ext[:, :1])
        y, _ = sosfilt(sos, y[:, ::-1], axis=-1, zi=z * y[:, -1:])
        return y[:, ::-1][:, padlen:ext.shape[1] - padlen]
    # the state (k, sections, 2) as sosfilt builds it: zi times the first sample
    core(sos, ext, zi[None] * ext[:, :1, None])  # forwards, in place
    y = ext[:, ::-1].copy()
    core(sos, y, zi[None] * y[:, :1, None])  # backwards, in place
    return y[:, ::-1][:, padlen:ext.shape[1] - padlen]


_RUN_COLUMNS = 192
"""Columns filtered together at most (bounded memory for the face's 1434 columns)."""


def _lowpass_bank(x: np.ndarray, t: np.ndarray, specs: list[tuple[float, int]], what: str,
                  out: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """:func:`butterworth_zero_phase` of ``x`` ``(T, ...)`` (checked by ``_as_track``) for
    each ``(cutoff_hz, order)`` of ``specs``: a list of ``(T, C)`` arrays, C the scalars
    of a frame, written into ``out`` (arrays or views of that shape) if given. The NaN
    patterns, valid runs, timing checks and the rows of each run (one signal per row)
    are worked out once for all the filters; the filtering itself may run on
    :data:`_WORKERS` threads (scipy's ``sosfilt`` releases the GIL), each writing its own
    part of an output, so the result does not depend on it."""
    core = _sosfilt_core()
    T = x.shape[0]
    X = x.reshape(T, -1)
    fs_med = 1.0 / _median_dt(t)
    for cutoff_hz, order in specs:
        if not (isinstance(order, (int, np.integer)) and 1 <= order <= 10):
            raise UsageError(f"{what}: order must be an integer 1..10, got order={order!r}")
        _check_positive(what, cutoff_hz=cutoff_hz)
        if T > 1 and cutoff_hz >= 0.5 * fs_med:
            raise UsageError(f"{what}: cutoff_hz={cutoff_hz} must be below the Nyquist "
                             f"frequency {0.5 * fs_med:.3g} Hz of this {fs_med:.3g} fps track")
    runs = []
    if T >= 2:
        dt_med = _median_dt(t)
        runs = [(cols_all, _valid_runs(v, t, dt_med)) for cols_all, v in _pattern_groups(~np.isnan(X))]
    # one run covering everything is filtered whole: the outputs need no copy of the input
    full = len(runs) == 1 and runs[0][1] == [(0, T)] and T >= 4
    if out is None:
        outs = [np.empty_like(X) if full else X.copy() for _ in specs]
    else:
        outs = out
        if not full:
            for o in outs:
                o[...] = X
    caches: list[dict[float, tuple[np.ndarray, np.ndarray, int]]] = [{} for _ in specs]
    jobs = []
    for cols_all, col_runs in runs:
        for s, e in col_runs:
            if e - s < 2:
                continue
            ts = t[s:e]
            d = np.diff(ts)
            dt = float(np.median(d))
            uniform = bool(np.all(np.abs(d - dt) <= 0.01 * dt))
            if uniform:
                fs, grid = 1.0 / dt, None
            else:  # filtered on an even grid spanning the run (see butterworth_zero_phase)
                span = float(ts[-1] - ts[0])
                m = max(int(round(span / dt)) + 1, e - s)
                grid = np.linspace(ts[0], ts[-1], m)
                fs = (m - 1) / span
            # columns per job: at most _RUN_COLUMNS, and few enough that a big run makes
            # two jobs per thread even for one or two filters
            per = _RUN_COLUMNS
            if _WORKERS > 1 and len(specs) < 2 * _WORKERS and (e - s) * cols_all.size >= _PARALLEL_SAMPLES:
                per = min(per, max(16, -(-cols_all.size // -(-2 * _WORKERS // len(specs)))))
            for c0 in range(0, cols_all.size, per):
                cols = cols_all[c0:c0 + per]
                where = (slice(s, e),) if cols.size == X.shape[1] else (slice(s, e), cols)
                block = X[where]
                if grid is not None:
                    block = _interp_rows(grid, ts, block)
                n = block.shape[0]
                if n < 4 and grid is None:
                    continue  # too short to filter: left as it is
                if grid is None:
                    # a constant signal (a joint held at rest, a finger never seen) leaves a
                    # low-pass as it came in (gain 1 at 0 Hz): copied, not filtered
                    const = (block == block[:1]).all(axis=0)
                    if const.all():
                        for o in outs:
                            o[where] = block
                        continue
                    if const.any():
                        for o in outs:
                            o[s:e, cols[const]] = block[:, const]
                        cols, block = cols[~const], block[:, ~const]
                        where = (slice(s, e), cols)
                rows = np.ascontiguousarray(block.T)  # (k, n): one signal per row
                for o, cache, (cutoff_hz, order) in zip(outs, caches, specs):
                    if n < 4:  # (on a grid it still goes there and back, as it always has)
                        o[where] = _interp_rows(ts, grid, rows.T)
                        continue
                    key = round(fs, 6)
                    if key not in cache:
                        cache[key] = _butter_design(int(order), min(cutoff_hz, 0.49 * fs), fs)
                    sos, zi, padlen = cache[key]
                    jobs.append((o, where, ts, grid, rows, sos, zi, min(padlen, n - 1)))

    def work(job) -> None:
        o, where, ts, grid, rows, sos, zi, padlen = job
        y = _filtfilt_rows(core, sos, zi, rows, padlen).T  # (n, k)
        o[where] = y if grid is None else _interp_rows(ts, grid, y)

    _run_jobs(work, jobs, sum(job[4].size for job in jobs))
    return outs


_WORKERS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
"""Threads the zero-phase filters may use (scipy's ``sosfilt`` releases the GIL): two
when the process may run on two or more CPUs."""

_PARALLEL_SAMPLES = 1 << 18
"""Samples below which the filters run on the calling thread only."""


def _run_jobs(work, jobs: list, samples: int) -> None:
    """``work(job)`` for every job: on :data:`_WORKERS` threads when there are at least
    two jobs and :data:`_PARALLEL_SAMPLES` samples, else one after the other. The jobs
    must write disjoint outputs. A pool lives only for the call (nothing to inherit
    across a fork)."""
    if _WORKERS < 2 or len(jobs) < 2 or samples < _PARALLEL_SAMPLES:
        for job in jobs:
            work(job)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="mocap-filter") as ex:
        for _ in ex.map(work, jobs):
            pass


def savgol(x: Any, t: Any, *, window_s: float, polyorder: int = 3) -> np.ndarray:
    """Savitzky-Golay smoothing (a sliding least-squares polynomial), zero phase.

    ``x`` ``(T, ...)`` with NaN gaps, ``t`` ``(T,)`` s. Returns ``(T, ...)`` float64.

    ``window_s`` is the window length in seconds, turned into an odd number of frames
    at the median frame rate (0.35 s at 30 fps -> 11 frames). It keeps peaks better than
    a Butterworth of similar smoothing (polynomials up to ``polyorder`` pass exactly) but
    lets more high-frequency noise through. Its -3 dB frequency is about
    ``(polyorder + 1) / (3.2 M - 4.6) * fps / 2`` for a window of ``2 M + 1`` frames
    (Schafer, "What is a Savitzky-Golay filter?", IEEE Signal Processing Magazine 2011):
    11 frames at 30 fps with ``polyorder=3`` -> ~5 Hz.

    Irregular timing and gaps are handled as in :func:`butterworth_zero_phase`: each
    valid run is filtered on its own, on an even grid if its timing is irregular; the run
    ends use ``mode="interp"`` (a polynomial fitted to the end window). A run shorter
    than the window gets the largest odd window that fits it; a run too short for a
    window above ``polyorder`` is left as it is.
    """
    from scipy.signal import savgol_filter

    x, t = _as_track(x, t, "savgol")
    _check_positive("savgol", window_s=window_s)
    if not (isinstance(polyorder, (int, np.integer)) and polyorder >= 0):
        raise UsageError(f"savgol: polyorder must be a non-negative integer, got polyorder={polyorder!r}")
    fs_med = 1.0 / _median_dt(t)
    w_med = int(round(window_s * fs_med)) | 1
    if x.shape[0] > 1 and w_med <= polyorder:
        raise UsageError(f"savgol: window_s={window_s} is {w_med} frames at {fs_med:.3g} fps; it "
                         f"must span more than polyorder={polyorder} frames")

    def fn(block: np.ndarray, fs: float) -> np.ndarray:
        n = block.shape[0]
        w = min(int(round(window_s * fs)) | 1, n if n % 2 else n - 1)
        if w <= polyorder:
            return block
        return savgol_filter(block, w, polyorder, axis=0, mode="interp")

    return _filter_runs(x, t, fn)


# -- 3. gap filling -------------------------------------------------------------------


def _lagrange_weights(tn: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Weights ``(..., k)`` of the polynomial through nodes ``tn`` ``(..., k)`` at ``tq`` ``(...)``."""
    k = tn.shape[-1]
    w = np.ones(tn.shape)
    for j in range(k):
        for m in range(k):
            if m != j:
                w[..., j] *= (tq - tn[..., m]) / (tn[..., j] - tn[..., m])
    return w


def fill_gaps(x: Any, t: Any, *, max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Bridge short NaN dropouts; leave long ones and the ends alone.

    ``x`` ``(T, ...)``, ``t`` ``(T,)`` s. Returns ``(filled, filled_mask)``: the track
    ``(T, ...)`` float64 and a bool array of the same shape, True where a value was
    filled in. Whatever is still NaN in ``filled`` is missing.

    A gap's length is the time with no observation: ``t[after] - t[before]`` minus one
    median frame interval, so ``k`` missing frames at 30 fps last ``k / 30`` s. Gaps up to
    ``max_gap_s`` (seconds) are filled with the cubic through the **two valid samples on
    each side** (the classic four-point cubic, in real time, so irregular timing is
    respected), or with a straight line when a side has only one valid sample before the
    next gap. Gaps at the start or end of the track have one side only and are not
    extrapolated. Only original samples are used as neighbours, never filled ones.

    Each scalar column is treated on its own; columns sharing a NaN pattern (the x, y, z
    of a landmark, or a whole part lost at once) are filled together.
    """
    x, t = _as_track(x, t, "fill_gaps")
    _check_positive("fill_gaps", max_gap_s=max_gap_s)
    T = x.shape[0]
    X = x.reshape(T, -1)
    out = X.copy()
    mask = np.zeros(X.shape, bool)
    if T < 3:
        return out.reshape(x.shape), mask.reshape(x.shape)
    dt_med = _median_dt(t)
    tol = 1e-6 * dt_med
    for cols, v in _pattern_groups(~np.isnan(X)):
        g0, g1 = _true_runs(~v)  # NaN runs [g0, g1)
        inner = (g0 > 0) & (g1 < T)
        g0, g1 = g0[inner], g1[inner]
        b, a = g0 - 1, g1  # last valid before, first valid after
        ok = (t[a] - t[b] - dt_med) <= max_gap_s + tol
        g0, g1, b, a = g0[ok], g1[ok], b[ok], a[ok]
        if g0.size == 0:
            continue
        cubic = (b >= 1) & (a <= T - 2)
        cubic[cubic] = v[b[cubic] - 1] & v[a[cubic] + 1]
        lengths = g1 - g0
        gid = np.repeat(np.arange(g0.size), lengths)
        idx = g0[gid] + np.arange(gid.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        tq = t[idx]
        # four nodes per sample; linear gaps use (b, b, a, a) with weights on b and a only
        nodes = np.stack([b - 1, b, a, a + 1], axis=1)[gid]
        cub = cubic[gid]
        w = np.zeros((gid.size, 4))
        if np.any(cub):
            w[cub] = _lagrange_weights(t[nodes[cub]], tq[cub])
        lin = ~cub
        if np.any(lin):
            tb, ta = t[nodes[lin, 1]], t[nodes[lin, 2]]
            w[lin, 1] = (ta - tq[lin]) / (ta - tb)
            w[lin, 2] = (tq[lin] - tb) / (ta - tb)
            nodes[lin, 0] = nodes[lin, 1]
            nodes[lin, 3] = nodes[lin, 2]
        vals = X[nodes[:, :, None], cols[None, None, :]]  # (S, 4, k)
        out[idx[:, None], cols[None, :]] = np.einsum("sn,snk->sk", w, vals)
        mask[idx[:, None], cols[None, :]] = True
    return out.reshape(x.shape), mask.reshape(x.shape)


# -- 4. spike rejection ---------------------------------------------------------------

_CHI_MEDIAN = {1: 0.6744897501960817, 2: 1.1774100225154747, 3: 1.5381722544550522}
"""Median of the length of a d-dimensional standard normal vector: turns the median
residual length into a per-coordinate standard deviation."""


_AGREE = {1: 0.75, 2: 0.5}
"""How much closer the neighbours must agree with each other than the suspect sample(s)
agree with them (see :func:`reject_spikes`), for one- and two-sample spikes. At a step
of height s (a jump that stays) the single-sample residual is s/2 and the two-sample
residual at most 0.3 s, with neighbours disagreeing by s, so both factors keep steps;
the two-sample factor is smaller because extrapolating two frames doubles the noise in
the disagreement."""


def _length(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", a, a))


def _lagrange4(t0, t1, t2, t3, tq):
    """Weights of the cubic through nodes at ``t0 .. t3`` evaluated at ``tq`` (arrays
    that broadcast). One formula for every path of :func:`_spike_mask`, so they agree
    to the bit."""
    c0 = 1.0 / ((t0 - t1) * (t0 - t2) * (t0 - t3))
    c1 = 1.0 / ((t1 - t0) * (t1 - t2) * (t1 - t3))
    c2 = 1.0 / ((t2 - t0) * (t2 - t1) * (t2 - t3))
    c3 = 1.0 / ((t3 - t0) * (t3 - t1) * (t3 - t2))
    e0, e1, e2, e3 = tq - t0, tq - t1, tq - t2, tq - t3
    return e1 * e2 * e3 * c0, e0 * e2 * e3 * c1, e0 * e1 * e3 * c2, e0 * e1 * e2 * c3


def _cubic_residual(w, xn, xq):
    """Length of ``xq`` ``(..., D)`` minus the cubic with weights ``w`` (4 arrays ``(...)``)
    through the node values ``xn`` (4 arrays ``(..., D)``)."""
    pred = w[0][..., None] * xn[0]
    for k in (1, 2, 3):
        pred = pred + w[k][..., None] * xn[k]
    return _length(xq - pred)


def _disagreement(tn, xn, tq):
    """The neighbours' disagreement at ``tq``: the line through the two left nodes vs
    the line through the two right nodes (``tn``, ``xn`` as in :func:`_cubic_residual`)."""
    left = xn[1] + (xn[1] - xn[0]) * ((tq - tn[1]) / (tn[1] - tn[0]))[..., None]
    right = xn[2] + (xn[3] - xn[2]) * ((tq - tn[2]) / (tn[3] - tn[2]))[..., None]
    return _length(left - right)


def _block_medians(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and count of the non-NaN values of each row of ``vals`` ``(m, B)`` (NaN
    and 0 for an empty row); the mean of the two middle values for an even count, as
    ``np.nanmedian`` gives."""
    s = np.sort(vals, axis=1)  # NaN last
    cnt = np.count_nonzero(~np.isnan(s), axis=1)
    lo = np.take_along_axis(s, np.maximum((cnt - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (cnt // 2)[:, None], axis=1)[:, 0]
    med = (lo + hi) / 2.0
    med[cnt == 0] = np.nan
    return med, cnt


def _neighbours(v: np.ndarray, t: np.ndarray, ii: np.ndarray, pp: np.ndarray, reach: float):
    """For entries ``(ii, pp)`` of the validity mask ``v`` ``(T, P)``: the two valid
    frames before and the three after (``L2, L1, R1, R2, R3``), looked for within
    ``reach`` seconds; -1 (before) or T (after) where there is none within reach."""
    T = v.shape[0]
    lo = np.searchsorted(t, t[ii] - reach, side="left")
    hi = np.searchsorted(t, t[ii] + reach, side="right")
    W = int(np.max(hi - lo)) if ii.size else 1
    rows = lo[:, None] + np.arange(W)
    vv = v[np.minimum(rows, T - 1), pp[:, None]] & (rows < hi[:, None])
    before = vv & (rows < ii[:, None])
    after = vv & (rows > ii[:, None])
    rank_b = np.cumsum(before[:, ::-1], axis=1)[:, ::-1]  # 1: the nearest before
    rank_a = np.cumsum(after, axis=1)
    L = [np.max(np.where(before & (rank_b == k), rows, -1), axis=1) for k in (2, 1)]
    R = [np.min(np.where(after & (rank_a == k), rows, T), axis=1) for k in (1, 2, 3)]
    return (*L, *R)


def _stencils(X, t, v, ii, pp, dt_med, *, full: bool):
    """The spike tests of :func:`_spike_mask` for the entries ``(ii, pp)`` of ``X``
    ``(T, P, D)`` with validity ``v`` ``(T, P)``: ``ok1``, ``r1`` (one sample between two
    valid samples on each side), ``ok2``, ``ra`` (two samples ``i`` and ``J = R1``,
    residual at ``i``) and, with ``full``, also ``d1``, ``rb``, ``da``, ``db`` (the
    neighbours' disagreement of the one-sample test, the residual at ``J``, the
    disagreements at ``i`` and ``J``) and ``J``. Values where the test is not ok are
    meaningless."""
    T = X.shape[0]
    L2, L1, R1, R2, R3 = _neighbours(v, t, ii, pp, 8.0 * dt_med)
    tL2, tL1, tR1, tR2, tR3 = (t[np.clip(k, 0, T - 1)] for k in (L2, L1, R1, R2, R3))
    vr = v[ii, pp]
    out = {"ok1": vr & (L2 >= 0) & (R2 < T) & (tR2 - tL2 <= 6.5 * dt_med),
           "ok2": vr & (L2 >= 0) & (R3 < T) & (tR3 - tL2 <= 7.5 * dt_med)}
    xL2, xL1, xR1, xR2, xR3 = (X[np.clip(k, 0, T - 1), pp] for k in (L2, L1, R1, R2, R3))
    tq, xq = t[ii], X[ii, pp]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        n1t, n1x = (tL2, tL1, tR1, tR2), (xL2, xL1, xR1, xR2)
        n2t, n2x = (tL2, tL1, tR2, tR3), (xL2, xL1, xR2, xR3)
        out["r1"] = _cubic_residual(_lagrange4(*n1t, tq), n1x, xq)
        out["ra"] = _cubic_residual(_lagrange4(*n2t, tq), n2x, xq)
        if full:
            out["d1"] = _disagreement(n1t, n1x, tq)
            out["rb"] = _cubic_residual(_lagrange4(*n2t, tR1), n2x, xR1)
            out["da"] = _disagreement(n2t, n2x, tq)
            out["db"] = _disagreement(n2t, n2x, tR1)
            out["J"] = R1
    return out


_SPIKE_CHUNK = 128
"""Points processed at once by :func:`reject_spikes` (bounds the memory for the face)."""

_SPIKE_SLAB = 1 << 16
"""Scalars per slab of the dense first pass of :func:`_spike_mask` (cache-sized)."""


def _dense_residuals(X: np.ndarray, f: np.ndarray, cols: np.ndarray | None, t: np.ndarray, dt_med: float,
                     ok1: np.ndarray, r1: np.ndarray, ok2: np.ndarray, ra: np.ndarray) -> None:
    """The first pass of :func:`_spike_mask` for a group of points ``cols`` (``None``:
    all) of ``X`` ``(T, P, D)`` that are valid in exactly the frames ``f``. Along ``f``
    every stencil is frames ``k-2 .. k+3``, so the cubic weights are per frame and the
    points are done together, a cache-sized slab of frames at a time. Writes the flags
    ``ok1``, ``ok2`` ``(T, P)`` and the residuals ``r1``, ``ra`` (rows ``>= T``; NaN where
    not ok: they must come in NaN) of the group's entries."""
    n = f.size
    g = X.shape[1] if cols is None else cols.size
    D = X.shape[2]
    k = np.arange(2, n - 2)  # frames with two valid frames on each side
    if k.size == 0:
        return
    tc = t[f]
    o1 = np.zeros(n, bool)
    o2 = np.zeros(n, bool)
    o1[k] = tc[k + 2] - tc[k - 2] <= 6.5 * dt_med
    o2[k[:-1]] = tc[k[:-1] + 3] - tc[k[:-1] - 2] <= 7.5 * dt_med
    if cols is None:
        ok1[f], ok2[f] = o1[:, None], o2[:, None]
    else:
        ok1[f[:, None], cols], ok2[f[:, None], cols] = o1[:, None], o2[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        w1 = _lagrange4(tc[:-4], tc[1:-3], tc[3:-1], tc[4:], tc[2:-2])  # frame k at [k - 2]
        w2 = _lagrange4(tc[:-5], tc[1:-4], tc[4:-1], tc[5:], tc[2:-3])
    step = max(16, _SPIKE_SLAB // max(g * D, 1))
    p = np.empty((min(step, n), g, D))
    q = np.empty_like(p)
    res = np.empty((min(step, n), g))

    def residual(w, offs, xs, a, b, ok, out):
        # |x_k - sum_j w_j x_(k + offs_j)| for k in [a, b), summed as in _cubic_residual
        # (xs holds frames a - 2 .. b + 2); NaN where not ok; into out at rows f[a:b]
        m = b - a
        pm, qm, rm = p[:m], q[:m], res[:m]
        np.multiply(w[0][a - 2:b - 2, None, None], xs[2 + offs[0]:2 + offs[0] + m], out=pm)
        for j in (1, 2, 3):
            np.multiply(w[j][a - 2:b - 2, None, None], xs[2 + offs[j]:2 + offs[j] + m], out=qm)
            np.add(pm, qm, out=pm)
        np.subtract(xs[2:2 + m], pm, out=pm)
        np.einsum("...i,...i->...", pm, pm, out=rm)
        np.sqrt(rm, out=rm)
        rm[~ok[a:b]] = np.nan
        if cols is None:
            out[f[a:b]] = rm
        else:
            out[f[a:b, None], cols] = rm

    for a in range(2, n - 2, step):
        b = min(a + step, n - 2)
        rows = f[a - 2:min(b + 3, n)]
        xs = X[rows] if cols is None else X[rows[:, None], cols[None, :]]
        residual(w1, (-2, -1, 1, 2), xs, a, b, o1, r1)
        b2 = min(b, n - 3)
        if b2 > a:
            residual(w2, (-2, -1, 2, 3), xs, a, b2, o2, ra)


def _spike_mask(X: np.ndarray, t: np.ndarray, threshold: float, floor: float,
                window_s: float) -> np.ndarray:
    """The work of :func:`reject_spikes` on ``X`` ``(T, P, D)``: the ``(T, P)`` spike mask.

    Per entry (frame i, point p) two residuals are kept, each with a flag saying whether
    its stencil is complete: ``r1`` (i between two valid samples on each side) and
    ``ra`` (i and the next valid sample J between two on each side, residual at i). The
    first pass computes them for all entries at once, group by group of points sharing
    one validity pattern (the stencils are then fixed offsets along the group's valid
    frames); a later pass recomputes only the entries within reach of a new spike (a
    stencil that is incomplete stays so as samples are removed). The robust scale is a
    median per block of ``window_s`` and point, recomputed only for the blocks that
    changed. Candidates are the entries whose residual exceeds their block's limit (a
    necessary condition of both tests); only for them are the other terms (the
    neighbours' disagreements, the residual at J) computed and the score kept.
    """
    T, P, D = X.shape
    valid0 = ~np.isnan(X[..., 0])
    for d in range(1, D):
        valid0 &= ~np.isnan(X[..., d])
    dt_med = _median_dt(t)
    c_d = _CHI_MEDIAN.get(D, math.sqrt(max(D - 2.0 / 3.0, 0.5)))
    B = max(8, int(round(window_s / dt_med)))
    nb = -(-T // B)
    reach = 8.0 * dt_med  # beyond this no stencil is complete (6.5 / 7.5 median intervals)

    # -- the first pass, dense: r1 and ra of every entry
    ok1 = np.zeros((T, P), bool)
    ok2 = np.zeros((T, P), bool)
    r1 = np.full((nb * B, P), np.nan)  # padded to whole blocks; NaN where not ok1
    ra = np.full((nb * B, P), np.nan)  # NaN where not ok2
    for cols, vp in _pattern_groups(valid0):
        f = np.flatnonzero(vp)
        if f.size >= 5:
            _dense_residuals(X, f, None if cols.size == P else cols, t, dt_med, ok1, r1, ok2, ra)
    r1_blocks = r1.reshape(nb, B, P)
    ra_blocks = ra.reshape(nb, B, P)

    # robust residual scale per block and point: the median of r1 over the block; a
    # block with fewer than 8 values uses its point's median over the whole track
    med, cnt = (a.reshape(nb, P).copy() for a in
                _block_medians(r1_blocks.transpose(0, 2, 1).reshape(nb * P, B)))
    med_all = np.full(P, np.nan)

    def column_medians(cols: np.ndarray) -> None:
        cols = cols[np.any(cnt[:, cols] < 8, axis=0)]
        if cols.size:
            med_all[cols] = _block_medians(r1[:T, cols].T)[0]

    def limits() -> np.ndarray:
        sigma = np.nan_to_num(np.where(cnt >= 8, med, med_all[None, :]), nan=0.0) / c_d  # (nb, P)
        return np.maximum(threshold * sigma, floor)

    column_medians(np.arange(P))
    limit = limits()
    with np.errstate(invalid="ignore"):
        cand = (r1_blocks > limit[:, None, :]) | (ra_blocks > limit[:, None, :])
    ci, cp = np.nonzero(cand.reshape(nb * B, P)[:T])
    spikes = np.zeros((T, P), bool)
    v = valid0.copy()
    for it in range(10):
        if ci.size == 0:
            break
        inv = 1.0 / np.maximum(limit, 1e-300)
        s = _stencils(X, t, v, ci, cp, dt_med, full=True)
        lim_i, inv_i = limit[ci // B, cp], inv[ci // B, cp]
        J = s["J"]
        lim2 = np.maximum(lim_i, limit[np.minimum(J, T - 1) // B, cp])
        r1c = r1[ci, cp]
        r2 = np.minimum(s["ra"], s["rb"])
        with np.errstate(invalid="ignore"):
            s1 = np.where(ok1[ci, cp] & (r1c > lim_i) & (r1c > _AGREE[1] * s["d1"]), r1c * inv_i, 0.0)
            s2 = np.where(ok2[ci, cp] & (r2 > lim2) & (r2 > _AGREE[2] * np.maximum(s["da"], s["db"])),
                          r2 * inv_i, 0.0)
        score = np.maximum(s1, s2)
        # where candidates overlap, the strongest within +-3 frames of the same point wins
        pos = np.flatnonzero(score > 0)
        if pos.size == 0:
            break
        order = pos[np.lexsort((ci[pos], cp[pos]))]
        pi_, pp_, sc = ci[order], cp[order], score[order]
        best = sc.copy()
        for k in (1, 2, 3):
            near = (pp_[k:] == pp_[:-k]) & (pi_[k:] - pi_[:-k] <= 3)
            best[:-k] = np.where(near, np.maximum(best[:-k], sc[k:]), best[:-k])
            best[k:] = np.where(near, np.maximum(best[k:], sc[:-k]), best[k:])
        win = order[sc >= best]
        two = win[s2[win] > s1[win]]  # two-sample spikes take J too
        ni = np.concatenate([ci[win], J[two]])
        np_ = np.concatenate([cp[win], cp[two]])
        keep = ~spikes[ni, np_]
        ni, np_ = ni[keep], np_[keep]
        if ni.size == 0:
            break
        spikes[ni, np_] = True
        v[ni, np_] = False
        if it == 9:
            break

        # re-test the entries that may hold a new spike in their stencil (all lie within
        # `reach` of it); only those with a complete stencil can change
        lo = np.searchsorted(t, t[ni] - reach, side="left")
        hi = np.searchsorted(t, t[ni] + reach, side="right")
        rows = lo[:, None] + np.arange(int(np.max(hi - lo)))
        inside = rows < hi[:, None]
        flat = np.unique(rows[inside] * P + np.broadcast_to(np_[:, None], rows.shape)[inside])
        hr, hc = flat // P, flat % P
        live = ok1[hr, hc] | ok2[hr, hc]
        hr, hc = hr[live], hc[live]
        if hr.size:
            s = _stencils(X, t, v, hr, hc, dt_med, full=False)
            ok1[hr, hc] = s["ok1"]
            ok2[hr, hc] = s["ok2"]
            r1[hr, hc] = np.where(s["ok1"], s["r1"], np.nan)
            ra[hr, hc] = np.where(s["ok2"], s["ra"], np.nan)
            pairs = np.unique((hr // B) * P + hc)  # (block, point) pairs that changed
            pb, pc = pairs // P, pairs % P
            med[pb, pc], cnt[pb, pc] = _block_medians(r1_blocks[pb, :, pc])
            column_medians(np.unique(pc))
        else:
            pb = pc = np.zeros(0, np.int64)
        # the candidates change only in blocks whose values or limit changed
        new_limit = limits()
        redo = new_limit != limit
        redo[pb, pc] = True
        limit = new_limit
        keep = ~redo[ci // B, cp]
        rb_, rp_ = np.nonzero(redo)
        lim_r = limit[rb_, rp_][:, None]
        with np.errstate(invalid="ignore"):
            c_new = (r1_blocks[rb_, :, rp_] > lim_r) | (ra_blocks[rb_, :, rp_] > lim_r)  # (m, B)
        m_i, m_k = np.nonzero(c_new)
        add_i = rb_[m_i] * B + m_k
        inside = add_i < T
        ci = np.concatenate([ci[keep], add_i[inside]])
        cp = np.concatenate([cp[keep], rp_[m_i][inside]])
    return spikes


def reject_spikes(x: Any, t: Any, *, threshold: float = 5.0, floor: float, points: bool = True,
                  window_s: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Turn one- and two-frame outliers into NaN (for :func:`fill_gaps` to bridge).

    ``x`` ``(T, ...)``, ``t`` ``(T,)`` s. Returns ``(cleaned, spike_mask)``: ``x`` with
    the spikes set to NaN (float64, same shape) and a bool array of ``x``'s shape, True
    at the spikes.

    A sample (or two consecutive samples) is a spike when all of these hold:

    * it is far from the cubic through the **two valid samples on each side** (in real
      time). That prediction follows genuinely fast smooth motion closely (a 3 m/s arm
      swing at 30 fps misses by well under a millimetre), unlike a median filter;
    * the distance exceeds ``threshold`` robust standard deviations of that residual
      near it (the median residual length over ``window_s``-second blocks of the same
      point, converted to a standard deviation), so noisier stretches need bigger
      spikes. With the default 5 and MediaPipe-like 10 mm noise that is ~70 mm;
    * the distance exceeds ``floor``, in the track's units (metres or pixels): the
      smallest jump worth calling a glitch, which protects clean tracks whose residual
      scale is near zero (required: there is no unit-free default);
    * the neighbours agree: the straight line through the two samples on the left and
      the one through the two on the right, extended to the sample, end closer to each
      other than the sample is to the cubic (by a factor 0.75, or 0.5 for two-frame
      spikes). A jump that *stays* (a step) fails this and is kept.

    Where candidates overlap, the strongest within +-3 samples wins; the search is then
    repeated with the spikes removed until nothing new is found, so nearby spikes are
    caught one after the other.

    ``points=True``: the last axis holds the coordinates of one point (x, y, z); a point
    is judged by the length of its residual vector and flagged as a whole. ``False`` (and
    any 1-D track) judges every scalar on its own. Never flagged, for want of two
    neighbours on one side: the first and last two valid samples of the track and those
    next to a gap of more than two frames.
    """
    x, t = _as_track(x, t, "reject_spikes")
    _check_positive("reject_spikes", threshold=threshold, window_s=window_s)
    if not (isinstance(floor, (int, float, np.floating, np.integer)) and math.isfinite(floor) and floor >= 0):
        raise UsageError(f"reject_spikes: floor must be >= 0 (in the track's units), got floor={floor!r}")
    T = x.shape[0]
    vec = points and x.ndim >= 2
    X = x.reshape(T, -1, x.shape[-1]) if vec else x.reshape(T, -1, 1)
    P = X.shape[1]
    if T < 5 or P == 0:
        return x.copy(), np.zeros(x.shape, bool)
    out = x.copy()  # contiguous: the search below reads it rather than a strided view
    Xo = out.reshape(X.shape)
    spikes = np.zeros((T, P), bool)
    for p0 in range(0, P, _SPIKE_CHUNK):  # bounded memory for the 478-point face
        spikes[:, p0:p0 + _SPIKE_CHUNK] = _spike_mask(Xo[:, p0:p0 + _SPIKE_CHUNK], t, threshold, floor,
                                                        window_s)
    ti, pi = np.nonzero(spikes)
    Xo[ti, pi] = np.nan
    full = np.repeat(spikes[:, :, None], X.shape[2], axis=2).reshape(x.shape)
    return out, full


# -- 5. per-part defaults and the chain -----------------------------------------------

DEFAULTS: dict[str, dict[str, Any]] = {
    "body": {
        "units": "m",
        "spike_threshold": 5.0,
        "spike_floor": 0.05,
        "max_gap_s": 0.25,
        "filter": "butterworth",
        "cutoff_hz": 5.0,
        "order": 4,
        "window_s": 0.35,
        "polyorder": 3,
        "min_cutoff": 0.1,
        "beta": 6.0,
        "d_cutoff": 0.5,
    },
    "hands": {
        "units": "px",
        "spike_threshold": 5.0,
        "spike_floor": 20.0,
        "max_gap_s": 0.15,
        "filter": "butterworth",
        "cutoff_hz": 8.0,
        "order": 4,
        "window_s": 0.25,
        "polyorder": 3,
        "min_cutoff": 0.5,
        "beta": 0.02,
        "d_cutoff": 0.5,
    },
    "face": {
        "units": "px",
        "spike_threshold": 5.0,
        "spike_floor": 8.0,
        "max_gap_s": 0.2,
        "filter": "butterworth",
        "cutoff_hz": 8.0,
        "order": 4,
        "window_s": 0.25,
        "polyorder": 3,
        "min_cutoff": 1.0,
        "beta": 0.05,
        "d_cutoff": 1.0,
    },
}
"""Cleanup settings per part. Cutoffs in Hz, gaps and windows in seconds; ``spike_floor``
and ``beta`` depend on ``units``: metres for the body (``pose_world``), pixels of a
1080-line frame for hands and face (for other footage scale ``spike_floor`` by
height/1080 and ``beta`` by 1080/height). ``spike_threshold`` is in robust standard
deviations of the local residual (see :func:`reject_spikes`).

body (metres)
    Offline ``cutoff_hz=5``: body motion sits below ~5 Hz (walking 1-2 Hz, dance and
    sport up to ~4-5 Hz; Winter's classic cutoff for gait markers is 6 Hz) while
    MediaPipe's 5-20 mm jitter is broadband, so 5 Hz keeps the moves and, at 30 fps,
    lets through about a third of the noise power; remember the zero-phase filter is
    at -6 dB there, and 3 Hz passes at 98 %. ``max_gap_s=0.25`` (7 frames at 30 fps):
    a limb can be bridged by a cubic for a quarter second -- a 4-frame gap in a 1 Hz,
    0.3 m swing is filled within ~1 mm -- longer is invention. ``spike_floor=0.05`` m:
    smaller jumps are within the noise, and a sudden stop from 3 m/s already bends the
    path by 33 mm at 30 fps. Live: ``min_cutoff=0.1`` Hz, ``beta=6`` 1/m,
    ``d_cutoff=0.5`` Hz -- a still point keeps ~1/6 of its jitter, steady moves trail
    by at most 27 mm (the arithmetic is in :class:`OneEuroFilter`).
hands (pixels)
    Hands move fastest (wrist flicks and finger taps reach 6-8 Hz; fingertips cross a
    1080p frame at 1000+ px/s) and their landmarks are the noisiest, worst in motion
    blur. Offline ``cutoff_hz=8`` keeps fast gestures; the noise that passes is mostly
    above what a rig's fingers show, and outliers are the spike stage's job.
    ``max_gap_s=0.15`` (4 frames): a hand changes shape too fast to guess longer.
    ``spike_floor=20`` px: a finger snapping onto its neighbour jumps 20-40 px, while
    a hand stopping dead from 1000 px/s bends its path by only ~11 px. Live:
    ``min_cutoff=0.5`` Hz (noisier than the body, so steadier at rest), ``beta=0.02``
    1/px (faster, so quicker to open: at most 8 px of lag), ``d_cutoff=0.5`` Hz.
face (pixels)
    The face mesh is steady (~1 px of jitter on a 1080p face) but blinks and lip
    closures last 100-200 ms, so ``cutoff_hz=8`` keeps them. ``max_gap_s=0.2``: short
    losses in head turns; longer would invent expressions. ``spike_floor=8`` px. Live:
    ``min_cutoff=1`` Hz and ``beta=0.05`` 1/px: jitter is small, so the filter can stay
    open; a lip moving at 100 px/s gets 6 Hz, 2.6 px of lag.

``filter`` chooses the offline smoother: ``"butterworth"`` (``cutoff_hz``, ``order``) or
``"savgol"`` (``window_s``, ``polyorder``; the defaults match the cutoffs roughly).
"""


@dataclass
class CleanResult:
    """What :func:`clean_track` did. All arrays have the input's shape ``(T, ...)``.

    ``x``: the cleaned track, float64, NaN where still missing. ``spikes``: samples
    rejected as outliers (then filled or left missing). ``filled``: samples filled in
    (spikes and dropouts). ``missing``: NaN in ``x`` -- gaps longer than ``max_gap_s``
    and the track's ends. ``params``: the settings used; ``notes``: adjustments made.
    """

    x: np.ndarray
    spikes: np.ndarray
    filled: np.ndarray
    missing: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def clean_track(x: Any, t: Any, *, part: str = "body", mode: str = "offline",
                **overrides: Any) -> CleanResult:
    """Spikes -> gap fill -> smoothing, with the :data:`DEFAULTS` of ``part``.

    ``x`` ``(T, ...)`` -- normally ``(T, N, 3)`` landmarks -- with NaN where not found,
    ``t`` ``(T,)`` seconds. ``part``: ``"body"``, ``"hands"`` or ``"face"``. ``mode``:

    * ``"offline"`` (a recorded take): zero-phase :func:`butterworth_zero_phase` (or
      :func:`savgol` if ``filter="savgol"``) -- no lag.
    * ``"live"``: the causal :func:`one_euro`, with one speed per point, i.e. what a live
      preview shows. The spike and gap stages still look two frames ahead; a true
      stream uses :class:`OneEuroFilter` directly.

    A last axis of length 2 or 3 holds a point's coordinates (a point is rejected as a
    whole, and has one one-euro speed); any other shape is treated scalar by scalar.

    ``overrides`` replace any :data:`DEFAULTS` entry, e.g. ``cutoff_hz=4``. An offline
    cutoff above 0.4x the frame rate (e.g. 8 Hz at 15 fps) is lowered to that, and noted.
    """
    if part not in DEFAULTS:
        raise UsageError(f"clean_track: part must be one of {sorted(DEFAULTS)}, got part={part!r}")
    if mode not in ("offline", "live"):
        raise UsageError(f"clean_track: mode must be 'offline' or 'live', got mode={mode!r}")
    unknown = sorted(set(overrides) - set(DEFAULTS[part]))
    if unknown:
        raise UsageError(f"clean_track: unknown settings {unknown}; known: {sorted(DEFAULTS[part])}")
    p = {**DEFAULTS[part], **overrides}
    if p["filter"] not in ("butterworth", "savgol"):
        raise UsageError(f"clean_track: filter must be 'butterworth' or 'savgol', got filter={p['filter']!r}")
    x, t = _as_track(x, t, "clean_track")
    notes: list[str] = []
    points = x.ndim >= 2 and x.shape[-1] in (2, 3)

    cleaned, spikes = reject_spikes(x, t, threshold=p["spike_threshold"], floor=p["spike_floor"],
                                    points=points)
    filled_x, filled = fill_gaps(cleaned, t, max_gap_s=p["max_gap_s"])
    if mode == "offline":
        fs = 1.0 / _median_dt(t)
        if p["filter"] == "butterworth":
            if x.shape[0] > 1 and p["cutoff_hz"] > 0.4 * fs:
                notes.append(f"cutoff_hz lowered from {p['cutoff_hz']} to {0.4 * fs:.3g} "
                             f"(0.4 x {fs:.3g} fps)")
                p["cutoff_hz"] = 0.4 * fs
            out = butterworth_zero_phase(filled_x, t, cutoff_hz=p["cutoff_hz"], order=p["order"])
        else:
            out = savgol(filled_x, t, window_s=p["window_s"], polyorder=p["polyorder"])
    else:
        out = one_euro(filled_x, t, min_cutoff=p["min_cutoff"], beta=p["beta"],
                       d_cutoff=p["d_cutoff"], speed_axis=-1 if points else None)
    return CleanResult(x=out, spikes=spikes, filled=filled, missing=np.isnan(out),
                       params=p, notes=notes)


# -- 6. metrics -----------------------------------------------------------------------


def _derivative(x: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """n-th derivative ``(T-n, ...)`` as ``n!`` times the Newton divided difference over
    n+1 consecutive samples: exact for polynomials of degree n at any spacing, and
    ``diff(x, n) / dt**n`` at an even one."""
    d = x
    for k in range(1, n + 1):
        span = (t[k:] - t[:-k]).reshape((-1,) + (1,) * (x.ndim - 1))
        d = np.diff(d, axis=0) / span
    return d * math.factorial(n)


def _mean_magnitude(x: Any, t: Any, n: int, points: bool, per_point: bool, what: str):
    x, t = _as_track(x, t, what)
    d = _derivative(x, t, n)
    mag = np.sqrt(np.sum(d * d, axis=-1)) if (points and x.ndim >= 2) else np.abs(d)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        if per_point:
            return np.nanmean(mag, axis=0) if mag.shape[0] else np.full(mag.shape[1:], np.nan)
        return float(np.nanmean(mag)) if np.any(~np.isnan(mag)) else float("nan")


def jitter(x: Any, t: Any, *, points: bool = True, per_point: bool = False):
    """Mean magnitude of the jerk (third time derivative), in units/s^3.

    ``x`` ``(T, ...)``, ``t`` ``(T,)`` s. Jerk is 6 times the divided difference over four
    consecutive samples in real time (exact for a cubic at any spacing; ``diff(x, 3) /
    dt**3`` for even steps), so each value needs four consecutive valid samples; the rest
    are ignored.
    ``points=True``: the last axis holds a point's coordinates and its jerk is the
    vector length. Returns the mean over frames and points (a float, NaN if nothing is
    valid) or, with ``per_point=True``, over frames only (``x.shape[1:-1]``).

    Smooth human motion has little jerk and white noise a lot (it grows as ``fps**3``), so
    this is a noise meter: at 30 fps, 10 mm of 3-D jitter alone gives about
    ``1.6 * sqrt(20) * 0.01 * 30**3`` ~ 1900 m/s^3 (1.6: mean length of a 3-D unit normal
    vector; sqrt(20): noise gain of a third difference), a 1 Hz, 0.3 m sway only
    ``0.3 * (2 pi)**3 * 2/pi`` ~ 47 m/s^3.
    """
    return _mean_magnitude(x, t, 3, points, per_point, "jitter")


def mean_abs_acc(x: Any, t: Any, *, points: bool = True, per_point: bool = False):
    """Mean magnitude of the acceleration (second derivative), in units/s^2.

    Same conventions as :func:`jitter`; less dominated by noise, so it also reflects how
    energetic the motion is.
    """
    return _mean_magnitude(x, t, 2, points, per_point, "mean_abs_acc")


def residual_cutoff(x: Any, t: Any, *, candidates_hz: Any = None, fit_band: tuple[float, float] = (0.5, 0.9),
                    lo_hz: float = 2.0, hi_hz: float | None = None, max_frames: int = 1500,
                    rule: str = "min_error") -> dict[str, float]:
    """Pick a low-pass cutoff from the data: Winter's residual analysis.

    D. A. Winter, *Biomechanics and Motor Control of Human Movement* (4th ed., 2009),
    section 3.4.4.3. For each candidate cutoff ``fc`` the residual
    ``R(fc) = rms(x - lowpass(x, fc))`` is measured. Above the signal's band the residual
    is noise only, and falls linearly towards 0 at the Nyquist frequency; that straight
    line, fitted over the top of the candidates (``fit_band``, fractions of the highest
    candidate) and extended back to ``fc = 0``, meets the axis at the noise's RMS. The
    chosen cutoff is where the residual curve comes down to that level: below it the
    filter would start removing signal, above it it would keep noise. Clean data thus gets
    a high cutoff (little smoothing), noisy data a low one.

    ``rule="winter"`` takes that crossing. The default ``rule="min_error"`` uses the same
    noise estimate ``s`` to pick the candidate with the least expected error power,
    ``R(fc)^2 - s^2 (1 - fc/fN) + s^2 fc/fN`` (signal removed plus noise kept, white
    noise spread evenly up to the Nyquist frequency ``fN``): Winter's crossing is
    conservative on fast motion (a dance), where it cuts signal along with the noise.

    ``x`` ``(T, ...)`` with NaN gaps (in any unit), ``t`` ``(T,)`` s. Candidates default to
    ``lo_hz`` .. ``0.45 x fps`` in 0.5 Hz steps; ``hi_hz`` caps the result. At most
    ``max_frames`` frames (the middle of the take; 1500 is 50 s at 30 fps, ~150,000
    samples for a body) are analysed, to bound the cost: every candidate is a zero-phase
    filter of all of them. They are filtered as one bank (the runs found once, each design
    made once and cached), on up to two threads. Returns ``{"cutoff_hz", "noise_rms",
    "fps"}`` (noise in the unit of ``x``).
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    if x.shape[0] != t.shape[0]:
        raise UsageError(f"residual_cutoff: x has {x.shape[0]} frames, t has {t.shape[0]}")
    fs = 1.0 / _median_dt(t)
    T = x.shape[0]
    if T > max_frames:
        s = (T - max_frames) // 2
        x, t = x[s:s + max_frames], t[s:s + max_frames]
    top = 0.45 * fs
    cands = np.arange(lo_hz, top + 1e-9, 0.5) if candidates_hz is None else np.asarray(candidates_hz, float)
    cands = cands[(cands > 0) & (cands < 0.5 * fs)]
    if len(cands) < 4:
        raise UsageError(f"residual_cutoff: too few candidate cutoffs below Nyquist ({0.5 * fs:.3g} Hz)")
    x, t = _as_track(x, t, "butterworth_zero_phase")
    X = x.reshape(x.shape[0], -1)
    ok = np.isfinite(X)
    all_ok = bool(ok.all())
    res = np.empty(len(cands))
    # all candidates through one bank (the runs are found once, the designs are cached),
    # as many at a time as fit in ~64 MB
    batch = max(1, int(64e6 // max(8 * X.size, 1)))
    for b0 in range(0, len(cands), batch):
        fcs = [float(fc) for fc in cands[b0:b0 + batch]]
        for i, f in enumerate(_lowpass_bank(x, t, [(fc, 4) for fc in fcs], "butterworth_zero_phase"), b0):
            if all_ok and np.isfinite(f).all():  # nothing left out: the same values, in order
                d = np.subtract(X, f)
            else:
                d = (X - f)[ok & np.isfinite(f)]
            res[i] = np.sqrt(np.mean(np.multiply(d, d, out=d))) if d.size else np.nan
    band = (cands >= fit_band[0] * cands[-1]) & (cands <= fit_band[1] * cands[-1]) & np.isfinite(res)
    if band.sum() < 2 or not np.all(np.isfinite(res)):
        raise UsageError("residual_cutoff: not enough valid samples to analyse")
    slope, intercept = np.polyfit(cands[band], res[band], 1)
    noise = max(float(intercept), 0.0)
    if rule == "winter":
        below = np.flatnonzero(res <= noise)
        fc = float(cands[below[0]]) if below.size else float(cands[-1])
    else:
        # expected error power of filtering at fc: the signal removed (the residual less the
        # noise removed) plus the noise kept, white noise spreading evenly up to Nyquist
        share = cands / (0.5 * fs)
        mse = res**2 - noise**2 * (1.0 - share) + noise**2 * share
        fc = float(cands[int(np.argmin(mse))])
    if hi_hz is not None:
        fc = min(fc, hi_hz)
    return {"cutoff_hz": fc, "noise_rms": noise, "fps": float(fs)}
