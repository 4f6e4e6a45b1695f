"""ATST-Frame (Li et al., 2024) as a plain PyTorch module that loads the released weights.

The MESH authors used the *weak* ATST-Frame checkpoint ``ATST-F_weak.pt`` distributed with
Schmid et al.'s PretrainedSED (ATST-Frame fine-tuned on AudioSet weak labels); the same
encoder also ships as ``ATST-F_ssl.pt`` / ``ATST-F_strong_1.pt`` there, and as the
self-supervised Lightning checkpoint ``atstframe_base.ckpt`` of Audio-WestlakeU/audiossl.
All of them hold the same encoder: a 12-layer, 768-wide ViT on 64-band log-mel patches of
64 x 4 (all bands x 4 frames), i.e. one token per 40 ms (25 Hz).

Everything here is written from the published description and the checkpoint layout; no
code of the reference implementations is used.

Preprocessing (as in PretrainedSED's ``ATSTMel``)
    16 kHz mono -> |STFT|^2 (n_fft = win = 1024, hop 160, periodic Hann, centred with
    reflect padding) -> 64 HTK mel bands 60-7800 Hz (no filter normalisation) -> dB
    (10 log10, floor 1e-10, top_db 80 below the clip's maximum) -> clamp to [-50, 80] dB ->
    min-max scaling with the fixed statistics (-79.6482, 50.6842) to [-1, 1].

Input length
    At most 1001 mel frames = 10 s (the 250 learned position embeddings); longer clips
    are split by the embedder. Clips shorter than 513 samples are zero-padded to 513 (the
    reflect padding of the STFT needs it). A clip of ``n`` samples yields
    ``((max(n, 513) // 160) + 1) // 4`` frames.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._features import htk_mel_banks, padded_batch

__all__ = [
    "ATST_SAMPLE_RATE",
    "ATST_FRAME_RATE",
    "ATST_MAX_SECONDS",
    "ATSTMelFrontEnd",
    "ATSTFrameEncoder",
    "ATSTFrame",
    "atst_frame_count",
    "atst_state_dict_from_checkpoint",
]

ATST_SAMPLE_RATE = 16_000
ATST_HOP = 160
ATST_N_FFT = 1024
ATST_N_MELS = 64
ATST_PATCH_FRAMES = 4
ATST_MAX_TOKENS = 250
ATST_FRAME_RATE = ATST_SAMPLE_RATE / (ATST_HOP * ATST_PATCH_FRAMES)  # 25.0 Hz
ATST_MAX_SECONDS = 10.0
ATST_MIN_SAMPLES = ATST_N_FFT // 2 + 1  # reflect padding needs > n_fft // 2 samples
# fixed dB statistics of PretrainedSED's MinMax scaler
_DB_MIN, _DB_MAX = -79.6482, 50.6842


def atst_frame_count(n_samples):
    """Number of ATST-Frame output frames (25 Hz) for a clip of ``n_samples`` at 16 kHz.

    Parameters
    ----------
    n_samples : int or array-like of int
        Clip lengths in samples (at most 10 s = 160,000).

    Returns
    -------
    counts : same type as input

    Examples
    --------
    >>> atst_frame_count(160_000), atst_frame_count(16_000), atst_frame_count(160)
    (250, 25, 1)
    """
    if isinstance(n_samples, torch.Tensor):
        return ((n_samples.clamp(min=ATST_MIN_SAMPLES) // ATST_HOP) + 1) // ATST_PATCH_FRAMES
    n = max(int(n_samples), ATST_MIN_SAMPLES)
    return ((n // ATST_HOP) + 1) // ATST_PATCH_FRAMES


class ATSTMelFrontEnd(nn.Module):
    """Waveform (16 kHz) -> scaled log-mel spectrogram, one clip at a time.

    ``forward(wave)`` takes a 1-D tensor and returns ``(64, n_frames)``; the top-dB floor
    is computed per clip (never across a batch).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer(
            "window", torch.hann_window(ATST_N_FFT, periodic=True), persistent=False
        )
        fb = htk_mel_banks(ATST_N_MELS, ATST_N_FFT, ATST_SAMPLE_RATE, 60.0, 7800.0)
        self.register_buffer("fbank", fb.T.contiguous(), persistent=False)  # (n_freqs, n_mels)

    def forward(self, wave):
        if wave.shape[-1] < ATST_MIN_SAMPLES:
            wave = F.pad(wave, (0, ATST_MIN_SAMPLES - wave.shape[-1]))
        spec = torch.stft(
            wave,
            ATST_N_FFT,
            hop_length=ATST_HOP,
            win_length=ATST_N_FFT,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(2.0)  # (513, frames)
        mel = (power.transpose(-1, -2) @ self.fbank).transpose(-1, -2)  # (64, frames)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        db = torch.maximum(db, db.amax() - 80.0)
        db = db.clamp(min=-50.0, max=80.0)
        return (db - _DB_MIN) / (_DB_MAX - _DB_MIN) * 2.0 - 1.0


class _Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_mask=None):
        b, n, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4).unbind(0)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, key_mask=None):
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, n_mels, patch_frames, dim):
        super().__init__()
        self.n_mels = n_mels
        self.patch_frames = patch_frames
        self.patch_embed = nn.Linear(n_mels * patch_frames, dim)

    def forward(self, mel):
        # mel: (B, n_mels, T) with T a multiple of patch_frames; a patch is all bands x
        # patch_frames frames, flattened band-major
        b, f, t = mel.shape
        w = t // self.patch_frames
        patches = mel.reshape(b, f, w, self.patch_frames).permute(0, 2, 1, 3)
        return self.patch_embed(patches.reshape(b, w, f * self.patch_frames))


class ATSTFrameEncoder(nn.Module):
    """The ATST-Frame transformer (parameter names as in the released checkpoints).

    Parameters
    ----------
    embed_dim, depth, num_heads, mlp_ratio : int, int, int, float
        Architecture; the released model is 768 / 12 / 12 / 4.
    n_mels, patch_frames, max_tokens : int
        64 bands, 4 frames per token, 250 position embeddings (10 s).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import ATSTFrameEncoder
    >>> enc = ATSTFrameEncoder(embed_dim=16, depth=1, num_heads=2)  # random weights
    >>> enc(torch.zeros(1, 64, 100)).shape                           # 100 mel frames
    torch.Size([1, 25, 16])
    """

    def __init__(
        self,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        n_mels=ATST_N_MELS,
        patch_frames=ATST_PATCH_FRAMES,
        max_tokens=ATST_MAX_TOKENS,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.max_tokens = max_tokens
        self.patch_embed = _PatchEmbed(n_mels, patch_frames, embed_dim)
        # used only for masked-prediction pre-training; kept so the checkpoint loads strictly
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # index 0 is an unused "cls" slot in the released layout
        self.pos_embed = nn.Parameter(torch.zeros(1, max_tokens + 1, embed_dim))
        self.blocks = nn.ModuleList(
            [_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.norm_frame = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.mask_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, mel, key_mask=None):
        """(B, n_mels, T) scaled log-mel -> (B, T // 4, embed_dim) frame embeddings.

        ``key_mask`` (B, T // 4) bool marks real tokens; padded tokens are excluded from
        attention so a clip's output does not depend on what it is batched with.
        """
        x = self.patch_embed(mel)
        n = x.shape[1]
        if n > self.max_tokens:
            raise ValueError(
                f"ATST-Frame takes at most {self.max_tokens} tokens "
                f"({self.max_tokens * 4} mel frames, 10 s); got {n}. Split longer clips."
            )
        x = x + self.pos_embed[:, 1 : n + 1]
        for blk in self.blocks:
            x = blk(x, key_mask)
        return self.norm_frame(x)


class ATSTFrame(nn.Module):
    """Front-end + encoder: zero-padded 16 kHz waves -> (frames, mask).

    Parameters
    ----------
    pad_to_max : bool, default=False
        False: every clip is encoded at its own length (padded tokens of shorter clips in a
        batch are masked out of attention, so results do not depend on the batch).
        True: every clip is zero-padded to 10 s before the front-end, as the MESH authors'
        extraction did (the model then attends to the padding); the returned mask still
        hides the padded frames from pooling.
    encoder_kwargs : dict, optional
        Passed to :class:`ATSTFrameEncoder` (small configurations for tests).

    Examples
    --------
    >>> import torch
    >>> m = ATSTFrame(encoder_kwargs=dict(embed_dim=32, depth=1, num_heads=2)).eval()
    >>> frames, mask = m(torch.zeros(2, 16_000), torch.tensor([16_000, 8_000]))
    >>> tuple(frames.shape), mask.sum(1).tolist()
    ((2, 25, 32), [25, 12])
    """

    sample_rate = ATST_SAMPLE_RATE
    frame_rate = ATST_FRAME_RATE
    max_input_seconds = ATST_MAX_SECONDS

    def __init__(self, pad_to_max=False, encoder_kwargs=None):
        super().__init__()
        self.pad_to_max = pad_to_max
        self.front_end = ATSTMelFrontEnd()
        self.encoder = ATSTFrameEncoder(**(encoder_kwargs or {}))

    @property
    def embed_dim(self):
        return self.encoder.embed_dim

    def forward(self, waves, lengths):
        waves = torch.as_tensor(waves, dtype=torch.float32)
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=waves.device)
        max_samples = int(ATST_MAX_SECONDS * ATST_SAMPLE_RATE)
        if int(lengths.max()) > max_samples:
            raise ValueError(
                f"ATST-Frame takes at most {ATST_MAX_SECONDS:g} s per input; "
                f"got {int(lengths.max())} samples. Split longer clips."
            )
        counts = atst_frame_count(lengths)
        mels = []
        for wave, n in zip(waves, lengths.tolist()):
            wave = wave[:n]
            if self.pad_to_max:
                wave = F.pad(wave, (0, max_samples - n))
            mel = self.front_end(wave)
            n_tok = mel.shape[-1] // ATST_PATCH_FRAMES
            mels.append(mel[:, : n_tok * ATST_PATCH_FRAMES])
        n_max = max(m.shape[-1] for m in mels)
        mel = torch.stack([F.pad(m, (0, n_max - m.shape[-1])) for m in mels])
        n_tok = n_max // ATST_PATCH_FRAMES
        idx = torch.arange(n_tok, device=waves.device)
        if self.pad_to_max:
            key_mask = None
        else:
            key_mask = idx[None, :] < counts[:, None]
        frames = self.encoder(mel, key_mask)
        mask = idx[None, :] < counts[:, None]
        return frames, mask


# ------------------------------------------------------------------------------------------
# checkpoint layouts
# ------------------------------------------------------------------------------------------
# encoder key prefixes seen in released files, most specific first:
#   PretrainedSED (ATST-F_weak.pt, ATST-F_strong_1.pt, ATST-F_ssl.pt): "model.atst."
#   audiossl Lightning checkpoints (atstframe_base.ckpt, under "state_dict"): the teacher
#   encoder "model.teacher.encoder." (the student copy and projection heads are ignored)
_ENCODER_PREFIXES = (
    "model.atst.",
    "atst.",
    "model.teacher.encoder.encoder.",
    "model.teacher.encoder.",
    "teacher.encoder.",
    "encoder.encoder.",  # audiossl fine-tuning modules (FrameATSTPredModule)
    "encoder.",
    "",
)
# keys that belong to the file but not to the encoder; dropped without complaint
_IGNORED_PREFIXES = (
    "model.atst_mel.",
    "weak_head.",
    "strong_head.",
    "seq_model.",  # PretrainedSED's optional RNN on top of the encoder (not an embedding)
    "model.student.",
    "model.teacher.",  # anything of the teacher that is not the encoder (projection heads)
    "student.",
    "teacher.",
    "model.model.",
)


def _unwrap(obj):
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        return obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        return obj["model"]
    return obj


def atst_state_dict_from_checkpoint(state):
    """Map a released ATST-Frame file's state dict to :class:`ATSTFrameEncoder` keys.

    Accepts the flat dict of PretrainedSED's ``ATST-F_*.pt`` (encoder under
    ``model.atst.``, optional ``model.atst_mel.*`` buffers and ``weak_head`` /
    ``strong_head`` classifier weights, which are dropped) and Lightning-style
    ``{"state_dict": ...}`` wrappers (audiossl, encoder under ``model.teacher.encoder.``).
    Keys that match no known layout are kept, so the strict loader reports them.

    Examples
    --------
    >>> import torch
    >>> sd = {"model.atst.norm_frame.weight": torch.ones(2), "weak_head.bias": torch.ones(3)}
    >>> list(atst_state_dict_from_checkpoint(sd))
    ['norm_frame.weight']
    """
    state = _unwrap(state)
    if not isinstance(state, dict):
        raise TypeError(f"expected a state dict, got {type(state).__name__}")
    probe = "norm_frame.weight"
    prefix = next((p for p in _ENCODER_PREFIXES if p + probe in state), None)
    if prefix is None:
        prefix = next(
            (p for p in _ENCODER_PREFIXES if any(k.startswith(p + "blocks.") for k in state)),
            "",
        )
    out = {}
    for key, value in state.items():
        if prefix and key.startswith(prefix):
            out[key[len(prefix) :]] = value
        elif not prefix and not key.startswith(_IGNORED_PREFIXES):
            out[key] = value
        elif prefix and not key.startswith(_IGNORED_PREFIXES):
            out[key] = value  # unknown: left for the strict loader to report
    return out


# -- parity hooks (benchmarks/check_backbone_parity.py) ------------------------------


def _parity_checkpoint(path, seed=0):
    """Save a random full-size ATST-Frame in PretrainedSED's ``ATST-F_weak.pt`` layout."""
    torch.manual_seed(seed)
    enc = ATSTFrameEncoder()
    with torch.no_grad():  # non-trivial norms and biases
        for name, p in enc.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    sd = {"model.atst." + k: v for k, v in enc.state_dict().items()}
    sd["weak_head.weight"] = 0.02 * torch.randn(527, enc.embed_dim)
    sd["weak_head.bias"] = torch.zeros(527)
    sd["strong_head.weight"] = 0.02 * torch.randn(447, enc.embed_dim)
    sd["strong_head.bias"] = torch.zeros(447)
    torch.save(sd, path)


def _parity_ours(checkpoint_path, waves):
    """Our frames: all clips in ONE zero-padded batch (so the masking is exercised)."""
    sd = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = ATSTFrame()
    model.encoder.load_state_dict(atst_state_dict_from_checkpoint(sd))
    model.eval()
    batch, lengths = padded_batch(waves)
    with torch.inference_mode():
        frames, mask = model(batch, lengths)
    return [frames[i][mask[i]].numpy() for i in range(len(waves))]


def _parity_reference(upstream, checkpoint_path, waves):
    """Frames of PretrainedSED's own ATST-Frame code (``models/atstframe``).

    ``upstream`` is a checkout of fschmid56/PretrainedSED. Its ``ATSTMel`` needs
    torchaudio's ``MelSpectrogram`` / ``AmplitudeToDB`` (pure Python; the compiled
    extension is not needed) and its encoder einops. Each wave (16 kHz, <= 10 s) runs
    alone at its own length (a batch of one, as the top-dB floor of torchaudio's
    ``AmplitudeToDB`` is shared across a 3-D batch); clips under 513 samples are
    zero-padded like ours because the reference STFT cannot take them.
    """
    import importlib
    import sys

    sys.path.insert(0, str(upstream))
    try:
        for name in list(sys.modules):
            if name == "models" or name.startswith("models."):
                del sys.modules[name]
        wrapper_mod = importlib.import_module("models.atstframe.ATSTF_wrapper")
    finally:
        sys.path.remove(str(upstream))
    state_dict = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    ref = wrapper_mod.ATSTWrapper()
    sd = {k[len("model.") :]: v for k, v in state_dict.items() if k.startswith("model.atst.")}
    missing, unexpected = ref.load_state_dict(sd, strict=False)
    missing = [k for k in missing if "mel_transform" not in k]
    if missing or unexpected:
        raise RuntimeError(f"reference load: missing={missing} unexpected={unexpected}")
    ref.eval()
    outs = []
    with torch.no_grad():
        for wave in waves:
            w = torch.as_tensor(wave, dtype=torch.float32)[None]
            w = F.pad(w, (0, max(0, ATST_MIN_SAMPLES - w.shape[-1])))
            mel = ref.mel_forward(w)  # (1, 1, 64, T)
            t = mel.shape[-1] - mel.shape[-1] % 4
            x = ref.atst.get_intermediate_layers(mel[..., :t], torch.tensor([t]), 1, scene=False)
            outs.append(x[0].numpy())
    return outs
