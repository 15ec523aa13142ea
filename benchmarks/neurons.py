"""Benchmark of the unit -> voxel mapping against the GEMM bound of its data products.

The problem of issue 13: 3,000 units x 50,000 voxels x 3,000 TRs (5 runs of 600) x 4 FIR
delays (1-4 TRs) x 5 leave-one-run-out folds, 200 permutations. ``map_units`` forms, per
unit batch, voxel batch and permutation (and once for the real data), the runs'
cross-products of delayed units and voxels: ``2 x n_trs x (n_units x n_delays) x n_voxels``
flops per pass, 201 passes (7.2e15 flops). Everything else (the d x d solves, every fold's
held-out r from those products, the permutation maxima) is elementwise work on top.

How it is measured (at reduced size, then scaled):

- the map runs on the full 3,000 TRs, 5 runs and 4 delays, one unit batch (``--units``,
  default 256) and ``--voxels`` voxels (default 4,096: two voxel batches of 2,048), with
  ``--perms-a`` and ``--perms-b`` permutations (defaults 1 and 5); the time per block is
  ``a + b (n_permutations + 1)`` (setup + passes), fitted from the two runs, and projected
  to the full problem: ``(3000 / units) x (50000 / voxels) x (a + 201 b)``;
- the GEMM rate is that of a float32 numpy matmul of exactly the shapes ``map_units``
  multiplies (``(units x 4, 600)' @ (600, 2048)``: one run's cross-product of one block),
  timed in the same process just before (best of ``--repeats`` of 5 back-to-back products);
  the bound is the full problem's flops at that rate;
- peak memory: ``tracemalloc`` peak of numpy allocations during a map with 1 permutation,
  at ``units`` and at 3 x ``units`` units (the outputs written as memory maps with
  ``out_dir``; their size on disk for the full problem is printed apart), and the
  process's max RSS.

Prints figures, asserts nothing on time. Run: ``OMP_NUM_THREADS=2 python benchmarks/neurons.py``
(about 1-2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_info

from brainalign.neurons import map_units

FULL = dict(units=3000, voxels=50000, trs=3000, runs=5, delays=(1, 2, 3, 4), permutations=200)


def gemm_rate(n_columns: int, run_length: int, n_voxels: int, repeats: int) -> float:
    """Best float32 GEMM rate (flop/s) of ``(run_length, n_columns)' @ (run_length, n_voxels)``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((run_length, n_columns), dtype=np.float32)
    y = rng.standard_normal((run_length, n_voxels), dtype=np.float32)
    x.T @ y
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(5):
            x.T @ y
        best = min(best, (time.perf_counter() - started) / 5)
    return 2 * run_length * n_columns * n_voxels / best


def data(n_units: int, n_voxels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    units = rng.standard_normal((FULL["trs"], n_units), dtype=np.float32)
    targets = rng.standard_normal((FULL["trs"], n_voxels), dtype=np.float32)
    groups = np.repeat(np.arange(FULL["runs"]), FULL["trs"] // FULL["runs"])
    return units, targets, groups


def timed_map(units, targets, groups, n_perm: int, unit_batch: int, **kwargs) -> tuple[float, dict]:
    started = time.perf_counter()
    result = map_units(
        units, targets, groups, delays=FULL["delays"], n_permutations=n_perm, unit_batch=unit_batch,
        voxel_batch=2048, **kwargs,
    )  # fmt: skip
    return time.perf_counter() - started, result.meta


def peak_memory(n_units: int, n_voxels: int, unit_batch: int) -> float:
    """tracemalloc peak (bytes) of one map with 1 permutation, outputs memory-mapped."""
    units, targets, groups = data(n_units, n_voxels, seed=1)
    with tempfile.TemporaryDirectory() as out_dir:
        tracemalloc.start()
        tracemalloc.reset_peak()
        map_units(
            units, targets, groups, delays=FULL["delays"], n_permutations=1, unit_batch=unit_batch,
            voxel_batch=2048, out_dir=out_dir,
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--voxels", type=int, default=4096)
    parser.add_argument("--perms-a", type=int, default=1)
    parser.add_argument("--perms-b", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    print(f"BLAS: {blas}")
    n_delays, run_length = len(FULL["delays"]), FULL["trs"] // FULL["runs"]
    rate = gemm_rate(args.units * n_delays, run_length, 2048, args.repeats)
    print(f"GEMM rate (float32 matmul ({args.units * n_delays} x {run_length}) @ ({run_length} x 2048), "
          f"best of {args.repeats} x 5): {rate / 1e9:.1f} GFLOP/s")  # fmt: skip
    units, targets, groups = data(args.units, args.voxels)
    t_a, meta_a = timed_map(units, targets, groups, args.perms_a, args.units)
    t_b, meta_b = timed_map(units, targets, groups, args.perms_b, args.units)
    per_pass = (t_b - t_a) / (args.perms_b - args.perms_a)
    setup = max(t_a - per_pass * (args.perms_a + 1), 0.0)
    for perms, t, meta in ((args.perms_a, t_a, meta_a), (args.perms_b, t_b, meta_b)):
        timings = meta["timings"]
        print(f"reduced map: {args.units} units x {args.voxels} voxels x {FULL['trs']} TRs, {perms} permutations: "
              f"{t:.2f} s (data products {timings['products']:.2f} s at "
              f"{meta['gemm_flops'] / timings['products'] / 1e9:.1f} GFLOP/s, scoring {timings['scoring']:.2f} s)")  # fmt: skip
    blocks = (FULL["units"] / args.units) * (FULL["voxels"] / args.voxels)
    projected = blocks * (setup + per_pass * (FULL["permutations"] + 1))
    flops = (FULL["permutations"] + 1) * 2 * FULL["trs"] * FULL["units"] * n_delays * FULL["voxels"]
    bound = flops / rate
    print(f"per pass (all 5 folds): {per_pass:.2f} s, setup per block {setup:.2f} s")
    print(f"full problem {FULL}: {flops:.3e} GEMM flops")
    print(f"projected time {projected / 3600:.2f} h; GEMM bound at the measured rate {bound / 3600:.2f} h; "
          f"ratio {projected / bound:.2f}")  # fmt: skip
    for n in (args.units, 3 * args.units):
        print(f"tracemalloc peak, {n} units x {args.voxels} voxels, outputs memory-mapped: "
              f"{peak_memory(n, args.voxels, args.units) / 2**20:.0f} MiB")  # fmt: skip
    out_bytes = FULL["units"] * FULL["voxels"] * (4 + 1 + 4 * n_delays + 4 + 1)
    print(f"full problem outputs (score, sign, weights, p, significant; memory maps with out_dir): "
          f"{out_bytes / 2**30:.2f} GiB on disk")  # fmt: skip
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
