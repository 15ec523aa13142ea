"""Tests of brainalign.encoding.solver: all alphas from one eigendecomposition per fold.

References: a direct float64 solve of every alpha, scikit-learn's Ridge, and himalaya's
RidgeCV / KernelRidgeCV with the same folds and alphas.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from himalaya.backend import set_backend
from himalaya.kernel_ridge import KernelRidgeCV
from himalaya.ridge import RidgeCV
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding, fit_predict_ridge_cv, inner_splits, score_predictions
from brainalign.encoding.solver import FixedAlphaRidge, _Gram, resolve_form

ALPHAS = np.logspace(-1, 5, 7)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small products are much slower with threads on a shared, loaded machine."""
    with threadpool_limits(1):
        yield


def _data(seed, n, p, v, duplicate=False):
    """Features with unequal scales; voxels with signal-to-noise from none to high."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 2.0, p)
    if duplicate:  # repeated columns: repeated eigenvalues and a null space
        X[:, p // 2 :] = X[:, : p - p // 2]
    X = (X - X.mean(0)) / X.std(0)
    weights = rng.standard_normal((p, v)) * np.linspace(0, 0.6, v)
    Y = X @ weights / np.sqrt(p) * 3 + rng.standard_normal((n, v))
    return X, Y.astype(np.float32)


def _direct_sse(X, Y, alphas, cv):
    """Mean over folds of the validation MSE of every alpha, by solving each in float64."""
    Y = Y - Y.mean(0)
    out = np.zeros((len(alphas), Y.shape[1]))
    for train, test in cv:
        A = X[train]
        for k, alpha in enumerate(alphas):
            weights = np.linalg.solve(A.T @ A + alpha * np.eye(A.shape[1]), A.T @ Y[train])
            out[k] += np.mean((Y[test] - X[test] @ weights) ** 2, axis=0)
    return out / len(cv)


@pytest.mark.parametrize(
    ("n", "p", "form", "duplicate"),
    [
        (90, 13, "primal", False),
        (40, 70, "kernel", False),
        (70, 24, "primal", True),
        (30, 50, "primal", False),
    ],
)
def test_validation_error_of_every_alpha_matches_direct_solve(n, p, form, duplicate):
    X, Y = _data(0, n, p, 9, duplicate)
    cv = inner_splits("concepts", np.arange(n), 4)
    gram = _Gram(form, X, X[:2])
    centred = Y - Y.mean(0)
    sse = np.zeros((len(ALPHAS), Y.shape[1]))
    for train, test in cv:
        system = gram.system(train, test, ALPHAS[0])
        excess = system.validation_excess(centred[train], centred[test], ALPHAS)
        sse += (excess + np.sum(centred[test].astype(np.float64) ** 2, axis=0)) / test.size
    np.testing.assert_allclose(sse / len(cv), _direct_sse(X, Y, ALPHAS, cv), rtol=2e-5)


def _himalaya(X_train, Y_train, X_test, cv, form):
    model_class = RidgeCV if form == "primal" else KernelRidgeCV
    mean = Y_train.mean(0)
    model = model_class(alphas=ALPHAS, fit_intercept=False, cv=cv)
    model.fit(X_train.astype(np.float32), Y_train - mean)
    return model, model.predict(X_test.astype(np.float32)) + mean


@pytest.mark.parametrize(("p", "form"), [(17, "primal"), (160, "kernel")])
def test_matches_himalaya_ridgecv(p, form):
    X, Y = _data(1, 130, p, 40)
    X_train, X_test, Y_train = X[:100], X[100:], Y[:100]
    cv = inner_splits("timeseries", np.repeat([1, 2, 3, 4], 25), 4)
    fit = fit_predict_ridge_cv(
        X_train, Y, X_test, ALPHAS, cv, rows=np.arange(100), n_targets_batch=16
    )
    model, expected = _himalaya(X_train, Y_train, X_test, cv, form)
    assert fit.form == form
    np.testing.assert_allclose(fit.alpha, model.best_alphas_, rtol=1e-4)
    np.testing.assert_allclose(fit.predictions, expected, atol=1e-4)
    np.testing.assert_allclose(fit.cv_score, np.ravel(model.cv_scores_), rtol=1e-4, atol=1e-5)
    r_ours, _ = score_predictions(Y[100:], fit.predictions)
    r_ref, _ = score_predictions(Y[100:], expected)
    assert np.max(np.abs(r_ours - r_ref)) <= 1e-4
    assert len(np.unique(fit.alpha)) >= 3  # the test covers several chosen alphas


def test_fit_encoding_engines_agree():
    rng = np.random.default_rng(2)
    runs = np.repeat([1, 2, 3], [40, 35, 45])
    X = rng.standard_normal((120, 6))
    Y = X @ rng.standard_normal((6, 11)) * np.linspace(0, 1, 11) + rng.standard_normal((120, 11))
    kwargs = dict(kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1, 2))
    eigen, reference = fit_encoding(X, Y, **kwargs), fit_encoding(X, Y, engine="himalaya", **kwargs)
    np.testing.assert_array_equal(eigen.alpha, reference.alpha)
    np.testing.assert_allclose(eigen.r, reference.r, atol=1e-4)
    np.testing.assert_allclose(eigen.cv_r2, reference.cv_r2, atol=1e-4)
    with pytest.raises(
        ValueError, match=r"^'engine' must be one of 'eigen', 'himalaya'; got 'svd'$"
    ):
        fit_encoding(X, Y, engine="svd", **kwargs)


@pytest.mark.parametrize("p", [9, 80])
def test_batching_gives_the_same_results(p):
    X, Y = _data(3, 60, p, 37)
    cv = inner_splits("concepts", np.arange(48), 4)
    rows = np.arange(48)
    whole = fit_predict_ridge_cv(X[:48], Y, X[48:], ALPHAS, cv, rows=rows)
    batched = fit_predict_ridge_cv(X[:48], Y, X[48:], ALPHAS, cv, rows=rows, n_targets_batch=5)
    np.testing.assert_array_equal(whole.alpha, batched.alpha)
    np.testing.assert_allclose(whole.predictions, batched.predictions, rtol=0, atol=1e-6)
    np.testing.assert_allclose(whole.cv_r2, batched.cv_r2, rtol=0, atol=1e-6)


def test_memory_grows_with_the_batch_not_with_the_voxels():
    X, _ = _data(4, 300, 40, 1)
    Y = np.random.default_rng(4).standard_normal((300, 6000)).astype(np.float32)
    cv = inner_splits("timeseries", np.repeat([1, 2, 3, 4, 5], 50), 5)
    rows = np.arange(250)
    outputs = 50 * 6000 * 4  # the float32 predictions

    def peak(batch):
        tracemalloc.start()
        fit_predict_ridge_cv(X[:250], Y, X[250:], ALPHAS, cv, rows=rows, n_targets_batch=batch)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top - outputs

    small, whole = peak(100), peak(None)
    assert small < 3e6  # the 6 MB responses are never copied whole
    assert whole > 10 * small


@pytest.mark.parametrize("method", ["hat", "eigen"])
@pytest.mark.parametrize("form", ["kernel", "primal"])
def test_fixed_alpha_ridge_matches_sklearn(method, form):
    X, Y = _data(5, 50, 12, 5)
    X = X - X[:40].mean(0)  # centred on the training rows, as the solver expects
    alpha = np.array([0.3, 3.0, 30.0, 300.0, 3.0])  # two targets share an alpha
    model = FixedAlphaRidge(X[:40], X[40:], alpha, form=form, method=method)
    assert model.method == method
    sets = np.stack([Y[:40].T, Y[:40][::-1].T], axis=1)  # (targets, 2 response sets, train)
    predictions = model.predict(sets)
    assert predictions.shape == (5, 2, 10) and predictions.dtype == np.float32
    for v, a in enumerate(alpha):
        for k, y in enumerate((Y[:40, v], Y[:40, v][::-1])):
            expected = Ridge(alpha=a).fit(X[:40], y).predict(X[40:])
            np.testing.assert_allclose(predictions[v, k], expected, atol=1e-4)


def test_fixed_alpha_ridge_auto_takes_the_cheaper_method():
    X, _ = _data(5, 300, 20, 1)
    # 10 test rows against 20 components: hat (10 x 290) beats eigen (20 x 300)
    assert FixedAlphaRidge(X[:290], X[290:], np.ones(1)).method == "hat"
    # 150 test rows: eigen (20 x 300) beats hat (150 x 150)
    assert FixedAlphaRidge(X[:150], X[150:], np.ones(1)).method == "eigen"
    with pytest.raises(ValueError, match=r"^'method' must be one of 'auto', 'eigen', 'hat'; got 'qr'$"):
        FixedAlphaRidge(X[:150], X[150:], np.ones(1), method="qr")


@pytest.mark.parametrize(("backend", "method"), [("torch", "hat"), ("torch_cuda", "eigen")])
def test_fixed_alpha_ridge_auto_keeps_the_eigen_form_on_a_gpu(backend, method):
    torch = pytest.importorskip("torch")
    if backend == "torch_cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, _ = _data(5, 300, 20, 1)
    set_backend(backend)
    try:
        assert FixedAlphaRidge(X[:290], X[290:], np.ones(1)).method == method
    finally:
        set_backend("numpy")


def test_fit_predict_ridge_cv_errors():
    X, Y = _data(7, 30, 4, 3)
    cv = inner_splits("concepts", np.arange(20), 2)
    with pytest.raises(
        ValueError, match=r"^'rows' must give one row of 'Y' per row of 'X_train' \(20\)"
    ):
        fit_predict_ridge_cv(X[:20], Y, X[20:], ALPHAS, cv, rows=np.arange(19))
    with pytest.raises(
        ValueError, match=r"^'alphas' must be a non-empty list of positive finite numbers"
    ):
        fit_predict_ridge_cv(X[:20], Y, X[20:], [], cv, rows=np.arange(20))


def test_resolve_form():
    assert resolve_form("auto", 10, 20) == "primal"
    assert resolve_form("auto", 30, 20) == "kernel"
    with pytest.raises(
        ValueError, match=r"^'solver' must be one of 'auto', 'kernel', 'primal'; got 'qr'$"
    ):
        resolve_form("qr", 10, 20)


def _backend_run(name):
    backend = set_backend(name)
    try:
        X, Y = _data(6, 70, 20, 8)
        cv = inner_splits("concepts", np.arange(60), 3)
        fit = fit_predict_ridge_cv(
            X[:60], Y, X[60:], ALPHAS, cv, rows=np.arange(60), n_targets_batch=3
        )
        return backend, fit
    finally:
        set_backend("numpy")


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    _, reference = _backend_run("numpy")
    _, fit = _backend_run("torch")
    np.testing.assert_array_equal(fit.alpha, reference.alpha)
    np.testing.assert_allclose(fit.predictions, reference.predictions, atol=1e-5)


def test_torch_cuda_backend_matches_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _, reference = _backend_run("numpy")
    _, fit = _backend_run("torch_cuda")
    np.testing.assert_array_equal(fit.alpha, reference.alpha)
    np.testing.assert_allclose(fit.predictions, reference.predictions, atol=1e-4)


@pytest.mark.parametrize("method", ["hat", "eigen"])
def test_fixed_alpha_ridge_on_torch_matches_numpy(method):
    pytest.importorskip("torch")
    X, Y = _data(8, 40, 6, 5)
    alpha = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
    stacked = np.stack([Y[:30].T, Y[:30][::-1].T], axis=1)  # two response sets
    expected = FixedAlphaRidge(X[:30], X[30:], alpha, method=method).predict(stacked)
    set_backend("torch")
    try:
        out = FixedAlphaRidge(X[:30], X[30:], alpha, method=method).predict(stacked)
    finally:
        set_backend("numpy")
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.shape == (5, 2, 10)
