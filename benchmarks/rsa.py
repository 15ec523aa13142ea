"""Benchmark of brainalign's RSA against rsatoolbox, measured in the same run.

1. An RDM of 180 conditions x 50,000 voxels (correlation distance; and rsatoolbox's
   'euclidean', our 'squared_euclidean'): ``brainalign.rsa.compute_rdm`` against
   ``rsatoolbox.rdm.calc_rdm``. Target: >= 10x faster.
2. A 10,000-permutation Spearman test between two 180-condition RDMs:
   ``brainalign.rsa.permutation_test`` against the straightforward loop with rsatoolbox
   (``permute_rdms`` then ``compare(..., method='spearman')`` per permutation; rsatoolbox
   has no permutation test of its own). The loop is timed on fewer permutations and
   extrapolated linearly to 10,000 (said so in the output). Target: < 1 s on 2 cores.

Each figure is the best of a few repeats (the machine may be shared, so the ratios are
the figures to read). Run: ``python benchmarks/rsa.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits


def best_time(func, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``func``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_rdm(n_conditions: int, n_voxels: int, repeats: int) -> None:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    from brainalign.rsa import compute_rdm

    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((n_conditions, n_voxels)).astype(np.float32) + 1.0
    dataset = Dataset(patterns.astype(np.float64))
    for ours, theirs in (("correlation", "correlation"), ("squared_euclidean", "euclidean")):
        mine = compute_rdm(patterns, ours)
        reference = calc_rdm(dataset, method=theirs).get_vectors()[0]
        error = float(np.max(np.abs(mine - reference)))
        t_ours = {}
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="blas"):
                t_ours[threads] = best_time(lambda: compute_rdm(patterns, ours), repeats)
        t_ref = best_time(lambda: calc_rdm(dataset, method=theirs), repeats)
        print(f"RDM {n_conditions} x {n_voxels} ({ours} / rsatoolbox '{theirs}'): "
              f"brainalign {t_ours[1]:.3f} s (1 BLAS thread), {t_ours[2]:.3f} s (2); "
              f"rsatoolbox {t_ref:.3f} s -> {t_ref / min(t_ours.values()):.1f}x faster "
              f"(max |difference| {error:.1e})")


def bench_permutation(n_conditions: int, n_permutations: int, n_reference: int, repeats: int) -> None:
    from rsatoolbox.rdm import RDMs, compare
    from rsatoolbox.rdm.rdms import permute_rdms

    from brainalign.rsa import compare_rdms, permutation_test

    rng = np.random.default_rng(1)
    n_pairs = n_conditions * (n_conditions - 1) // 2
    model = rng.random(n_pairs)
    data = 0.02 * model + rng.random(n_pairs)
    times = {}
    for n_jobs in (1, 2):
        times[n_jobs] = best_time(lambda: permutation_test(
            model[None], data[None], n_permutations=n_permutations, random_state=0, n_jobs=n_jobs
        ), repeats)
    result = permutation_test(model[None], data[None], n_permutations=n_permutations, random_state=0)
    model_rdms, data_rdms = RDMs(model[None]), RDMs(data[None])
    perms = [rng.permutation(n_conditions) for _ in range(n_reference)]

    def reference():
        observed = compare(model_rdms, data_rdms, method="spearman")[0, 0]
        return (1 + sum(compare(permute_rdms(model_rdms, p), data_rdms, method="spearman")[0, 0]
                        >= observed for p in perms)) / (1 + len(perms))

    t_ref = best_time(reference, 1) * n_permutations / n_reference
    agree = abs(result.statistic[0, 0] - compare_rdms(model, data)) < 1e-12
    print(f"Permutation test, {n_permutations} Spearman permutations, {n_conditions} conditions: "
          f"brainalign {times[1]:.3f} s (1 thread), {times[2]:.3f} s (2 threads); "
          f"rsatoolbox loop {t_ref:.1f} s (timed on {n_reference} permutations, extrapolated "
          f"to {n_permutations}) -> {t_ref / min(times.values()):.0f}x faster "
          f"(p = {result.p_value[0, 0]:.4f}; statistic matches compare_rdms: {agree})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; numpy {np.__version__}")
    if args.quick:
        bench_rdm(60, 5000, repeats=2)
        bench_permutation(60, 1000, n_reference=50, repeats=1)
    else:
        bench_rdm(180, 50_000, repeats=3)
        bench_permutation(180, 10_000, n_reference=300, repeats=3)


if __name__ == "__main__":
    main()
