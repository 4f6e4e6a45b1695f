"""EfficientAT (Schmid et al., 2023): MobileNetV3 ("mn") and dynamic MobileNet ("dymn") audio
CNNs distilled from PaSST on AudioSet, as plain PyTorch modules loading the released ``.pt``
state dicts (``mn10_as_mAP_471.pt``, ``dymn10_as.pt``, ...).

Written from the papers and the released checkpoint layout; no code of the reference
implementation (fschmid56/EfficientAT) is used.

Preprocessing (EfficientAT's ``AugmentMelSTFT`` in eval mode)
    32 kHz mono -> pre-emphasis ``y[t] = x[t+1] - 0.97 x[t]`` (one sample shorter) ->
    |STFT|^2 (n_fft 1024, window 800-point symmetric Hann, hop 320, centred with reflect
    padding) -> 128 Kaldi-style mel bands 0-15,000 Hz -> ``log(x + 1e-5)`` ->
    ``(x + 4.5) / 5``. 100 mel frames per second.

Network
    A 3x3 stride-2 stem, 15 inverted-residual blocks (four more stride-2 stages) and a 1x1
    conv to ``6 * 160 * width`` channels (960 for width 1.0). The time axis is therefore
    down-sampled 32x: 3.125 feature-map frames per second (320 ms), and the frequency axis
    128 -> 4. The MESH authors' per-chunk embedding is the global average of that last map
    (``features`` in the reference code, 960-d for ``mn10_as`` / ``dymn10_as``).

Squeeze-and-excitation (mn) and the context generator of the dynamic blocks (dymn) pool
over the whole time axis, so padding changes every output frame: clips are therefore always
run one at a time at their own length.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._features import padded_batch

__all__ = [
    "EFFICIENTAT_SAMPLE_RATE",
    "EfficientATMelFrontEnd",
    "MobileNetAudio",
    "DynamicMobileNetAudio",
    "EfficientAT",
    "efficientat_width",
    "efficientat_frame_count",
]

EFFICIENTAT_SAMPLE_RATE = 32_000
_HOP = 320
_N_FFT = 1024
_WIN = 800
_MIN_SAMPLES = _N_FFT // 2 + 2  # pre-emphasis drops one sample; reflect pad needs > 512

_MN_WIDTHS = {
    "mn01": 0.1, "mn02": 0.2, "mn04": 0.4, "mn05": 0.5, "mn06": 0.6, "mn08": 0.8,
    "mn10": 1.0, "mn12": 1.2, "mn14": 1.4, "mn16": 1.6, "mn20": 2.0, "mn30": 3.0,
    "mn40": 4.0,
}
_DYMN_WIDTHS = {"dymn04": 0.4, "dymn10": 1.0, "dymn20": 2.0}

# (input, kernel, expanded, output, use_se, activation, stride index or None)
_BNECK = [
    (16, 3, 16, 16, False, "RE", None),
    (16, 3, 64, 24, False, "RE", 0),
    (24, 3, 72, 24, False, "RE", None),
    (24, 5, 72, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", None),
    (40, 5, 120, 40, True, "RE", None),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", None),
    (80, 3, 184, 80, False, "HS", None),
    (80, 3, 184, 80, False, "HS", None),
    (80, 3, 480, 112, True, "HS", None),
    (112, 3, 672, 112, True, "HS", None),
    (112, 5, 672, 160, True, "HS", 3),
    (160, 5, 960, 160, True, "HS", None),
    (160, 5, 960, 160, True, "HS", None),
]


def efficientat_width(name):
    """Family and width multiplier of a released EfficientAT model name.

    Examples
    --------
    >>> efficientat_width("mn10_as"), efficientat_width("dymn20_as"), efficientat_width("mn04")
    (('mn', 1.0), ('dymn', 2.0), ('mn', 0.4))
    """
    name = str(name)
    if name.startswith("dymn"):
        key, table, family = name[:6], _DYMN_WIDTHS, "dymn"
    else:
        key, table, family = name[:4], _MN_WIDTHS, "mn"
    if key not in table:
        raise ValueError(
            f"unknown EfficientAT model name {name!r}; expected e.g. 'mn10_as' "
            f"({sorted(_MN_WIDTHS)}) or 'dymn10_as' ({sorted(_DYMN_WIDTHS)})"
        )
    return family, table[key]


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def efficientat_frame_count(n_samples, *, strides=(2, 2, 2, 2)):
    """Time length of the last EfficientAT feature map for a clip of ``n_samples`` (32 kHz).

    Examples
    --------
    >>> efficientat_frame_count(320_000), efficientat_frame_count(32_000)
    (32, 4)
    """
    n = max(int(n_samples), _MIN_SAMPLES)
    t = (n - 2) // _HOP + 1  # mel frames of the pre-emphasised signal (n - 1 samples)
    t = (t - 1) // 2 + 1  # stem
    for s in strides:
        t = (t - 1) // s + 1
    return t


class EfficientATMelFrontEnd(nn.Module):
    """32 kHz wave (1-D) -> normalised log-mel ``(n_mels, frames)`` (eval-mode AugmentMelSTFT).

    The same front-end as PaSST's, so it is :class:`~sklearn_mesh.backbones._features.PasstMel`
    with EfficientAT's settings; inputs shorter than 514 samples are zero-padded (the
    centred STFT's reflect padding needs them).
    """

    def __init__(self, n_mels=128, hop_size=_HOP, win_length=_WIN, n_fft=_N_FFT, f_min=0.0,
                 f_max=None):
        super().__init__()
        from ._features import PasstMel

        if f_max is None:
            f_max = EFFICIENTAT_SAMPLE_RATE // 2 - 1000
        self.mel = PasstMel(EFFICIENTAT_SAMPLE_RATE, n_fft, win_length, hop_size, n_mels,
                            f_min, f_max, periodic_window=False, log_offset=1e-5)

    def forward(self, wave):
        if wave.shape[-1] < _MIN_SAMPLES:
            wave = F.pad(wave, (0, _MIN_SAMPLES - wave.shape[-1]))
        return self.mel(wave[None])[0]


# ------------------------------------------------------------------------------------------
# building blocks (parameter names follow the released state dicts)
# ------------------------------------------------------------------------------------------
def _bn(c):
    return nn.BatchNorm2d(c, eps=0.001, momentum=0.01)


def _conv_bn_act(c_in, c_out, kernel=1, stride=1, groups=1, dilation=1, act=None):
    """Conv (no bias) -> BN -> activation; as a Sequential so keys are ``0.*``, ``1.*``."""
    pad = (kernel - 1) // 2 * dilation
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation=dilation, groups=groups, bias=False),
        _bn(c_out),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _ChannelSE(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x):
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class _SEBlock(nn.Module):
    """Holds the channel SE as ``conc_se_layers.0`` (the released layout)."""

    def __init__(self, channels):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([_ChannelSE(channels, _make_divisible(channels // 4))])

    def forward(self, x):
        return self.conc_se_layers[0](x)


class _InvertedResidual(nn.Module):
    def __init__(self, c_in, kernel, c_exp, c_out, use_se, act, stride, dilation=1):
        super().__init__()
        self.use_res = stride == 1 and c_in == c_out
        layers = []
        if c_exp != c_in:
            layers.append(_conv_bn_act(c_in, c_exp, 1, act=act))
        layers.append(_conv_bn_act(c_exp, c_exp, kernel, stride, groups=c_exp,
                                   dilation=dilation, act=act))
        if use_se:
            layers.append(_SEBlock(c_exp))
        layers.append(_conv_bn_act(c_exp, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


def _mlp_head(c_in, c_hidden, n_classes):
    # indices match the released classifier: 2 and 5 carry weights
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c_in, c_hidden), nn.Hardswish(),
        nn.Dropout(0.2), nn.Linear(c_hidden, n_classes),
    )


def _settings(width_mult, strides):
    out = []
    for c_in, k, c_exp, c_out, se, act, s_idx in _BNECK:
        stride = 1 if s_idx is None else strides[s_idx]
        out.append((
            _make_divisible(c_in * width_mult), k, _make_divisible(c_exp * width_mult),
            _make_divisible(c_out * width_mult), se, nn.Hardswish if act == "HS" else nn.ReLU,
            stride,
        ))
    return out


def _init_cnn(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class MobileNetAudio(nn.Module):
    """EfficientAT ``mn`` model (MobileNetV3 with channel SE and an MLP head).

    ``forward(mel)`` maps ``(B, 1, n_mels, T)`` to the last feature map
    ``(B, 6 * 160 * width, n_mels / 32, ~T / 32)``; ``classifier`` is kept for strict loading.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import MobileNetAudio
    >>> MobileNetAudio(width_mult=0.1)(torch.zeros(1, 1, 128, 100)).shape
    torch.Size([1, 96, 4, 4])
    """

    def __init__(self, width_mult=1.0, strides=(2, 2, 2, 2), num_classes=527):
        super().__init__()
        cfg = _settings(width_mult, strides)
        layers = [_conv_bn_act(1, cfg[0][0], 3, 2, act=nn.Hardswish)]
        for c_in, k, c_exp, c_out, se, act, stride in cfg:
            layers.append(_InvertedResidual(c_in, k, c_exp, c_out, se, act, stride))
        last_in = cfg[-1][3]
        self.out_channels = 6 * last_in
        layers.append(_conv_bn_act(last_in, self.out_channels, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = _mlp_head(self.out_channels, _make_divisible(1280 * width_mult),
                                    num_classes)
        _init_cnn(self)

    def forward(self, mel):
        return self.features(mel)


# ------------------------------------------------------------------------------------------
# dynamic MobileNet
# ------------------------------------------------------------------------------------------
class _DynamicConv(nn.Module):
    """Convolution whose kernel is a softmax mixture of ``k`` kernels, chosen per clip.

    ``weight`` has the released shape ``(1, 1, k, out * in/groups * kh * kw)``.
    """

    def __init__(self, c_in, c_out, context_dim, kernel, stride=1, dilation=1, groups=1, k=4):
        super().__init__()
        self.c_in, self.c_out, self.kernel = c_in, c_out, kernel
        self.stride, self.dilation, self.groups, self.k = stride, dilation, groups, k
        self.padding = (kernel - 1) // 2 * dilation
        self.temperature = 1.0
        self.residuals = nn.Sequential(nn.Linear(context_dim, k))
        w = torch.empty(k, c_out, c_in // groups, kernel, kernel)
        for i in range(k):
            nn.init.kaiming_normal_(w[i], mode="fan_out")
        self.weight = nn.Parameter(w.reshape(1, 1, k, -1))

    def forward(self, x, context):
        b = x.shape[0]
        att = torch.softmax(self.residuals(context).reshape(b, 1, 1, -1) / self.temperature, -1)
        w = (att @ self.weight).reshape(
            b * self.c_out, self.c_in // self.groups, self.kernel, self.kernel
        )
        y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w, None, self.stride, self.padding,
                     self.dilation, self.groups * b)
        return y.reshape(b, self.c_out, *y.shape[2:])


class _DyReLUB(nn.Module):
    """Dynamic ReLU (variant B): per-channel max of two context-dependent linear maps."""

    def __init__(self, channels, context_dim, m=2):
        super().__init__()
        self.channels, self.m = channels, m
        self.coef_net = nn.Sequential(nn.Linear(context_dim, 2 * m * channels))
        self.register_buffer("lambdas", torch.tensor([1.0] * m + [0.5] * m))
        self.register_buffer("init_v", torch.tensor([1.0] + [0.0] * (2 * m - 1)))

    def forward(self, x, context):
        theta = 2.0 * torch.sigmoid(self.coef_net(context)) - 1.0
        coefs = theta.reshape(-1, self.channels, 1, 1, 2 * self.m) * self.lambdas + self.init_v
        mapped = x.unsqueeze(-1) * coefs[..., : self.m] + coefs[..., self.m :]
        if self.m == 2:
            return torch.maximum(mapped[..., 0], mapped[..., 1])
        return mapped.amax(dim=-1)


class _ContextGen(nn.Module):
    """Frequency and time profiles -> shared context vector + coordinate-attention maps."""

    def __init__(self, context_dim, c_in, c_exp, stride):
        super().__init__()
        self.joint_conv = nn.Conv2d(c_in, context_dim, 1, bias=False)
        self.joint_norm = _bn(context_dim)
        self.conv_f = nn.Conv2d(context_dim, c_exp, 1)
        self.conv_t = nn.Conv2d(context_dim, c_exp, 1)
        self.stride = stride

    def forward(self, x):
        cf = F.adaptive_avg_pool2d(x, (None, 1))  # (b, c, f, 1)
        ct = F.adaptive_avg_pool2d(x, (1, None)).transpose(2, 3)  # (b, c, t, 1)
        f = cf.shape[2]
        g = F.hardswish(self.joint_norm(self.joint_conv(torch.cat([cf, ct], dim=2))))
        h_cf, h_ct = g[:, :, :f], g[:, :, f:].transpose(2, 3)
        context = g.mean(dim=2, keepdim=True).flatten(1)  # (b, context_dim)
        if self.stride > 1:
            h_cf = F.avg_pool2d(h_cf, (3, 1), (self.stride, 1), (1, 0))
            h_ct = F.avg_pool2d(h_ct, (1, 3), (1, self.stride), (0, 1))
        return context, self.conv_f(h_cf), self.conv_t(h_ct)


class _Identity2(nn.Module):
    def forward(self, x, context=None):
        return x


class _DyBlock(nn.Module):
    def __init__(self, c_in, kernel, c_exp, c_out, act, stride, width_mult, dilation=1):
        super().__init__()
        self.use_res = stride == 1 and c_in == c_out
        ctx = int(np.clip(_make_divisible(c_exp // 4), _make_divisible(32 * width_mult),
                          _make_divisible(128 * width_mult)))
        self.act = act
        if c_exp != c_in:
            self.exp_conv = _DynamicConv(c_in, c_exp, ctx, 1)
            self.exp_norm = _bn(c_exp)
            self.has_exp = True
        else:
            self.exp_conv = _Identity2()
            self.exp_norm = nn.Identity()
            self.has_exp = False
        dw_stride = 1 if dilation > 1 else stride
        self.depth_conv = _DynamicConv(c_exp, c_exp, ctx, kernel, dw_stride, dilation, groups=c_exp)
        self.depth_norm = _bn(c_exp)
        self.depth_act = _DyReLUB(c_exp, ctx)
        self.proj_conv = _DynamicConv(c_exp, c_out, ctx, 1)
        self.proj_norm = _bn(c_out)
        self.context_gen = _ContextGen(ctx, c_in, c_exp, dw_stride)

    def forward(self, x):
        context, g_f, g_t = self.context_gen(x)
        y = self.exp_norm(self.exp_conv(x, context))
        if self.has_exp:
            y = self.act(y)
        y = self.depth_act(self.depth_norm(self.depth_conv(y, context)), context)
        y = y * torch.sigmoid(g_f) * torch.sigmoid(g_t)  # coordinate attention
        y = self.proj_norm(self.proj_conv(y, context))
        return y + x if self.use_res else y


class DynamicMobileNetAudio(nn.Module):
    """EfficientAT ``dymn`` model: every block uses dynamic convolution, dynamic ReLU and
    coordinate attention driven by a per-block context generator.

    ``forward(mel)`` maps ``(B, 1, n_mels, T)`` to the last feature map.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import DynamicMobileNetAudio
    >>> DynamicMobileNetAudio(width_mult=0.1)(torch.zeros(1, 1, 128, 100)).shape
    torch.Size([1, 96, 4, 4])
    """

    def __init__(self, width_mult=1.0, strides=(2, 2, 2, 2), num_classes=527):
        super().__init__()
        cfg = _settings(width_mult, strides)
        self.in_c = _conv_bn_act(1, cfg[0][0], 3, 2, act=nn.Hardswish)
        self.layers = nn.ModuleList()
        for c_in, k, c_exp, c_out, _se, act, stride in cfg:
            act_fn = F.hardswish if act is nn.Hardswish else F.relu
            self.layers.append(_DyBlock(c_in, k, c_exp, c_out, act_fn, stride, width_mult))
        last_in = cfg[-1][3]
        self.out_channels = 6 * last_in
        self.out_c = _conv_bn_act(last_in, self.out_channels, 1, act=nn.Hardswish)
        self.classifier = _mlp_head(self.out_channels, _make_divisible(1280 * width_mult),
                                    num_classes)
        _init_cnn(self)

    def forward(self, mel):
        x = self.in_c(mel)
        for layer in self.layers:
            x = layer(x)
        return self.out_c(x)


class EfficientAT(nn.Module):
    """Front-end + EfficientAT CNN: zero-padded 32 kHz waves -> (frames, mask).

    Parameters
    ----------
    model_name : str, default="mn10_as"
        Released model name; sets the family (``mn`` / ``dymn``) and the width multiplier
        (e.g. ``mn04_as`` -> 0.4, ``dymn20_as`` -> 2.0).
    width_mult : float, optional
        Overrides the width parsed from ``model_name``.
    output : {"chunk", "frames"}, default="chunk"
        ``"chunk"``: one embedding per input (global average of the last feature map, what
        the MESH authors used per 10 s chunk). ``"frames"``: the time axis of the last
        feature map (averaged over frequency), 3.125 frames per second.
    pad_to_max : bool, default=False
        Zero-pad every input to 10 s before the front-end, as the MESH extraction did
        (the network then sees the padding; frames past the clip are still masked).
    n_mels, hop_size, win_length, strides, num_classes :
        Architecture / front-end settings of the released variants (defaults: 128, 320,
        800, (2, 2, 2, 2), 527).

    Examples
    --------
    >>> import torch
    >>> m = EfficientAT("mn01_as", output="frames").eval()
    >>> frames, mask = m(torch.zeros(2, 32_000), torch.tensor([32_000, 8_000]))
    >>> tuple(frames.shape), mask.sum(1).tolist()
    ((2, 4, 96), [4, 1])
    """

    sample_rate = EFFICIENTAT_SAMPLE_RATE
    max_input_seconds = 10.0

    def __init__(self, model_name="mn10_as", *, width_mult=None, output="chunk",
                 pad_to_max=False, n_mels=128, hop_size=_HOP, win_length=_WIN,
                 strides=(2, 2, 2, 2), num_classes=527):
        super().__init__()
        family, width = efficientat_width(model_name)
        if width_mult is not None:
            width = float(width_mult)
        if output not in ("chunk", "frames"):
            raise ValueError(f"output must be 'chunk' or 'frames', got {output!r}")
        if hop_size != _HOP:
            raise ValueError("only the released hop size of 320 samples is supported")
        self.family, self.width_mult, self.output = family, width, output
        self.pad_to_max = pad_to_max
        self.strides = tuple(strides)
        self.front_end = EfficientATMelFrontEnd(n_mels=n_mels, hop_size=hop_size,
                                                win_length=win_length)
        cls = DynamicMobileNetAudio if family == "dymn" else MobileNetAudio
        self.net = cls(width, self.strides, num_classes)

    @property
    def embed_dim(self):
        return self.net.out_channels

    @property
    def frame_rate(self):
        if self.output == "chunk":
            return 1.0 / self.max_input_seconds
        return EFFICIENTAT_SAMPLE_RATE / _HOP / (2 * int(np.prod(self.strides)))

    def forward(self, waves, lengths):
        waves = torch.as_tensor(waves, dtype=torch.float32)
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=waves.device)
        max_samples = int(self.max_input_seconds * EFFICIENTAT_SAMPLE_RATE)
        if int(lengths.max()) > max_samples:
            raise ValueError(
                f"EfficientAT takes at most {self.max_input_seconds:g} s per input; got "
                f"{int(lengths.max())} samples. Split longer clips."
            )
        outs = []
        for wave, n in zip(waves, lengths.tolist()):
            wave = wave[:n]
            if self.pad_to_max:
                wave = F.pad(wave, (0, max_samples - n))
            fmap = self.net(self.front_end(wave)[None, None])  # (1, C, f, t)
            if self.output == "chunk":
                # with pad_to_max this averages the whole padded map, as MESH did
                outs.append(fmap.mean(dim=(2, 3)))
            else:
                t_valid = efficientat_frame_count(n, strides=self.strides)
                outs.append(fmap.mean(dim=2)[0].T[:t_valid])
        if self.output == "chunk":
            frames = torch.cat(outs)[:, None, :]
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
            return frames, mask
        n_max = max(o.shape[0] for o in outs)
        frames = torch.stack([F.pad(o, (0, 0, 0, n_max - o.shape[0])) for o in outs])
        counts = torch.tensor([o.shape[0] for o in outs], device=frames.device)
        mask = torch.arange(n_max, device=frames.device)[None, :] < counts[:, None]
        return frames, mask


# ------------------------------------------------------------------------------------------
# checkpoint layout
# ------------------------------------------------------------------------------------------
def efficientat_state_dict_from_checkpoint(state):
    """Return the model state dict of a released EfficientAT file.

    The released ``.pt`` files are flat state dicts of the ``MN`` / ``DyMN`` module
    (``features.*`` / ``in_c.*``, ``layers.*``, ``out_c.*`` and ``classifier.*``); a
    ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``model.`` / ``net.``
    prefix (e.g. from a Lightning checkpoint) are removed.

    Examples
    --------
    >>> import torch
    >>> list(efficientat_state_dict_from_checkpoint({"state_dict": {"net.out_c.0.weight": 1}}))
    ['out_c.0.weight']
    """
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise TypeError(f"expected a state dict, got {type(state).__name__}")
    for prefix in ("model.net.", "net.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


# -- parity hooks (benchmarks/check_backbone_parity.py) ------------------------------
# backbones "efficientat_mn" (mn10_as) and "efficientat_dymn" (dymn10_as); each clip's
# parity array is the feature-map frames (t, C) with the chunk embedding as a last row.


def _parity_checkpoint_named(path, model_name, seed=0):
    """Save a random released-layout state dict with BatchNorm statistics estimated on
    noise (plain random BN statistics make the deep net's output nearly constant)."""
    torch.manual_seed(seed)
    model = EfficientAT(model_name)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.net.train()
    with torch.no_grad():
        for _ in range(3):
            x = 0.1 * torch.randn(2, 64000)
            model.net(torch.stack([model.front_end(w) for w in x])[:, None])
    torch.save(model.net.state_dict(), path)


def _parity_ours_named(checkpoint_path, waves, model_name):
    sd = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = EfficientAT(model_name, output="frames")
    model.net.load_state_dict(efficientat_state_dict_from_checkpoint(sd))
    model.eval()
    batch, lengths = padded_batch(waves)
    with torch.inference_mode():
        frames, mask = model(batch, lengths)
        model.output = "chunk"
        chunks, _ = model(batch, lengths)
    return [torch.cat([frames[i][mask[i]], chunks[i]]).numpy() for i in range(len(waves))]


def _parity_checkpoint_efficientat_mn(path):
    _parity_checkpoint_named(path, "mn10_as")


def _parity_ours_efficientat_mn(checkpoint_path, waves):
    return _parity_ours_named(checkpoint_path, waves, "mn10_as")


def _parity_reference_efficientat_mn(upstream, checkpoint_path, waves):
    return _parity_reference(upstream, checkpoint_path, waves, model_name="mn10_as")


def _parity_checkpoint_efficientat_dymn(path):
    _parity_checkpoint_named(path, "dymn10_as")


def _parity_ours_efficientat_dymn(checkpoint_path, waves):
    return _parity_ours_named(checkpoint_path, waves, "dymn10_as")


def _parity_reference_efficientat_dymn(upstream, checkpoint_path, waves):
    return _parity_reference(upstream, checkpoint_path, waves, model_name="dymn10_as")


def _parity_reference(upstream, checkpoint_path, waves, *, model_name="mn10_as"):
    """Feature-map frames + chunk embedding from fschmid56/EfficientAT's own code.

    The reference imports ``torchvision.ops.misc.ConvNormActivation``; where torchvision
    cannot be imported (as with torch 2.13 here) a minimal stand-in (Conv2d without bias,
    norm layer, activation in a Sequential, padding ``(k - 1) // 2 * dilation``, i.e.
    torchvision's documented behaviour) is injected before import. Its front-end needs
    ``torchaudio.compliance.kaldi``. Each clip runs alone; clips under 514 samples are
    zero-padded like ours (the reference STFT cannot take them).
    """
    import importlib
    import os
    import sys
    import types

    try:
        import torchvision.ops.misc  # noqa: F401
    except Exception:
        class ConvNormActivation(nn.Sequential):
            def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                         padding=None, groups=1, norm_layer=nn.BatchNorm2d,
                         activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None):
                if padding is None:
                    padding = (kernel_size - 1) // 2 * dilation
                if bias is None:
                    bias = norm_layer is None
                layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                    dilation=dilation, groups=groups, bias=bias)]
                if norm_layer is not None:
                    layers.append(norm_layer(out_channels))
                if activation_layer is not None:
                    layers.append(activation_layer(inplace=inplace))
                super().__init__(*layers)

        tv = types.ModuleType("torchvision")
        tv_ops = types.ModuleType("torchvision.ops")
        tv_misc = types.ModuleType("torchvision.ops.misc")
        tv_misc.ConvNormActivation = ConvNormActivation
        tv.ops, tv_ops.misc = tv_ops, tv_misc
        sys.modules.update({"torchvision": tv, "torchvision.ops": tv_ops,
                            "torchvision.ops.misc": tv_misc})
    upstream_path = upstream
    state_dict = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    sys.path.insert(0, str(upstream_path))
    old_cwd = os.getcwd()
    try:
        for name in list(sys.modules):
            if name.split(".")[0] in ("models", "helpers"):
                del sys.modules[name]
        os.chdir(upstream_path)  # its helpers read metadata/ relative to the checkout
        try:
            preprocess = importlib.import_module("models.preprocess")
            family, width = efficientat_width(model_name)
            mod = importlib.import_module(
                "models.dymn.model" if family == "dymn" else "models.mn.model"
            )
        finally:
            os.chdir(old_cwd)
        if family == "dymn":
            inv, last = mod._dymn_conf(width_mult=width)
            ref = mod.DyMN(inv, last, num_classes=527, temp_schedule=(1.0, 1, 1, 0.05))
        else:
            inv, last = mod._mobilenet_v3_conf(width_mult=width)
            ref = mod.MN(inv, last, num_classes=527, head_type="mlp",
                         se_conf=dict(se_dims=[1], se_agg="max", se_r=4))
        ref.load_state_dict(state_dict, strict=True)
        ref.eval()
        mel = preprocess.AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320,
                                        freqm=0, timem=0).eval()
        outs = []
        with torch.no_grad():
            for wave in waves:
                w = torch.as_tensor(wave, dtype=torch.float32)
                w = F.pad(w, (0, max(0, _MIN_SAMPLES - w.shape[-1])))[None]
                spec = mel(w)[:, None]
                if family == "dymn":
                    fmap = ref._feature_forward(spec)
                    _, emb = ref._clf_forward(fmap)
                else:
                    x = spec
                    for layer in ref.features:
                        x = layer(x)
                    fmap = x
                    _, emb = ref(spec)
                frames = fmap[0].mean(dim=1).T  # (t, C)
                outs.append(torch.cat([frames, emb[:1]]).numpy())
        return outs
    finally:
        sys.path.remove(str(upstream_path))

