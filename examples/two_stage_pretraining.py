"""Two-stage training: pre-train on a large noisy set, fine-tune every CV fold from it.

MESH pre-trains on crowd-sourced BSD35k-CS (noisy labels) and fine-tunes on the curated
BSD10k with 5-fold CV. Here both sets are synthetic. The pre-trained weights are a
*parameter* of the fine-tuning estimator (an immutable ``PretrainedState``), so
``cross_val_predict`` clones it for every fold and each fold starts from the same
pre-trained network — never from scratch, never from the previous fold.
"""

import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from sklearn_mesh.classifier import HProxyClassifier, PretrainedState
from sklearn_mesh.metrics import hierarchical_f1_score
from sklearn_mesh.taxonomy import BST

rng = np.random.RandomState(0)
X_all, y_all = make_classification(
    n_samples=23 * 90, n_features=48, n_informative=20, n_redundant=0, n_classes=23,
    n_clusters_per_class=1, class_sep=1.5, random_state=0,
)
X_all = X_all.astype(np.float32)
# a large "crowd-sourced" set with 30% wrong labels, and a small curated set
X_noisy, y_noisy = X_all[:23 * 75], y_all[:23 * 75].copy()
flip = rng.rand(len(y_noisy)) < 0.3
y_noisy[flip] = rng.randint(0, 23, flip.sum())
X_clean, y_clean = X_all[23 * 75:], y_all[23 * 75:]  # taxonomy indices 0..22

# stage 1: pre-train (MESH: Proxy Anchor + Focal, or HProxy)
pre = HProxyClassifier(loss="proxy_anchor+focal", embedding_dim=32, max_epochs=15, lr=5e-3,
                       random_state=0).fit(X_noisy, y_noisy)
state = pre.pretrained_state()
print(state)

# the state can live in a file (torch, weights_only=True) ...
path = Path(tempfile.mkdtemp()) / "pretrained.pt"
state.save(path)
assert PretrainedState.load(path) == state

# stage 2: fine-tune every fold from it (MESH: 0.9 Focal + 0.1 HProxy, proxies re-initialised)
cv = StratifiedKFold(5, shuffle=True, random_state=0)
common = dict(loss="focal+hproxy", embedding_dim=32, max_epochs=15, lr=5e-3, random_state=0)
for name, clf in [
    ("from scratch", HProxyClassifier(**common)),
    ("fine-tuned from the state", HProxyClassifier(pretrained=state, **common)),
    ("fine-tuned from the file", HProxyClassifier(pretrained=str(path), **common)),
]:
    # y as taxonomy indices: cross_val_predict re-encodes string labels (see the guide)
    proba = cross_val_predict(clf, X_clean, y_clean, cv=cv, method="predict_proba")
    hf = hierarchical_f1_score(y_clean, proba.argmax(axis=1), taxonomy=BST)
    print(f"{name:<28} OOF hF = {100 * hf:.1f}  (proba columns: {proba.shape[1]})")
