"""Parity of our native backbones with their reference implementations.

Usage::

    python benchmarks/check_backbone_parity.py --backbone beats --upstream /path/unilm/beats
    python benchmarks/check_backbone_parity.py --backbone passt --upstream /path/passt_hear21 \\
        --checkpoint passt-s-kd-ap.486.pt

``--upstream`` is a local checkout of the reference code (never part of this repository,
never downloaded by this script). Without ``--checkpoint`` one random state dict in the
released key layout is written to a temporary file and loaded by both sides. Each clip
(several lengths) goes through both implementations one at a time, unpadded, and the
script prints the maximum absolute difference of the frame embeddings as a markdown row.

The reference front-ends of BEATs, PaSST and fPaSST call
``torchaudio.compliance.kaldi`` (and hear21passt imports ``torchaudio``). Where torchaudio
cannot be imported (recent torch wheels), pass ``--torchaudio-kaldi`` with the path of
``torchaudio/compliance/kaldi.py`` taken from a torchaudio wheel: it is a pure-torch file,
and the script installs it as a minimal ``torchaudio`` stand-in for the reference only.
The M2D reference needs timm, einops and nnAudio: install them into a separate folder
(``pip install --target DIR --no-deps timm einops nnAudio``) and pass ``--site DIR``;
timm's import of torchvision is then satisfied by an import-only stand-in (its ViT never
calls torchvision).

Registry: each backbone module exposes three private hooks,
``_parity_checkpoint(path)``, ``_parity_ours(checkpoint, waves)`` and
``_parity_reference(upstream, checkpoint, waves)`` (optionally suffixed ``_<name>`` for a
variant sharing a module), the last two returning one ``(frames, dim)``
array per clip. Add a backbone by adding a line to ``BACKBONES``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

# name -> (module with the hooks, sample rate, clip lengths in seconds)
BACKBONES = {
    "beats": ("sklearn_mesh.backbones._beats", 16000, (0.5, 3.3, 10.0, 12.7)),
    "beats_ft": ("sklearn_mesh.backbones._beats", 16000, (0.5, 3.3, 10.0)),
    "passt": ("sklearn_mesh.backbones._passt", 32000, (0.3, 4.0, 10.0)),
    "fpasst": ("sklearn_mesh.backbones._passt", 16000, (0.3, 4.0, 10.0)),
    "m2d": ("sklearn_mesh.backbones._m2d", 16000, (0.5, 4.0, 10.0, 13.0)),
    # upstream: fschmid56/PretrainedSED (ATST-F_*.pt layout); fschmid56/EfficientAT
    "atst": ("sklearn_mesh.backbones._atst", 16000, (0.01, 1.0, 3.7, 10.0)),
    "efficientat_mn": ("sklearn_mesh.backbones._efficientat", 32000, (0.01, 1.0, 3.7, 10.0)),
    "efficientat_dymn": ("sklearn_mesh.backbones._efficientat", 32000, (0.01, 1.0, 3.7, 10.0)),
}
# backbones whose hooks carry a "_<backbone>" suffix (several backbones in one module)
_SUFFIXED_HOOKS = {"beats_ft", "fpasst", "efficientat_mn", "efficientat_dymn"}


def _install_torchaudio_stub(kaldi_path):
    """Make ``import torchaudio`` / ``torchaudio.compliance.kaldi`` work for references."""
    try:
        import torchaudio  # noqa: F401

        return "torchaudio"
    except Exception:  # noqa: BLE001 - any import failure means: use the stand-in
        pass
    if kaldi_path is None:
        return None
    ta = types.ModuleType("torchaudio")
    compliance = types.ModuleType("torchaudio.compliance")
    ta.compliance = compliance
    sys.modules["torchaudio"] = ta
    sys.modules["torchaudio.compliance"] = compliance
    spec = importlib.util.spec_from_file_location("torchaudio.compliance.kaldi", kaldi_path)
    kaldi = importlib.util.module_from_spec(spec)
    sys.modules["torchaudio.compliance.kaldi"] = kaldi
    spec.loader.exec_module(kaldi)
    compliance.kaldi = kaldi
    return f"stand-in from {kaldi_path}"


class _Anything:
    """Placeholder for torchvision names that timm imports but never calls here."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()

    def __mro_entries__(self, bases):
        return (object,)


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0"
        return module

    def exec_module(self, module):
        pass


def _install_torchvision_stub():
    """timm imports torchvision (data transforms) at import time; its ViT never uses it.

    PyPI's torchvision does not import beside recent torch wheels, so for the M2D reference
    an import-only stand-in is installed when the real one fails.
    """
    try:
        import torchvision  # noqa: F401

        return False
    except Exception:  # noqa: BLE001
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.meta_path.insert(0, _TorchvisionStub())
        return True


def _commit(path):
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()[:12]
    except Exception:  # noqa: BLE001
        marker = Path(path) / "UPSTREAM_COMMIT"
        return marker.read_text().strip()[:12] if marker.is_file() else "unknown"


def _clips(sample_rate, seconds, seed=0):
    rng = np.random.default_rng(seed)
    clips = []
    for i, s in enumerate(seconds):
        n = max(1, int(round(s * sample_rate)))
        t = np.arange(n) / sample_rate
        tone = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t)
        clips.append((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return clips


def run(backbone, upstream, checkpoint=None, kaldi=None):
    module_name, sample_rate, seconds = BACKBONES[backbone]
    mod = importlib.import_module(module_name)
    suffix = f"_{backbone}" if backbone in _SUFFIXED_HOOKS else ""
    make = getattr(mod, "_parity_checkpoint" + suffix, None) or mod._parity_checkpoint
    ours = getattr(mod, "_parity_ours" + suffix, None) or mod._parity_ours
    ref = getattr(mod, "_parity_reference" + suffix, None) or mod._parity_reference
    ta = _install_torchaudio_stub(kaldi)
    if backbone == "m2d":
        _install_torchvision_stub()
    waves = _clips(sample_rate, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint is None:
            checkpoint = Path(tmp) / "random.pt"
            make(checkpoint)
            weights = "random, official layout"
        else:
            weights = Path(checkpoint).name
        a = ours(checkpoint, waves)
        b = ref(Path(upstream), checkpoint, waves)
    diffs, shapes = [], []
    for x, y in zip(a, b):
        if x.shape != y.shape:
            raise AssertionError(f"{backbone}: frame shapes differ, ours {x.shape} vs reference {y.shape}")
        diffs.append(float(np.abs(x - y).max()))
        shapes.append(x.shape[0])
    return {
        "backbone": backbone,
        "commit": _commit(upstream),
        "weights": weights,
        "clips": ", ".join(f"{s:g} s" for s in seconds),
        "frames": ", ".join(map(str, shapes)),
        "max_abs_diff": max(diffs),
        "torchaudio": ta or "not needed",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    parser.add_argument("--upstream", required=True, help="local checkout of the reference code")
    parser.add_argument("--checkpoint", default=None, help="a released checkpoint (optional)")
    parser.add_argument("--site", action="append", default=[],
                        help="extra folder for sys.path holding reference-only packages "
                        "(timm, einops, nnAudio for M2D); repeatable")
    parser.add_argument("--torchaudio-kaldi", default=None,
                        help="path of torchaudio/compliance/kaldi.py if torchaudio does not import")
    args = parser.parse_args(argv)
    sys.path[1:1] = args.site
    import torch

    torch.set_num_threads(1)
    row = run(args.backbone, args.upstream, args.checkpoint, args.torchaudio_kaldi)
    print("| backbone | reference commit | weights | clips | frames | max abs diff |")
    print("|---|---|---|---|---|---|")
    print(f"| {row['backbone']} | {row['commit']} | {row['weights']} | {row['clips']} | "
          f"{row['frames']} | {row['max_abs_diff']:.2e} |")
    return row


if __name__ == "__main__":
    main()
