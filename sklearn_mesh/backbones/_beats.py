"""BEATs (Chen et al., 2023) in plain torch, loading Microsoft's released checkpoints.

Architecture (microsoft/unilm ``beats/``): Kaldi fbank (128 mels, 25 ms / 10 ms at 16 kHz)
of the waveform scaled by ``2**15``, normalised ``(x - 15.41663) / (2 * 6.55582)``;
16 x 16 patch embedding (conv, no bias) to 512-d, LayerNorm, linear to 768-d; a
post-LN ("deep norm") transformer with a weight-normalised convolutional positional
embedding and gated relative position bias; optionally a linear predictor (fine-tuned
checkpoints, 527 AudioSet classes), which the embedder does not use.

Checkpoint layout: ``{"cfg": {...}, "model": state_dict}`` with the upstream names
(``patch_embedding.weight``, ``encoder.pos_conv.0.weight_g``, ``encoder.layers.0.self_attn.
grep_linear.weight`` ...). The relative attention bias table is one module shared by all
layers (as upstream), so a state dict lists it once per layer.

Tokens come time-major (8 frequency patches per time step); :meth:`BEATsModel.forward`
averages them over frequency, giving one 768-d frame per 16 fbank frames (160 ms,
6.25 frames / s).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._features import KaldiFbank

__all__ = ["BEATS_DEFAULT_CONFIG", "BEATsModel", "beats_frame_counts"]

FBANK_MEAN = 15.41663
FBANK_STD = 6.55582

#: Upstream ``BEATsConfig`` defaults; a checkpoint's ``cfg`` overrides them.
BEATS_DEFAULT_CONFIG = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "deep_norm": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "finetuned_model": False,
    "predictor_class": 527,
}

#: The settings of the released iter3 / iter3+ checkpoints (AS2M and fine-tuned).
BEATS_ITER3_CONFIG = {
    **BEATS_DEFAULT_CONFIG,
    "deep_norm": True,
    "relative_position_embedding": True,
    "max_distance": 800,
    "gru_rel_pos": True,
}

_PATCH_FRAMES = 16
_FRAME_LEN = 400
_FRAME_HOP = 160


def beats_frame_counts(lengths):
    """Valid BEATs frames for clips of ``lengths`` samples (16 kHz).

    A frame is a 16 x 16 patch column: 16 fbank frames (10 ms hop, 25 ms window) lying
    fully inside the clip. Clips shorter than one patch (0.175 s) keep one frame, whose
    patch is completed with the fbank of digital silence.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._beats import beats_frame_counts
    >>> beats_frame_counts(torch.tensor([160, 16000, 160000])).tolist()
    [1, 6, 62]
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    n_fbank = torch.where(lengths >= _FRAME_LEN, 1 + (lengths - _FRAME_LEN) // _FRAME_HOP, 0)
    return torch.clamp_min(n_fbank // _PATCH_FRAMES, 1)


class _WeightNormConv1d(nn.Module):
    """Grouped Conv1d with a weight norm over dim 2 (old ``weight_g`` / ``weight_v`` names)."""

    def __init__(self, channels, kernel_size, groups):
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel_size) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        norm = self.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        weight = self.weight_v * (self.weight_g / norm)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _GatedRelPosAttention(nn.Module):
    def __init__(self, dim, heads, relative_bias, num_buckets, max_distance, gated):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if relative_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)
        self.gated = gated
        if gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def buckets(self, length, device):
        pos = torch.arange(length, device=device)
        rel = pos[None, :] - pos[:, None]  # key - query
        half = self.num_buckets // 2
        bucket = (rel > 0).long() * half
        dist = rel.abs()
        exact = half // 2
        far = exact + (
            torch.log(dist.clamp_min(1).float() / exact) / math.log(self.max_distance / exact)
            * (half - exact)
        ).long()
        far = far.clamp_max(half - 1)
        return bucket + torch.where(dist < exact, dist, far)

    def position_bias(self, length, device):
        table = self.relative_attention_bias(self.buckets(length, device))  # (L, L, H)
        return table.permute(2, 0, 1)  # (H, L, L)

    def forward(self, x, key_mask, pos_bias):
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        bias = x.new_zeros(b, self.heads, n, n)
        if pos_bias is not None:
            if self.gated:
                gates = torch.sigmoid(self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., :1], gates[..., 1:]
                bias = bias + (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * pos_bias[None]
            else:
                bias = bias + pos_bias[None]
        if key_mask is not None:
            bias = bias.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class _EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.self_attn = _GatedRelPosAttention(
            dim, cfg["encoder_attention_heads"], cfg["relative_position_embedding"],
            cfg["num_buckets"], cfg["max_distance"], cfg["gru_rel_pos"])
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.glu = cfg["activation_fn"] == "glu"
        if self.glu:
            raise NotImplementedError("BEATs with activation_fn='glu' is not supported.")
        if cfg["activation_fn"] not in ("gelu", "relu"):
            raise ValueError(f"BEATs activation_fn={cfg['activation_fn']!r} is not supported.")
        self.activation_fn = cfg["activation_fn"]
        self.fc1 = nn.Linear(dim, cfg["encoder_ffn_embed_dim"])
        self.fc2 = nn.Linear(cfg["encoder_ffn_embed_dim"], dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_norm = cfg["layer_norm_first"]
        self.alpha = math.pow(2 * cfg["encoder_layers"], 0.25) if cfg["deep_norm"] else 1.0

    def _act(self, x):
        return F.gelu(x.float()).type_as(x) if self.activation_fn == "gelu" else F.relu(x)

    def forward(self, x, key_mask, pos_bias):
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_mask, pos_bias)
            return x + self.fc2(self._act(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, key_mask, pos_bias))
        return self.final_layer_norm(x * self.alpha + self.fc2(self._act(self.fc1(x))))


class _Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.conv_pos = cfg["conv_pos"]
        self.pos_conv = nn.Sequential(_WeightNormConv1d(dim, cfg["conv_pos"], cfg["conv_pos_groups"]))
        self.layers = nn.ModuleList(_EncoderLayer(cfg) for _ in range(cfg["encoder_layers"]))
        if cfg["relative_position_embedding"]:
            # one table shared by all layers, listed under every layer's name (as upstream)
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias
        self.layer_norm = nn.LayerNorm(dim)
        self.pre_norm = cfg["layer_norm_first"]
        self.relative = cfg["relative_position_embedding"]

    def forward(self, x, key_mask):
        if key_mask is not None:
            x = x * key_mask[..., None]
        pos = self.pos_conv(x.transpose(1, 2))
        if self.conv_pos % 2 == 0:
            pos = pos[:, :, :-1]
        x = x + F.gelu(pos).transpose(1, 2)
        if not self.pre_norm:
            x = self.layer_norm(x)
        pos_bias = None
        if self.relative:
            pos_bias = self.layers[0].self_attn.position_bias(x.shape[1], x.device)
        for layer in self.layers:
            x = layer(x, key_mask, pos_bias)
        if self.pre_norm:
            x = self.layer_norm(x)
        return x


class BEATsModel(nn.Module):
    """BEATs encoder: 16 kHz waveform -> frame embeddings (time-major, frequency-averaged).

    Parameters
    ----------
    cfg : dict, default=None
        The checkpoint's ``cfg`` (upstream ``BEATsConfig`` names); missing entries take
        :data:`BEATS_DEFAULT_CONFIG`; unknown ones (dropouts, ...) are ignored.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._beats import BEATsModel, BEATS_ITER3_CONFIG
    >>> model = BEATsModel({**BEATS_ITER3_CONFIG, "encoder_layers": 1}).eval()
    >>> frames, mask = model(torch.zeros(2, 16000), torch.tensor([16000, 8000]))
    >>> frames.shape, mask.sum(1).tolist()
    (torch.Size([2, 6, 768]), [6, 3])
    """

    sample_rate = 16000

    def __init__(self, cfg=None):
        super().__init__()
        cfg = {**BEATS_DEFAULT_CONFIG, **{k: v for k, v in dict(cfg or {}).items()
                                          if k in BEATS_DEFAULT_CONFIG}}
        if cfg["deep_norm"] and cfg["layer_norm_first"]:
            raise ValueError("BEATs cfg: deep_norm and layer_norm_first cannot both be true.")
        self.cfg = cfg
        patch = cfg["input_patch_size"]
        self.patch = patch
        self.embed_dim = cfg["encoder_embed_dim"]
        self.fbank = KaldiFbank(16000, 128, 25.0, 10.0)
        self.patch_embedding = nn.Conv2d(1, cfg["embed_dim"], kernel_size=patch, stride=patch,
                                         bias=cfg["conv_bias"])
        self.layer_norm = nn.LayerNorm(cfg["embed_dim"])
        if cfg["embed_dim"] != cfg["encoder_embed_dim"]:
            self.post_extract_proj = nn.Linear(cfg["embed_dim"], cfg["encoder_embed_dim"])
        else:
            self.post_extract_proj = None
        self.encoder = _Encoder(cfg)
        if cfg["finetuned_model"]:
            self.predictor = nn.Linear(cfg["encoder_embed_dim"], cfg["predictor_class"])
        else:
            self.predictor = None

    def preprocess(self, waves):
        """Normalised fbank ``(B, n_fbank, 128)`` of 16 kHz waveforms in [-1, 1]."""
        fbank = self.fbank(waves * 2 ** 15)
        return (fbank - FBANK_MEAN) / (2 * FBANK_STD)

    def forward_tokens(self, fbank, token_mask=None):
        """Transformer output for a normalised fbank ``(B, T, 128)``: ``(B, T' * F', D)``."""
        x = self.patch_embedding(fbank[:, None])  # (B, C, T', F')
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x, token_mask)

    def forward(self, waves, lengths=None):
        """Frame embeddings ``(B, F, D)`` and validity mask ``(B, F)`` for ``waves (B, T)``.

        The batch is padded (with zeros) so that every clip's frames see the same
        content whatever the batch; padded patches are excluded from attention.
        """
        batch, n_samples = waves.shape
        if lengths is None:
            lengths = torch.full((batch,), n_samples, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        valid = beats_frame_counts(lengths)
        n_frames = int(valid.max())
        # enough samples for n_frames full patches
        needed = _FRAME_LEN + (n_frames * _PATCH_FRAMES - 1) * _FRAME_HOP
        if n_samples < needed:
            waves = F.pad(waves, (0, needed - n_samples))
        fbank = self.preprocess(waves)[:, : n_frames * _PATCH_FRAMES]
        n_freq = fbank.shape[2] // self.patch
        frame_mask = torch.arange(n_frames)[None, :] < valid[:, None]
        token_mask = frame_mask[:, :, None].expand(-1, -1, n_freq).reshape(batch, -1)
        token_mask = token_mask.to(waves.device)
        x = self.forward_tokens(fbank, None if bool(token_mask.all()) else token_mask)
        frames = x.view(batch, n_frames, n_freq, -1).mean(dim=2)
        return frames, frame_mask.to(waves.device)


# -- parity hooks (benchmarks/check_backbone_parity.py) ------------------------------


def _parity_checkpoint(path, finetuned=False, seed=0):
    """Save a random BEATs checkpoint in the released layout ``{"cfg", "model"}``."""
    torch.manual_seed(seed)
    cfg = {**BEATS_ITER3_CONFIG, "finetuned_model": bool(finetuned)}
    model = BEATsModel(cfg)
    with torch.no_grad():  # make the positional conv and norms non-trivial
        for name, p in model.named_parameters():
            if name.endswith("weight_g") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)


def _parity_ours(checkpoint_path, waves):
    ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = BEATsModel(ckpt["cfg"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    with torch.inference_mode():
        return [model(torch.as_tensor(w)[None])[0][0].numpy() for w in waves]


def _parity_reference(upstream, checkpoint_path, waves):
    """Frames from microsoft/unilm ``beats/BEATs.py`` (needs torchaudio.compliance.kaldi)."""
    import sys

    sys.path.insert(0, str(upstream))
    try:
        from BEATs import BEATs, BEATsConfig  # noqa: PLC0415 (upstream module)
    finally:
        sys.path.remove(str(upstream))
    ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = BEATs(BEATsConfig(ckpt["cfg"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    out = []
    with torch.inference_mode():
        for w in waves:
            x = torch.as_tensor(w)[None]
            fbank = model.preprocess(x)
            feats = fbank.unsqueeze(1)
            feats = model.patch_embedding(feats)
            n_time, n_freq = feats.shape[2], feats.shape[3]
            if model.predictor is not None:  # the fine-tuned forward returns class scores
                model.predictor = None
            tokens, _ = model.extract_features(x)
            out.append(tokens.view(n_time, n_freq, -1).mean(1).numpy())
    return out


def _parity_checkpoint_beats_ft(path):
    _parity_checkpoint(path, finetuned=True)
