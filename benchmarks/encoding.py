"""Benchmark: brainalign's ridge solver against himalaya's RidgeCV, same splits and alphas.

Setup (the defaults): synthetic data with 3000 training TRs (10 runs of 300) plus 500
held-out TRs, 768 features, 50,000 voxels, 10 alphas, 5 inner folds of whole runs. The
features are smooth (AR(1), phi = 0.9); each voxel is a low-rank projection of them with
its own signal-to-noise ratio (none to high) plus AR(1) noise (phi = 0.5), so that the
inner CV chooses many different alphas.

Each method runs in its own child process, which loads the same data from disk, z-scores
the features and centres the responses (in place) with training statistics, fits (inner
CV over the alphas, refit, predict the held-out TRs) and reports its wall time (fit and
predict only) and the peak resident memory of the whole process (``getrusage`` max RSS).
The methods run ``--repeat`` times, alternating; the fastest run of each counts (the
machine is shared). The parent prints both times, their ratio, both peaks, the peak of a
child that only loads the data, and the largest |delta r| between the held-out
correlations. Where the two chose different alphas (near-ties of the inner-CV score,
closer than himalaya's float32 rounding), those voxels are refitted with himalaya's
RidgeCV in float64 to tell which choice is right, and |delta r| is also given against it.

    python benchmarks/encoding.py                       # the issue's full size (minutes)
    python benchmarks/encoding.py --voxels 5000         # quick
    python benchmarks/encoding.py --backend torch_cuda  # on a GPU machine (both methods)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("eigen", "himalaya")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=3000, help="training TRs (default 3000)")
    parser.add_argument("--test", type=int, default=500, help="held-out TRs (default 500)")
    parser.add_argument("--runs", type=int, default=10, help="training runs (default 10)")
    parser.add_argument("--features", type=int, default=768, help="features (default 768)")
    parser.add_argument("--voxels", type=int, default=50_000, help="voxels (default 50000)")
    parser.add_argument(
        "--alphas", type=int, default=10, help="alphas, log-spaced 1e0..1e9 (default 10)"
    )
    parser.add_argument("--folds", type=int, default=5, help="inner folds (default 5)")
    parser.add_argument(
        "--batch", type=int, default=4096, help="brainalign's n_targets_batch (default 4096)"
    )
    parser.add_argument(
        "--backend", default="numpy", help="himalaya backend for both methods (default numpy)"
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated subset of eigen,himalaya"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per method, alternating; the fastest counts"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=[*METHODS, "load"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_data(args: argparse.Namespace, folder: Path) -> None:
    """Write X (n, p), Y (n, v) float32 and the run of every training TR to ``folder``."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(args.seed)
    n = args.train + args.test
    X = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n, args.features)), axis=0) * np.sqrt(
        1 - 0.81
    )
    rank = 64
    projection = rng.standard_normal((args.features, rank)) / np.sqrt(args.features)
    latent = (X @ projection).astype(np.float32)
    snr = np.where(
        rng.uniform(size=args.voxels) < 0.3, 0.0, 10 ** rng.uniform(-2, 0.5, args.voxels)
    )
    weights = (rng.standard_normal((rank, args.voxels)) * np.sqrt(snr / rank)).astype(np.float32)
    Y = latent @ weights
    for start in range(0, args.voxels, 5000):  # AR(1) noise, in chunks
        cols = slice(start, start + 5000)
        white = rng.standard_normal((n, Y[:, cols].shape[1]))
        Y[:, cols] += (lfilter([1.0], [1.0, -0.5], white, axis=0) * np.sqrt(1 - 0.25)).astype(
            np.float32
        )
    np.save(folder / "X.npy", X.astype(np.float32))
    np.save(folder / "Y.npy", Y)
    np.save(
        folder / "runs.npy",
        np.repeat(np.arange(args.runs), -(-args.train // args.runs))[: args.train],
    )


def run_child(args: argparse.Namespace) -> None:
    """Fit one method on the saved data; print a JSON line of time and peak memory."""
    from himalaya.backend import set_backend

    from brainalign.encoding import inner_splits, score_predictions

    folder = Path(args.data)
    X, Y, runs = (np.load(folder / f"{name}.npy") for name in ("X", "Y", "runs"))
    if args.child == "load":
        print(json.dumps({"method": "load", "seconds": 0.0, "max_rss": max_rss()}))
        return
    set_backend(args.backend)
    n = args.train
    Y -= Y[:n].mean(0)  # both methods see responses centred on the training mean (in place)
    mean, std = X[:n].mean(0), X[:n].std(0)
    X_train, X_test = (X[:n] - mean) / std, (X[n:] - mean) / std
    alphas = np.logspace(0, 9, args.alphas)
    cv = inner_splits("timeseries", runs, args.folds)
    start = time.perf_counter()
    predictions, chosen = FIT[args.child](X_train, Y, X_test, alphas, cv, n, args.batch)
    seconds = time.perf_counter() - start
    r, _ = score_predictions(Y[n:], predictions)
    np.save(folder / f"{args.child}_r.npy", r)
    np.save(folder / f"{args.child}_alpha.npy", chosen)
    print(json.dumps({"method": args.child, "seconds": seconds, "max_rss": max_rss()}))


def fit_eigen(X_train, Y, X_test, alphas, cv, n, batch):
    from brainalign.encoding import fit_predict_ridge_cv

    fit = fit_predict_ridge_cv(
        X_train, Y, X_test, alphas, cv, rows=np.arange(n), n_targets_batch=batch
    )
    return fit.predictions, fit.alpha


def fit_himalaya(X_train, Y, X_test, alphas, cv, n, batch):
    from himalaya.backend import get_backend
    from himalaya.ridge import RidgeCV

    backend = get_backend()
    Y_train = Y[:n]  # a view, already centred: himalaya fits no intercept here
    mean = Y_train.mean(0)
    model = RidgeCV(
        alphas=alphas.astype(np.float32), cv=cv, fit_intercept=False, solver_params={"warn": False}
    )
    model.fit(X_train, Y_train)
    predictions = backend.to_numpy(model.predict(X_test)) + mean
    return predictions, backend.to_numpy(model.best_alphas_)


FIT = {"eigen": fit_eigen, "himalaya": fit_himalaya}


def max_rss() -> int:
    """Peak resident memory of this process, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def spawn(args: argparse.Namespace, method: str, folder: Path) -> dict:
    argv = [sys.executable, __file__, "--child", method, "--data", str(folder)]
    for key in (
        "train",
        "test",
        "runs",
        "features",
        "voxels",
        "alphas",
        "folds",
        "batch",
        "backend",
        "seed",
    ):
        argv += [f"--{key}", str(getattr(args, key))]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {method} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    methods = [m for m in args.methods.split(",") if m]
    print(
        f"setup: {args.train} training TRs ({args.runs} runs) + {args.test} held-out TRs, {args.features} "
        f"features, {args.voxels} voxels, {args.alphas} alphas (1e0..1e9), {args.folds} inner folds of whole "
        f"runs; backend {args.backend}; brainalign n_targets_batch {args.batch}; "
        f"{os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    with tempfile.TemporaryDirectory(prefix="brainalign-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        make_data(args, folder)
        print(f"data written in {time.perf_counter() - start:.1f} s")
        results = {"load": spawn(args, "load", folder)}
        runs = {method: [] for method in methods}
        for _ in range(args.repeat):  # alternate, so that a burst of load on the machine hits both
            for method in methods:
                runs[method].append(spawn(args, method, folder))
        for method, done in runs.items():
            results[method] = {
                "seconds": min(run["seconds"] for run in done),
                "max_rss": max(run["max_rss"] for run in done),
                "all": [run["seconds"] for run in done],
            }
        report(results, methods, folder, args)


def report(results: dict, methods: list[str], folder: Path, args: argparse.Namespace) -> None:
    gb = 1024**3
    print(f"{'method':<10} {'time (s)':>9} {'peak RSS (GB)':>14}  all runs (s)")
    for m in ["load", *methods]:
        runs = ", ".join(f"{t:.1f}" for t in results[m].get("all", []))
        print(f"{m:<10} {results[m]['seconds']:>9.1f} {results[m]['max_rss'] / gb:>14.2f}  {runs}")
    if not set(methods) >= set(METHODS):
        return
    ours, ref = results["eigen"], results["himalaya"]
    r_ours, r_ref = np.load(folder / "eigen_r.npy"), np.load(folder / "himalaya_r.npy")
    a_ours, a_ref = np.load(folder / "eigen_alpha.npy"), np.load(folder / "himalaya_alpha.npy")
    differ = ~np.isclose(a_ours, a_ref, rtol=1e-3)
    delta = np.abs(r_ours - r_ref)
    print(f"speed-up (himalaya time / brainalign time): {ref['seconds'] / ours['seconds']:.2f}x")
    print(f"peak memory (brainalign / himalaya): {ours['max_rss'] / ref['max_rss']:.2f}")
    print(f"max |delta r| over all {r_ours.size} voxels: {delta.max():.2e}")
    print(
        f"max |delta r| over the {np.sum(~differ)} voxels where both chose the same alpha: "
        f"{delta[~differ].max() if (~differ).any() else 0.0:.2e}"
    )
    print(
        f"voxels with different alphas: {differ.sum()} ({100 * differ.mean():.2f}%); "
        f"median held-out r {np.median(r_ours):.3f}"
    )
    if differ.any():
        exact = float64_reference(folder, args, np.flatnonzero(differ))
        agree = np.isclose(exact["alpha"], a_ours[differ], rtol=1e-6)
        print(
            f"  refitted by himalaya RidgeCV in float64: brainalign's alpha is the float64 choice for "
            f"{agree.sum()} of {differ.sum()}, himalaya float32's for "
            f"{np.isclose(exact['alpha'], a_ref[differ], rtol=1e-3).sum()}; their float64 CV scores "
            f"differ by a median {np.median(exact['gap']):.1e} (relative)"
        )
        total = np.maximum(
            delta[~differ].max(initial=0.0), np.abs(r_ours[differ] - exact["r"]).max()
        )
        print(
            f"  max |delta r| vs himalaya RidgeCV (float64 where float32 chose differently): "
            f"{total:.2e}"
        )


def float64_reference(folder: Path, args: argparse.Namespace, voxels: np.ndarray) -> dict:
    """himalaya's RidgeCV in float64 on a few voxels: alpha, held-out r, relative CV-score gap."""
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    from brainalign.encoding import inner_splits, score_predictions

    set_backend("numpy")
    X, Y, runs = (np.load(folder / f"{name}.npy") for name in ("X", "Y", "runs"))
    n = args.train
    X = X.astype(np.float64)
    mean, std = X[:n].mean(0), X[:n].std(0)
    X_train, X_test = (X[:n] - mean) / std, (X[n:] - mean) / std
    Y = Y[:, voxels].astype(np.float64)
    Y -= Y[:n].mean(0)
    y_mean = Y[:n].mean(0)
    alphas = np.logspace(0, 9, args.alphas)
    cv = inner_splits("timeseries", runs, args.folds)
    model = RidgeCV(alphas=alphas, cv=cv, fit_intercept=False, solver_params={"warn": False})
    model.fit(X_train, Y[:n] - y_mean)
    r, _ = score_predictions(Y[n:], model.predict(X_test) + y_mean)
    scores = np.sort(_cv_scores(X_train, Y[:n] - y_mean, alphas, cv), axis=0)
    gap = (scores[-1] - scores[-2]) / np.abs(scores[-1])
    return {"alpha": np.asarray(model.best_alphas_), "r": r, "gap": gap}


def _cv_scores(X, Y, alphas, cv):
    """Mean over folds of the negative validation MSE of every alpha, in float64."""
    scores = np.zeros((len(alphas), Y.shape[1]))
    for train, test in cv:
        eigenvalues, Q = np.linalg.eigh(X[train].T @ X[train])
        z, A = Q.T @ (X[train].T @ Y[train]), X[test] @ Q
        for k, alpha in enumerate(alphas):
            scores[k] -= np.mean((Y[test] - A @ (z / (eigenvalues + alpha)[:, None])) ** 2, axis=0)
    return scores / len(cv)


if __name__ == "__main__":
    main()
