"""Tests of joint models (himalaya banded ridge) and nested best-layer selection."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding
from brainalign.encoding.banded import fit_banded_encoding, variance_partition
from brainalign.encoding.selection import select_layer_nested, summarize_layer_selection

ALPHAS = np.logspace(-2, 5, 8)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _two_spaces(seed, width_a=6, width_b=25):
    """Space A drives voxels 0-9, B drives 10-19, both 20-29 (independently), none 30-39.

    A has 6 latent dimensions, spread over ``width_a`` columns."""
    rng = np.random.default_rng(seed)
    n = 240
    latent, B = rng.standard_normal((n, 6)), rng.standard_normal((n, width_b))
    A = (
        latent
        if width_a == 6
        else latent @ rng.standard_normal((6, width_a)) + 0.1 * rng.standard_normal((n, width_a))
    )
    sa, sb = latent @ rng.standard_normal((6, 40)), B @ rng.standard_normal((width_b, 40))
    sa, sb = sa / sa.std(0), sb / sb.std(0)
    signal = np.hstack(
        [sa[:, :10], sb[:, 10:20], (sa[:, 20:30] + sb[:, 20:30]) / np.sqrt(2), np.zeros((n, 10))]
    )
    return A, B, signal + rng.standard_normal((n, 40)), np.repeat([1, 2, 3], 80)


@pytest.mark.parametrize("width_a", [6, 400])  # primal banded ridge, multiple-kernel ridge
def test_variance_partition_attributes_voxels_to_their_space(width_a):
    A, B, Y, runs = _two_spaces(0, width_a=width_a)
    result = variance_partition(
        [A, B],
        Y,
        names=["a", "b"],
        kind="timeseries",
        groups=runs,
        alphas=ALPHAS,
        n_iter=8,
        random_state=0,
    )
    assert result.joint.solver == ("primal" if width_a == 6 else "kernel")
    unique_a, unique_b = result.unique
    assert unique_a[:10].mean() > 0.3 and abs(unique_b[:10].mean()) < 0.03
    assert unique_b[10:20].mean() > 0.3 and abs(unique_a[10:20].mean()) < 0.03
    assert unique_a[20:30].mean() > 0.1 and unique_b[20:30].mean() > 0.1
    assert abs(result.joint.r[30:].mean()) < 0.05
    # definitions: unique = joint - without; shared = R2_a + R2_b - R2_joint for two spaces
    np.testing.assert_allclose(unique_a, result.joint.r2 - result.without["a"].r2, atol=1e-6)
    r2_a, r2_b = result.without["b"].r2, result.without["a"].r2
    np.testing.assert_allclose(result.shared, r2_a + r2_b - result.joint.r2, atol=1e-5)


def test_shared_variance_of_collinear_spaces():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((240, 8))
    B = A @ rng.standard_normal((8, 8)) + 0.05 * rng.standard_normal((240, 8))  # B ~ A
    Y = A @ rng.standard_normal((8, 12)) + rng.standard_normal((240, 12))
    result = variance_partition(
        [A, B],
        Y,
        names=["a", "b"],
        kind="timeseries",
        groups=np.repeat([1, 2, 3], 80),
        alphas=ALPHAS,
        n_iter=8,
        random_state=0,
    )
    assert result.shared.mean() > 0.5
    assert np.abs(result.unique).mean() < 0.05


def test_banded_encoding_is_seeded_and_nested():
    A, B, Y, runs = _two_spaces(2)
    kwargs = dict(kind="timeseries", groups=runs, alphas=ALPHAS, n_iter=5, random_state=3)
    first, second = fit_banded_encoding([A, B], Y, **kwargs), fit_banded_encoding(
        [A, B], Y, **kwargs
    )
    assert first.predictions.tobytes() == second.predictions.tobytes()
    changed = Y.copy()
    held_out = first.fold == 0
    changed[held_out] = np.random.default_rng(0).standard_normal((held_out.sum(), 40)) * 50
    after = fit_banded_encoding([A, B], changed, **kwargs)
    np.testing.assert_array_equal(after.predictions[held_out], first.predictions[held_out])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda A, Y, g: fit_banded_encoding([A], Y, kind="timeseries", groups=g, alphas=ALPHAS),
            r"^'Xs' must hold at least two feature spaces for a joint model; got 1",
        ),
        (
            lambda A, Y, g: fit_banded_encoding(
                [A, A[:-1]], Y, kind="timeseries", groups=g, alphas=ALPHAS
            ),
            r"^'Xs\[1\]' must have one row per sample of 'Y' \(240\); got shape \(239, 6\)$",
        ),
        (
            lambda A, Y, g: fit_banded_encoding(
                [A, A], Y, kind="timeseries", groups=g, alphas=ALPHAS, n_iter=0
            ),
            r"^'n_iter' must be a positive integer; got 0$",
        ),
        (
            lambda A, Y, g: variance_partition(
                [A, A], Y, names=["a", "a"], kind="timeseries", groups=g, alphas=ALPHAS
            ),
            r"^'names' must give one unique name per feature space \(2\); got \['a', 'a'\]$",
        ),
    ],
)
def test_banded_errors(call, match):
    A, _, Y, runs = _two_spaces(4)
    with pytest.raises(ValueError, match=match):
        call(A, Y, runs)


# ----------------------------------------------------------------------------- best layer


def _layers(seed, n=60, n_layers=4):
    """Concept data: layer 2 drives ROI 'a', layer 0 drives ROI 'b'; ROI 'c' is noise."""
    rng = np.random.default_rng(seed)
    layers = {layer: rng.standard_normal((n, 15)) for layer in range(n_layers)}
    drive = lambda layer: layers[layer] @ rng.standard_normal((15, 10))  # noqa: E731
    Y = np.hstack([drive(2), drive(0), np.zeros((n, 10))]) + 1.5 * rng.standard_normal((n, 30))
    rois = {name: np.arange(30) // 10 == i for i, name in enumerate("abc")}
    return layers, Y, rois


def test_nested_selection_finds_the_planted_layers():
    layers, Y, rois = _layers(5)
    table = select_layer_nested(
        layers,
        Y,
        rois,
        kind="concepts",
        groups=np.arange(60),
        alphas=ALPHAS,
        n_outer_folds=5,
        random_state=0,
    )
    assert list(table.columns) == ["roi", "fold", "layer", "inner_cv_r2", "r", "r2", "n_voxels"]
    assert (table[table.roi == "a"]["layer"] == 2).all()
    assert (table[table.roi == "b"]["layer"] == 0).all()
    assert table[table.roi == "a"]["r"].mean() > 0.4
    summary = summarize_layer_selection(table).set_index("roi")
    assert summary.loc["a", "layer"] == 2 and summary.loc["a", "layers"] == "2,2,2,2,2"
    assert summary.loc["b", "mean_r"] == pytest.approx(table[table.roi == "b"]["r"].mean())


def test_layer_choice_never_sees_the_test_fold():
    layers, Y, rois = _layers(6, n_layers=5)
    kwargs = dict(
        kind="concepts", groups=np.arange(60), alphas=ALPHAS, n_outer_folds=4, random_state=1
    )
    before = select_layer_nested(layers, Y, rois, **kwargs)
    fold0 = lambda t: t[t.fold == 0].set_index("roi")  # noqa: E731
    lure = (int(fold0(before).loc["c", "layer"]) + 1) % 5
    held_out = fit_encoding(layers[0], Y, **kwargs).fold == 0
    # replace fold 0's test data by a function of another layer: no choice of fold 0 may move
    changed = Y.copy()
    changed[held_out] = layers[lure][held_out] @ np.ones((15, 30)) * 10
    after = select_layer_nested(layers, changed, rois, **kwargs)
    assert fold0(after)["layer"].to_dict() == fold0(before)["layer"].to_dict()
    assert not np.allclose(fold0(after)["r"], fold0(before)["r"])  # the reported score did see it


def test_nested_selection_is_unbiased_where_argmax_is_not():
    rng = np.random.default_rng(7)
    layers = {layer: rng.standard_normal((60, 20)) for layer in range(8)}  # no layer predicts
    Y = rng.standard_normal((60, 40))
    rois = {"a": np.arange(40) < 20, "b": np.arange(40) >= 20}
    kwargs = dict(
        kind="concepts", groups=np.arange(60), alphas=ALPHAS, n_outer_folds=5, random_state=0
    )
    nested = select_layer_nested(layers, Y, rois, **kwargs)
    fits = [fit_encoding(X, Y, **kwargs) for X in layers.values()]
    argmax = np.mean([max(fit.r[mask].mean() for fit in fits) for mask in rois.values()])
    assert abs(nested["r"].mean()) < 0.05
    assert argmax > nested["r"].mean() + 0.03


def test_selection_errors():
    with pytest.raises(
        ValueError, match=r"^'layers' must hold at least one layer's features; got none$"
    ):
        select_layer_nested(
            {}, np.ones((10, 2)), {}, kind="concepts", groups=np.arange(10), alphas=ALPHAS
        )
