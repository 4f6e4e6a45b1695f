"""Drop likely-mislabelled training rows with GraNd / EL2N scores, inside a pipeline.

Synthetic blobs with 20% flipped labels; runs in a few seconds on a laptop CPU.

1. ``FilteredClassifier`` in a plain scikit-learn Pipeline + ``cross_val_predict``: the
   filter only ever sees the training folds; predictions cover every row.
2. The same filter as a sampler (``fit_resample``) inside ``imblearn.pipeline.Pipeline``
   (imbalanced-learn is optional), with annotator confidence routed as metadata.
3. Pre-training use: filter the noisy set once, then train on what is kept.
"""

import numpy as np
import sklearn
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mesh.filtering import FilteredClassifier, GrandEL2NFilter

X, y_true = make_blobs(n_samples=600, centers=4, n_features=8, cluster_std=5.0, random_state=0)
rng = np.random.RandomState(0)
y = y_true.copy()
flipped = rng.rand(len(y)) < 0.2
y[flipped] = (y[flipped] + rng.randint(1, 4, flipped.sum())) % 4

# small scoring model so the example is fast: 2 runs, 10 epochs
filt = GrandEL2NFilter("union", prune_fraction=0.2, cv=3, n_runs=2, n_epochs=10,
                       hidden_units=32, random_state=0)

# 1. plain sklearn Pipeline: filtering happens inside fit, on training folds only
plain = make_pipeline(StandardScaler(), LogisticRegression())
filtered = make_pipeline(StandardScaler(), FilteredClassifier(filt, LogisticRegression()))
for name, model in [("all rows", plain), ("filtered", filtered)]:
    pred = cross_val_predict(model, X, y, cv=5)
    print(f"{name:>9}: accuracy vs TRUE labels {np.mean(pred == y_true):.3f} ({len(pred)} predictions)")

# 2. imbalanced-learn Pipeline: the filter drops rows between steps
try:
    from imblearn.pipeline import Pipeline
except ImportError:
    print("imbalanced-learn not installed: skipping the sampler demo")
else:
    confidence = rng.randint(1, 6, len(y))  # annotator confidence 1..5, as metadata
    with sklearn.config_context(enable_metadata_routing=True):
        sampler = sklearn.clone(filt).set_fit_request(confidence=True)
        pipe = Pipeline([("scale", StandardScaler()), ("filter", sampler), ("clf", LogisticRegression())])
        pipe.fit(X, y, confidence=confidence)
    fitted = pipe.named_steps["filter"]
    print(f"imblearn Pipeline kept {fitted.support_.sum()} of {len(y)} rows; "
          f"{fitted.excluded_.sum()} removed for confidence 1")
    print(fitted.report_.to_string())

# 3. pre-training: filter the noisy set once, then pre-train on the kept rows
X_clean, y_clean = sklearn.clone(filt).fit_resample(X, y)
print(f"pre-training set: {len(y_clean)} of {len(y)} rows kept")
pretrained = LogisticRegression().fit(StandardScaler().fit_transform(X_clean), y_clean)
