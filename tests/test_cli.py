"""The ``sklearn-mesh`` command line, run through the real entry (``python -m sklearn_mesh``)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_mesh.cli import align_submission, main, summary_scores
from sklearn_mesh.metrics import (
    hierarchical_accuracy_score,
    hierarchical_f1_score,
    hierarchical_precision_recall_fscore,
)
from sklearn_mesh.taxonomy import BST

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "sklearn_mesh", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def printed_hf(stdout, label="hF"):
    match = re.findall(rf"^{re.escape(label)} = ([0-9.]+)$", stdout, flags=re.M)
    assert match, stdout
    return float(match[-1])


# ----------------------------------------------------------------------- help/errors
@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["predict"], ["evaluate"],
                                     ["extract"]])
def test_help_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: sklearn-mesh" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_submission_columns_match_system():
    from sklearn_mesh.cli import _SUBMISSION_COLUMNS
    from sklearn_mesh.system import SUBMISSION_COLUMNS

    assert _SUBMISSION_COLUMNS == SUBMISSION_COLUMNS


def test_summary_scores_match_metrics():
    rng = np.random.default_rng(0)
    y = rng.choice(BST.leaves, 60)
    p = np.where(rng.random(60) < 0.5, y, rng.choice(BST.leaves, 60))
    s = summary_scores(y, p)
    assert s["hF"] == hierarchical_f1_score(y, p)
    assert s["hF_drop"] == hierarchical_f1_score(y, p, never_predicted="drop")
    assert (s["hP"], s["hR"]) == hierarchical_precision_recall_fscore(y, p)[:2]
    assert s["h_accuracy"] == hierarchical_accuracy_score(y, p)
    assert s["hF_drop"] >= s["hF"]


def _sub(ids, labels):
    return pd.DataFrame({"id": ids, "predicted_bst_second_level_class": labels,
                         "prediction_score": 0.5})


def test_align_submission_orders_by_metadata_ids():
    sub = _sub(["3", "1", "2"], ["fx-o", "m-sp", "sp-s"])
    assert list(align_submission(sub, [1, 2, 3], None)) == ["m-sp", "sp-s", "fx-o"]


@pytest.mark.parametrize("ids, labels, message", [
    (["1", "2"], ["m-sp", "m-sp"], "1 missing"),
    (["1", "2", "3", "4"], ["m-sp"] * 4, "1 extra"),
    (["1", "1", "2", "3"], ["m-sp"] * 4, "duplicate"),
    (["1", "2", "3"], ["m-sp", "xx", "m-sp"], "unknown classes"),
])
def test_evaluate_id_errors_exit_2_with_one_line(tmp_path, capsys, ids, labels, message):
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"sound_id": [1, 2, 3], "class": ["m-sp", "fx-o", "sp-s"],
                  "title": ["a", "b", "c"], "tags": ["x", "y", "z"]}).to_csv(meta, index=False)
    sub = tmp_path / "sub.csv"
    _sub(ids, labels).to_csv(sub, index=False)
    assert main(["evaluate", "--submission", str(sub), "--metadata", str(meta)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in lines[0]


@pytest.mark.slow
def test_error_exit_code_through_console_entry(tmp_path):
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"sound_id": [1, 2], "class": ["m-sp", "fx-o"]}).to_csv(meta, index=False)
    sub = tmp_path / "sub.csv"
    _sub(["1"], ["m-sp"]).to_csv(sub, index=False)
    proc = run_cli("evaluate", "--submission", sub, "--metadata", meta)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "1 missing" in lines[0], proc.stderr
    proc = run_cli("evaluate", "--debug", "--submission", sub, "--metadata", meta)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_files_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--submission", str(tmp_path / "no.csv"), "--metadata",
                 str(tmp_path / "no.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert main(["predict", "--model", str(tmp_path / "m.joblib"), "--metadata", "x",
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert main(["demo", "--n-samples", "10", "--out", str(tmp_path)]) == 2
    assert "at least 46" in capsys.readouterr().err


def test_extract_rejects_checkpoint_for_weights_free_embedder(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"sound_id": [1], "title": ["a"]}).to_csv(meta, index=False)
    ck = tmp_path / "w.pt"
    ck.write_bytes(b"0")
    assert main(["extract", "--metadata", str(meta), "--audio-dir", str(tmp_path),
                 "--embedder", "logmel", "--checkpoint", str(ck), "--out",
                 str(tmp_path / "o")]) == 2


def test_extract_logmel(tmp_path):
    sf = pytest.importorskip("soundfile")
    rng = np.random.default_rng(0)
    for i in (1, 2):
        sf.write(tmp_path / f"{i}.wav", rng.normal(scale=0.1, size=8000 * i), 16000)
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"sound_id": [1, 2], "title": ["a", "b"]}).to_csv(meta, index=False)
    out = tmp_path / "emb"
    assert main(["extract", "--quiet", "--metadata", str(meta), "--audio-dir", str(tmp_path),
                 "--embedder", "logmel", "--out", str(out)]) == 0
    X = np.load(out / "features.npy")
    assert X.shape == (2, 3 * 64) and np.isfinite(X).all()
    assert pd.read_csv(out / "ids.csv")["id"].tolist() == [1, 2]
    assert main(["extract", "--quiet", "--metadata", str(meta), "--audio-dir", str(tmp_path),
                 "--embedder", "logmel", "--pooling", "none", "--out", str(out)]) == 0
    frames = np.load(out / "frames.npz")
    assert frames["offsets"].tolist()[0] == 0 and frames["values"].shape[1] == 64


# --------------------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_small_outputs_and_hf_recomputed(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, "--n-samples", 92, "--cv", 2, "--max-duration", 1,
                   "--crowd-factor", 0.5, "--epochs", 2, "--systems", 1, "--tiny", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("predictions.csv", "metrics.json", "per_class_holdout.csv",
                 "per_class_oof.csv", "candidates.csv", "confusion_matrix.png",
                 "per_class_hf.png", "ensemble_trace.png"):
        assert (out / name).stat().st_size > 0, name
    preds = pd.read_csv(out / "predictions.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(preds["split"]) == {"oof", "holdout"}
    assert preds["id"].is_unique and len(preds) == 92
    for split in ("oof", "holdout"):
        part = preds[preds["split"] == split]
        y, p = part["label"], part["predicted_bst_second_level_class"]
        assert metrics["scores"][split]["hF"] == pytest.approx(hierarchical_f1_score(y, p))
        assert metrics["scores"][split]["hF_drop"] == pytest.approx(
            hierarchical_f1_score(y, p, never_predicted="drop"))
        assert metrics["scores"][split]["h_accuracy"] == pytest.approx(
            hierarchical_accuracy_score(y, p))
    hold = preds[preds["split"] == "holdout"]
    assert printed_hf(proc.stdout, "hF (holdout)") == pytest.approx(
        hierarchical_f1_score(hold["label"], hold["predicted_bst_second_level_class"]),
        abs=5e-5)
    # the holdout never enters selection: 25% of the curated set, disjoint ids
    assert len(hold) == metrics["n_holdout"] == 23


# -------------------------------------------------------- text round trip (real BSD10k)
@pytest.mark.slow
def test_text_train_predict_evaluate_round_trip(bsd10k_dir, tmp_path):
    meta = pd.read_csv(bsd10k_dir / "metadata_train.csv", dtype={"sound_id": str})
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.permutation(np.flatnonzero(meta["class"] == c))[:8]
                           for c in sorted(meta["class"].unique())])
    sub = meta.iloc[rows]
    test_rows = sub.groupby("class").head(2).index
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    sub.drop(index=test_rows).to_csv(train_csv, index=False)
    sub.loc[test_rows].to_csv(test_csv, index=False)
    model, submission = tmp_path / "model.joblib", tmp_path / "sub.csv"

    proc = run_cli("train", "--metadata", train_csv, "--features", "text", "--cv", 2,
                   "--epochs", 3, "--out", model, "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # labels in the prediction metadata are ignored (one is not even a BST class)
    predict_csv = tmp_path / "predict.csv"
    sub.loc[test_rows].assign(**{"class": ["zz-unknown"] + ["m-sp"] * (len(test_rows) - 1)}
                              ).to_csv(predict_csv, index=False)
    proc = run_cli("predict", "--model", model, "--metadata", predict_csv, "--out", submission,
                   "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(submission, dtype={"id": str})
    assert list(table.columns) == ["id", "predicted_bst_second_level_class",
                                   "prediction_score"]
    assert table["id"].tolist() == sub.loc[test_rows, "sound_id"].tolist()
    assert table["prediction_score"].between(0, 1).all()

    proc = run_cli("evaluate", "--submission", submission, "--metadata", test_csv,
                   "--out", tmp_path / "eval")
    assert proc.returncode == 0, proc.stderr[-2000:]
    truth = sub.loc[test_rows].set_index("sound_id")["class"].loc[table["id"]]
    expected = hierarchical_f1_score(truth, table["predicted_bst_second_level_class"])
    assert printed_hf(proc.stdout) == pytest.approx(expected, abs=5e-5)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["scores"]["hF"] == pytest.approx(expected)
    assert (tmp_path / "eval" / "confusion_matrix.png").exists()


# ----------------------------------------------------------------------- plotting
def test_plot_confusion_matrix_groups_by_top_level_and_counts():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_mesh.plotting import plot_confusion_matrix
    from sklearn_mesh.taxonomy import Taxonomy

    tax = Taxonomy.from_mapping({"a": ["a-1", "a-2"], "b": ["b-1"]})
    rng = np.random.default_rng(0)
    y = rng.choice(tax.leaves, 50)
    p = rng.choice(tax.leaves, 50)
    fig = plot_confusion_matrix(y, p, taxonomy=tax, normalize=None)
    cm = np.asarray(fig.axes[0].images[0].get_array())
    order = sorted(range(tax.n_leaves), key=lambda i: (tax.parent_index[i], i))
    naive = np.zeros((3, 3))
    for t, q in zip(y, p):  # naive reference in the grouped order
        naive[order.index(tax.leaves.index(t)), order.index(tax.leaves.index(q))] += 1
    np.testing.assert_array_equal(cm, naive)
    rows = np.asarray(plot_confusion_matrix(y, p, taxonomy=tax).axes[0].images[0].get_array())
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(y, p, taxonomy=tax, normalize="all")


def test_plot_per_class_hf_and_trace():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_mesh.metrics import hierarchical_precision_recall_fscore
    from sklearn_mesh.plotting import _short_names, plot_ensemble_trace, plot_per_class_hf

    y = np.array(["m-sp", "m-sp", "fx-o", "sp-s"])
    p = np.array(["m-sp", "m-si", "fx-v", "sp-s"])
    fig = plot_per_class_hf(y, p)
    heights = [b.get_height() for b in fig.axes[0].patches]
    f = hierarchical_precision_recall_fscore(y, p, average=None)[2]
    used = [BST.leaves.index(k) for k in BST.leaves if k in set(y) | set(p)]
    np.testing.assert_allclose(heights, np.nan_to_num(f[used]))
    assert _short_names(["s|a=1|b=2", "s|a=1|b=3"]) == ["b=2", "b=3"]
    with pytest.raises(ValueError, match="GreedyOOFEnsemble"):
        plot_ensemble_trace(pd.DataFrame({"x": [1]}))
