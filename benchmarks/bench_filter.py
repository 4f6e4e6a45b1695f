"""GraNd / EL2N filtering on real data with 30% flipped labels, vs cleanlab; scoring speed.

Data: BSD10k v1.0 training metadata, MiniLM (offline) embeddings of title + tags
(``benchmarks._common.bsd10k_text_features``). 30% of the labels are flipped uniformly at
random to another class.

1. Detection: one scoring pass (``GrandEL2NFilter(method="union", cv=5)``: out-of-fold
   EL2N and GraNd, averaged over ``n_runs``) on the whole noisy set. Each method prunes a
   fraction ``f`` of the samples; cleanlab's ``find_label_issues`` gets the *same*
   out-of-fold probabilities (``scoring_proba_``). Precision / recall of "removed" vs
   "flipped".
2. Downstream: 5-fold CV; in every outer fold the filter runs on the training part only
   (nested, as in ``FilteredClassifier``), a LogisticRegression is trained on the kept
   rows (noisy labels) and predicts the whole test part; hF is scored against the TRUE
   labels.
3. Speed: time to score 35,000 x 3,072 synthetic samples (both scores, one run, default
   model: 1 hidden layer of 128, 5 epochs), and the GraNd pass alone with the closed form
   vs ``torch.func`` vmap.

Run: ``python benchmarks/bench_filter.py [--quick | --full]`` (quick is the default).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import bsd10k_text_features  # noqa: E402
from sklearn_mesh.filtering import GrandEL2NFilter, _keep_mask  # noqa: E402
from sklearn_mesh.metrics import hierarchical_f1_score  # noqa: E402

NOISE = 0.30


def flip_labels(y, rate, rng):
    classes = np.unique(y)
    y_noisy = y.copy()
    idx = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    for i in idx:
        y_noisy[i] = rng.choice(classes[classes != y[i]])
    flipped = np.zeros(len(y), dtype=bool)
    flipped[idx] = True
    return y_noisy, flipped


def method_masks(filt, X, y_idx, fraction, scope="global"):
    """Keep masks of the four methods at ``fraction`` from one fitted union filter."""
    from sklearn_mesh import _filter_scores

    # same scores, other fractions: reuse the filter's selection rule directly
    eligible = np.ones(len(y_idx), dtype=bool)
    keys = _filter_scores.row_keys(np.asarray(X), y_idx)  # tie-break only
    masks = {
        m: _keep_mask(filt.scores_[m], y_idx, eligible, fraction, scope, filt.min_per_class, keys, m)
        for m in ("el2n", "grand")
    }
    masks["union"] = masks["el2n"] | masks["grand"]
    masks["intersection"] = masks["el2n"] & masks["grand"]
    return masks


def cleanlab_mask(y_idx, proba):
    from cleanlab.filter import find_label_issues

    return ~find_label_issues(labels=y_idx, pred_probs=proba)


def make_filter(cfg, seed):
    return GrandEL2NFilter(
        "union", prune_fraction=0.3, cv=5, n_runs=cfg["n_runs"], random_state=seed
    )


def fit_filter(cfg, X, y, seed):
    return make_filter(cfg, seed).fit(X, y)


def detection(cfg, X, y_noisy, flipped, rows):
    t0 = time.perf_counter()
    filt = fit_filter(cfg, X, y_noisy, 0)
    t_score = time.perf_counter() - t0
    y_idx = np.searchsorted(filt.classes_, y_noisy)
    for scope in ("global", "per_class"):
        for f in cfg["fractions"]:
            for name, keep in method_masks(filt, X, y_idx, f, scope).items():
                rows.append((scope, name, f, keep, flipped))
    keep = cleanlab_mask(y_idx, filt.scoring_proba_)
    rows.append(("", "cleanlab find_label_issues", None, keep, flipped))
    return t_score


def downstream(cfg, X, y_noisy, y_true):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    fracs = cfg["downstream_fractions"]
    names = ["all data"]
    names += [f"{m} f={f}{sc}" for sc in ("", " per-class") for f in fracs
              for m in ("el2n", "grand", "union", "intersection")]
    names += ["cleanlab"]
    preds = {n: np.empty(len(y_true), dtype=object) for n in names}
    kept_frac = {n: [] for n in names}
    skf = StratifiedKFold(5, shuffle=True, random_state=0)
    for k, (tr, te) in enumerate(skf.split(X, y_noisy)):
        filt = fit_filter(cfg, X[tr], y_noisy[tr], 100 + k)
        y_idx = np.searchsorted(filt.classes_, y_noisy[tr])
        variants = {"all data": np.ones(len(tr), dtype=bool)}
        for sc, scope in (("", "global"), (" per-class", "per_class")):
            for f in fracs:
                for m, keep in method_masks(filt, X[tr], y_idx, f, scope).items():
                    variants[f"{m} f={f}{sc}"] = keep
        variants["cleanlab"] = cleanlab_mask(y_idx, filt.scoring_proba_)
        for name, keep in variants.items():
            clf = LogisticRegression(max_iter=300).fit(X[tr][keep], y_noisy[tr][keep])
            preds[name][te] = clf.predict(X[te])
            kept_frac[name].append(keep.mean())
        print(f"[bench] outer fold {k + 1}/5 done", flush=True)
    return {n: (hierarchical_f1_score(y_true, preds[n]), float(np.mean(kept_frac[n]))) for n in names}


def speed(cfg):
    import torch

    from sklearn_mesh import _filter_scores

    rng = np.random.RandomState(0)
    n, d = cfg["speed_rows"], 3072
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.randint(0, 23, n)
    t0 = time.perf_counter()
    GrandEL2NFilter("union", prune_fraction=0.4, n_runs=1, random_state=0).fit(X, y)
    t_fit = time.perf_counter() - t0
    # GraNd pass alone on a slice: closed form vs torch.func vmap
    m = 1000
    model = _filter_scores.build_model(None, d, 23, 128).eval()
    Xt, yt = torch.from_numpy(X[:m]), torch.from_numpy(y[:m])
    t0 = time.perf_counter()
    _filter_scores.grad_norms(model, Xt, yt, method="auto")
    t_closed = time.perf_counter() - t0
    t0 = time.perf_counter()
    _filter_scores.grad_norms(model, Xt, yt, method="vmap")
    t_vmap = time.perf_counter() - t0
    return n, t_fit, t_closed, t_vmap


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="default: 3,000-row stratified subset, n_runs=1, 3,500-row timing")
    mode.add_argument("--full", action="store_true",
                      help="all 9,389 rows, n_runs=10, 35,000-row timing")
    ap.add_argument("--n-runs", type=int, default=None, help="override n_runs")
    args = ap.parse_args(argv)
    full = args.full
    cfg = dict(
        n_runs=args.n_runs or (10 if full else 1),
        fractions=(0.3, 0.4),
        downstream_fractions=(0.3, 0.4) if full else (0.3,),
        rows=None if full else 3_000,
        speed_rows=35_000 if full else 3_500,
    )
    torch_threads = os.environ.get("OMP_NUM_THREADS", "default")
    X, y_true, _ = bsd10k_text_features()
    y_true = np.asarray(y_true)
    if cfg["rows"] is not None:
        from sklearn.model_selection import train_test_split

        X, _, y_true, _ = train_test_split(
            X, y_true, train_size=cfg["rows"], stratify=y_true, random_state=0
        )
    rng = np.random.RandomState(0)
    y_noisy, flipped = flip_labels(y_true, NOISE, rng)
    print(f"[bench] BSD10k MiniLM {X.shape}, {flipped.sum()} labels flipped ({NOISE:.0%}); "
          f"mode={'full' if full else 'quick'}, n_runs={cfg['n_runs']}, threads={torch_threads}")

    rows = []
    t_score = detection(cfg, X, y_noisy, flipped, rows)
    print(f"[bench] scoring pass (5-fold OOF, both scores, {cfg['n_runs']} runs): {t_score:.1f} s")
    down = downstream(cfg, X, y_noisy, y_true)
    n, t_fit, t_closed, t_vmap = speed(cfg)

    print(f"\n### Detection of flipped labels (BSD10k MiniLM, {len(y_true)} rows, {NOISE:.0%} "
          f"flipped, {'full' if full else 'quick'} mode, n_runs={cfg['n_runs']}, "
          "5-fold out-of-fold scores)\n")
    print("| method | prune fraction | removed | precision | recall |")
    print("|---|---|---|---|---|")
    for scope, name, f, keep, fl in rows:
        removed = ~keep
        prec = (removed & fl).sum() / max(removed.sum(), 1)
        rec = (removed & fl).sum() / fl.sum()
        fr = "—" if f is None else f"{f:.1f} ({scope})"
        print(f"| {name} | {fr} | {removed.sum()} | {prec:.3f} | {rec:.3f} |")

    print("\n### LogisticRegression trained on kept rows vs all rows "
          "(5-fold, filter fitted on training folds only, hF vs TRUE labels)\n")
    print("| training data | mean kept fraction | hF |")
    print("|---|---|---|")
    for name, (hf, kept) in down.items():
        print(f"| {name} | {kept:.3f} | {hf * 100:.2f} |")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n### Scoring speed (synthetic {n:,} x 3,072, 23 classes, both scores, 1 run, "
          f"default model, 5 epochs, CPU threads={torch_threads})\n")
    print("| what | seconds |")
    print("|---|---|")
    print(f"| GrandEL2NFilter('union', n_runs=1).fit on {n:,} rows | {t_fit:.1f} |")
    if n != 35_000:
        print(f"| extrapolated to 35,000 rows (linear) | {t_fit * 35_000 / n:.0f} |")
    print(f"| extrapolated, default n_runs=10 | {t_fit * 35_000 / n * 10:.0f} |")
    print(f"| GraNd pass, 1,000 rows, closed form (built-in model) | {t_closed:.2f} |")
    print(f"| GraNd pass, 1,000 rows, torch.func vmap | {t_vmap:.2f} |")
    print(f"\npeak RSS of the whole benchmark: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
