"""``sklearn-mesh``: the command-line front door (also ``python -m sklearn_mesh``).

Commands
--------
demo       The MESH recipe end to end on synthetic audio (no network, no weights).
train      Fit feature pipeline + MESH recipe on BSD metadata (text, audio or both); save it.
predict    Write a challenge submission CSV with a saved model.
evaluate   Score a submission against labelled metadata (hP, hR, hF, per class, plots).
extract    Cached embedding extraction with an audio backbone.

Errors exit with code 2 and a one-line reason on stderr (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main", "EMBEDDERS", "summary_scores", "make_recipe", "build_feature_pipeline",
           "CLIError"]

#: ``--embedder`` name -> class name in :mod:`sklearn_mesh.embedders`.
EMBEDDERS = {
    "logmel": "LogMelEmbedder",
    "clap": "ClapAudioEmbedder",
    "passt": "PasstEmbedder",
    "fpasst": "FPasstEmbedder",
    "beats": "BEATsEmbedder",
    "atst": "ATSTFrameEmbedder",
    "efficientat": "EfficientATEmbedder",
    "m2d": "M2DEmbedder",
}

_LABEL_COLUMNS = ("class", "class_idx", "class_top", "label", "confidence")
# = sklearn_mesh.system.SUBMISSION_COLUMNS (not imported here: evaluate needs no torch)
_SUBMISSION_COLUMNS = ("id", "predicted_bst_second_level_class", "prediction_score")


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


# ----------------------------------------------------------------------- helpers
def _say(args, msg):
    if not getattr(args, "quiet", False):
        print(msg, flush=True)


def summary_scores(y_true, y_pred, taxonomy=None):
    """hP, hR, hF under both never-predicted policies, and hierarchical accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    taxonomy : Taxonomy, default=None (BST)

    Returns
    -------
    scores : dict of str -> float
        ``hP, hR, hF`` (policy "zero", the challenge's), ``hP_drop, hR_drop, hF_drop``
        and ``h_accuracy``, plus ``n``.

    Examples
    --------
    >>> from sklearn_mesh.cli import summary_scores
    >>> s = summary_scores(["m-sp", "fx-o"], ["m-sp", "fx-v"])
    >>> round(s["hF"], 4), s["n"]
    (0.5, 2)
    """
    from .metrics import hierarchical_accuracy_score, hierarchical_precision_recall_fscore

    hp, hr, hf = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=taxonomy)
    dp, dr, df = hierarchical_precision_recall_fscore(
        y_true, y_pred, taxonomy=taxonomy, never_predicted="drop"
    )
    return {
        "hP": hp, "hR": hr, "hF": hf, "hP_drop": dp, "hR_drop": dr, "hF_drop": df,
        "h_accuracy": hierarchical_accuracy_score(y_true, y_pred, taxonomy=taxonomy),
        "n": int(len(y_true)),
    }


def _scores_table(named):
    """Markdown-ish table of ``{row name: summary_scores(...)}``."""
    cols = ["hP", "hR", "hF", "hF_drop", "h_accuracy", "n"]
    df = pd.DataFrame([{"": k, **{c: v[c] for c in cols}} for k, v in named.items()])
    return df.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def _write_json(path, obj):
    def default(o):
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    Path(path).write_text(json.dumps(obj, indent=2, default=default) + "\n")


def _save_fig(fig, path):
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _matplotlib_agg():
    try:
        import matplotlib

        matplotlib.use("Agg")
        return True
    except ImportError:
        return False


def _existing_file(path, what):
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{what} {str(path)!r} does not exist or is not a file.")
    return p


def _out_dir(path):
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"--out {str(path)!r} exists and is not a folder.")
    p.mkdir(parents=True, exist_ok=True)
    return p


def _embedder(name, checkpoint=None, **params):
    """An audio embedder instance from its registry name."""
    from . import embedders

    if name not in EMBEDDERS:
        raise CLIError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}.")
    cls = getattr(embedders, EMBEDDERS[name])
    if checkpoint is not None:
        if "checkpoint" not in cls().get_params():
            raise CLIError(f"embedder {name!r} takes no checkpoint (it has no weights).")
        _existing_file(checkpoint, "--checkpoint")
        params["checkpoint"] = os.fspath(checkpoint)
    valid = cls().get_params()
    return cls(**{k: v for k, v in params.items() if k in valid})


def _pooling(kind):
    from .pooling import ChunkPooling, SequencePooling

    if kind == "sequence":
        return SequencePooling()
    if kind == "chunk":
        return ChunkPooling()
    raise CLIError(f"unknown pooling {kind!r}.")


def _load_metadata(path, *, audio_dir=None, need_audio=False, labels=True):
    """load_bsd_metadata with the CLI's choices; ``labels=False`` ignores label columns."""
    from .datasets import load_bsd_metadata

    csv = _existing_file(path, "--metadata")
    if audio_dir is not None and not Path(audio_dir).is_dir():
        raise CLIError(f"--audio-dir {str(audio_dir)!r} is not a folder.")
    source = csv
    kwargs = {}
    if not labels:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        frame = frame.drop(columns=[c for c in _LABEL_COLUMNS if c in frame.columns])
        source = frame
        if need_audio and audio_dir is None:
            audio_dir = csv.parent
    if need_audio:
        kwargs["audio_dir"] = audio_dir if audio_dir is not None else csv.parent
    try:
        data = load_bsd_metadata(source, **kwargs)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(f"cannot read metadata {str(path)!r}: {exc}") from exc
    return data


def _feature_table(data):
    """The DataFrame the feature pipeline reads: ``text`` and ``audio_path`` columns."""
    frame = pd.DataFrame({"text": list(data.text)})
    paths = getattr(data, "audio_paths", None)
    frame["audio_path"] = list(paths) if paths is not None else [None] * len(frame)
    return frame


def build_feature_pipeline(features, embedder="logmel", checkpoint=None, pooling="sequence",
                           progress=False):
    """One sklearn transformer from the metadata table to features.

    ``features="text"``: SentenceTextEmbedder of the ``text`` column; ``"audio"``:
    embedder + pooling of the ``audio_path`` column; ``"both"``: both, concatenated.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    from .embedders import SentenceTextEmbedder

    parts = []
    if features in ("text", "both"):
        parts.append(("text", SentenceTextEmbedder(), "text"))
    if features in ("audio", "both"):
        emb = _embedder(embedder, checkpoint, progress=progress)
        parts.append(("audio", make_pipeline(emb, _pooling(pooling)), "audio_path"))
    if not parts:
        raise CLIError(f"--features must be text, audio or both, got {features!r}.")
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


# ------------------------------------------------------------------------- demo
def _demo(args):
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import StandardScaler

    from .classifier import HProxyClassifier
    from .datasets import make_bst_audio
    from .embedders import LogMelEmbedder
    from .filtering import GrandEL2NFilter
    from .metrics import hierarchical_classification_report
    from .pooling import ChunkPooling, SequencePooling
    from .system import MESHSystem, submission_frame

    if args.n_samples < 46:
        raise CLIError(f"--n-samples must be at least 46 (2 clips per class), got "
                       f"{args.n_samples}.")
    if not 0 < args.holdout < 1 or args.holdout * args.n_samples < 23:
        raise CLIError(f"the holdout ({args.holdout:g} x {args.n_samples} clips) must hold at "
                       "least one clip per class (23): raise --n-samples or --holdout.")
    if args.cv < 2:
        raise CLIError(f"--cv must be at least 2, got {args.cv}.")
    out = _out_dir(args.out)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    rs = args.random_state
    n_crowd = int(round(args.crowd_factor * args.n_samples))
    _say(args, f"[1/5] synthesising {args.n_samples} curated + {n_crowd} crowd-sourced clips "
               f"(label noise {args.label_noise:.0%}, <= {args.max_duration:g} s)")
    curated = make_bst_audio(args.n_samples, max_duration=args.max_duration, random_state=rs)
    crowd = make_bst_audio(n_crowd, max_duration=args.max_duration,
                           label_noise=args.label_noise, random_state=rs + 1)
    idx = np.arange(args.n_samples)
    train, hold = train_test_split(idx, test_size=args.holdout, stratify=curated.target,
                                   random_state=rs)
    ids = np.array([f"cur-{i:05d}" for i in idx], dtype=object)

    _say(args, "[2/5] log-mel frames -> sequence + chunk pooling (one fitted Pipeline)")
    n_mels = 40
    pools = make_union(SequencePooling(),
                       ChunkPooling(chunk_seconds=1.0, hop_seconds=1.0, stats=("mean", "std")))
    features = make_pipeline(
        LogMelEmbedder(n_mels=n_mels, hop_seconds=0.02, progress=not args.quiet), pools,
        StandardScaler(),
    )
    audio = curated.frame["audio"].to_numpy()
    X = features.fit_transform(list(audio[train]))
    X_hold = features.transform(list(audio[hold]))
    X_crowd = features.transform(crowd.frame["audio"].tolist())
    d_seq = 3 * n_mels
    y, y_hold = curated.target[train], curated.target[hold]

    systems = tuple(args.systems)
    _say(args, f"[3/5] MESH recipe: filter crowd-sourced set (GraNd/EL2N), two-stage HProxy "
               f"training with {args.cv}-fold OOF, systems {systems}")
    grid = dict(
        feature_sets={"seq": slice(0, d_seq), "chunk": slice(d_seq, None)},
        filters=(None, "grand"),
        estimator=HProxyClassifier(embedding_dim=32, max_epochs=args.epochs, lr=1e-2,
                                   patience=4, batch_size=64),
        filter=GrandEL2NFilter(prune_fraction=0.2, n_runs=1, n_epochs=3, hidden_units=32,
                               lr=1e-2),
        cv=args.cv, systems=systems, random_state=rs, verbose=0 if args.quiet else 1,
    )
    if args.tiny:
        grid.update(feature_sets={"seq": slice(0, d_seq)}, filters=("grand",),
                    finetune_objectives=("ce",))
    mesh = MESHSystem.small(**grid)
    mesh.fit(X, y, X_pretrain=X_crowd, y_pretrain=crowd.target, ids=ids[train],
             holdout=(X_hold, y_hold))
    system = mesh.system

    _say(args, "[4/5] scoring (OOF = used for selection; holdout = never seen by selection)")
    ens = mesh.ensembles_[system]
    oof_proba = np.asarray(ens.oof_proba_) if hasattr(ens, "oof_proba_") else None
    if oof_proba is None:  # System 2: OOF outputs of the fusion are not stored
        raise CLIError("--systems must include 1 (the system the demo reports).")
    hold_proba = mesh.predict_proba(X_hold)
    classes = mesh.classes_
    oof_sub = submission_frame(oof_proba, ids[train], classes)
    hold_sub = submission_frame(hold_proba, ids[hold], classes)
    preds = pd.concat([
        oof_sub.assign(split="oof", label=y),
        hold_sub.assign(split="holdout", label=y_hold),
    ], ignore_index=True)[["id", "split", "label", "predicted_bst_second_level_class",
                           "prediction_score"]]
    preds.to_csv(out / "predictions.csv", index=False)
    scores = {
        "oof": summary_scores(y, oof_sub["predicted_bst_second_level_class"]),
        "holdout": summary_scores(y_hold, hold_sub["predicted_bst_second_level_class"]),
    }
    per_class = hierarchical_classification_report(
        y_hold, hold_sub["predicted_bst_second_level_class"]
    )
    per_class.to_csv(out / "per_class_holdout.csv", index=False)
    hierarchical_classification_report(y, oof_sub["predicted_bst_second_level_class"]).to_csv(
        out / "per_class_oof.csv", index=False
    )
    mesh.candidates_.to_csv(out / "candidates.csv", index=False)
    sys_table = mesh.systems_.drop(columns=["members"])

    _say(args, f"[5/5] plots and tables -> {out}")
    plots = []
    if _matplotlib_agg():
        from .plotting import plot_confusion_matrix, plot_ensemble_trace, plot_per_class_hf

        _save_fig(plot_confusion_matrix(y, oof_sub["predicted_bst_second_level_class"],
                                        title="OOF confusion matrix (System 1)"),
                  out / "confusion_matrix.png")
        _save_fig(plot_per_class_hf(y_hold, hold_sub["predicted_bst_second_level_class"],
                                    title="Per-class hF on the holdout (System 1)"),
                  out / "per_class_hf.png")
        _save_fig(plot_ensemble_trace(ens), out / "ensemble_trace.png")
        plots = ["confusion_matrix.png", "per_class_hf.png", "ensemble_trace.png"]
    wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    _write_json(out / "metrics.json", {
        "system": system,
        "scores": scores,
        "systems": sys_table.to_dict("records"),
        "members": {int(s): list(m) for s, m in mesh.members_.items()},
        "n_candidates": int(len(mesh.candidates_)),
        "n_train": int(len(train)), "n_holdout": int(len(hold)), "n_crowd": n_crowd,
        "config": {k: getattr(args, k) for k in ("n_samples", "random_state", "cv",
                                                 "max_duration", "label_noise", "epochs")},
        "wall_seconds": wall, "cpu_seconds_main_process": cpu,
        "files": ["predictions.csv", "per_class_holdout.csv", "per_class_oof.csv",
                  "candidates.csv", *plots],
    })

    pd.set_option("display.width", 160)
    print("\nCandidates (best 5 by OOF hF):")
    print(mesh.candidates_.sort_values("oof_hf", ascending=False)[["name", "oof_hf",
          "holdout_hf"]].head().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nSystems:")
    print(sys_table[["system", "pool", "n_candidates", "n_members", "oof_hf", "holdout_hf"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nSystem {system} (hF_drop: never-predicted classes dropped from the average):")
    print(_scores_table({"OOF (selection)": scores["oof"], "holdout": scores["holdout"]}))
    print("\nPer-class (holdout):")
    print(per_class[["class", "top", "hP", "hR", "hF", "support", "n_predicted"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nhF (holdout) = {scores['holdout']['hF']:.4f}")
    print(f"outputs in {out} ({wall:.0f} s wall, {cpu:.0f} s CPU in the main process)")
    return 0


# ------------------------------------------------------------------------ train
def make_recipe(grid="small", *, pretrain=False, cv=5, epochs=20, **params):
    """The MESHSystem that ``sklearn-mesh train`` fits.

    Parameters
    ----------
    grid : {"small", "paper"}, default="small"
        ``"small"``: :meth:`MESHSystem.small` with a 64-d HProxyClassifier trained for
        ``epochs``; ``"paper"``: the paper's full grid.
    pretrain : bool, default=False
        Without a pre-training set, every candidate is fine-tuned from scratch and only
        System 1 is built.
    cv : int or splitter, default=5
    epochs : int, default=20
        ``max_epochs`` of the small grid's classifier.
    **params
        Other MESHSystem parameters (``random_state``, ``cache_dir``, ``n_jobs``, ...).

    Returns
    -------
    MESHSystem

    Examples
    --------
    >>> from sklearn_mesh.cli import make_recipe
    >>> make_recipe(cv=3).get_params()["pretrain_objectives"]
    (None,)
    """
    from .classifier import HProxyClassifier
    from .system import MESHSystem

    if grid == "small":
        est = HProxyClassifier(embedding_dim=64, max_epochs=epochs, lr=1e-2, patience=4,
                               batch_size=128)
        mesh = MESHSystem.small(estimator=est, cv=cv, **params)
    elif grid == "paper":
        mesh = MESHSystem(cv=cv, **params)
    else:
        raise CLIError(f"grid must be 'small' or 'paper', got {grid!r}.")
    if not pretrain:
        mesh.set_params(pretrain_objectives=(None,), systems=(1,))
    return mesh


def _train(args):
    import joblib
    from sklearn.pipeline import Pipeline

    need_audio = args.features in ("audio", "both")
    data = _load_metadata(args.metadata, audio_dir=args.audio_dir, need_audio=need_audio)
    if data.target is None:
        raise CLIError(f"--metadata {args.metadata!r} has no label column (class/label).")
    pre = None
    if args.pretrain_metadata is not None:
        from .taxonomy import BST

        pre = _load_metadata(args.pretrain_metadata, audio_dir=args.audio_dir,
                             need_audio=need_audio)
        if pre.target is None:
            raise CLIError("--pretrain-metadata has no label column (class/label).")
        keep = np.isin(pre.target, BST.leaves)
        for attr in ("text", "target"):
            setattr(pre, attr, np.asarray(getattr(pre, attr), dtype=object)[keep])
        if pre.audio_paths is not None:
            pre.audio_paths = np.asarray(pre.audio_paths, dtype=object)[keep]
        if pre.confidence is not None:
            pre.confidence = np.asarray(pre.confidence)[keep]

    _say(args, f"[1/3] features ({args.features}) of {len(data.target)} clips")
    features = build_feature_pipeline(args.features, args.embedder, args.checkpoint,
                                      args.pooling, progress=not args.quiet)
    X = np.asarray(features.fit_transform(_feature_table(data)), dtype=np.float32)
    X_pre = None
    if pre is not None:
        X_pre = np.asarray(features.transform(_feature_table(pre)), dtype=np.float32)

    _say(args, f"[2/3] MESH recipe ({args.grid} grid, {args.cv}-fold OOF)")
    mesh = make_recipe(args.grid, pretrain=pre is not None, cv=args.cv, epochs=args.epochs,
                       random_state=args.random_state, cache_dir=args.cache_dir,
                       n_jobs=args.n_jobs, verbose=0 if args.quiet else 1)
    fit_kw = {"ids": np.asarray(data.ids)}
    if pre is not None:
        fit_kw.update(X_pretrain=X_pre, y_pretrain=pre.target,
                      pretrain_confidence=pre.confidence)
    if True in tuple(mesh.exclude_conf1):
        if data.confidence is None or np.all(np.isnan(np.asarray(data.confidence, float))):
            mesh.set_params(exclude_conf1=(False,))
        else:
            fit_kw["confidence"] = data.confidence
    mesh.fit(X, np.asarray(data.target), **fit_kw)
    model = Pipeline([("features", features), ("mesh", mesh)])
    model.cli_info_ = {"features": args.features, "embedder": args.embedder,
                       "pooling": args.pooling, "oof_hf": float(mesh.oof_score_)}
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    joblib.dump(model, out)
    ens = mesh.ensembles_[mesh.system]
    if hasattr(ens, "oof_proba_"):
        scores = summary_scores(data.target, mesh.classes_[np.argmax(ens.oof_proba_, axis=1)])
        print(_scores_table({f"OOF (System {mesh.system})": scores}))
    _say(args, f"[3/3] saved the fitted feature pipeline + recipe to {out}")
    print(f"OOF hF = {mesh.oof_score_:.4f}")
    return 0


# ---------------------------------------------------------------------- predict
def _predict(args):
    import joblib
    from sklearn.pipeline import Pipeline

    from .system import submission_frame

    model = joblib.load(_existing_file(args.model, "--model"))
    if not (isinstance(model, Pipeline) and "mesh" in model.named_steps):
        raise CLIError(f"--model {args.model!r} is not a model saved by `sklearn-mesh train`.")
    info = getattr(model, "cli_info_", {})
    need_audio = info.get("features", "text") in ("audio", "both")
    data = _load_metadata(args.metadata, audio_dir=args.audio_dir, need_audio=need_audio,
                          labels=False)
    _say(args, f"predicting {len(data.ids)} clips")
    proba = model.predict_proba(_feature_table(data))
    table = submission_frame(proba, data.ids, model.named_steps["mesh"].classes_)
    out = Path(args.out)
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    table.to_csv(out, index=False)
    _say(args, f"wrote {len(table)} rows to {out}")
    return 0


# --------------------------------------------------------------------- evaluate
def read_submission(path):
    """Read a submission CSV (ids as strings) and check its columns."""
    SUBMISSION_COLUMNS = _SUBMISSION_COLUMNS
    sub = pd.read_csv(_existing_file(path, "--submission"), dtype=str, keep_default_na=False)
    missing = [c for c in SUBMISSION_COLUMNS[:2] if c not in sub.columns]
    if missing:
        raise CLIError(f"submission {str(path)!r} lacks columns {missing}; expected "
                       f"{', '.join(SUBMISSION_COLUMNS)}.")
    return sub


def align_submission(sub, ids, labels, taxonomy=None):
    """Predicted labels aligned to ``ids``; CLIError on missing/extra/duplicate ids."""
    from .taxonomy import check_taxonomy

    taxonomy = check_taxonomy(taxonomy)
    sub_ids = sub["id"].astype(str).str.strip()
    dup = sub_ids[sub_ids.duplicated()].unique()
    if len(dup):
        raise CLIError(f"submission has {len(dup)} duplicate ids (e.g. {list(dup[:3])}).")
    meta_ids = pd.Index([str(i) for i in ids])
    if meta_ids.has_duplicates:
        raise CLIError("metadata has duplicate ids.")
    missing = meta_ids.difference(pd.Index(sub_ids))
    extra = pd.Index(sub_ids).difference(meta_ids)
    if len(missing) or len(extra):
        raise CLIError(f"submission ids do not match the metadata: {len(missing)} missing "
                       f"(e.g. {list(missing[:3])}), {len(extra)} extra (e.g. {list(extra[:3])}).")
    pred = sub.set_index(sub_ids)["predicted_bst_second_level_class"].reindex(meta_ids)
    bad = sorted(set(pred) - set(taxonomy.leaves))
    if bad:
        raise CLIError(f"submission predicts unknown classes {bad[:5]}; expected second-level "
                       "BST keys such as 'fx-o'.")
    return pred.to_numpy(dtype=object)


def _evaluate(args):
    from .metrics import hierarchical_classification_report

    sub = read_submission(args.submission)
    data = _load_metadata(args.metadata)
    if data.target is None:
        raise CLIError(f"--metadata {args.metadata!r} has no labels to evaluate against.")
    y_pred = align_submission(sub, data.ids, data.target)
    y_true = np.asarray(data.target, dtype=object)
    scores = summary_scores(y_true, y_pred)
    report = hierarchical_classification_report(y_true, y_pred)
    print(_scores_table({"submission": scores}))
    print("\nPer-class:")
    print(report[["class", "top", "hP", "hR", "hF", "support", "n_predicted"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nhF = {scores['hF']:.4f}")
    if args.out is not None:
        out = _out_dir(args.out)
        _write_json(out / "metrics.json", {"scores": scores})
        report.to_csv(out / "per_class.csv", index=False)
        if _matplotlib_agg():
            from .plotting import plot_confusion_matrix, plot_per_class_hf

            _save_fig(plot_confusion_matrix(y_true, y_pred), out / "confusion_matrix.png")
            _save_fig(plot_per_class_hf(y_true, y_pred), out / "per_class_hf.png")
        _say(args, f"wrote metrics.json, per_class.csv and plots to {out}")
    return 0


# ---------------------------------------------------------------------- extract
def _extract(args):
    from .pooling import RaggedEmbeddings

    data = _load_metadata(args.metadata, audio_dir=args.audio_dir, need_audio=True,
                          labels=False)
    out = _out_dir(args.out)
    emb = _embedder(args.embedder, args.checkpoint, progress=not args.quiet,
                    cache_dir=os.fspath(out / "cache"), on_error="skip")
    _say(args, f"extracting {args.embedder} embeddings of {len(data.ids)} clips -> {out}")
    frames = emb.fit_transform(list(data.audio_paths))
    ids = pd.DataFrame({"id": list(data.ids)})
    if args.pooling == "none":
        if not isinstance(frames, RaggedEmbeddings):
            raise CLIError(f"embedder {args.embedder!r} returned clip-level output; use pooling.")
        np.savez(out / "frames.npz", values=frames.values, offsets=frames.offsets,
                 ids=np.asarray(ids["id"], dtype=str))
        written = "frames.npz"
    else:
        X = _pooling(args.pooling).fit_transform(frames)
        np.save(out / "features.npy", np.asarray(X, dtype=np.float32))
        written = "features.npy"
    ids.to_csv(out / "ids.csv", index=False)
    errors = getattr(emb, "errors_", None)
    if errors:
        _say(args, f"warning: {len(errors)} clips failed to load (rows of NaN)")
    _say(args, f"wrote {written} and ids.csv to {out}")
    return 0


# ----------------------------------------------------------------------- parser
def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--quiet", action="store_true", help="no progress output")

    parser = argparse.ArgumentParser(
        prog="sklearn-mesh", parents=[common],
        description="MESH hierarchical sound classification (Broad Sound Taxonomy).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common],
                       help="the recipe end to end on synthetic audio (no network, no weights)",
                       description="Synthetic curated + label-noisy crowd-sourced audio -> "
                       "log-mel + pooling -> GraNd/EL2N filter -> two-stage HProxy training "
                       "with K-fold OOF -> greedy OOF ensemble -> hP/hR/hF, per-class "
                       "table, plots.")
    p.add_argument("--out", default="mesh-demo", help="output folder (default: mesh-demo)")
    p.add_argument("--n-samples", type=int, default=276,
                   help="curated clips, a holdout included (default: 276 = 12 per class)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--cv", type=int, default=5, help="OOF folds (default: 5)")
    p.add_argument("--max-duration", type=float, default=4.0,
                   help="longest synthetic clip in seconds (default: 4)")
    p.add_argument("--holdout", type=float, default=0.25,
                   help="fraction of the curated set held out from selection (default: 0.25)")
    p.add_argument("--crowd-factor", type=float, default=1.0,
                   help="crowd-sourced clips per curated clip (default: 1)")
    p.add_argument("--label-noise", type=float, default=0.3,
                   help="label noise of the crowd-sourced set (default: 0.3)")
    p.add_argument("--epochs", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--systems", type=int, nargs="+", default=[1, 2, 3, 4],
                   help=argparse.SUPPRESS)
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_demo)

    p = sub.add_parser("train", parents=[common], help="fit features + MESH recipe; save it",
                       description="Fit ONE object (feature pipeline + MESH recipe) on BSD "
                       "metadata and save it with joblib.")
    p.add_argument("--metadata", required=True, help="labelled metadata CSV (e.g. BSD10k)")
    p.add_argument("--audio-dir", default=None, help="folder with <id>.<ext> audio files")
    p.add_argument("--features", required=True, choices=["text", "audio", "both"])
    p.add_argument("--embedder", default="logmel", choices=list(EMBEDDERS),
                   help="audio embedder (default: logmel, weights-free)")
    p.add_argument("--checkpoint", default=None, help="embedder checkpoint file")
    p.add_argument("--pooling", default="sequence", choices=["sequence", "chunk"])
    p.add_argument("--pretrain-metadata", default=None,
                   help="noisy pre-training metadata (e.g. BSD35k-CS): enables two-stage training")
    p.add_argument("--grid", default="small", choices=["small", "paper"],
                   help="candidate grid (default: small)")
    p.add_argument("--cv", type=int, default=5, help="OOF folds (default: 5)")
    p.add_argument("--epochs", type=int, default=20, help="max epochs of the small grid")
    p.add_argument("--cache-dir", default=None, help="resume/cache folder of the recipe")
    p.add_argument("--n-jobs", type=int, default=None)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--out", required=True, help="model file to write (joblib)")
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", parents=[common], help="write a challenge submission CSV",
                       description="Columns: id, predicted_bst_second_level_class, "
                       "prediction_score. Labels in the metadata are ignored.")
    p.add_argument("--model", required=True, help="file written by `sklearn-mesh train`")
    p.add_argument("--metadata", required=True, help="metadata CSV of the clips to predict")
    p.add_argument("--audio-dir", default=None)
    p.add_argument("--out", required=True, help="submission CSV to write")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", parents=[common], help="score a submission",
                       description="hP, hR, hF (both never-predicted policies), hierarchical "
                       "accuracy, per-class table, confusion matrix.")
    p.add_argument("--submission", required=True)
    p.add_argument("--metadata", required=True, help="labelled metadata CSV")
    p.add_argument("--out", default=None, help="folder for metrics.json, per_class.csv, plots")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("extract", parents=[common], help="cached embedding extraction",
                       description="Embed every clip of the metadata with an audio backbone; "
                       "writes features.npy (pooled) or frames.npz, and ids.csv.")
    p.add_argument("--metadata", required=True)
    p.add_argument("--audio-dir", required=True)
    p.add_argument("--embedder", required=True, choices=list(EMBEDDERS))
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--pooling", default="sequence", choices=["sequence", "chunk", "none"])
    p.add_argument("--out", required=True, help="output folder (a per-clip cache inside)")
    p.set_defaults(func=_extract)
    return parser


def main(argv=None):
    """Entry point of ``sklearn-mesh``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sklearn-mesh: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, CLIError):
            msg = f"{type(exc).__name__}: {msg}"
        print(f"sklearn-mesh {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
