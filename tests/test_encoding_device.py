"""Tests of encoding on the backend's device and of the permuted-operator permutation test.

References: a direct float64 permutation test written here (permute the responses, solve
every fold's ridge with its alphas by ``np.linalg.solve``, correlate), the former
gathering path (``method="hat-gather"``), and the numpy backend for the torch backends.
GPU tests skip themselves without CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.backend import set_backend
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding, make_delays, standardize
from brainalign.encoding.device import Device
from brainalign.encoding.stats import PERMUTATIONS, permutation_pvalues, permutation_test
from brainalign.encoding.tail import empirical_p, normal_p

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _cuda_or_skip():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


def _problem(seed=0, n_runs=4, n_trs=30, p=5, v=11):
    """Delayed smooth-ish features, voxels with SNR from none to high, grid alphas per fold."""
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.arange(n_runs), n_trs)
    X = rng.standard_normal((n_runs * n_trs, p)).astype(np.float32)
    Y = X[:, :2] @ rng.standard_normal((2, v)) * np.linspace(0, 1.5, v)
    Y = (Y + rng.standard_normal(Y.shape)).astype(np.float32)
    X_fit = make_delays(X, (0, 1), runs)
    splits = [(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(n_runs)]
    alpha = np.logspace(-1, 3, 5)[rng.integers(0, 5, (n_runs, v))]
    return X_fit, Y, runs, splits, alpha


def _direct_null(X_fit, Y, runs, splits, alpha, n_permutations, seed, block_size):
    """Observed and null fold-mean r of every voxel, by solving each refit in float64."""
    rng = np.random.default_rng(seed)
    orders = [np.arange(len(Y))]
    orders += [PERMUTATIONS["timeseries"](runs, block_size, rng) for _ in range(n_permutations)]
    scores = np.zeros((len(orders), Y.shape[1]))
    for (train, test), a in zip(splits, alpha):
        X_train, X_test = (x.astype(np.float64) for x in standardize(X_fit, train, test))
        gram = X_train.T @ X_train
        for s, order in enumerate(orders):
            y = Y[order].astype(np.float64)
            y_train = y[train] - y[train].mean(0)
            for v in range(Y.shape[1]):
                w = np.linalg.solve(gram + a[v] * np.eye(gram.shape[0]), X_train.T @ y_train[:, v])
                scores[s, v] += np.corrcoef(X_test @ w, y[test, v])[0, 1] / len(splits)
    return scores[0], scores[1:]


def test_permutation_pvalues_match_a_direct_float64_refit():
    """p-values before (direct refits of permuted responses) and after: within 1e-12."""
    X_fit, Y, runs, splits, alpha = _problem()
    observed, null = _direct_null(X_fit, Y, runs, splits, alpha, 30, 3, 5)
    for method in ("hat", "eigen"):
        result = permutation_pvalues(
            X_fit, Y, splits, alpha, kind="timeseries", groups=runs, n_permutations=30,
            block_size=5, random_state=3, method=method, dtype="float64", n_targets_batch=4,
        )  # fmt: skip
        np.testing.assert_allclose(result.observed, observed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.null_mean, null.mean(0), rtol=0, atol=1e-12)
        expected_normal = normal_p(observed, null.mean(0), null.std(0, ddof=1))
        np.testing.assert_allclose(result.p_normal, expected_normal, rtol=0, atol=1e-12)
        expected_perm = empirical_p(np.sum(null >= observed - 1e-6, axis=0), 30)
        np.testing.assert_array_equal(result.p_perm, expected_perm)
    assert result.p[-1] < 0.05 < result.p[0]  # the strong voxel is found, the null one not


@pytest.mark.parametrize("scoring", ["fold_mean", "concatenated"])
@pytest.mark.parametrize("kind", ["timeseries", "concepts"])
def test_permuted_operators_match_the_former_gathering_path(kind, scoring):
    X_fit, Y, runs, splits, alpha = _problem(seed=1)
    groups = runs if kind == "timeseries" else np.arange(len(Y))
    common = dict(kind=kind, groups=groups, n_permutations=40, scoring=scoring, block_size=5)
    former = permutation_pvalues(X_fit, Y, splits, alpha, method="hat-gather", **common)
    for method in ("hat", "eigen"):
        new = permutation_pvalues(
            X_fit, Y, splits, alpha, method=method, n_targets_batch=3, **common
        )
        np.testing.assert_allclose(new.observed, former.observed, atol=2e-6)
        np.testing.assert_allclose(new.null_mean, former.null_mean, atol=2e-6)
        np.testing.assert_allclose(new.null_sd, former.null_sd, atol=2e-6)
        np.testing.assert_allclose(new.p_normal, former.p_normal, atol=1e-4)
        np.testing.assert_array_equal(new.p_perm, former.p_perm)


def test_permuted_refits_read_only_the_training_rows_of_block_permutations():
    from brainalign.encoding.nulls import _support

    _, _, runs, splits, _ = _problem()
    rng = np.random.default_rng(0)
    orders = np.stack([PERMUTATIONS["timeseries"](runs, 5, rng) for _ in range(7)])
    train = splits[1][0]
    U, pos = _support(orders[:, train], len(runs))
    np.testing.assert_array_equal(U, train)  # runs stay in place: no test row is read
    np.testing.assert_array_equal(U[pos], orders[:, train])


def _fit_on(backend, X, Y, runs):
    set_backend(backend)
    try:
        return fit_encoding(
            X, Y, kind="timeseries", groups=runs, alphas=np.logspace(-1, 4, 11), delays=(1, 2),
            n_inner_folds=3, n_targets_batch=7,
        )  # fmt: skip
    finally:
        set_backend("numpy")


@pytest.mark.parametrize("backend", ["torch", "torch_cuda"])
def test_fit_encoding_on_torch_matches_numpy(backend):
    pytest.importorskip("torch")
    if backend == "torch_cuda":
        _cuda_or_skip()
    rng = np.random.default_rng(4)
    runs = np.repeat(np.arange(5), 40)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    Y = (X[:, :3] @ rng.standard_normal((3, 30)) * np.linspace(0, 1, 30)).astype(np.float32)
    Y += rng.standard_normal(Y.shape).astype(np.float32)
    reference, fit = _fit_on("numpy", X, Y, runs), _fit_on(backend, X, Y, runs)
    same = fit.alpha == reference.alpha
    assert same.mean() >= 0.98, f"{(~same).sum()} of {same.size} alpha choices differ"
    voxels = same.all(axis=0)
    np.testing.assert_allclose(fit.r[voxels], reference.r[voxels], atol=1e-4)
    np.testing.assert_allclose(fit.predictions, reference.predictions, atol=1e-3)


def test_fit_encoding_moves_the_responses_to_the_device_once(monkeypatch):
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    runs = np.repeat(np.arange(4), 25)
    X, Y = rng.standard_normal((100, 4)), rng.standard_normal((100, 9)).astype(np.float32)
    moved = []
    put = Device.put

    def counting_put(self, array, dtype="float32"):
        if isinstance(array, np.ndarray) and array.shape == Y.shape:
            moved.append(array.shape)  # a host array of Y's shape going to the device
        return put(self, array, dtype)

    monkeypatch.setattr(Device, "put", counting_put)
    _fit_on("torch", X, Y, runs)
    assert moved == [Y.shape]


@pytest.mark.parametrize("backend", ["torch", "torch_cuda"])
def test_permutation_test_on_torch_matches_numpy(backend):
    pytest.importorskip("torch")
    if backend == "torch_cuda":
        _cuda_or_skip()
    X_fit, Y, runs, splits, alpha = _problem(seed=2, v=9)
    common = dict(kind="timeseries", groups=runs, n_permutations=30, block_size=5, tail="gpd")
    reference = permutation_pvalues(X_fit, Y, splits, alpha, **common)
    set_backend(backend)
    try:
        result = permutation_pvalues(X_fit, Y, splits, alpha, n_targets_batch=4, **common)
    finally:
        set_backend("numpy")
    np.testing.assert_allclose(result.observed, reference.observed, atol=1e-5)
    np.testing.assert_allclose(result.null_mean, reference.null_mean, atol=1e-5)
    np.testing.assert_allclose(result.p_normal, reference.p_normal, atol=1e-4)
    np.testing.assert_array_equal(result.p_perm, reference.p_perm)


def test_permutation_test_of_a_torch_fit_end_to_end():
    """fit_encoding then permutation_test, both on the torch backend: a planted voxel found."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    runs = np.repeat(np.arange(4), 50)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    Y = rng.standard_normal((200, 5)).astype(np.float32)
    Y[:, 0] += 2 * X[:, 1]
    set_backend("torch")
    try:
        fit = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=[1.0, 100.0])
        result = permutation_test(fit, X, Y, kind="timeseries", groups=runs, n_permutations=50)
    finally:
        set_backend("numpy")
    np.testing.assert_allclose(result.observed, fit.r, atol=1e-5)
    assert result.p_perm[0] == 1 / 51 and result.p[0] < 1e-3
