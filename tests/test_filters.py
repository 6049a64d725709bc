"""Landmark cleanup, checked against synthetic tracks whose truth is known.

Units as in the project: metres and seconds. Signals: a 1 Hz, 0.3 m sine with 20 mm
noise at 30 fps; a "walking" body of 33 landmarks swinging at 0.8-1.6 Hz while drifting
forward; an arm swing at 3 m/s; MediaPipe-like dropouts and 15 cm spikes.
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap import filters as F  # noqa: N812
from mocap.errors import UsageError

FPS = 30.0
BODY = F.DEFAULTS["body"]
BODY_OE = {"min_cutoff": BODY["min_cutoff"], "beta": BODY["beta"], "d_cutoff": BODY["d_cutoff"]}


def rms(a: np.ndarray) -> float:
    """Root mean square length of the vectors along the last axis (NaN ignored)."""
    return float(np.sqrt(np.nanmean(np.sum(a * a, axis=-1))))


def sine(T: int = 300, noise: float = 0.02, seed: int = 0, t: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FPS if t is None else t
    truth = 0.3 * np.sin(2 * np.pi * 1.0 * t)
    return t, truth, truth + rng.normal(0.0, noise, t.shape)


def walking(T: int, seed: int = 0, P: int = 33, t: np.ndarray | None = None, vigorous: bool = True):
    """``(T, P, 3)`` smooth body-like motion in metres, walking forward at 0.4 m/s.
    Vigorous: per-axis swings of 5-30 cm at 0.8-1.6 Hz plus a 5 cm second harmonic
    (up to 3 m/s). Otherwise 5-20 cm at 0.8-1.2 Hz, like a relaxed walk."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FPS if t is None else t
    ph = rng.uniform(0, 2 * np.pi, (P, 3))
    amp = rng.uniform(0.05, 0.3 if vigorous else 0.2, (P, 3))
    f = rng.uniform(0.8, 1.6 if vigorous else 1.2, (P, 3))
    x = rng.uniform(-0.5, 0.5, (P, 3)) + amp * np.sin(2 * np.pi * f * t[:, None, None] + ph)
    if vigorous:
        x += 0.05 * np.sin(4 * np.pi * f * t[:, None, None] + 2 * ph)
    x[..., 2] += 0.4 * t[:, None]
    return t, x


def arm_swing(T: int = 900, P: int = 33, seed: int = 0):
    """Clean fast motion: every point swings at 6 rad/s; point 0 at 0.5 m amplitude
    along x, i.e. 3 m/s peak."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FPS
    ph = rng.uniform(0, 2 * np.pi, (P, 3))
    amp = rng.uniform(0.2, 0.5, (P, 3))
    x = amp * np.sin(6.0 * t[:, None, None] + ph)
    x[:, 0, :] = 0.5 * np.sin(6.0 * t)[:, None] * np.array([1.0, 0.0, 0.0])
    return t, x


def inject_spikes(x: np.ndarray, every: int, size: float = 0.15, width: int = 1, seed: int = 1):
    """Add ``size``-long jumps in random directions, one per ``every`` frames per point,
    away from the ends; returns the spiky track and the ``(T, P)`` truth mask."""
    rng = np.random.default_rng(seed)
    T, P, _ = x.shape
    out, mask = x.copy(), np.zeros((T, P), bool)
    slots = np.arange(6, T - 8, every)
    for p in range(P):
        for f in rng.choice(slots, len(slots) // 2, replace=False):
            d = rng.normal(size=3)
            out[f:f + width, p] += size * d / np.linalg.norm(d)
            mask[f:f + width, p] = True
    return out, mask


# -- One Euro -------------------------------------------------------------------------


def test_one_euro_still_jitter_drops_more_than_5x():
    rng = np.random.default_rng(0)
    t = np.arange(600) / FPS
    x = rng.normal(0.0, 0.005, (600, 33, 3))  # a still body, 5 mm MediaPipe-like jitter
    y = F.one_euro(x, t, speed_axis=-1, **BODY_OE)
    ratio = x[30:].std() / y[30:].std()  # after the first second
    assert ratio >= 5.0, ratio


def test_one_euro_lag_at_2m_per_s_is_under_30mm_and_as_predicted():
    t = np.arange(45) / FPS
    d = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)  # diagonal: the shared speed matters
    x = (2.0 * t)[:, None, None] * d  # (T, 1, 3), 2 m/s
    y = F.one_euro(x, t, speed_axis=-1, **BODY_OE)
    lag = np.linalg.norm(x - y, axis=-1)[-15:, 0]  # last 0.5 s, steady state
    theory = 2.0 / (2 * np.pi * (BODY["min_cutoff"] + BODY["beta"] * 2.0))  # v * tau
    assert lag.max() < 0.030
    assert lag[-1] == pytest.approx(theory, rel=0.05)


def test_one_euro_streaming_equals_offline_and_handles_irregular_timestamps():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.5, 1.6, 200)) / FPS  # variable frame rate
    t_, truth = walking(200, t=t, P=5)
    x = truth + rng.normal(0, 0.01, truth.shape)
    x[50:53, 2] = np.nan
    batch = F.one_euro(x, t, speed_axis=-1, **BODY_OE)
    f = F.OneEuroFilter(speed_axis=-1, **BODY_OE)
    stream = np.stack([f(x[i], t[i]) for i in range(len(t))])
    np.testing.assert_array_equal(batch, stream)
    # real dt is used: the same ramp at regular and irregular times lags alike
    ramp = lambda tt: (1.0 * tt)[:, None]  # noqa: E731
    reg = np.arange(90) / FPS
    irr = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.5, 89))]) / FPS
    lag_reg = (ramp(reg) - F.one_euro(ramp(reg), reg, **BODY_OE))[-1, 0]
    lag_irr = (ramp(irr) - F.one_euro(ramp(irr), irr, **BODY_OE))[-1, 0]
    assert lag_irr == pytest.approx(lag_reg, abs=0.002)


@pytest.mark.parametrize("t2", [1.0, 0.9])
def test_one_euro_non_increasing_time_raises_with_values(t2):
    f = F.OneEuroFilter(**BODY_OE)
    f(np.zeros(3), 1.0)
    with pytest.raises(UsageError) as e:
        f(np.zeros(3), t2)
    assert "t_prev=1.0" in str(e.value) and f"t={t2}" in str(e.value)


def test_one_euro_nan_passes_through_and_resets_state():
    f = F.OneEuroFilter(**BODY_OE)
    for i in range(30):
        f(np.zeros((2, 3)), i / FPS)
    gap = np.zeros((2, 3))
    gap[0] = np.nan  # landmark 0 lost for one frame
    y = f(gap, 30 / FPS)
    assert np.all(np.isnan(y[0])) and np.all(y[1] == 0.0)
    y = f(np.full((2, 3), 0.5), 31 / FPS)
    np.testing.assert_array_equal(y[0], 0.5)  # starts afresh, no smear from before
    assert np.all(y[1] < 0.4)  # the other landmark is still being smoothed (0.32)


def test_one_euro_bad_parameters_are_named():
    with pytest.raises(UsageError, match="min_cutoff=0"):
        F.OneEuroFilter(min_cutoff=0, beta=1.0)
    with pytest.raises(UsageError, match="beta=-1"):
        F.OneEuroFilter(min_cutoff=1.0, beta=-1.0)
    f = F.OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros(3), 0.0)
    with pytest.raises(UsageError, match=r"\(3,\).*\(4,\)"):
        f(np.zeros(4), 0.1)


# -- zero-phase filters ---------------------------------------------------------------


@pytest.mark.parametrize("smooth", [
    lambda x, t: F.butterworth_zero_phase(x, t, cutoff_hz=BODY["cutoff_hz"]),
    lambda x, t: F.savgol(x, t, window_s=BODY["window_s"], polyorder=BODY["polyorder"]),
], ids=["butterworth", "savgol"])
def test_zero_phase_filters_cut_error_without_lag(smooth):
    t, truth, noisy = sine(T=600)
    y = smooth(noisy, t)
    err_in, err_out = rms((noisy - truth)[:, None]), rms((y - truth)[:, None])
    assert err_out <= 0.6 * err_in, (err_in, err_out)
    # cross-correlation with the truth peaks at lag 0 ...
    lags = np.arange(-5, 6)
    xc = [np.dot(y[20:-20], np.roll(truth, k)[20:-20]) for k in lags]
    assert lags[int(np.argmax(xc))] == 0
    # ... and a clean sine comes out where it went in (Savitzky-Golay's cubic misses
    # a 1 Hz sine by 1.6 mm over its 11-frame window; Butterworth by 0.5 mm)
    clean = smooth(truth, t)
    assert np.abs(clean - truth)[15:-15].max() < 0.002


@pytest.mark.parametrize("smooth", [
    lambda x, t: F.butterworth_zero_phase(x, t, cutoff_hz=5.0),
    lambda x, t: F.savgol(x, t, window_s=0.35),
], ids=["butterworth", "savgol"])
def test_zero_phase_filters_keep_gaps_and_do_not_spread_nan(smooth):
    t, truth, noisy = sine(T=300)
    noisy[100:110] = np.nan
    noisy[200] = np.nan
    noisy[250:260] = np.nan
    noisy[255] = 0.1  # a lone sample between gaps: kept as it is
    noisy[280:290] = np.nan  # leaves a 10-sample run 290..299, shorter than the padding
    y = smooth(noisy, t)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(noisy))
    assert y[255] == 0.1
    ok = ~np.isnan(noisy)
    ok[255] = False
    assert np.abs(y - truth)[ok].max() < 0.06  # no edge blow-up next to any gap
    assert rms((y - truth)[ok][:, None]) < 0.7 * rms((noisy - truth)[ok][:, None])


def test_zero_phase_filters_on_variable_frame_rate():
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.uniform(0.6, 1.4, 1200)) / FPS
    t, truth, noisy = sine(t=t, seed=5)
    for y in (F.butterworth_zero_phase(noisy, t, cutoff_hz=4.0), F.savgol(noisy, t, window_s=0.4)):
        assert rms((y - truth)[:, None]) <= 0.6 * rms((noisy - truth)[:, None])


def test_zero_phase_filters_are_vectorised_exactly():
    """A whole (T, N, 3) array gives the same as each landmark column on its own."""
    t, x = walking(300, P=4)
    x = x + np.random.default_rng(2).normal(0, 0.01, x.shape)
    x[40:60, 1] = np.nan
    x[100:103, 2, 0] = np.nan
    for smooth in (lambda a: F.butterworth_zero_phase(a, t, cutoff_hz=5.0),
                   lambda a: F.savgol(a, t, window_s=0.35)):
        whole = smooth(x)
        for p in range(4):
            for k in range(3):
                np.testing.assert_allclose(whole[:, p, k], smooth(x[:, p, k]), rtol=0, atol=1e-12)


def test_zero_phase_filters_reject_impossible_settings():
    t, _, noisy = sine()
    with pytest.raises(UsageError, match="cutoff_hz=20"):
        F.butterworth_zero_phase(noisy, t, cutoff_hz=20.0)  # Nyquist is 15 Hz
    with pytest.raises(UsageError, match="window_s=0.05"):
        F.savgol(noisy, t, window_s=0.05, polyorder=3)
    with pytest.raises(UsageError, match=r"t\[3\]"):
        F.savgol(noisy, np.r_[t[:4], t[3:-1]], window_s=0.3)


# -- gap filling ----------------------------------------------------------------------


def test_fill_gaps_bridges_a_4_frame_gap_within_5mm():
    # the cubic misses by about x'''' * 77 frames**4 / 24 at the gap's centre: ~1 mm for
    # a 1 Hz, 0.3 m swing but ~1 cm for a 1.6 Hz one -- so a relaxed walk here
    t, truth = walking(300, P=33, vigorous=False)
    x = truth.copy()
    x[150:154] = np.nan  # the whole body lost for 4 frames (0.13 s)
    x[70:74, 5] = np.nan  # one landmark lost
    filled, mask = F.fill_gaps(x, t, max_gap_s=BODY["max_gap_s"])
    err = np.linalg.norm(filled - truth, axis=-1)
    assert err[150:154].max() < 0.005 and err[70:74, 5].max() < 0.005
    np.testing.assert_array_equal(mask, np.isnan(x))
    assert not np.any(np.isnan(filled))


def test_fill_gaps_leaves_long_gaps_and_the_ends():
    t, truth, _ = sine()
    x = truth.copy()
    x[:5] = np.nan  # leading
    x[100:110] = np.nan  # 10 frames = 0.33 s > 0.25 s
    x[200:203] = np.nan  # 0.1 s: filled
    x[-4:] = np.nan  # trailing
    filled, mask = F.fill_gaps(x, t, max_gap_s=0.25)
    missing = np.isnan(filled)
    assert missing[:5].all() and missing[100:110].all() and missing[-4:].all()
    assert not mask[:5].any() and not mask[100:110].any() and not mask[-4:].any()
    assert mask[200:203].all() and mask.sum() == 3
    assert np.abs(filled[200:203] - truth[200:203]).max() < 0.002
    # 7 frames at 30 fps are 0.2333 s: inside 0.25 s, even though t[after]-t[before] is 0.2667 s
    y = truth.copy()
    y[50:57] = np.nan
    assert F.fill_gaps(y, t, max_gap_s=0.25)[1].sum() == 7


def test_fill_gaps_uses_a_line_with_one_neighbour_and_real_time():
    t = np.array([0.0, 0.1, 0.2, 0.3, 0.35, 0.5, 0.6])  # irregular
    x = 2.0 * t + 1.0
    x[[1, 2, 3, 4]] = np.nan  # one valid sample on the left: linear
    filled, _ = F.fill_gaps(x, t, max_gap_s=1.0)
    np.testing.assert_allclose(filled, 2.0 * t + 1.0)
    # a cubic in time is reproduced exactly from two neighbours a side, irregular or not
    t = np.array([0.0, 0.03, 0.07, 0.1, 0.13, 0.2, 0.24, 0.27, 0.31])
    cubic = 5 * t**3 - 2 * t**2 + t
    x = cubic.copy()
    x[3:6] = np.nan
    np.testing.assert_allclose(F.fill_gaps(x, t, max_gap_s=1.0)[0], cubic, atol=1e-12)


# -- spikes ---------------------------------------------------------------------------


def test_reject_spikes_finds_every_15cm_spike_and_nothing_in_fast_clean_motion():
    t, truth = arm_swing()
    speed = np.linalg.norm(np.diff(truth[:, 0], axis=0), axis=-1) * FPS
    assert speed.max() > 2.95  # a genuinely fast 3 m/s swing
    _, none = F.reject_spikes(truth, t, floor=BODY["spike_floor"])
    assert not none.any()  # fast smooth motion is not a spike
    spiky, truth_mask = inject_spikes(truth, every=8)
    cleaned, mask = F.reject_spikes(spiky, t, floor=BODY["spike_floor"])
    assert mask.shape == spiky.shape and np.all(mask == mask[..., :1])  # points flagged whole
    found = mask[..., 0]
    assert found[truth_mask].all()  # recall 100 %
    assert not found[~truth_mask].any()  # no false positives
    assert np.isnan(cleaned[found]).all()
    filled, _ = F.fill_gaps(cleaned, t, max_gap_s=BODY["max_gap_s"])
    assert np.linalg.norm(filled - truth, axis=-1)[truth_mask].max() < 0.010


def test_reject_spikes_with_noise_and_two_frame_spikes():
    t, truth = arm_swing(seed=4)
    noisy = truth + np.random.default_rng(4).normal(0, 0.005, truth.shape)
    for width in (1, 2):
        spiky, truth_mask = inject_spikes(noisy, every=10, width=width, seed=width)
        _, mask = F.reject_spikes(spiky, t, floor=BODY["spike_floor"])
        found = mask[..., 0]
        assert found[truth_mask].all()
        assert np.count_nonzero(found & ~truth_mask) <= 0.0005 * truth_mask.size


def test_reject_spikes_whole_array_equals_point_by_point():
    """70 points (more than one internal chunk of 64) give what each point gives alone."""
    t, truth = arm_swing(T=240, P=70, seed=6)
    noisy = truth + np.random.default_rng(6).normal(0, 0.005, truth.shape)
    spiky, _ = inject_spikes(noisy, every=9, seed=6)
    spiky[100:103, 3] = np.nan
    _, whole = F.reject_spikes(spiky, t, floor=0.05)
    for p in range(70):
        _, alone = F.reject_spikes(spiky[:, p], t, floor=0.05)  # (T, 3): one point
        np.testing.assert_array_equal(whole[:, p], alone)


def test_reject_spikes_keeps_a_step_that_stays():
    t, truth = arm_swing(T=300, P=3)
    x = truth.copy()
    x[150:, 1] += np.array([0.2, 0.0, 0.0])  # e.g. the tracker re-locks 20 cm away
    _, mask = F.reject_spikes(x, t, floor=BODY["spike_floor"])
    assert not mask.any()


def test_reject_spikes_needs_a_floor_in_units():
    t, truth, _ = sine()
    with pytest.raises(TypeError):
        F.reject_spikes(truth, t)  # no default: metres or pixels must be chosen
    with pytest.raises(UsageError, match="floor=-1"):
        F.reject_spikes(truth, t, floor=-1.0)


# -- the chain ------------------------------------------------------------------------


def corrupted_body(T: int = 900, seed: int = 7):
    """Walking body + 10 mm noise + 15 cm spikes + short dropouts + one long dropout."""
    rng = np.random.default_rng(seed)
    t, truth = walking(T, seed=seed)
    noisy = truth + rng.normal(0, 0.01, truth.shape)
    raw, spikes = inject_spikes(noisy, every=12, seed=seed)
    drops = np.zeros(spikes.shape, bool)
    for s in range(40, T - 40, 97):
        drops[s:s + rng.integers(1, 5)] = True  # whole body, 1-4 frames
    long_gap = np.zeros_like(drops)
    long_gap[T // 2:T // 2 + 30] = True  # 1 s
    for p in range(33):
        s = rng.choice(np.r_[20:T // 2 - 10, T // 2 + 40:T - 20])
        drops[s:s + 2, p] = True  # a single landmark, 2 frames
    near_drop = np.zeros_like(drops)
    for k in range(-3, 4):
        near_drop |= np.roll(drops | long_gap, k, axis=0)
    # a spike in or beside a dropout cannot be told (documented): none there
    raw[spikes & near_drop] = noisy[spikes & near_drop]
    spikes &= ~near_drop
    raw[drops | long_gap] = np.nan
    return t, truth, raw, spikes, drops, long_gap


def test_clean_track_offline_cuts_jitter_5x_and_error_40_percent():
    t, truth, raw, spikes, drops, long_gap = corrupted_body()
    r = F.clean_track(raw, t, part="body")
    assert r.x.shape == raw.shape and r.spikes.shape == raw.shape
    assert F.jitter(r.x, t) <= F.jitter(raw, t) / 5
    seen = ~np.isnan(raw[..., 0]) & ~r.missing[..., 0]
    assert rms((r.x - truth)[seen]) <= 0.6 * rms((raw - truth)[seen])
    assert r.spikes[..., 0][spikes].all()
    assert r.missing[long_gap].all() and not r.missing[..., 0][~long_gap].any()
    assert r.filled[..., 0][drops].all() and not r.filled[..., 0][long_gap].any()
    # filled dropouts are about as good as a raw sample (17 mm of noise): on this
    # vigorous walk the cubic misses by ~7 mm per axis even without noise
    assert rms((r.x - truth)[drops]) < 0.025


def test_clean_track_leaves_its_input_alone():
    t, truth, raw, *_ = corrupted_body(T=200)
    raw32 = raw.astype(np.float32)  # as stored in a take
    before = raw32.copy()
    for mode in ("offline", "live"):
        r = F.clean_track(raw32, t, mode=mode)
        assert r.x.dtype == np.float64
    np.testing.assert_array_equal(raw32, before)


def test_clean_track_live_and_options():
    t, truth, raw, *_ = corrupted_body(T=450)
    live = F.clean_track(raw, t, mode="live")
    assert F.jitter(live.x, t) <= F.jitter(raw, t) / 2
    np.testing.assert_array_equal(live.missing, np.isnan(live.x))
    sg = F.clean_track(raw, t, filter="savgol")
    assert F.jitter(sg.x, t) <= F.jitter(raw, t) / 5
    # a hands cutoff of 8 Hz on 15 fps footage is lowered, and noted
    t15 = np.arange(100) / 15.0
    hands = np.random.default_rng(0).normal(500.0, 2.0, (100, 21, 3))
    r = F.clean_track(hands, t15, part="hands")
    assert r.params["cutoff_hz"] == pytest.approx(6.0) and "cutoff_hz lowered" in r.notes[0]
    with pytest.raises(UsageError, match="part='legs'"):
        F.clean_track(raw, t, part="legs")
    with pytest.raises(UsageError, match="mode='realtime'"):
        F.clean_track(raw, t, mode="realtime")
    with pytest.raises(UsageError, match="cutof_hz"):
        F.clean_track(raw, t, cutof_hz=3.0)


def test_defaults_are_complete_and_sane():
    for part, d in F.DEFAULTS.items():
        assert set(d) == set(F.DEFAULTS["body"]), part
        assert 0 < d["max_gap_s"] <= 0.5 and 0 < d["cutoff_hz"] < 15  # below Nyquist at 30 fps
        assert d["min_cutoff"] > 0 and d["beta"] > 0 and d["spike_floor"] > 0
    assert F.DEFAULTS["body"]["units"] == "m" and F.DEFAULTS["hands"]["units"] == "px"
    assert F.DEFAULTS["hands"]["cutoff_hz"] > F.DEFAULTS["body"]["cutoff_hz"]  # hands move faster
    assert F.DEFAULTS["hands"]["max_gap_s"] < F.DEFAULTS["body"]["max_gap_s"]


# -- metrics --------------------------------------------------------------------------


def test_jitter_and_acceleration_of_known_polynomials():
    rng = np.random.default_rng(0)
    for t in (np.arange(60) / FPS, np.cumsum(rng.uniform(0.5, 1.5, 60)) / FPS):
        x = np.stack([4.0 * t**3, np.zeros_like(t), 4.9 * t**2], axis=-1)[:, None, :]  # (T, 1, 3)
        assert F.jitter(x, t) == pytest.approx(24.0, rel=1e-6)  # d3/dt3 of 4 t^3
        acc = np.sqrt((24.0 * t[1:-1]) ** 2 + 9.8**2)  # |(24 t, 0, 9.8)| near the middle
        assert F.mean_abs_acc(x, t) == pytest.approx(acc.mean(), rel=0.05)
    x[10, 0, 0] = np.nan  # frames touching a NaN are skipped, not poisoned
    assert F.jitter(x, t) == pytest.approx(24.0, rel=1e-6)
    assert F.jitter(x, t, per_point=True).shape == (1,)


def test_jitter_of_noise_matches_the_documented_scale():
    rng = np.random.default_rng(0)
    t = np.arange(3000) / FPS
    j = F.jitter(rng.normal(0, 0.01, (3000, 10, 3)), t)
    assert j == pytest.approx(1.6 * np.sqrt(20) * 0.01 * FPS**3, rel=0.05)
