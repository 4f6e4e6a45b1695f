"""Speed and difficulty of the dataset helpers.

1. ``make_bst_audio``: wall and CPU time to synthesise N clips at 16 kHz (durations
   log-uniform 0.05-30 s), and CPU cost per second of audio for every class recipe.
2. Difficulty of the synthetic set: 5-fold CV of a logistic regression on simple
   log-band spectral statistics (audio) and on TF-IDF of the synthetic metadata text;
   accuracy, hF, and how often a class is confused with a sibling vs a cousin (per
   ordered class pair) — siblings should be confused more.
3. ``load_bsd_metadata`` on the real BSD10k v1.0 training metadata (9,389 rows), if present.

Run: ``python benchmarks/bench_datasets.py [--quick | --full] [--write]``; quick (default)
synthesises 500 clips and uses 460 clips (max 10 s) for the difficulty check; full uses
1,150 clips (max 30 s). ``--write`` writes docs/benchmarks/datasets.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn_mesh.datasets import load_bsd_metadata, make_bst_audio  # noqa: E402
from sklearn_mesh.datasets._synthetic import _render  # noqa: E402
from sklearn_mesh.metrics import hierarchical_f1_score  # noqa: E402
from sklearn_mesh.taxonomy import BST  # noqa: E402


def spectral_features(wave, sr):
    n_fft = 512
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::256][:400]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    edges = np.unique(np.geomspace(1, power.shape[1] - 1, 25).astype(int))
    bands = np.log(np.add.reduceat(power, edges, axis=1) + 1e-10)
    energy = bands.mean(axis=1)
    return np.r_[bands.mean(0), bands.std(0), np.log(wave.size / sr), energy.std()]


def confusion_rates(y, pred):
    wrong = pred != y
    same_top = BST.to_top(pred) == BST.to_top(y)
    parent = BST.parent_index
    k = BST.n_leaves
    n_sib = sum(parent[i] == parent[j] for i in range(k) for j in range(k) if i != j)
    n_cou = k * (k - 1) - n_sib
    return (wrong & same_top).sum() / n_sib, (wrong & ~same_top).sum() / n_cou


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    mode_name = "full" if args.full else "quick"
    out = [f"Mode `{mode_name}`.", ""]

    # 1. synthesis speed
    make_bst_audio(2, max_duration=0.1, random_state=0)  # build the noise bank once
    n = 500
    t0, c0 = time.perf_counter(), time.process_time()
    data = make_bst_audio(n, random_state=1)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    audio_s = float(data.durations.sum())
    out += [
        "## make_bst_audio speed (16 kHz)",
        "",
        "| clips | audio (s) | wall (s) | CPU (s) | audio seconds per CPU second |",
        "|---:|---:|---:|---:|---:|",
        f"| {n} | {audio_s:.0f} | {wall:.1f} | {cpu:.1f} | {audio_s / cpu:.0f} |",
        "",
        "CPU ms per second of audio, per class recipe (3 clips of 10 s each):",
        "",
        "| class | ms / s |",
        "|---|---:|",
    ]
    for label in BST.leaves:
        c0 = time.process_time()
        for seed in range(3):
            _render(label, seed, 16000 * 10, 16000)
        out.append(f"| {label} | {(time.process_time() - c0) / 30 * 1e3:.1f} |")

    # 2. difficulty
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_clf, max_dur = (1150, 30.0) if args.full else (460, 10.0)
    d = make_bst_audio(n_clf, max_duration=max_dur, random_state=0)
    X = np.array([spectral_features(w, d.sample_rate) for w in d.audio])
    y = d.target
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    rows = []
    pred = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)), X, y, cv=cv
    )
    rows.append(("audio: log-band stats + LR", pred))
    pred = cross_val_predict(
        make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=3000)),
        np.asarray(d.text, dtype=object),
        y,
        cv=cv,
    )
    rows.append(("text: TF-IDF + LR", pred))
    out += [
        "",
        f"## Difficulty of the synthetic set ({n_clf} clips, 0.05-{max_dur:g} s, balanced, "
        "5-fold CV)",
        "",
        "| features | accuracy | hF | sibling confusions / pair | cousin confusions / pair |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, pred in rows:
        sib, cou = confusion_rates(y, pred)
        out.append(
            f"| {name} | {np.mean(pred == y):.3f} | {hierarchical_f1_score(y, pred):.3f} "
            f"| {sib:.2f} | {cou:.2f} |"
        )
    out.append(f"\nChance accuracy: {1 / 23:.3f}.")

    # 3. real metadata loading
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "bsd10k-v1.0"
    if (real / "metadata_train.csv").is_file():
        t0 = time.perf_counter()
        meta = load_bsd_metadata(real / "metadata_train.csv")
        dt = time.perf_counter() - t0
        out += [
            "",
            "## load_bsd_metadata on BSD10k v1.0 train",
            "",
            f"{len(meta.text):,} rows, {len(set(meta.target))} classes in {dt * 1e3:.0f} ms.",
        ]
    text = "\n".join(out)
    print(text)
    if args.write:
        path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "datasets.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Benchmark: dataset helpers\n\n"
            f"`python benchmarks/bench_datasets.py --{mode_name} --write` produced this page "
            "on a shared 2-core machine (wall times include waiting for other jobs; CPU "
            "times are this process's).\n\n" + text + "\n"
        )
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
