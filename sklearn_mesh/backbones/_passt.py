"""PaSST and frame-level PaSST (fPaSST) in plain torch, loading CP-JKU's checkpoints.

**PaSST-S** (Koutini et al., 2022; ``hear21passt`` / kkoutini/PaSST,
``passt_s_kd_p16_128_ap486`` = "PaSST KD AudioSet"): 32 kHz; log-mel with 128 Kaldi mel
bands (n_fft 1024, window 800, hop 320, 0-15 kHz), ``(x + 4.5) / 5``; 16 x 16 patches
with stride 10 x 10 (12 x 99 patches for a 10 s clip), separate frequency and time
position embeddings (99 time positions: **at most 10 s per input**), a class and a
distillation token, 12 pre-LN ViT blocks. The clip embedding is the mean of the two
tokens after the final norm (768-d, what hear21passt's ``embed_only`` mode returns).

**fPaSST** (Schmid et al., ICASSP 2025, fschmid56/PretrainedSED, ``fpasst_weak.pt`` /
``fpasst_strong_1.pt``): 16 kHz; log-mel with 128 Kaldi mel bands (n_fft 512, window 400,
hop 160, 0-7 kHz); three 3 x 3 convolutions (stride 2, 1, 2) in front of a full-height
(128 x 2) patch embedding, so every token is one 40 ms time frame (250 frames per 10 s,
**at most 10 s per input**); the same token scheme and blocks as PaSST. The output is
the sequence of frame tokens (25 frames / s, 768-d).

Both are run as the authors ran them: an input shorter than 10 s is zero-padded to
10 s (the models have no attention mask and were trained on 10 s clips), and the mask
keeps frames that start after the end of the real audio out of every statistic.

Checkpoint keys (same as upstream): ``cls_token``, ``dist_token``, ``new_pos_embed``,
``freq_new_pos_embed``, ``time_new_pos_embed``, ``patch_embed.proj.*``, ``blocks.N.{norm1,
attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``; PaSST also ``head.0/1.*`` and
``head_dist.*`` (classifier, unused here), fPaSST ``conv_in_{1,2,3}.*``. PretrainedSED
stores the fPaSST weights under ``model.`` (or ``model.fpasst.``) next to its
``weak_head`` / ``strong_head`` classifiers; those prefixes and heads are handled by
:func:`prepare_passt_state_dict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._features import PasstMel

__all__ = ["FPaSSTModel", "PaSSTModel", "ViTBlock", "passt_model_from_state_dict",
           "prepare_passt_state_dict"]


class _Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_mask=None):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-LN transformer block with timm's parameter names (PaSST, fPaSST, M2D).

    ``key_mask`` (``(B, N)`` bool, True = attend) removes padded tokens from attention.
    """

    def __init__(self, dim=768, heads=12, mlp_ratio=4.0, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, key_mask=None):
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class _PaSSTTokens(nn.Module):
    """Common part: position embeddings, C/D tokens, blocks, final norm."""

    def _init_tokens(self, dim, depth, heads, n_freq, n_time):
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.dist_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.new_pos_embed = nn.Parameter(torch.randn(1, 2, dim) * 0.02)
        self.freq_new_pos_embed = nn.Parameter(torch.randn(1, dim, n_freq, 1) * 0.02)
        self.time_new_pos_embed = nn.Parameter(torch.randn(1, dim, 1, n_time) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def _transform(self, x):
        """``x`` patch grid ``(B, D, F', T')`` -> normed tokens ``(B, 2 + F'T', D)``."""
        n_time = x.shape[-1]
        if n_time > self.time_new_pos_embed.shape[-1]:
            raise ValueError(
                f"{type(self).__name__}: {n_time} time patches exceed the "
                f"{self.time_new_pos_embed.shape[-1]} time positions of the model (10 s input).")
        x = x + self.time_new_pos_embed[..., :n_time] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        b = x.shape[0]
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = torch.cat([cls, dist, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class PaSSTModel(_PaSSTTokens):
    """PaSST-S: 32 kHz waveform windows (<= 10 s) -> clip embeddings or time frames.

    Parameters
    ----------
    depth : int, default=12
        Transformer blocks (12 for PaSST-S; fewer only for tests).
    n_classes : int, default=527
        Size of the (unused) classifier heads kept for the checkpoint layout.
    input_frames : int, default=998
        Mel frames of the training input (10 s); fixes the 99 time positions and the
        input window (``(input_frames + 2) * 320`` samples).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._passt import PaSSTModel
    >>> model = PaSSTModel(depth=1).eval()
    >>> model.forward_clip(torch.zeros(2, 320000)).shape
    torch.Size([2, 768])
    """

    sample_rate = 32000

    def __init__(self, depth=12, n_classes=527, input_frames=998, dim=768, heads=12):
        super().__init__()
        #: samples of one input window (10 s for the released model)
        self.window_samples = (int(input_frames) + 2) * 320
        self.mel = PasstMel(32000, 1024, 800, 320, 128, 0.0, 15000.0, periodic_window=False,
                            log_offset=1e-5)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=16, stride=10)
        self._init_tokens(dim, depth, heads, 128 // 10, input_frames // 10)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))
        self.head_dist = nn.Linear(dim, n_classes)

    def tokens(self, waves):
        """Normed tokens ``(B, 2 + 12 T', D)`` and the patch grid size ``(12, T')``."""
        spec = self.mel(waves)[:, None]
        x = self.patch_embed.proj(spec)
        grid = x.shape[2:]
        return self._transform(x), grid

    def forward_clip(self, waves):
        """Mean of the class and distillation tokens, ``(B, D)``."""
        x, _ = self.tokens(waves)
        return (x[:, 0] + x[:, 1]) / 2

    def forward_frames(self, waves):
        """Patch tokens averaged over frequency, ``(B, T', D)`` (10 frames / s)."""
        x, (n_freq, n_time) = self.tokens(waves)
        return x[:, 2:].reshape(x.shape[0], n_freq, n_time, -1).mean(dim=1)

    forward = forward_clip


class FPaSSTModel(_PaSSTTokens):
    """Frame-level PaSST: 16 kHz windows (<= 10 s) -> 40 ms frames ``(B, T', 768)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._passt import FPaSSTModel
    >>> FPaSSTModel(depth=1).eval()(torch.zeros(1, 160000)).shape
    torch.Size([1, 250, 768])
    """

    sample_rate = 16000

    def __init__(self, depth=12, pos_embed_length=250, dim=768, heads=12):
        super().__init__()
        #: samples of one input window (10 s for the released model)
        self.window_samples = int(pos_embed_length) * 640
        self.mel = PasstMel(16000, 512, 400, 160, 128, 0.0, 7000.0, periodic_window=True,
                            log_offset=None)
        self.conv_in_1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
        self.conv_in_2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.conv_in_3 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(16, dim, kernel_size=(128, 2), stride=1, padding=(0, 1))
        self._init_tokens(dim, depth, heads, 1, pos_embed_length)

    def forward_spec(self, spec):
        """Frames for a normalised mel spectrogram ``(B, 1, 128, T)``."""
        n_mels = spec.shape[2]
        x = F.gelu(self.conv_in_1(spec))
        x = F.gelu(self.conv_in_2(x))
        x = F.gelu(self.conv_in_3(x))
        x = x.reshape(x.shape[0], x.shape[1] * x.shape[2] // n_mels, n_mels, x.shape[3])
        x = self.patch_embed.proj(x)[..., 1:]
        x = x[..., : self.time_new_pos_embed.shape[-1]]
        return self._transform(x)[:, 2:]

    def forward(self, waves):
        return self.forward_spec(self.mel(waves)[:, None])


_HEAD_PREFIXES = ("head.", "head_dist.", "weak_head.", "strong_head.", "seq_model.")


def prepare_passt_state_dict(state_dict, model):
    """Strip wrapper prefixes and drop classifier heads the embedder does not use.

    Accepts the plain PaSST state dict, PretrainedSED's ``model.`` / ``model.fpasst.``
    prefixes, hear21passt wrapper's ``net.`` prefix and ``{"state_dict": ...}`` /
    ``{"model": ...}`` wrappers. ``model`` is the target model or its class. Returns ``(state_dict, ignored_prefixes)`` for
    :func:`~sklearn_mesh.embedders._checkpoint.load_state_dict_checked`.
    """
    if isinstance(state_dict, dict):
        for key in ("state_dict", "model"):
            inner = state_dict.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state_dict = inner
                break
    out = {}
    for k, v in state_dict.items():
        for prefix in ("model.fpasst.", "model.net.", "model.", "net."):
            if k.startswith(prefix):
                k = k[len(prefix):]
                break
        if k.startswith(("mel.", "device_proxy")):
            continue  # spectrogram buffers / wrapper bookkeeping, recomputed here
        out[k] = v
    has_heads = model is PaSSTModel or isinstance(model, PaSSTModel)
    ignore = _HEAD_PREFIXES[2:] if has_heads else _HEAD_PREFIXES
    return out, ignore


def passt_model_from_state_dict(state_dict, model_cls):
    """Build ``model_cls`` (PaSST or fPaSST) sized like ``state_dict``.

    Depth = number of blocks, width from ``cls_token``, time positions from
    ``time_new_pos_embed``, heads = width / 64 (12 for the released ViT-Base models),
    PaSST's classifier size from ``head.1.weight``.
    """
    for key in ("cls_token", "time_new_pos_embed"):
        if key not in state_dict:
            raise KeyError(f"the checkpoint has no {key!r}; it is not a {model_cls.__name__[:-5]} state dict.")
    dim = int(state_dict["cls_token"].shape[-1])
    depth = len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")})
    n_time = int(state_dict["time_new_pos_embed"].shape[-1])
    heads = max(1, dim // 64)
    if model_cls is PaSSTModel:
        head = state_dict.get("head.1.weight")
        n_classes = 527 if head is None else int(head.shape[0])
        return PaSSTModel(depth=depth, n_classes=n_classes, input_frames=n_time * 10 + 8, dim=dim,
                          heads=heads)
    return FPaSSTModel(depth=depth, pos_embed_length=n_time, dim=dim, heads=heads)


# -- parity hooks (benchmarks/check_backbone_parity.py) ------------------------------


def _random_ckpt(model, path, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.add_(0.1 * torch.randn_like(p))
    torch.save(model.state_dict(), path)


def _parity_checkpoint(path, seed=0):
    torch.manual_seed(seed)
    _random_ckpt(PaSSTModel(), path, seed)


def _parity_checkpoint_fpasst(path, seed=0):
    torch.manual_seed(seed)
    model = FPaSSTModel()
    _random_ckpt(model, path, seed)
    sd = torch.load(path, weights_only=True)  # PretrainedSED layout: "model." + weak head
    sd = {"model." + k: v for k, v in sd.items()}
    sd["weak_head.weight"] = torch.randn(527, 768) * 0.02
    sd["weak_head.bias"] = torch.zeros(527)
    torch.save(sd, path)


def _pad_window(w, n):
    w = torch.as_tensor(w)
    return F.pad(w, (0, n - w.shape[-1])) if w.shape[-1] < n else w


def _ours(model_cls, checkpoint_path, waves, method):
    model = model_cls()
    sd, ignore = prepare_passt_state_dict(torch.load(checkpoint_path, weights_only=True), model)
    from ..embedders._checkpoint import load_state_dict_checked

    load_state_dict_checked(model, sd, name="parity checkpoint", ignore=ignore)
    model.eval()
    with torch.inference_mode():
        return [getattr(model, method)(_pad_window(w, model.window_samples)[None])[0].numpy()
                .reshape(-1, 768) for w in waves]


def _parity_ours(checkpoint_path, waves):
    return _ours(PaSSTModel, checkpoint_path, waves, "forward_clip")


def _parity_ours_fpasst(checkpoint_path, waves):
    return _ours(FPaSSTModel, checkpoint_path, waves, "forward")


def _stub_timm_hub():
    """The references import only timm's download helper; timm itself does not import here."""
    import sys
    import types

    try:
        import timm  # noqa: F401

        return
    except Exception:  # noqa: BLE001
        pass
    for name in ("timm", "timm.models", "timm.models.hub", "timm.models._hub"):
        sys.modules[name] = types.ModuleType(name)
    for name in ("timm.models.hub", "timm.models._hub"):
        sys.modules[name].download_cached_file = None


def _parity_reference(upstream, checkpoint_path, waves):
    """Embeddings from hear21passt (``embed_only``), each clip padded to 10 s."""
    import sys

    _stub_timm_hub()

    sys.path.insert(0, str(upstream))
    try:
        from hear21passt.models.passt import get_model  # noqa: PLC0415 (upstream module)
        from hear21passt.models.preprocess import AugmentMelSTFT  # noqa: PLC0415
        from hear21passt.wrapper import PasstBasicWrapper  # noqa: PLC0415
    finally:
        sys.path.remove(str(upstream))
    # get_basic_model()'s settings; pretrained=False (no download), no SpecAugment (eval)
    mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=0,
                         timem=0, htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10,
                         fmax_aug_range=2000)
    net = get_model(arch="passt_s_kd_p16_128_ap486", pretrained=False)
    net.load_state_dict(torch.load(checkpoint_path, weights_only=True))
    model = PasstBasicWrapper(mel=mel, net=net, mode="embed_only")
    model.eval()
    with torch.inference_mode():
        return [model(_pad_window(w, 320000)[None])[0].numpy().reshape(-1, 768) for w in waves]


def _parity_reference_fpasst(upstream, checkpoint_path, waves):
    """Frames from PretrainedSED's FPaSSTWrapper, each clip padded to 10 s."""
    import sys

    _stub_timm_hub()
    import functools

    sys.path.insert(0, str(upstream))
    try:
        from models.frame_passt import fpasst, fpasst_wrapper  # noqa: PLC0415 (upstream)
    finally:
        sys.path.remove(str(upstream))
    # the wrapper builds the model with pretrained=True (an ImageNet download): disable it
    fpasst_wrapper.get_model = functools.partial(fpasst.get_model, pretrained=False)
    FPaSSTWrapper = fpasst_wrapper.FPaSSTWrapper
    sd = torch.load(checkpoint_path, weights_only=True)
    wrapper = FPaSSTWrapper()
    wrapper.fpasst.load_state_dict({k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")})
    wrapper.eval()
    with torch.inference_mode():
        return [wrapper(wrapper.mel_forward(_pad_window(w, 160000)[None]))[0].numpy() for w in waves]
