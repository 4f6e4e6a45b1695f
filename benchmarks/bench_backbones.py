"""Throughput and peak memory of the native backbones (random weights, full size, CPU).

Usage::

    python benchmarks/bench_backbones.py            # --quick (default): 4 clips each
    python benchmarks/bench_backbones.py --full     # 24 clips each
    python benchmarks/bench_backbones.py --backbones beats m2d

Each backbone runs in its own subprocess, so its peak resident memory (``ru_maxrss``)
is its own: the table shows the peak and the peak above the process baseline after
imports (torch, sklearn_mesh). The clips are a fixed mix of durations (synthetic noise
and tones, 0.5 s to 30 s) embedded through the embedder (``fit`` builds the full-size
network with random weights; ``transform`` is timed). Throughput is in clips per second
and in seconds of audio per wall-clock second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# name -> (embedder class name, extra parameters)
BACKBONES = {
    "beats": ("BEATsEmbedder", {}),
    "passt": ("PasstEmbedder", {}),
    "fpasst": ("FPasstEmbedder", {}),
    "m2d": ("M2DEmbedder", {}),
    "atst": ("ATSTFrameEmbedder", {}),
    "efficientat_mn10": ("EfficientATEmbedder", {"model_name": "mn10_as"}),
    "efficientat_dymn10": ("EfficientATEmbedder", {"model_name": "dymn10_as"}),
}
QUICK = (1.0, 3.0, 7.0, 12.0)
FULL = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0) + (1.5, 2.5, 3.5, 4.5, 5.5, 7.0,
                                                                              9.0, 11.0, 14.0, 18.0, 25.0)


def _clips(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(seconds):
        n = int(s * sr)
        t = np.arange(n) / sr
        wave = 0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
        out.append((wave.astype(np.float32), sr))
    return out


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(name, mode, batch_size):
    import torch

    import sklearn_mesh.embedders as E

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    seconds = QUICK if mode == "quick" else FULL
    clips = _clips(seconds)
    base = _rss_mb()
    cls_name, params = BACKBONES[name]
    emb = getattr(E, cls_name)(batch_size=batch_size, random_state=0, **params)
    t0 = time.perf_counter()
    emb.fit()
    t1 = time.perf_counter()
    out = emb.transform(clips)
    t2 = time.perf_counter()
    peak = _rss_mb()
    n_params = sum(p.numel() for p in emb.module_.parameters())
    return {
        "backbone": name,
        "params_m": n_params / 1e6,
        "dim": int(out.dim),
        "frames": int(np.sum(out.lengths)),
        "clips": len(clips),
        "audio_s": float(sum(seconds)),
        "build_s": t1 - t0,
        "embed_s": t2 - t1,
        "peak_mb": peak,
        "over_base_mb": peak - base,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="4 clips per backbone (default)")
    group.add_argument("--full", action="store_true", help="24 clips per backbone")
    parser.add_argument("--backbones", nargs="*", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "full" if args.full else "quick"
    if args.worker:
        print(json.dumps(worker(args.worker, mode, args.batch_size)))
        return None
    rows = []
    for name in args.backbones:
        cmd = [sys.executable, __file__, f"--{mode}", "--worker", name, "--batch-size", str(args.batch_size)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{res.stderr[-2000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    seconds = QUICK if mode == "quick" else FULL
    print(f"mode: {mode}; {len(seconds)} clips of {', '.join(f'{s:g}' for s in seconds)} s "
          f"({sum(seconds):g} s of audio); batch_size={args.batch_size}; "
          f"threads={os.environ.get('OMP_NUM_THREADS', 'default')}; CPU; random weights\n")
    print("| backbone | params (M) | frame dim | frames | build (s) | embed (s) | clips / s | "
          "audio s / s | peak RSS (MB) | peak above baseline (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['params_m']:.1f} | {r['dim']} | {r['frames']} | {r['build_s']:.1f} | "
              f"{r['embed_s']:.1f} | {r['clips'] / r['embed_s']:.2f} | {r['audio_s'] / r['embed_s']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['over_base_mb']:.0f} |")
    return rows


if __name__ == "__main__":
    main()
