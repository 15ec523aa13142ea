"""The notebook API: `import brainalign as ba`, the RidgeEncoder against himalaya and sklearn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import brainalign as ba
from brainalign.encoding.cv import inner_splits
from brainalign.estimators import RidgeEncoder


def test_import_is_light_and_every_public_name_resolves():
    """Every name resolves without torch; the model table too (one interpreter for both)."""
    code = (
        "import sys, brainalign as ba\n"
        "heavy = [m for m in ('torch', 'transformers', 'nilearn', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "missing = [n for n in ba.__all__ if not hasattr(ba, n)]\n"
        "assert not missing, missing\n"
        "rows = {r['family']: r for r in ba.model_families()}\n"
        "assert 'picture' in rows['clip']['conditions'] and 'picture' not in rows['text_encoder']['conditions']\n"
        "assert rows['audio_encoder']['conditions'] == ['audio']\n"
        "assert all(r['examples'] for r in rows.values())\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ba.nope  # noqa: B018


def _data(n_runs=4, n_per_run=40, n_features=9, n_voxels=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_runs * n_per_run, n_features))
    W = rng.standard_normal((n_features, n_voxels)) * np.linspace(0, 1, n_voxels)
    Y = X @ W + rng.standard_normal((X.shape[0], n_voxels)) * 2.0 + 5.0
    return X, Y, np.repeat(np.arange(n_runs), n_per_run)


def test_ridge_encoder_matches_himalaya_ridgecv():
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    set_backend("numpy")
    X, Y, runs = _data()
    alphas = np.logspace(-1, 4, 11)
    enc = RidgeEncoder(alphas=alphas, n_folds=4).fit(X, Y, groups=runs)
    Xs = (X - X.mean(0)) / X.std(0)
    # as the workflow's himalaya engine: standardised X, Y centred with its training mean
    ref = RidgeCV(alphas=alphas, cv=inner_splits("timeseries", runs, 4), fit_intercept=False)
    ref.fit(Xs, Y - Y.mean(0))
    np.testing.assert_allclose(enc.alphas_, ref.best_alphas_, rtol=1e-4)
    np.testing.assert_allclose(enc.coef_, ref.coef_, rtol=1e-5, atol=1e-8)
    X_new = np.random.default_rng(1).standard_normal((15, X.shape[1]))
    Xs_new = (X_new - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(enc.predict(X_new), ref.predict(Xs_new) + Y.mean(0), rtol=1e-5, atol=1e-6)
    assert enc.coef_.shape == (9, 6) and enc.intercept_.shape == (6,) and enc.n_features_in_ == 9


def test_ridge_encoder_weights_equal_sklearn_ridge_at_each_alpha():
    from sklearn.linear_model import Ridge

    X, Y, runs = _data(seed=2)
    enc = RidgeEncoder(alphas=[0.5, 50.0, 5000.0], n_folds=4).fit(X, Y, groups=runs)
    Xs = (X - X.mean(0)) / X.std(0)
    for j, alpha in enumerate(enc.alphas_):
        ref = Ridge(alpha=alpha).fit(Xs, Y[:, j])
        np.testing.assert_allclose(enc.coef_[:, j], ref.coef_, rtol=1e-6, atol=1e-9)


def test_ridge_encoder_delays_recover_a_lagged_response():
    rng = np.random.default_rng(3)
    runs = np.repeat(np.arange(3), 60)
    x = rng.standard_normal((180, 1))
    lagged = np.concatenate([np.r_[0, 0, x[runs == r, 0][:-2]] for r in range(3)])
    Y = np.c_[lagged, rng.standard_normal(180)] + 0.1 * rng.standard_normal((180, 2))
    enc = RidgeEncoder(alphas=[0.01, 1, 100], delays=[0, 1, 2, 3], n_folds=3).fit(x, Y, groups=runs)
    assert np.argmax(np.abs(enc.coef_[:, 0])) == 2  # the delay-2 copy carries the signal
    scores = enc.score(x, Y, groups=runs)
    assert scores[0] > 0.95 and abs(scores[1]) < 0.3


def test_ridge_encoder_scores_and_errors():
    X, Y, runs = _data(seed=4)
    enc = RidgeEncoder(alphas=[1.0, 10.0], n_folds=4, scoring="r2").fit(X, Y, groups=runs)
    r2 = enc.score(X, Y, groups=runs)
    assert r2.shape == (6,) and np.all(r2 <= 1)
    with pytest.raises(ValueError, match="the 9 features the encoder was fitted on; got 3"):
        enc.predict(X[:, :3])
    with pytest.raises(RuntimeError, match="not fitted yet"):
        RidgeEncoder().predict(X)
    with pytest.raises(ValueError, match="'kind'"):
        RidgeEncoder(kind="movie").fit(X, Y)
    with pytest.raises(ValueError, match="no parameter 'alpha'"):
        RidgeEncoder().set_params(alpha=1)
    assert RidgeEncoder().set_params(n_folds=3).get_params()["n_folds"] == 3


def test_rsa_and_encoding_permutation_results_share_field_names():
    rng = np.random.default_rng(0)
    model = rng.random((2, 45))
    subjects = model[0] + rng.random((3, 45))
    res = ba.rsa_permutation_test(model, subjects, n_permutations=99, random_state=0)
    fields = {"p", "p_perm", "observed", "null_mean", "null_sd", "tail"}
    assert fields <= set(ba.RSAPermutationResult.__dataclass_fields__)
    assert fields <= set(ba.PermutationResult.__dataclass_fields__)
    assert res.p.shape == res.observed.shape == res.null_sd.shape == (2, 1)
    assert res.p[0, 0] < 0.05 and np.all(res.null_sd > 0)
    np.testing.assert_array_equal(res.p_value, res.p)  # former names still read
    np.testing.assert_array_equal(res.statistic, res.observed)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_extract_features_of_sentences_with_a_tiny_model():
    out = ba.extract_features("text_encoder", ["a dog runs", "the cat sleeps here", "rain"], layers=[0, 2])
    assert sorted(out) == [0, 2]
    assert out[2].shape[0] == 3 and out[2].dtype == np.float32
    assert not np.allclose(out[2][0], out[2][1])
    with pytest.raises(ValueError, match="reads text, not image"):
        ba.extract_features("text_encoder", ["a.png"], layers=[0])
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    images = ba.extract_features("clip", [Image.fromarray(p) for p in pixels], layers=[1])
    assert images[1].shape[0] == 2 and not np.allclose(images[1][0], images[1][1])
