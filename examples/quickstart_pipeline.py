"""Quickstart: raw audio -> log-mel frames -> pooled statistics -> HProxyClassifier -> hF.

One scikit-learn Pipeline holds every step, so training and test clips go through the
same fitted code. Synthetic clips from ``make_bst_audio`` stand in for BSD10k; no network,
no downloaded weights. Swap ``LogMelEmbedder`` for a pre-trained backbone
(``ClapAudioEmbedder(checkpoint=...)``, ``PasstEmbedder(checkpoint=...)``) on real data.

    python examples/quickstart_pipeline.py [--n-samples 230]
"""

import argparse

from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mesh.classifier import HProxyClassifier
from sklearn_mesh.datasets import make_bst_audio
from sklearn_mesh.embedders import LogMelEmbedder
from sklearn_mesh.metrics import hierarchical_classification_report, hierarchical_f1_score
from sklearn_mesh.pooling import SequencePooling

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-samples", type=int, default=230, help="number of synthetic clips")
args = parser.parse_args()

data = make_bst_audio(args.n_samples, max_duration=3.0, random_state=0)
clips = data.frame["audio"].tolist()  # (waveform, sample_rate) pairs; file paths work too
X_train, X_test, y_train, y_test = train_test_split(
    clips, data.target, test_size=0.3, stratify=data.target, random_state=0
)

model = make_pipeline(
    LogMelEmbedder(n_mels=40),             # frames, weights-free
    SequencePooling(),                     # mean / max / std over each clip's frames
    StandardScaler(),
    HProxyClassifier(loss="focal+hproxy", embedding_dim=32, max_epochs=30, lr=1e-2,
                     random_state=0),
)
model.fit(X_train, y_train)
y_pred = model.predict(X_test)

print(f"hF = {hierarchical_f1_score(y_test, y_pred):.3f}  (chance is about 0.05)")
report = hierarchical_classification_report(y_test, y_pred)
print(report[["class", "top", "hP", "hR", "hF", "support"]].to_string(index=False,
      float_format=lambda v: f"{v:.2f}"))
