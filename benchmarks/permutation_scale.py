"""Benchmark: the permutation test of one study unit, projected, against the GEMM bound.

One subject x model x condition unit of a study: 10 runs x 300 TRs, 768 features x 4
delays (3,072 columns, kernel form, 2,700 components per fold), leave-one-run-out,
alphas from a 9-value grid, blocks of 10 TRs, 50,000 voxels and 1,000 permutations.
That many refits take hours, so the script runs ``--voxels`` x ``--permutations`` and
projects:

* the fixed cost (the folds' decompositions and hat matrices, independent of voxels and
  permutations) is timed alone;
* (``--folds-run``: only the first folds are run, all of the same shapes, and both times
  scaled to the 10 folds: the fixed cost dominates a reduced run on a small machine)
* the refits (``null_statistics``: products, gathers, correlations, running statistics)
  are timed at the reduced size and scaled by (50,000 x 1,001) / (voxels x (perms + 1))
  voxel x response-set pairs (the real data are scored like one more permutation).

The bound: each voxel x response set costs ``n_folds x 2 x n_train x n_test``
multiply-adds in the hat form (8.1e14 for the unit), at the rate of a float32 matmul of
the shapes the refits use (voxels of an alpha group x training rows, times training rows
x permutations x test rows), repeated to the refits' operation count right after them. ``--reference`` also times the
former path (gathering the permuted responses) on a few voxels, and checks that both give
the same statistics.

    python benchmarks/permutation_scale.py                       # 2,000 voxels, 20 perms
    python benchmarks/permutation_scale.py --voxels 500 --permutations 8 --reference
    python benchmarks/permutation_scale.py --backend torch_cuda --voxels 20000 --permutations 100
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

N_RUNS, N_TRS, N_FEATURES, DELAYS = 10, 300, 768, (1, 2, 3, 4)
FULL_VOXELS, FULL_PERMUTATIONS = 50_000, 1_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxels", type=int, default=2000, help="voxels run (default 2000)")
    parser.add_argument(
        "--permutations", type=int, default=20, help="permutations run (default 20)"
    )
    parser.add_argument("--batch", type=int, default=4096, help="n_targets_batch (default 4096)")
    parser.add_argument("--backend", default="numpy", help="himalaya backend (default numpy)")
    parser.add_argument("--dtype", default="float32", help="precision of the refits")
    parser.add_argument(
        "--folds-run", type=int, default=10,
        help="outer folds run (all have the same shape); times scaled by 10 / folds-run",
    )  # fmt: skip
    parser.add_argument("--reference", action="store_true", help="also time the former path")
    parser.add_argument("--reference-voxels", type=int, help="voxels of --reference (default all)")
    parser.add_argument("--profile", action="store_true", help="cProfile the refits (top 15)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_unit(n_voxels: int, seed: int):
    """Delayed smooth features, voxels mixing them at random SNR, grid alphas per fold."""
    from brainalign.encoding.delays import make_delays

    rng = np.random.default_rng(seed)
    n = N_RUNS * N_TRS
    X = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    for t in range(1, n):  # AR(1) features, phi = 0.9
        X[t] = 0.9 * X[t - 1] + np.sqrt(1 - 0.81) * X[t]
    runs = np.repeat(np.arange(N_RUNS), N_TRS)
    signal = X[:, :16] @ rng.standard_normal((16, n_voxels)).astype(np.float32) / 4
    Y = signal * rng.uniform(0, 1, n_voxels).astype(np.float32)
    Y += rng.standard_normal((n, n_voxels)).astype(np.float32)
    splits = [(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(N_RUNS)]
    grid = np.logspace(0, 8, 9)
    alpha = grid[rng.integers(0, grid.size, (N_RUNS, n_voxels))]
    return make_delays(X, DELAYS, runs), Y, runs, splits, alpha


def gemm_rate(device, dtype: str, n_rows: int, n_cols: int, flops: float) -> float:
    """FLOP/s of (n_rows, 2700) @ (2700, n_cols) products repeated to ``flops`` in all.

    As much work as the refits did, back to back, so that a loaded machine slows both alike
    (a best-of-3 of one product would pick the machine's quiet moments).
    """
    n_train = (N_RUNS - 1) * N_TRS
    rng = np.random.default_rng(0)
    a = device.put(rng.standard_normal((n_rows, n_train)), dtype)
    b = device.put(rng.standard_normal((n_train, n_cols)), dtype)
    per_call = 2.0 * n_rows * n_train * n_cols
    calls = max(3, int(np.ceil(flops / per_call)))
    start = time.perf_counter()
    for _ in range(calls):
        out = a @ b
    float(device.get(out[:1, :1]).ravel()[0])  # synchronise
    return calls * per_call / (time.perf_counter() - start)


def build_refits(device, X_fit, splits, alpha, dtype):
    from brainalign.encoding.nulls import PermutedRefit
    from brainalign.encoding.ridge import standardize

    return [
        PermutedRefit(*standardize(X_fit, train, test), a, device, form="auto", dtype=dtype)
        for (train, test), a in zip(splits, alpha)
    ]


def main(argv=None) -> None:
    from himalaya.backend import set_backend

    from brainalign.encoding.device import Device
    from brainalign.encoding.nulls import null_statistics, sets_per_product
    from brainalign.encoding.stats import _permute_runs

    args = parse_args(argv)
    set_backend(args.backend)
    device = Device()
    X_fit, Y, runs, splits, alpha = make_unit(args.voxels, args.seed)
    rng = np.random.default_rng(args.seed)
    orders = np.stack([_permute_runs(runs, 10, rng) for _ in range(args.permutations)])
    print(
        f"study unit: {N_RUNS} runs x {N_TRS} TRs, {N_FEATURES} x {len(DELAYS)} features, "
        f"run at {args.voxels} voxels x {args.permutations} permutations, projected to "
        f"{FULL_VOXELS} x {FULL_PERMUTATIONS}; backend {args.backend}, {args.dtype}; "
        f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    start = time.perf_counter()
    scale = N_RUNS / args.folds_run  # every fold has the same shapes
    splits, alpha = splits[: args.folds_run], alpha[: args.folds_run]
    refits = build_refits(device, X_fit, splits, alpha, args.dtype)
    fixed = (time.perf_counter() - start) * scale
    n_top = min(250, args.permutations // 4) + 1
    profiler = _profiler(args.profile)
    start = time.perf_counter()
    stats = null_statistics(
        Y, orders, refits, splits, scoring="fold_mean", n_targets_batch=args.batch, n_top=n_top
    )
    refit_time = (time.perf_counter() - start) * scale
    _report_profile(profiler)
    n_train, n_test = (N_RUNS - 1) * N_TRS, N_TRS
    per = sets_per_product(min(args.batch, args.voxels), n_train, refits[0].width(), n_test)
    group = max(1, min(args.batch, args.voxels) // 9)
    pairs = args.voxels * (args.permutations + 1)
    full_pairs = FULL_VOXELS * (FULL_PERMUTATIONS + 1)
    flops_per_pair = N_RUNS * 2.0 * n_train * n_test
    flops_run = pairs * flops_per_pair / scale
    rate = gemm_rate(device, args.dtype, group, min(per, args.permutations) * n_test, flops_run)
    measured = refit_time / pairs
    bound = flops_per_pair / rate
    print(
        f"methods: {sorted({r.method for r in refits})}; {per} permutations per product; "
        f"{args.folds_run} of {N_RUNS} folds run, times x {scale:g}"
    )
    print(f"fixed cost (decompositions, hat matrices): {fixed:.1f} s")
    print(
        f"refits: {refit_time:.1f} s for {pairs} voxel x response sets = "
        f"{1e3 * measured:.4f} ms each"
    )
    print(
        f"GEMM ({group} x {n_train}) @ ({n_train} x {min(per, args.permutations) * n_test}), "
        f"{args.dtype}: {rate / 1e9:.1f} GFLOP/s -> bound {1e3 * bound:.4f} ms each"
    )
    print(
        f"projected unit ({FULL_VOXELS} voxels x {FULL_PERMUTATIONS} permutations): "
        f"{(fixed + measured * full_pairs) / 3600:.2f} h; GEMM bound "
        f"{bound * full_pairs / 3600:.2f} h; ratio (refits / bound) {measured / bound:.2f}"
    )
    if args.reference:

        def again() -> float:  # the new refits once more, after the former path
            start = time.perf_counter()
            null_statistics(
                Y, orders, refits, splits, scoring="fold_mean", n_targets_batch=args.batch,
                n_top=n_top,
            )  # fmt: skip
            return (time.perf_counter() - start) * scale / pairs

        reference(args, X_fit, Y, orders, splits, alpha, stats, measured, again)


def reference(args, X_fit, Y, orders, splits, alpha, stats, measured, again) -> None:
    """The former path (responses gathered per permutation, hat form) on a few voxels."""
    from brainalign.encoding.ridge import standardize
    from brainalign.encoding.stats import _gather_statistics, gather_models

    cols = slice(0, min(args.reference_voxels or args.voxels, args.voxels))
    folds = [standardize(X_fit, train, test) for train, test in splits]
    models = gather_models(folds, alpha[:, cols], "auto", "hat-gather", "fold_mean")
    n_top = min(250, args.permutations // 4) + 1
    start = time.perf_counter()
    old = _gather_statistics(Y[:, cols], orders, models, splits, "fold_mean", args.batch, n_top)
    per_pair = (time.perf_counter() - start) * N_RUNS / len(splits)
    per_pair /= cols.stop * (args.permutations + 1)
    measured = min(measured, again())  # new, former, new: a burst of load hits both
    print(
        f"former path (hat form, responses gathered; {cols.stop} voxels, fixed cost excluded): "
        f"{1e3 * per_pair:.4f} ms each; new refits (best of the runs before and after it) "
        f"{1e3 * measured:.4f} ms each: former / new {per_pair / measured:.2f}"
    )
    for key in ("observed", "sum", "sum_sq", "exceed"):
        print(f"  max |delta {key}| {np.abs(old[key] - stats[key][cols]).max():.2e}")


def _profiler(enabled: bool):
    if not enabled:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _report_profile(profiler) -> None:
    if profiler is None:
        return
    import pstats

    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
