"""Embedder throughput and memory.

1. Clips per second for CLAP (HTSAT-tiny, random weights) on a mix of durations:
   ``ClapAudioEmbedder`` (length-bucketed batches, chunked 10 s windows) vs. laion-clap's
   per-clip path in a loop (what ``CLAP_Module.get_audio_embedding_from_data([x])`` runs:
   int16 quantisation, repeat-pad / random 10 s crop, ``CLAP.get_audio_embedding`` on a
   batch of one). laion-clap's ``hook`` module itself cannot be imported offline here (it
   needs torchvision, webdataset, PIL and wget and builds tokenizers at import), so the
   loop calls the same model methods directly.
   Note: the embedder embeds *every* 10 s chunk of a long clip (plus the end-aligned
   one), laion-clap's path one random 10 s crop, so chunks/s is the like-for-like rate.
2. Peak resident memory while embedding many clips from files (each configuration runs
   in a fresh subprocess), against the size all decoded audio would take at once: the
   embedders stream blocks of clips, so the peak must stay far below that.

Usage: python benchmarks/bench_embedders.py [--quick | --full]
  --quick (default): 12 clips for the speed table; memory: 250 and 1,000 clips through
                     LogMelEmbedder, 15 and 60 through CLAP (CLAP is ~0.1-1 s per chunk
                     on 2 CPU cores, so quick mode uses fewer clips).
  --full:            48 clips for speed; memory: 250/1,000 (LogMel), 100/1,000 (CLAP).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message=".*RANDOM weights")
os.environ.setdefault("OMP_NUM_THREADS", "2")


def durations(n, seed=0):
    """A BSD-like mix: many short clips, some long ones up to 30 s."""
    rng = np.random.default_rng(seed)
    base = np.array([0.3, 1.0, 2.5, 4.0, 7.0, 10.0, 14.0, 22.0, 30.0])
    probs = np.array([0.14, 0.18, 0.16, 0.14, 0.12, 0.08, 0.07, 0.06, 0.05])
    return rng.choice(base, size=n, p=probs / probs.sum())


def clips(durs, sr=48000, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(d * sr)).astype(np.float32), sr) for d in durs]


def laion_per_clip(model, waves, seed=0):
    """laion-clap's per-clip inference path, one clip per call."""
    import torch

    rng = np.random.default_rng(seed)
    max_len = 480000
    out = []
    model.eval()
    for w, _ in waves:
        x = torch.from_numpy((np.clip(w, -1, 1) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0)
        if len(x) > max_len:  # "rand_trunc"
            start = int(rng.integers(0, len(x) - max_len + 1))
            x = x[start : start + max_len]
        elif len(x) < max_len:  # "repeatpad"
            x = torch.nn.functional.pad(x.repeat(max_len // len(x)), (0, max_len - len(x) * (max_len // len(x))))
        sample = {"waveform": x, "longer": torch.tensor([False])}
        with torch.no_grad():
            out.append(model.get_audio_embedding([sample]).cpu().numpy())
    return np.concatenate(out)


def speed_table(n_clips):
    import torch

    from sklearn_mesh.embedders import ClapAudioEmbedder

    durs = durations(n_clips)
    data = clips(durs)
    rows = []
    emb = ClapAudioEmbedder(random_state=0, batch_size=8).fit()
    emb.transform(data[:1])  # warm-up
    t = time.perf_counter()
    R = emb.transform(data)
    dt = time.perf_counter() - t
    rows.append(("ClapAudioEmbedder (bucketed, batch 8)", n_clips, int(R.lengths.sum()), dt))
    # laion's model API needs the text tower's attributes only for text; audio path is complete
    model = emb.module_
    laion_per_clip(model, data[:1])
    t = time.perf_counter()
    laion_per_clip(model, data)
    dt = time.perf_counter() - t
    rows.append(("laion-clap per-clip loop (1 crop per clip)", n_clips, n_clips, dt))
    print(f"\nCLAP HTSAT-tiny, random weights, {torch.get_num_threads()} torch threads; "
          f"{n_clips} clips, durations {sorted(set(durs.tolist()))} s, total {durs.sum():.0f} s of audio\n")
    print("| method | clips | 10 s chunks embedded | seconds | clips/s | chunks/s |")
    print("|---|---|---|---|---|---|")
    for name, n, chunks, dt in rows:
        print(f"| {name} | {n} | {chunks} | {dt:.1f} | {n / dt:.2f} | {chunks / dt:.2f} |")
    print(f"\nratio (embedder / loop): clips/s {rows[1][3] / rows[0][3]:.2f}x, "
          f"chunks/s {(rows[0][2] / rows[0][3]) / (rows[1][2] / rows[1][3]):.2f}x")


def _rss_mib(peak=False):
    """Current (or peak, VmHWM) resident memory of this process in MiB (Linux /proc)."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak():
    try:  # Linux >= 4.0: reset VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover
        pass


def _memory_child(kind, folder, n):
    """Run in a subprocess: embed every file of ``folder`` and print memory (MiB)."""
    from sklearn_mesh.embedders import ClapAudioEmbedder, LogMelEmbedder
    from sklearn_mesh.pooling import SequencePooling

    files = sorted(str(p) for p in Path(folder).glob("*.wav"))[:n]
    if kind == "logmel":
        emb = LogMelEmbedder(batch_size=16)
    else:
        emb = ClapAudioEmbedder(random_state=0, batch_size=8)
    emb.fit()
    before = _rss_mib()
    _reset_peak()
    t = time.perf_counter()
    R = emb.transform(files)
    pooled = SequencePooling(stats=("mean",)).fit_transform(R)
    dt = time.perf_counter() - t
    peak = _rss_mib(peak=True)
    out_mib = R.values.nbytes / 2**20
    print(f"RESULT {len(files)} {before:.0f} {peak:.0f} {dt:.1f} {emb.sample_rate} {out_mib:.1f} {pooled.shape[1]}")


def memory_table(plan, folder_durs):
    folder, durs = folder_durs
    print("\n| embedder | clips | audio (s) | all decoded audio at model rate (MiB) "
          "| output frames (MiB) | RSS after fit (MiB) | peak RSS during transform (MiB) "
          "| growth (MiB) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, n in plan:
        out = subprocess.run(
            [sys.executable, __file__, "--_memory", kind, folder, str(n)],
            capture_output=True, text=True, check=False,
        )
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
        if not line:
            print(f"| {kind} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr else '?'} |")
            continue
        _, k, before, peak, dt, sr, out_mib, _ = line[0].split()
        secs = float(durs[: int(k)].sum())
        decoded = secs * int(sr) * 4 / 2**20
        growth = float(peak) - float(before)
        print(f"| {kind} | {k} | {secs:.0f} | {decoded:.0f} | {out_mib} | {before} | {peak} "
              f"| {growth:.0f} | {dt} |")


def write_files(n, folder, sr=16000):
    import soundfile as sf

    durs = durations(n, seed=1)
    rng = np.random.default_rng(1)
    for i, d in enumerate(durs):
        sf.write(os.path.join(folder, f"clip{i:05d}.wav"), 0.1 * rng.standard_normal(int(d * sr)), sr, subtype="PCM_16")
    return durs


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_memory":
        _memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", default=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="skip the speed table")
    args = parser.parse_args()
    full = args.full
    print(f"# bench_embedders ({'full' if full else 'quick'} mode)")
    if "--memory-only" not in sys.argv:
        speed_table(48 if full else 12)
    with tempfile.TemporaryDirectory() as folder:
        durs = write_files(1000, folder)
        # two sizes per embedder: a streaming transform's peak must not grow with the
        # number of clips (only the output grows)
        plan = [("logmel", 250), ("logmel", 1000)]
        plan += [("clap", 100), ("clap", 1000)] if full else [("clap", 15), ("clap", 60)]
        memory_table(plan, (folder, durs))


if __name__ == "__main__":
    main()
