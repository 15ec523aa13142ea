"""Benchmark of the paired contrast bootstrap against a per-resample refitting loop.

Synthetic event-locked data (generated here, seeded): ``--events`` events (default 5,000)
in 5 contiguous CV blocks, ``--units`` units (default 8,000 = 1,000 electrodes x 8 time
bins), two models of ``--features`` features each (default 768): A = [own | common],
B = [other | common]; ``--planted`` of the units (default 13%) follow A's own features,
30% the common ones, the rest is noise.

- brainalign: ``fit_encoding`` of both models once (leave one block out: 5 outer folds,
  inner CV over the training blocks, eigen solver, one eigendecomposition per fold for all
  alphas and units) + ``bootstrap_scores`` of ``--resamples`` (default 1,000) shared
  stratified resamples of the held-out events (count matrices x sufficient statistics).
- naive: for each resample, for each outer fold, resample the fold's training and test
  events with replacement, refit scikit-learn's ``RidgeCV`` (same alpha grid, one alpha
  per unit by efficient leave-one-out, the fastest per-resample refit we know of) on the
  resampled training events of each model and score the resampled test events.
  It runs ``--reference-resamples`` resamples (default 2) and its time is extrapolated
  linearly to ``--resamples`` (said so in the output).

Then, at a reduced size (``--agreement-size``: events, units, features, resamples), both
methods run in full on the same planted data and the sets of significant units (site
selection ``mean``, BH q <= 0.05, delta > 0) are compared, ours also without the fold
correction. Printed: problem sizes,
both times, their ratio, peak memory (tracemalloc peak of numpy allocations in our path,
and the process's max RSS) and the agreement. Run:
``python benchmarks/contrasts.py [--small]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_info

from brainalign.contrasts import bootstrap_scores, contrast_statistics, draw_resamples, fold_strata
from brainalign.contrasts.selection import select_units
from brainalign.encoding import fit_encoding
from brainalign.encoding.cv import outer_splits
from brainalign.encoding.stats import fdr_bh

ALPHAS = np.logspace(-1, 6, 8)
N_BLOCKS = 5


def simulate(n_events: int, n_units: int, n_features: int, planted: float, seed: int = 0):
    """Features of models A and B (n_events, n_features) float32, responses, CV blocks."""
    rng = np.random.default_rng(seed)
    k = n_features // 2
    own, other, common = (rng.standard_normal((n_events, k), dtype=np.float32) for _ in range(3))
    n_planted, n_shared = round(planted * n_units), round(0.3 * n_units)
    Y = rng.standard_normal((n_events, n_units), dtype=np.float32)
    scale = np.float32(0.4 / np.sqrt(k))
    Y[:, :n_planted] += own @ rng.standard_normal((k, n_planted), dtype=np.float32) * scale
    Y[:, n_planted : n_planted + n_shared] += (
        common @ rng.standard_normal((k, n_shared), dtype=np.float32) * scale
    )
    groups = np.repeat(np.arange(N_BLOCKS), -(-n_events // N_BLOCKS))[:n_events]
    return np.hstack([own, common]), np.hstack([other, common]), Y, groups


def ours(Xa, Xb, Y, groups, n_resamples: int, fold_correction: bool = True):
    """Fit both models once, then bootstrap the held-out scores; scores and seconds."""
    kwargs = dict(
        kind="timeseries",
        groups=groups,
        alphas=ALPHAS,
        n_inner_folds=5,
        random_state=0,
        n_targets_batch=2048,
    )
    start = time.perf_counter()
    fit_a, fit_b = fit_encoding(Xa, Y, **kwargs), fit_encoding(Xb, Y, **kwargs)
    t_fit = time.perf_counter() - start
    resamples = draw_resamples(fold_strata(fit_a.fold, "epochs", groups), n_resamples, 0)
    scores = bootstrap_scores(Y, fit_a.predictions, fit_b.predictions, resamples,
                              fold_correction=fold_correction)
    return scores, t_fit, time.perf_counter() - start - t_fit


def naive(Xa, Xb, Y, groups, n_resamples: int, seed: int = 0):
    """Per resample, refit RidgeCV on resampled training events; (n_resamples, n_units) deltas."""
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(seed)
    splits = outer_splits("timeseries", groups)
    deltas = np.zeros((n_resamples, Y.shape[1]))
    for b in range(n_resamples):
        r = np.zeros((2, Y.shape[1]))
        for train, test in splits:
            train_b, test_b = rng.choice(train, train.size), rng.choice(test, test.size)
            for side, X in enumerate((Xa, Xb)):
                mean, std = X[train_b].mean(0), X[train_b].std(0) + 1e-6
                model = RidgeCV(alphas=ALPHAS, alpha_per_target=True)  # efficient leave-one-out
                model.fit((X[train_b] - mean) / std, Y[train_b])
                pred = np.asarray(model.predict((X[test_b] - mean) / std))
                r[side] += _pearson(Y[test_b], pred) / len(splits)
        deltas[b] = r[0] - r[1]
    return deltas


def _pearson(y, p):
    y, p = y - y.mean(0), p - p.mean(0)
    return (y * p).sum(0) / np.sqrt((y * y).sum(0) * (p * p).sum(0))


def significant_naive(deltas, scores, q_level=0.05):
    """The naive loop's significant set, with our selection (its own p from its deltas)."""
    p = (1 + (deltas <= 0).sum(0)) / (deltas.shape[0] + 1)
    selected = select_units(scores["ci_a"], scores["ci_b"], "mean", scores["ci_mean"])
    q = np.full(p.size, np.nan)
    q[selected] = fdr_bh(p[selected])
    return selected & (q <= q_level) & (deltas.mean(0) > 0)


def agreement(size: list[int], planted: float) -> str:
    n_events, n_units, n_features, n_resamples = size
    Xa, Xb, Y, groups = simulate(n_events, n_units, n_features, planted, seed=1)
    scores, _, _ = ours(Xa, Xb, Y, groups, n_resamples)
    mine = contrast_statistics(scores)["significant"].to_numpy()
    uncorrected = contrast_statistics(
        ours(Xa, Xb, Y, groups, n_resamples, fold_correction=False)[0])["significant"].to_numpy()
    theirs = significant_naive(naive(Xa, Xb, Y, groups, n_resamples), scores)
    truth = np.arange(n_units) < round(planted * n_units)
    both, either = (mine & theirs).sum(), (mine | theirs).sum()
    return (
        f"agreement at {n_events} events x {n_units} units x {n_features} features, "
        f"{n_resamples} resamples (both run in full; selection 'mean', BH q <= 0.05): ours "
        f"{mine.sum()} significant ({(mine & truth).sum()} of {truth.sum()} planted, "
        f"{(mine & ~truth).sum()} not planted), without the fold correction "
        f"{uncorrected.sum()} ({(uncorrected & ~truth).sum()} not planted), naive {theirs.sum()} "
        f"({(theirs & truth).sum()} planted, {(theirs & ~truth).sum()} not); both {both}, "
        f"Jaccard {both / max(either, 1):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--units", type=int, default=8000)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--planted", type=float, default=0.13)
    parser.add_argument("--reference-resamples", type=int, default=2)
    parser.add_argument(
        "--agreement-size",
        type=int,
        nargs=4,
        default=[500, 200, 48, 300],
        metavar=("EVENTS", "UNITS", "FEATURES", "RESAMPLES"),
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick run: 1000 events x 800 units x 128 features, 200 resamples",
    )
    args = parser.parse_args()
    if args.small:
        args.events, args.units, args.features, args.resamples = 1000, 800, 128, 200
        args.reference_resamples, args.agreement_size = 1, [300, 100, 32, 200]
    blas = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]
    print(
        f"{args.events} events ({N_BLOCKS} blocks) x {args.units} units x {args.features} features, "
        f"two models, {args.resamples} resamples; {os.cpu_count()} CPUs, BLAS {blas}"
    )
    Xa, Xb, Y, groups = simulate(args.events, args.units, args.features, args.planted)
    tracemalloc.start()
    scores, t_fit, t_boot = ours(Xa, Xb, Y, groups, args.resamples)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t_ours = t_fit + t_boot
    print(
        f"brainalign: {t_ours:.1f} s = fits of both models {t_fit:.1f} s + {args.resamples} "
        f"resamples {t_boot:.1f} s; peak numpy memory {peak / 2**30:.2f} GiB "
        f"(data {(Xa.nbytes + Xb.nbytes + Y.nbytes) / 2**30:.2f} GiB)"
    )
    start = time.perf_counter()
    naive(Xa, Xb, Y, groups, args.reference_resamples)
    t_ref = time.perf_counter() - start
    t_naive = t_ref / args.reference_resamples * args.resamples
    print(
        f"naive refitting loop (sklearn RidgeCV per resample, fold and model): {t_ref:.1f} s for "
        f"{args.reference_resamples} resamples ({t_ref / args.reference_resamples:.1f} s each) -> "
        f"{t_naive:.0f} s for {args.resamples} (extrapolated linearly)"
    )
    print(
        f"speed-up: {t_naive / t_ours:.0f}x; process max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    print(agreement(args.agreement_size, args.planted))


if __name__ == "__main__":
    main()
