"""Text-only MESH recipe on BSD10k metadata vs a TF-IDF + logistic-regression baseline.

Both are scored by 5-fold out-of-fold hF on the same folds (the folds the recipe drew,
``MESHSystem.folds_``). The recipe is exactly what ``sklearn-mesh train --features text``
fits (:func:`sklearn_mesh.cli.make_recipe`, small grid, no pre-training set) on MiniLM
embeddings of title + tags (``benchmarks/_common.py``). The System 1 OOF hF is optimistic
(the greedy ensemble was selected on those OOF outputs); single candidates are not.

    python benchmarks/bench_text_recipe.py            # quick: 1,500 rows, 3 folds
    python benchmarks/bench_text_recipe.py --full     # all 9,389 rows, 5 folds
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1,500 rows, 3 folds (default)")
    mode.add_argument("--full", action="store_true", help="all rows, 5 folds")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    from benchmarks._common import bsd10k_text_features, bsd10k_texts
    from sklearn_mesh.cli import make_recipe, summary_scores

    X, y, ids = bsd10k_text_features()
    texts = np.asarray(bsd10k_texts()[0], dtype=object)
    n_folds, epochs = (5, 20) if args.full else (3, 8)
    epochs = args.epochs or epochs
    rows = np.arange(len(y))
    if not args.full:
        rows = StratifiedKFold(6, shuffle=True, random_state=0).split(X, y).__next__()[1]
    X, y, ids, texts = X[rows], y[rows], ids[rows], texts[rows]

    t0 = time.process_time()
    mesh = make_recipe(cv=StratifiedKFold(n_folds, shuffle=True, random_state=0),
                       epochs=epochs, random_state=0)
    mesh.fit(X, y, ids=ids)
    t_mesh = time.process_time() - t0
    folds = PredefinedSplit(mesh.folds_)

    results = {}
    t0 = time.process_time()
    tfidf = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2),
                          LogisticRegression(C=10.0, max_iter=2000))
    results["TF-IDF(title+tags) + LogisticRegression"] = (
        cross_val_predict(tfidf, texts, y, cv=folds), time.process_time() - t0)
    t0 = time.process_time()
    results["MiniLM(title+tags) + LogisticRegression"] = (
        cross_val_predict(LogisticRegression(C=10.0, max_iter=2000), X, y, cv=folds),
        time.process_time() - t0)
    for name, proba in mesh.oof_probas_.items():
        short = name.split("|")[3]
        results[f"MESH candidate ({short}, MiniLM)"] = (
            mesh.classes_[np.argmax(proba, axis=1)], np.nan)
    ens = mesh.ensembles_[1]
    results["MESH System 1: greedy OOF ensemble (optimistic)"] = (
        mesh.classes_[np.argmax(ens.oof_proba_, axis=1)], t_mesh)

    print(f"\nmode `{'full' if args.full else 'quick'}`: {len(y)} rows, {n_folds}-fold OOF, "
          f"same folds for every row; recipe epochs {epochs}; CPU seconds of this process\n")
    print("| model | hP | hR | hF | hF (drop) | h-accuracy | CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (pred, sec) in results.items():
        s = summary_scores(y, pred)
        cpu = "" if np.isnan(sec) else f"{sec:.0f}"
        print(f"| {name} | {s['hP']:.4f} | {s['hR']:.4f} | {s['hF']:.4f} | {s['hF_drop']:.4f} "
              f"| {s['h_accuracy']:.4f} | {cpu} |")


if __name__ == "__main__":
    main()
