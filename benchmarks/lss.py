"""Benchmark of brainalign's fast LSS single-trial betas against nilearn's per-trial loop.

Synthetic event-related run (generated here, seeded): ``--trials`` trials (default 180)
with onsets jittered by 4-8 s, TR 2 s, ``--voxels`` voxels (default 50,000) whose
responses are random trial amplitudes convolved with the glover HRF plus white noise.

- brainalign: ``brainalign.datasets.betas.estimate_betas(method='lss')`` on the
  (n_scans, n_voxels) array (all trials at once; best of ``--repeats``). LSA is timed too.
- nilearn: the LSS loop of nilearn's example ``plot_beta_series``: per trial, relabel it
  (``<trial_type>__<index>``), fit a new ``FirstLevelModel(noise_model='ols',
  signal_scaling=False, ...)`` on the NIfTI image and take the trial's ``effect_size``
  contrast. The loop runs on ``--reference-trials`` trials spread over the run, and its
  time is extrapolated linearly to all trials (said so in the output).

Printed: both times, the ratio, and max |difference| of the betas on the trials both
computed (absolute, and relative to the largest |beta|). Run:
``python benchmarks/lss.py [--trials 180 --voxels 50000 --reference-trials 12]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix
from threadpoolctl import threadpool_info

from brainalign.datasets.betas import estimate_betas

TR = 2.0


def simulate(n_trials: int, n_voxels: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """BOLD (n_scans, n_voxels) float32 and the events of a jittered event-related run."""
    rng = np.random.default_rng(seed)
    onsets = 6.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(4.0, 8.0, n_trials - 1))])
    n_scans = int(np.ceil((onsets[-1] + 24.0) / TR))
    names = [f"t{i:04d}" for i in range(n_trials)]
    single = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": names})
    frame_times = np.arange(n_scans) * TR
    regressors = make_first_level_design_matrix(frame_times, single, drift_model=None)[names]
    data = (regressors.to_numpy() @ rng.standard_normal((n_trials, n_voxels))).astype(np.float32)
    data += 100.0 + 0.3 * rng.standard_normal((n_scans, n_voxels), dtype=np.float32)
    events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": "word",
                           "concept": [f"concept{i % 90:02d}" for i in range(n_trials)]})
    return data, events


def as_nifti(data: np.ndarray) -> tuple[nib.Nifti1Image, nib.Nifti1Image, np.ndarray]:
    """The run as a 4D image on a near-cubic grid, its mask, and the mask as booleans."""
    n_scans, n_voxels = data.shape
    side = int(np.ceil(n_voxels ** (1 / 3)))
    shape = (int(np.ceil(n_voxels / side**2)), side, side)
    mask = np.zeros(int(np.prod(shape)), dtype=bool)
    mask[:n_voxels] = True
    mask = mask.reshape(shape)
    volume = np.zeros((*shape, n_scans), dtype=np.float32)
    volume[mask] = data.T
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    return nib.Nifti1Image(volume, affine), nib.Nifti1Image(mask.astype(np.int8), affine), mask


def nilearn_lss(img, mask_img, mask, events: pd.DataFrame, trials: list[int]) -> tuple[np.ndarray, float]:
    """nilearn's per-trial LSS loop (plot_beta_series) on ``trials``; betas and seconds."""
    betas = []
    start = time.perf_counter()
    for row in trials:
        relabelled = events[["onset", "duration", "trial_type"]].copy()
        name = f"{relabelled.loc[row, 'trial_type']}__{row:03d}"
        relabelled.loc[row, "trial_type"] = name
        model = FirstLevelModel(t_r=TR, noise_model="ols", signal_scaling=False, hrf_model="glover",
                                drift_model="cosine", high_pass=0.01, mask_img=mask_img)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(img, events=relabelled)
            betas.append(model.compute_contrast(name, output_type="effect_size").get_fdata()[mask])
    return np.array(betas), time.perf_counter() - start


def best_time(func, repeats: int) -> tuple[float, object]:
    """Smallest wall time of ``repeats`` calls of ``func``, and its last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=180)
    parser.add_argument("--voxels", type=int, default=50_000)
    parser.add_argument("--reference-trials", type=int, default=12,
                        help="trials nilearn's loop runs on (time extrapolated to --trials)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data, events = simulate(args.trials, args.voxels)
    blas = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]
    print(f"{args.trials} trials x {args.voxels} voxels, {data.shape[0]} scans (TR {TR:g} s); "
          f"{os.cpu_count()} CPUs, BLAS {blas}")
    t_lss, (betas, _) = best_time(lambda: estimate_betas(data, events, tr=TR, method="lss"), args.repeats)
    t_lsa, _ = best_time(lambda: estimate_betas(data, events, tr=TR, method="lsa"), args.repeats)
    print(f"brainalign LSS (all {args.trials} trials): {t_lss:.2f} s; LSA: {t_lsa:.2f} s "
          f"(best of {args.repeats})")
    img, mask_img, mask = as_nifti(data)
    subset = np.unique(np.linspace(0, args.trials - 1, min(args.reference_trials, args.trials)).astype(int))
    reference, t_ref = nilearn_lss(img, mask_img, mask, events, subset.tolist())
    t_full = t_ref / len(subset) * args.trials
    difference = float(np.abs(betas[subset] - reference).max())
    how = ("measured on all of them" if len(subset) == args.trials
           else f"extrapolated linearly from {len(subset)} trials")
    print(f"nilearn per-trial FirstLevelModel loop: {t_ref:.1f} s for {len(subset)} trials "
          f"({t_ref / len(subset):.2f} s per trial) -> {t_full:.0f} s for {args.trials} trials ({how})")
    print(f"speed-up: {t_full / t_lss:.0f}x; max |beta difference| on the {len(subset)} trials "
          f"both computed: {difference:.1e} ({difference / np.abs(reference).max():.1e} of max |beta| "
          f"{np.abs(reference).max():.2f})")


if __name__ == "__main__":
    main()
