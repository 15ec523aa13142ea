"""Tests of brainalign.features.align: Lanczos resampling to the TR grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from brainalign.features import event_times, lanczos_kernel, lanczos_resample, tr_times


def huth_lanczosinterp2d(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """Huth lab's lanczosinterp2D / lanczosfun, written out element by element."""
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    out = np.zeros((len(newtime), data.shape[1]))
    for i, t_new in enumerate(newtime):
        for j, t_old in enumerate(oldtime):
            t = (t_new - t_old) * cutoff
            if t == 0:
                weight = 1.0
            elif abs(t) > window:
                weight = 0.0
            else:
                weight = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
            out[i] += weight * data[j]
    return out


@pytest.mark.parametrize(("window", "cutoff_mult"), [(3, 1.0), (2, 0.5), (5, 1.3)])
def test_matches_the_direct_huth_implementation(window, cutoff_mult):
    rng = np.random.default_rng(0)
    old = np.sort(rng.uniform(0, 40, size=57))
    old[5] = 10.0  # an event exactly on a TR time (t == 0)
    new = np.arange(20) * 2.0
    data = rng.standard_normal((57, 7))
    expected = huth_lanczosinterp2d(data, old, new, window, cutoff_mult)
    np.testing.assert_allclose(
        lanczos_resample(data, old, new, window, cutoff_mult), expected, atol=1e-12
    )


def test_kernel_has_unit_peak_integer_zeros_and_finite_support():
    cutoff = 0.5  # zeros every 2 s
    t = np.array([0.0, 2.0, 4.0, -4.0, 6.0, 6.5, -100.0])
    np.testing.assert_allclose(lanczos_kernel(t, cutoff, 3), [1, 0, 0, 0, 0, 0, 0], atol=1e-15)
    assert lanczos_kernel(np.array([1.0]), cutoff, 3)[0] > 0.5


def kernel_integral(window):
    """Integral of the Lanczos kernel over its support, in units of 1 / cutoff (scipy quad)."""
    return quad(lambda x: np.sinc(x) * np.sinc(x / window), -window, window, limit=200)[0]


def test_slowly_varying_signal_is_reproduced_in_the_interior():
    dt, tr = 0.1, 2.0
    old = np.arange(0, 400, dt)
    new = tr_times(200, tr)
    signal = lambda t: np.column_stack(
        [np.sin(2 * np.pi * 0.01 * t), np.cos(2 * np.pi * 0.02 * t) + 3]
    )
    gain = tr / dt * kernel_integral(3)  # the event-density gain of the unnormalised kernel
    resampled = lanczos_resample(signal(old), old, new) / gain
    interior = slice(4, -4)
    np.testing.assert_allclose(resampled[interior], signal(new)[interior], atol=2e-3)
    assert (
        np.abs(signal(new)[interior] - signal(new - tr)[interior]).max() > 0.05
    )  # a lag would fail


@pytest.mark.parametrize("window", [2, 3, 5])
def test_constant_is_scaled_by_the_event_density(window):
    # Unnormalised, as in Huth's code: a constant c sampled every dt gives
    # c * (tr / dt) * integral of the kernel (0.997 for 3 lobes), away from the edges.
    for dt in (0.25, 0.5):
        old = np.arange(0, 100, dt)
        out = lanczos_resample(np.full((old.size, 1), 2.0), old, tr_times(50, 2.0), window)
        np.testing.assert_allclose(
            out[5:-5, 0], 2.0 * 2.0 / dt * kernel_integral(window), rtol=1e-3
        )


def test_no_events_give_zeros_and_bad_input_is_rejected():
    out = lanczos_resample(np.zeros((0, 4)), np.zeros(0), tr_times(6, 2.0))
    assert out.shape == (6, 4) and not out.any()
    message = (
        r"'data' must have shape \(n_events, n_features\) with n_events = len\(old_times\) = 3; "
    )
    with pytest.raises(ValueError, match=message + r"got \(4, 2\)"):
        lanczos_resample(np.zeros((4, 2)), np.zeros(3), tr_times(6, 2.0))
    with pytest.raises(ValueError, match=r"'new_times' must be at least two increasing times"):
        lanczos_resample(np.zeros((3, 2)), np.zeros(3), np.array([1.0]))
    with pytest.raises(ValueError, match=r"'window' must be an integer >= 1 and 'cutoff_mult' > 0"):
        lanczos_resample(np.zeros((3, 2)), np.zeros(3), tr_times(6, 2.0), window=0)


def test_time_conventions_are_midpoints():
    np.testing.assert_allclose(tr_times(3, 2.0), [1.0, 3.0, 5.0])
    np.testing.assert_allclose(event_times([0.0, 4.0], [1.0, 0.5]), [0.5, 4.25])
    with pytest.raises(ValueError, match=r"'n_trs' must be >= 1 and 'tr' > 0"):
        tr_times(0, 2.0)
