"""Out-of-fold probabilities with 23 columns in taxonomy order (input of OOF ensembling).

Uses MiniLM embeddings of the real BSD10k metadata when they are cached by the benchmarks
(``benchmarks/_common.py``), otherwise synthetic features.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from sklearn_mesh.classifier import HProxyClassifier
from sklearn_mesh.metrics import hierarchical_f1_score
from sklearn_mesh.taxonomy import BST


def load_features():
    cache = Path.home() / ".cache" / "sklearn_mesh"
    found = sorted(cache.glob("bsd10k_minilm_*.npz"))
    if found:
        data = np.load(found[0], allow_pickle=True)
        X, y = data["X"], data["y"]
        # a stratified subsample keeps it quick and keeps every class
        keep, _ = train_test_split(np.arange(len(y)), train_size=2000, stratify=y,
                                   random_state=0)
        print(f"real BSD10k MiniLM features ({len(keep)} of {len(y)} clips)", file=sys.stderr)
        return X[keep].astype(np.float32), y[keep]
    X, y = make_classification(n_samples=23 * 30, n_features=64, n_informative=24,
                               n_redundant=0, n_classes=23, n_clusters_per_class=1,
                               class_sep=2.0, random_state=0)
    return X.astype(np.float32), np.asarray(BST.leaves, dtype=object)[y]


X, labels = load_features()
# cross_val_predict(method="predict_proba") label-encodes y itself before fitting: with
# string labels it would hand the classifier alphabetical codes. Give it the taxonomy
# indices instead, so column k is BST.leaves[k] in every fold.
y = BST.encode(labels)

clf = HProxyClassifier(loss="focal+hproxy", max_epochs=10, patience=3, random_state=0)
oof = cross_val_predict(clf, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                        method="predict_proba")
print("OOF probabilities:", oof.shape, "columns:", list(BST.leaves[:4]), "...")
pred = oof.argmax(axis=1)
print(f"OOF hF = {100 * hierarchical_f1_score(y, pred, taxonomy=BST):.1f}")
print("decoded first predictions:", list(BST.decode(pred[:5])))
