"""brainalign on arrays: voxel-wise encoding and RSA in about 20 lines (run: python docs/tutorial.py).

A model's features ``X`` (time points x units) and a brain's responses ``Y`` (time points x
voxels, 4 runs); half the voxels are driven by the features, half are noise. Then 40
concepts seen by a model and by 4 subjects, compared as RDMs. tests/test_tutorial.py runs
this file and checks what it prints.
"""

import numpy as np

import brainalign as ba

rng = np.random.default_rng(0)
runs = np.repeat([1, 2, 3, 4], 100)                                   # 4 runs x 100 TRs
X = rng.standard_normal((400, 20))                                    # model features
Y = np.c_[X @ rng.standard_normal((20, 30)), np.zeros((400, 30))] + 3 * rng.standard_normal((400, 60))

# 1. Encoding: nested CV (leave one run out; alphas chosen per voxel inside), held-out r.
fit = ba.fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=np.logspace(-1, 5, 7), delays=[0, 1])
test = ba.permutation_test(fit, X, Y, kind="timeseries", groups=runs, n_permutations=100, tail="normal")
significant = ba.fdr_bh(test.p) <= 0.05                               # one-sided (r > 0), BH-FDR
print(f"encoding: driven voxels r = {fit.r[:30].mean():.2f}, noise voxels r = {fit.r[30:].mean():+.3f}; "
      f"significant {significant[:30].sum()}/30 driven, {significant[30:].sum()}/30 noise")

# The fitted model, scikit-learn style, predicts new stimuli.
encoder = ba.RidgeEncoder(alphas=np.logspace(-1, 5, 7), delays=[0, 1], n_folds=4).fit(X, Y, groups=runs)
print(f"RidgeEncoder: coef_ {encoder.coef_.shape}, median alpha driven {np.median(encoder.alphas_[:30]):g}")

# 2. RSA: one RDM per subject and one for the model, compared with Spearman's rho.
concepts = rng.standard_normal((40, 50))                              # the shared structure
model_rdm = ba.compute_rdm(concepts @ rng.standard_normal((50, 64)), metric="correlation")
subject_rdms = np.stack([ba.compute_rdm(concepts + 1.5 * rng.standard_normal((40, 50))) for _ in range(4)])
ceiling = ba.noise_ceiling(subject_rdms)
rsa = ba.rsa_permutation_test(model_rdm[None], subject_rdms, n_permutations=1000, random_state=0)
print(f"RSA: rho = {rsa.observed[0, 0]:.2f} (p = {rsa.p[0, 0]:.3f}), noise ceiling "
      f"[{ceiling.lower:.2f}, {ceiling.upper:.2f}]")
