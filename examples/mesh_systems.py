"""The MESH recipe end to end: candidate grid, two-stage CV, Systems 1–4, submission.

Synthetic stand-ins: two "embeddings" (column blocks) of a curated set (BSD10k), a larger
noisy set with 30% wrong labels (BSD35k-CS) for pre-training, a labelled holdout that is
scored only after every selection is fixed, and an unlabelled "evaluation set" for the
submission file. Runs in seconds (``--size`` scales it up).

    python examples/mesh_systems.py [--size 1.0] [--cache-dir DIR] [--n-jobs 2]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_mesh.classifier import HProxyClassifier
from sklearn_mesh.system import MESHSystem
from sklearn_mesh.taxonomy import BST

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--size", type=float, default=1.0, help="scale of the synthetic sets")
parser.add_argument("--cache-dir", default=None, help="rerun with the same folder to resume")
parser.add_argument("--n-jobs", type=int, default=1)
args = parser.parse_args()

rng = np.random.RandomState(0)
classes = np.array(["m-sp", "is-p", "sp-s", "fx-o", "fx-v", "ss-n", "ss-u"])
centers = rng.normal(size=(len(classes), 24))


def make(n, noise=0.0):
    k = rng.randint(0, len(classes), n)
    X = centers[k] + 1.2 * rng.normal(size=(n, 24))
    X[:, 12:] += 0.5 * rng.normal(size=(n, 12))  # the second "embedding" is noisier
    y = classes[k].astype(object)
    flip = rng.rand(n) < noise
    y[flip] = classes[rng.randint(0, len(classes), flip.sum())]
    return X.astype(np.float32), y


n = int(200 * args.size)
X, y = make(n)                              # curated fine-tuning set
X_pre, y_pre = make(2 * n, noise=0.3)       # noisy pre-training set
X_hold, y_hold = make(n // 2)               # holdout: never used for selection
X_eval, _ = make(n // 2)                    # "evaluation set" (labels unknown)
confidence = rng.choice([1, 3, 4, 5], size=n, p=[0.1, 0.3, 0.3, 0.3])

mesh = MESHSystem.small(
    feature_sets={"emb_a": slice(0, 12), "both": None},
    finetune_objectives=("focal+hproxy",),
    exclude_conf1=(False, True),
    estimator=HProxyClassifier(embedding_dim=16, max_epochs=5, lr=1e-2, patience=3),
    cache_dir=args.cache_dir,
    n_jobs=args.n_jobs,
    random_state=0,
    verbose=1,
)
mesh.fit(X, y, X_pretrain=X_pre, y_pretrain=y_pre, confidence=confidence,
         holdout=(X_hold, y_hold))

pd.set_option("display.width", 140, "display.max_colwidth", 70)
print(f"\n{len(mesh.candidates_)} candidates (best 5 by OOF hF):")
print(mesh.candidates_.sort_values("oof_hf", ascending=False)
      [["name", "oof_hf", "holdout_hf", "cached"]].head().to_string(index=False))
print("\nSystems (OOF hF was used for selection; holdout hF was not):")
print(mesh.systems_[["system", "pool", "n_candidates", "n_members", "oof_hf", "holdout_hf"]]
      .to_string(index=False))
print("cache:", mesh.cache_info_)

out = Path(tempfile.mkdtemp()) / "submission.csv"
ids = [f"{i:06d}" for i in range(len(X_eval))]
table = mesh.set_params(system=1).write_submission(X_eval, ids, out)
print(f"\nSubmission ({out}):")
print(table.head(3).to_string(index=False))
assert set(table["predicted_bst_second_level_class"]) <= set(BST.leaves)
