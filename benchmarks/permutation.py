"""Benchmark: the permutation test's refits, hat matrices against the two-product form.

``permutation_pvalues`` refits every outer fold on every permuted response set with the
alphas fixed. ``FixedAlphaRidge`` can apply a fold's fit as one (n_test, n_train) hat
matrix per distinct alpha ("hat") or as two products through the eigenbasis ("eigen",
the form it had before and the reference here). Both run on the same data, folds,
alphas and permutations, one after the other in this process (fastest of ``--repeat``
runs, after a warm-up); the script prints the times, their ratio and the largest differences of the
p-values and null statistics.

Two shapes are measured:

``demo``
    The embedded demo's naturalistic task: 2 runs x 200 TRs, 384 features x 4 delays
    (kernel form, 200 components), leave-one-run-out.
``study``
    A study-sized naturalistic task: 10 runs x 300 TRs, 768 features x 4 delays (kernel
    form, 2700 components), leave-one-run-out.

    python benchmarks/permutation.py                  # both shapes, defaults below
    python benchmarks/permutation.py --voxels 20000 --permutations 1000
    python benchmarks/permutation.py --backend torch_cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from brainalign.encoding.delays import make_delays
from brainalign.encoding.stats import permutation_pvalues

SHAPES = {"demo": (2, 200, 384), "study": (10, 300, 768)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="demo,study", help="comma-separated: demo,study")
    parser.add_argument("--voxels", type=int, default=4000, help="voxels (default 4000)")
    parser.add_argument("--permutations", type=int, default=100, help="default 100")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each method (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backend", default="numpy", help="himalaya backend of the products (default numpy)"
    )
    return parser.parse_args(argv)


def make_data(n_runs: int, n_trs: int, n_features: int, n_voxels: int, seed: int):
    """Smooth features, voxels mixing them at random signal-to-noise ratios, grid alphas."""
    rng = np.random.default_rng(seed)
    n = n_runs * n_trs
    X = rng.standard_normal((n, n_features)).astype(np.float32)
    for t in range(1, n):  # AR(1) features, phi = 0.9
        X[t] = 0.9 * X[t - 1] + np.sqrt(1 - 0.81) * X[t]
    runs = np.repeat(np.arange(n_runs), n_trs)
    X_fit = make_delays(X, (1, 2, 3, 4), runs)
    signal = X[:, :16] @ rng.standard_normal((16, n_voxels)).astype(np.float32) / 4
    Y = signal * rng.uniform(0, 1, n_voxels).astype(np.float32) + rng.standard_normal(
        (n, n_voxels)
    ).astype(np.float32)
    splits = [(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(n_runs)]
    grid = np.logspace(0, 8, 9)
    alpha = grid[rng.integers(0, grid.size, (n_runs, n_voxels))]
    return X_fit, Y, runs, splits, alpha


def run(method: str, data, args: argparse.Namespace):
    X_fit, Y, runs, splits, alpha = data
    start = time.perf_counter()
    result = permutation_pvalues(
        X_fit,
        Y,
        splits,
        alpha,
        kind="timeseries",
        groups=runs,
        n_permutations=args.permutations,
        random_state=args.seed,
        method=method,
    )
    return time.perf_counter() - start, result


def main(argv=None) -> None:
    from himalaya.backend import set_backend

    args = parse_args(argv)
    set_backend(args.backend)
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    for shape in args.shapes.split(","):
        n_runs, n_trs, n_features = SHAPES[shape]
        data = make_data(n_runs, n_trs, n_features, args.voxels, args.seed)
        print(
            f"== {shape}: {n_runs} runs x {n_trs} TRs, {n_features} features x 4 delays, "
            f"{args.voxels} voxels, {args.permutations} permutations, leave-one-run-out, "
            f"{args.backend}, {threads} CPU threads"
        )
        X_fit, Y, runs, splits, alpha = data
        run("hat", (X_fit, Y[:, :10], runs, splits, alpha[:, :10]), args)  # warm-up: imports
        times, results = {}, {}
        for _ in range(args.repeat):
            for method in ("hat", "eigen"):
                seconds, results[method] = run(method, data, args)
                times[method] = min(times.get(method, np.inf), seconds)
        hat, eigen = results["hat"], results["eigen"]
        print(f"hat {times['hat']:.2f} s | eigen (reference) {times['eigen']:.2f} s")
        print(f"speed-up {times['eigen'] / times['hat']:.2f}x")
        print(
            f"max |delta| observed {np.abs(hat.observed - eigen.observed).max():.2e}, "
            f"null mean {np.abs(hat.null_mean - eigen.null_mean).max():.2e}, "
            f"null sd {np.abs(hat.null_sd - eigen.null_sd).max():.2e}, "
            f"p {np.abs(hat.p - eigen.p).max():.2e}, "
            f"p_perm {np.abs(hat.p_perm - eigen.p_perm).max():.2e}"
        )


if __name__ == "__main__":
    main()
