"""Benchmark HProxyClassifier: (a) CV quality on real BSD10k text embeddings, (b) speed.

(a) hF (mean ± std over folds, same StratifiedKFold for every model) of HProxyClassifier
    with each named objective, the baseline-MLP option and LogisticRegression, on MiniLM
    sentence embeddings of the BSD10k v1.0 training metadata (title + tags).
(b) Fit time per epoch of HProxyClassifier vs. a minimal hand-written PyTorch loop
    training the same module with the same loss, optimiser, batches and data, as a ratio.

Usage::

    python benchmarks/bench_classifier.py            # --quick (default): 2 folds, 6 epochs
    python benchmarks/bench_classifier.py --full     # 5 folds, 50 epochs, early stopping

Prints markdown tables (copied to docs/benchmarks/classifier.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from benchmarks._common import bsd10k_text_features  # noqa: E402
from sklearn_mesh.classifier import HProxyClassifier  # noqa: E402
from sklearn_mesh.metrics import hierarchical_f1_score  # noqa: E402
from sklearn_mesh.nn.losses import make_loss  # noqa: E402
from sklearn_mesh.nn.modules import ProxyNet  # noqa: E402
from sklearn_mesh.taxonomy import BST  # noqa: E402


def quality(X, y, *, n_folds, max_epochs, patience, seed=0):
    common = dict(max_epochs=max_epochs, patience=patience, random_state=seed)
    models = {
        # C picked among {1 & 0.1 on standardised, 10 on raw unit-norm} on one split
        "LogisticRegression (C=10)": LogisticRegression(C=10.0, max_iter=500),
        "HProxy loss=ce": HProxyClassifier(loss="ce", **common),
        "HProxy loss=focal": HProxyClassifier(loss="focal", **common),
        "HProxy loss=hproxy": HProxyClassifier(loss="hproxy", **common),
        "HProxy loss=focal+hproxy": HProxyClassifier(loss="focal+hproxy", **common),
        "HProxy loss=proxy_anchor+focal": HProxyClassifier(loss="proxy_anchor+focal", **common),
        "baseline MLP (encoder=mlp, head=mlp, ce)": HProxyClassifier(
            loss="ce", encoder="mlp", head="mlp", **common
        ),
    }
    folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(X, y))
    rows = []
    for name, model in models.items():
        scores, epochs = [], []
        t0 = time.perf_counter()
        for train, test in folds:
            fitted = clone(model).fit(X[train], y[train])
            scores.append(hierarchical_f1_score(y[test], fitted.predict(X[test]), taxonomy=BST))
            epochs.append(float(getattr(fitted, "n_epochs_", np.nan)))
        elapsed = time.perf_counter() - t0
        mean_epochs = float(np.mean(epochs)) if not np.isnan(epochs).all() else np.nan
        rows.append((name, 100 * np.mean(scores), 100 * np.std(scores), mean_epochs, elapsed))
        print(f"  {name}: hF {rows[-1][1]:.2f} ± {rows[-1][2]:.2f} ({elapsed:.0f} s)",
              file=sys.stderr)
    return rows


def _hand_loop(X, y_idx, *, epochs, seed, loss_name, batch_size=64):
    """The minimal PyTorch loop: same module, loss, optimiser and batches."""
    torch.manual_seed(seed)
    module = ProxyNet(X.shape[1], BST.n_leaves, BST.n_tops, embedding_dim=128,
                      noise_std=1e-4, max_mask_fraction=0.7)
    criterion = make_loss(loss_name, BST)
    opt = torch.optim.Adam(module.parameters(), lr=5e-4, weight_decay=1e-5)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y_idx)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for start in range(0, len(Xt), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = criterion(module(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return module


def speed(X, y, *, epochs, repeats, loss_names):
    y_idx = BST.encode(y).astype(np.int64)
    rows = []
    for loss_name in loss_names:
        t_hand, t_clf, w_hand, w_clf = [], [], [], []
        for r in range(repeats):  # interleaved, so contention hits both alike
            c0, t0 = time.process_time(), time.perf_counter()
            _hand_loop(X, y_idx, epochs=epochs, seed=r, loss_name=loss_name)
            t_hand.append((time.process_time() - c0) / epochs)
            w_hand.append((time.perf_counter() - t0) / epochs)
            clf = HProxyClassifier(loss=loss_name, max_epochs=epochs, validation_fraction=None,
                                   random_state=r)
            c0, t0 = time.process_time(), time.perf_counter()
            clf.fit(X, y)
            t_clf.append((time.process_time() - c0) / epochs)
            w_clf.append((time.perf_counter() - t0) / epochs)
        hand, est = np.median(t_hand), np.median(t_clf)
        wh, we = np.median(w_hand), np.median(w_clf)
        rows.append((loss_name, hand, est, est / hand, wh, we, we / wh))
        print(f"  speed {loss_name}: CPU hand {hand:.3f} s/epoch, HProxyClassifier {est:.3f} "
              f"s/epoch, ratio {est / hand:.2f}; wall ratio {we / wh:.2f}", file=sys.stderr)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 folds, 6 epochs (default)")
    mode.add_argument("--full", action="store_true", help="5 folds, 50 epochs")
    parser.add_argument("--folds", type=int, help="override the number of folds")
    parser.add_argument("--epochs", type=int, help="override max_epochs of the neural models")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)
    full = args.full

    X, y, _ = bsd10k_text_features()
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=object)
    n_folds, max_epochs, patience = (5, 50, 10) if full else (2, 6, 3)
    n_folds = args.folds or n_folds
    max_epochs = args.epochs or max_epochs
    overrides = [f"{k}={v}" for k, v in (("folds", args.folds), ("epochs", args.epochs)) if v]
    label = ("full" if full else "quick") + (f", overridden: {', '.join(overrides)}"
                                              if overrides else "")
    print(f"# bench_classifier ({label}): BSD10k v1.0 train metadata, MiniLM title+tags, "
          f"X {X.shape}, torch threads {torch.get_num_threads()}\n")

    if not args.skip_quality:
        rows = quality(X, y, n_folds=n_folds, max_epochs=max_epochs, patience=patience)
        print(f"## (a) Quality: {n_folds}-fold CV hF (%), StratifiedKFold(shuffle, seed 0); "
              f"neural models: max_epochs={max_epochs}, 20% stratified validation, early "
              f"stopping on hF (patience {patience}), best epoch restored\n")
        print("| model | hF mean | hF std | mean epochs | wall time (s) |")
        print("|---|---:|---:|---:|---:|")
        for name, mean, std, ep, sec in rows:
            ep_s = "-" if np.isnan(ep) else f"{ep:.1f}"
            print(f"| {name} | {mean:.2f} | {std:.2f} | {ep_s} | {sec:.0f} |")
        print()

    epochs, repeats = (10, 3) if full else (2, 3)
    srows = speed(X, y, epochs=epochs, repeats=repeats, loss_names=("ce", "focal+hproxy"))
    print(f"## (b) Speed: fit time per epoch on all {len(X)} samples (batch 64, no validation,"
          f" whole fit incl. set-up / {epochs} epochs), median of {repeats} interleaved runs; "
          "CPU = process time (robust to other jobs on the machine), wall = elapsed\n")
    print("| loss | hand loop CPU s/epoch | HProxyClassifier CPU s/epoch | CPU ratio "
          "(goal <= 1.2) | wall ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, hand, est, ratio, _, _, wratio in srows:
        print(f"| {name} | {hand:.3f} | {est:.3f} | {ratio:.2f} | {wratio:.2f} |")


if __name__ == "__main__":
    main()
