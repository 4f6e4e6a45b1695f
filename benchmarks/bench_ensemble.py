"""Benchmark GreedyOOFEnsemble: speed, memory and quality.

1. Selection from 64 candidates x 10,000 samples x 23 classes (synthetic OOF
   probabilities of varying quality): wall time, CPU time and peak memory (tracemalloc)
   of ``fit_oof``, against a straightforward implementation that recomputes every
   weighted sum and the hF from scratch (same steps, same Nelder-Mead budget).
2. Quality on held-out rows of the same synthetic pool: best single candidate, the plain
   average of all, auto-sklearn-style Caruana selection (with replacement, no weight
   optimisation) and the greedy OOF ensemble with weight optimisation.
3. Real BSD10k metadata (MiniLM title+tags embeddings): a few fast scikit-learn
   candidates, 5-fold OOF inside; hF on a stratified holdout never used for selection,
   ensemble vs. the best single candidate (chosen by its OOF hF).

Usage: ``python benchmarks/bench_ensemble.py [--quick | --full] [--skip-real]``.
``--quick`` (default) limits the naive comparison to 6 selection steps and uses one
holdout split on BSD10k; ``--full`` runs the naive reference to the same number of steps
as the fast one and 5 outer folds on BSD10k.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from sklearn_mesh.ensemble import GreedyOOFEnsemble, TaxonomyAligned  # noqa: E402
from sklearn_mesh.metrics import hierarchical_f1_score  # noqa: E402
from sklearn_mesh.taxonomy import BST  # noqa: E402

K = BST.n_leaves


def synthetic_pool(n=10_000, n_cand=64, seed=0):
    """OOF-like probabilities: a shared confusion component (errors correlated across
    models, as with models trained on the same data) plus each model's own noise, and a
    per-model quality; single models reach hF ~0.6-0.8."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, K, size=n)
    shared = rng.normal(size=(n, K)).astype(np.float32) * 1.2
    pool = {}
    for c in range(n_cand):
        quality = rng.uniform(2.5, 5.0)
        logits = rng.normal(size=(n, K)).astype(np.float32) * 1.2 + shared
        logits[np.arange(n), y] += quality
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        pool[f"cand{c:02d}"] = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    return pool, y


# ---------------------------------------------------------------- naive reference
def naive_select(pool, y, *, max_steps, max_fev, n_restarts, seed):
    """Straightforward greedy + Nelder-Mead: every trial recomputes the weighted mean of
    all members over all rows and calls the public hF on the argmax."""
    names = list(pool)
    rng = np.random.RandomState(seed)
    members, w, trace = [], np.zeros(0), []

    def hf(proba):
        return hierarchical_f1_score(y, proba.argmax(axis=1))

    for step in range(max_steps):
        best, best_s = None, -np.inf
        for c in names:
            if c in members:
                continue
            ws = np.append(w * step / (step + 1), 1 / (step + 1))
            proba = sum(wi * pool[m] for wi, m in zip(ws, [*members, c]))
            s = hf(proba)
            if s > best_s:
                best, best_s = c, s
        members.append(best)
        w = np.append(w * step / (step + 1), 1 / (step + 1))
        s_opt = best_s
        if len(members) > 1:
            stack = [pool[m] for m in members]

            def objective(theta):
                e = np.exp(theta - theta.max())
                return -hf(sum(wi * p for wi, p in zip(e / e.sum(), stack)))

            m = len(members)
            for x0 in [np.log(w)] + [rng.normal(size=m) for _ in range(n_restarts)]:
                res = minimize(
                    objective,
                    x0,
                    method="Nelder-Mead",
                    options={
                        "maxfev": max_fev,
                        "initial_simplex": np.vstack([x0, x0 + 0.5 * np.eye(m)]),
                        "xatol": 1e-2,
                        "fatol": 1e-9,
                    },
                )
                if -res.fun > s_opt:
                    e = np.exp(res.x - res.x.max())
                    w, s_opt = e / e.sum(), -res.fun
        trace.append((best, best_s, s_opt))
    return trace


def measure(fn):
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, wall, cpu, peak / 2**20


def speed_table(quick):
    pool, y = synthetic_pool()
    data_mb = sum(p.nbytes for p in pool.values()) / 2**20
    rows = []
    ens, wall, cpu, peak = measure(lambda: GreedyOOFEnsemble(random_state=0).fit_oof(pool, y))
    steps = len(ens.trace_)
    rows.append(("GreedyOOFEnsemble (default: patience 5)", steps, wall, cpu, peak, ens.oof_score_))
    n_steps = 6 if quick else steps
    kw = dict(patience=None, max_members=n_steps, random_state=0)
    fast, wall_f, cpu_f, peak_f = measure(lambda: GreedyOOFEnsemble(**kw).fit_oof(pool, y))
    rows.append((f"GreedyOOFEnsemble, {n_steps} steps", n_steps, wall_f, cpu_f, peak_f,
                 fast.trace_.score_optimized.max()))
    naive, wall_n, cpu_n, peak_n = measure(
        lambda: naive_select(pool, y, max_steps=n_steps, max_fev=100, n_restarts=0, seed=0)
    )
    rows.append((f"naive recompute, {n_steps} steps", n_steps, wall_n, cpu_n, peak_n,
                 max(t[2] for t in naive)))
    same = [t[0] for t in naive] == list(fast.trace_.added)
    print(f"\n### Selection speed: 64 candidates x 10,000 samples x 23 classes "
          f"(inputs {data_mb:.0f} MiB float32)\n")
    print("| method | steps | wall s | CPU s | peak extra MiB (tracemalloc) | best OOF hF |")
    print("|---|---|---|---|---|---|")
    for name, st, w, c, p, s in rows:
        print(f"| {name} | {st} | {w:.1f} | {c:.1f} | {p:.0f} | {s:.4f} |")
    print(f"\nSpeed-up of the incremental implementation over the naive one "
          f"({n_steps} steps): {cpu_n / cpu_f:.1f}x CPU time, {wall_n / wall_f:.1f}x wall time. "
          f"Same members added in the same order: {same}.")
    return pool, y


def quality_table(pool, y):
    n = len(y)
    sel = np.arange(n) < n // 2
    fit = {k: v[sel] for k, v in pool.items()}
    hold = {k: v[~sel] for k, v in pool.items()}

    def hf(proba, mask):
        return hierarchical_f1_score(y[mask], proba.argmax(axis=1))

    solo = {k: hf(v, sel) for k, v in fit.items()}
    best = max(solo, key=solo.get)
    rows = [("best single candidate (by selection-half hF)", 1, solo[best], hf(hold[best], ~sel))]
    mean_fit = np.mean(list(fit.values()), axis=0)
    mean_hold = np.mean(list(hold.values()), axis=0)
    rows.append(("average of all 64", 64, hf(mean_fit, sel), hf(mean_hold, ~sel)))
    t0 = time.perf_counter()
    car = GreedyOOFEnsemble(
        optimize_weights=False, with_replacement=True, max_members=50, patience=None
    ).fit_oof(fit, y[sel])
    t_car = time.perf_counter() - t0
    rows.append((f"Caruana / auto-sklearn (50 steps, with replacement, no weights; {t_car:.1f} s)",
                 len(car.selected_), car.oof_score_, hf(car.predict_proba_from(hold), ~sel)))
    t0 = time.perf_counter()
    ens = GreedyOOFEnsemble(random_state=0).fit_oof(fit, y[sel])
    t_ens = time.perf_counter() - t0
    rows.append((f"GreedyOOFEnsemble (Nelder-Mead weights; {t_ens:.1f} s)", len(ens.selected_),
                 ens.oof_score_, hf(ens.predict_proba_from(hold), ~sel)))
    from sklearn_mesh.fusion import SelectiveKernelFusion

    t0 = time.perf_counter()
    members = {m: fit[m] for m in ens.selected_}
    skf = SelectiveKernelFusion(random_state=0).fit_oof(members, y[sel])
    t_skf = time.perf_counter() - t0
    rows.append((f"SelectiveKernelFusion over the ensemble's members ({t_skf:.1f} s)",
                 len(members), hf(skf.predict_proba_from(members), sel),
                 hf(skf.predict_proba_from(hold), ~sel)))
    print("\n### Quality on synthetic outputs: select on 5,000 rows, score 5,000 held-out rows\n")
    print("| method | members | hF selection half | hF held-out half |")
    print("|---|---|---|---|")
    for name, m, a, b in rows:
        print(f"| {name} | {m} | {a:.4f} | {b:.4f} |")


def real_table(quick, n_jobs):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    from benchmarks._common import bsd10k_text_features

    X, y, _ = bsd10k_text_features()
    candidates = [
        ("logreg_C1", TaxonomyAligned(LogisticRegression(C=1.0, max_iter=300))),
        ("logreg_C10", TaxonomyAligned(LogisticRegression(C=10.0, max_iter=300))),
        ("lda", TaxonomyAligned(LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))),
        ("gnb", TaxonomyAligned(GaussianNB())),
        (
            "knn15_cos",
            TaxonomyAligned(KNeighborsClassifier(15, metric="cosine", weights="distance")),
        ),
    ]
    outer = StratifiedKFold(5, shuffle=True, random_state=0)
    splits = list(outer.split(X, y))[: 1 if quick else 5]
    res = []
    t0 = time.perf_counter()
    for train, test in splits:
        ens = GreedyOOFEnsemble(candidates, random_state=0, n_jobs=n_jobs).fit(X[train], y[train])
        best = ens.candidate_scores_.idxmax()
        single = dict(candidates)[best].fit(X[train], y[train])
        res.append(
            {
                "best": best,
                "best_oof": ens.candidate_scores_.max(),
                "best_test": hierarchical_f1_score(y[test], single.predict(X[test])),
                "ens_oof": ens.oof_score_,
                "ens_test": hierarchical_f1_score(y[test], ens.predict(X[test])),
                "members": "+".join(f"{m}:{w:.2f}" for m, w in zip(ens.selected_, ens.weights_)),
                "oof_all": ens.candidate_scores_.round(4).to_dict(),
            }
        )
    elapsed = time.perf_counter() - t0
    print(f"\n### BSD10k v1.0 metadata (MiniLM title+tags, {len(y)} clips): "
          f"{len(splits)} outer fold(s), 5-fold OOF inside ({elapsed:.0f} s)\n")
    print("Candidates' OOF hF (first outer fold): "
          + ", ".join(f"{k} {v:.4f}" for k, v in res[0]["oof_all"].items()))
    print("\n| outer fold | best single (by OOF) | its OOF hF | its test hF "
          "| ensemble members:weights | ensemble OOF hF | ensemble test hF |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(res):
        print(f"| {i} | {r['best']} | {r['best_oof']:.4f} | {r['best_test']:.4f} | {r['members']} "
              f"| {r['ens_oof']:.4f} | {r['ens_test']:.4f} |")
    if len(res) > 1:
        bt = np.array([r["best_test"] for r in res])
        et = np.array([r["ens_test"] for r in res])
        print(f"| mean ± sd | | | {bt.mean():.4f} ± {bt.std():.4f} | | | "
              f"{et.mean():.4f} ± {et.std():.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="default: small naive comparison")
    mode.add_argument("--full", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="skip the BSD10k part")
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    quick = not args.full
    print(f"# bench_ensemble ({'quick' if quick else 'full'} mode), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    pool, y = speed_table(quick)
    quality_table(pool, y)
    if not args.skip_real:
        real_table(quick, args.n_jobs)


if __name__ == "__main__":
    main()
