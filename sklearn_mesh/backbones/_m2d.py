"""M2D / M2D-CLAP audio encoder (Niizumi et al.) in plain torch, loading nttcslab's weights.

Architecture (nttcslab/m2d ``examples/portable_m2d.py``): 16 kHz; log-mel with 80 Slaney
mel bands (n_fft = window = 400, hop 160, 50-8000 Hz, centred STFT), ``log(x + eps)``,
normalised with the checkpoint's ``norm_stats`` (mean, std; ``[-7.1, 4.2]`` when absent);
a ViT-Base (16 x 16 patches, 12 pre-LN blocks, learned position embedding for a grid of
5 frequency x ``n_time`` time patches, a class token that is dropped at the output).

Long inputs are cut, as upstream, into units of ``input_frames`` mel frames (1001 for
the ``80x1001`` weights = 10.01 s, 608 for ``80x608``); the last unit is zero-padded to a
multiple of 16 frames. Each unit is encoded separately; a unit yields
``min(n_time, ceil(frames / 16))`` time frames. The 5 frequency tokens of a time step
are concatenated: **3,840-d frames at 6.25 frames / s** (160 ms), M2D's standard
feature (the paper's "M2D clip-level mean+std" is 2 x 3,840 = 7,680).

Batches: units of different lengths are padded and the padded tokens are excluded from
attention (key mask), so each clip gets exactly the frames it gets alone upstream.

Checkpoint: a ``.pth`` with the encoder at top level or under ``"model"`` (optionally
``backbone.`` / ``module.ar.runtime.backbone.`` prefixes): ``cls_token``, ``pos_embed``,
``patch_embed.proj.*``, ``blocks.N.*`` (timm names), ``norm.*``, ``norm_stats``. Other
branches of released checkpoints (CLAP ``audio_proj`` / ``text_proj``, decoders, target
encoders, heads) are ignored; keys under the encoder's own names must match exactly.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._features import M2DMel
from ._passt import ViTBlock

__all__ = ["M2DModel", "m2d_input_frames", "prepare_m2d_state_dict"]

_ENCODER_NAMES = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.", "norm_stats")
_N_FREQ = 5
_PATCH = 16


def m2d_input_frames(name, n_time):
    """Mel frames per unit: from an ``80x1001p16x16``-style name, else from the grid size.

    Examples
    --------
    >>> from sklearn_mesh.backbones._m2d import m2d_input_frames
    >>> m2d_input_frames("m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly/w.pth", 62)
    1001
    >>> m2d_input_frames("weights.pth", 38)
    608
    """
    match = re.search(r"-(\d+)x(\d+)p(\d+)x(\d+)(p(\d+)k)?", str(name))
    if match:
        if match.group(6) not in (None, "16"):
            raise ValueError(f"M2D weights for {match.group(6)} kHz ({name}) are not supported; "
                             "use 16 kHz weights.")
        return int(match.group(2))
    return {62: 1001, 38: 608}.get(int(n_time), int(n_time) * _PATCH)


class M2DModel(nn.Module):
    """M2D ViT encoder: 16 kHz waveforms -> 3,840-d frames (6.25 / s) and masks.

    Parameters
    ----------
    n_time : int, default=62
        Time patches of the position embedding (62 for ``80x1001``, 38 for ``80x608``).
    input_frames : int, default=1001
        Mel frames per encoded unit.
    depth : int, default=12

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._m2d import M2DModel
    >>> model = M2DModel(depth=1).eval()
    >>> frames, mask = model(torch.zeros(2, 32000), torch.tensor([32000, 8000]))
    >>> frames.shape, mask.sum(1).tolist()
    (torch.Size([2, 13, 3840]), [13, 4])
    """

    sample_rate = 16000

    def __init__(self, n_time=62, input_frames=1001, depth=12, dim=768, heads=12):
        super().__init__()
        self.n_time = int(n_time)
        self.input_frames = int(input_frames)
        self.dim = dim
        self.mel = M2DMel()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=_PATCH, stride=_PATCH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + _N_FREQ * self.n_time, dim) * 0.02)
        self.blocks = nn.ModuleList(ViTBlock(dim, heads, eps=1e-6) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.norm_stats = nn.Parameter(torch.tensor([-7.1, 4.2]), requires_grad=False)

    def log_mel(self, wave):
        """Normalised log-mel ``(80, T)`` of one clip, ``T = 1 + n // 160``."""
        if wave.shape[-1] <= self.mel.n_fft // 2:  # reflect padding needs > 200 samples
            wave = F.pad(wave, (0, self.mel.n_fft // 2 + 1 - wave.shape[-1]))
        spec = self.mel(wave[None])[0]
        return (spec - self.norm_stats[0]) / self.norm_stats[1]

    def units(self, spec):
        """Cut ``(80, T)`` into upstream's units; return ``[(unit (80, 16k), k patches)]``."""
        n_frames = spec.shape[-1]
        unit = self.input_frames
        pad = (_PATCH - (n_frames % unit % _PATCH)) % _PATCH
        spec = F.pad(spec, (0, pad))
        out = []
        for start in range(0, n_frames, unit):
            piece = spec[:, start:start + unit]
            k = min(piece.shape[-1] // _PATCH, self.n_time)
            out.append((piece[:, : k * _PATCH], k))
        return out

    def encode_units(self, units):
        """Encode padded units ``(N, 1, 80, 16 K)`` with ``k`` valid patches each."""
        specs = torch.stack([F.pad(u, (0, max(k for _, k in units) * _PATCH - u.shape[-1]))
                             for u, _ in units])[:, None]
        ks = torch.tensor([k for _, k in units], device=specs.device)
        x = self.patch_embed.proj(specs)  # (N, D, 5, K)
        n_freq, n_time = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose(1, 2)
        pos = self.pos_embed[:, 1:].reshape(1, n_freq, self.n_time, -1)[:, :, :n_time]
        x = x + pos.reshape(1, n_freq * n_time, -1)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        valid_t = torch.arange(n_time, device=x.device)[None, :] < ks[:, None]  # (N, K)
        key_mask = torch.cat([valid_t.new_ones(x.shape[0], 1),
                              valid_t[:, None, :].expand(-1, n_freq, -1).reshape(x.shape[0], -1)], 1)
        if bool(key_mask.all()):
            key_mask = None
        for block in self.blocks:
            x = block(x, key_mask)
        x = self.norm(x)[:, 1:]
        x = x.reshape(x.shape[0], n_freq, n_time, -1).permute(0, 2, 1, 3)
        return x.reshape(x.shape[0], n_time, -1), ks

    def forward(self, waves, lengths=None):
        batch, n_samples = waves.shape
        if lengths is None:
            lengths = torch.full((batch,), n_samples, dtype=torch.long)
        units, owner = [], []
        for i in range(batch):
            for u in self.units(self.log_mel(waves[i, : int(lengths[i])])):
                units.append(u)
                owner.append(i)
        feats, ks = self.encode_units(units)
        per_clip = [[] for _ in range(batch)]
        for j, i in enumerate(owner):
            per_clip[i].append(feats[j, : int(ks[j])])
        per_clip = [torch.cat(p) for p in per_clip]
        n_max = max(p.shape[0] for p in per_clip)
        frames = feats.new_zeros(batch, n_max, feats.shape[-1])
        mask = torch.zeros(batch, n_max, dtype=torch.bool, device=feats.device)
        for i, p in enumerate(per_clip):
            frames[i, : p.shape[0]] = p
            mask[i, : p.shape[0]] = True
        return frames, mask

    def n_frames(self, n_samples):
        """Frames for a clip of ``n_samples`` samples."""
        n_mel = 1 + max(n_samples, self.mel.n_fft // 2 + 1) // self.mel.hop_length
        full, rest = divmod(n_mel, self.input_frames)
        per_full = min(self.input_frames // _PATCH, self.n_time)
        return full * per_full + (min(math.ceil(rest / _PATCH), self.n_time) if rest else 0)


def prepare_m2d_state_dict(obj):
    """Encoder weights from a released M2D checkpoint object (see module docstring)."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise TypeError(f"An M2D checkpoint must hold a dict of tensors, got {type(obj).__name__}.")
    if any(k.startswith("backbone.") for k in obj):
        obj = {k[len("backbone."):]: v for k, v in obj.items() if k.startswith("backbone.")}
    obj = {k.replace("module.ar.runtime.backbone.", ""): v for k, v in obj.items()}
    sd = {k: v for k, v in obj.items() if k.startswith(_ENCODER_NAMES)}
    if "norm_stats" not in sd:
        sd["norm_stats"] = torch.tensor([-7.1, 4.2])
    return sd


def model_from_state_dict(sd, name="", depth=None):
    """Build an :class:`M2DModel` sized for ``sd`` (grid from ``pos_embed``, heads = dim / 64)."""
    if "pos_embed" not in sd:
        raise KeyError("M2D checkpoint has no 'pos_embed': not an M2D encoder state dict.")
    n_tokens = sd["pos_embed"].shape[1] - 1
    if n_tokens % _N_FREQ:
        raise ValueError(f"M2D pos_embed has {n_tokens} patch positions, not a multiple of 5 (80 mels).")
    n_time = n_tokens // _N_FREQ
    if depth is None:
        depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    dim = int(sd["pos_embed"].shape[-1])
    return M2DModel(n_time=n_time, input_frames=m2d_input_frames(name, n_time), depth=depth,
                    dim=dim, heads=max(1, dim // 64))


# -- parity hooks (benchmarks/check_backbone_parity.py) ------------------------------


def _parity_checkpoint(path, seed=0):
    torch.manual_seed(seed)
    model = M2DModel()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.add_(0.1 * torch.randn_like(p))
    sd = model.state_dict()
    sd["norm_stats"] = torch.tensor([-7.5, 4.0])
    for i in (0, 2):  # M2D-CLAP's audio projector (an MLP), ignored by the encoder
        sd[f"audio_proj.{i}.weight"] = torch.randn(768, 768) * 0.02
        sd[f"audio_proj.{i}.bias"] = torch.zeros(768)
    path = Path(path)
    folder = path.parent / "m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly"
    folder.mkdir(exist_ok=True)
    torch.save({"model": sd}, folder / "weights.pth")
    torch.save({"model": sd}, path)


def _parity_ours(checkpoint_path, waves):
    sd = prepare_m2d_state_dict(torch.load(checkpoint_path, weights_only=True))
    model = model_from_state_dict(sd, "m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly")
    model.load_state_dict(sd)
    model.eval()
    with torch.inference_mode():
        return [model(torch.as_tensor(w)[None])[0][0].numpy() for w in waves]


def _parity_reference(upstream, checkpoint_path, waves):
    """Frames from nttcslab/m2d ``examples/portable_m2d.py`` (needs timm, einops, nnAudio)."""
    import sys

    sys.path.insert(0, str(Path(upstream) / "examples"))
    try:
        from portable_m2d import PortableM2D  # noqa: PLC0415 (upstream module)
    finally:
        sys.path.remove(str(Path(upstream) / "examples"))
    weights = Path(checkpoint_path).parent / "m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly" / "weights.pth"
    model = PortableM2D(str(weights)).eval()
    with torch.inference_mode():
        return [model.encode(torch.as_tensor(w)[None])[0].numpy() for w in waves]
