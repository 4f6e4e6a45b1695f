"""ATST-Frame and EfficientAT (mn / dymn): checkpoint layouts, shapes, masks, front-ends.

No real checkpoint is used: random state dicts in the released key layouts stand in for
them (parity with the reference code is measured by benchmarks/check_backbone_parity.py).
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mesh.backbones._atst import (
    ATSTFrame,
    ATSTFrameEncoder,
    ATSTMelFrontEnd,
    atst_state_dict_from_checkpoint,
)
from sklearn_mesh.backbones._efficientat import (
    DynamicMobileNetAudio,
    EfficientAT,
    MobileNetAudio,
    efficientat_state_dict_from_checkpoint,
    efficientat_width,
)
from sklearn_mesh.embedders._checkpoint import CheckpointError
from sklearn_mesh.embedders.atst import ATSTFrameEmbedder
from sklearn_mesh.embedders.efficientat import EfficientATEmbedder
from sklearn_mesh.pooling import ChunkPooling, SequencePooling

SMALL = dict(embed_dim=16, depth=2, num_heads=2)
DURATIONS = (0.01, 1.0, 10.0, 30.0)


def _noise(seconds, sr, seed=0):
    n = max(1, int(round(seconds * sr)))
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# ---------------------------------------------------------------------- naive references
def _atst_count_naive(n):
    """ATST frames of one <= 10 s input: centred STFT frames, then 4 frames per token."""
    n = max(n, 513)
    mel_frames = n // 160 + 1
    return mel_frames // 4


def _windows_naive(n, size):
    return [min(size, n - a) for a in range(0, n, size)]


def _efficientat_count_naive(n):
    n = max(n, 514)
    t = 1 + (n - 1 - 1) // 320  # pre-emphasis drops one sample, centred STFT
    for _ in range(5):  # stem + four stride-2 stages, "same" padding
        t = math.ceil(t / 2)
    return t


def _atst_mel_naive(wave):
    """numpy: reflect-padded periodic-Hann power STFT, HTK mel, dB, clamps, min-max."""
    n_fft, hop, sr, n_mels = 1024, 160, 16000, 64
    x = np.pad(wave.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[i * hop : i * hop + n_fft] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 513)

    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(60.0), hz2mel(7800.0), n_mels + 2))
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        for k, f in enumerate(freqs):
            if lo <= f <= c:
                fb[k, m] = (f - lo) / (c - lo)
            elif c < f <= hi:
                fb[k, m] = (hi - f) / (hi - c)
    db = 10 * np.log10(np.maximum(power @ fb, 1e-10)).T
    db = np.maximum(db, db.max() - 80.0)
    db = np.clip(db, -50.0, 80.0)
    return (db + 79.6482) / (50.6842 + 79.6482) * 2 - 1


def _expected_atst_layout(dim=768, depth=12, tokens=250, patch=256):
    shapes = {
        "mask_embed": (1, 1, dim),
        "pos_embed": (1, tokens + 1, dim),
        "patch_embed.patch_embed.weight": (dim, patch),
        "patch_embed.patch_embed.bias": (dim,),
        "norm_frame.weight": (dim,),
        "norm_frame.bias": (dim,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({
            b + "norm1.weight": (dim,), b + "norm1.bias": (dim,),
            b + "attn.qkv.weight": (3 * dim, dim),  # no qkv bias in ATST-Frame
            b + "attn.proj.weight": (dim, dim), b + "attn.proj.bias": (dim,),
            b + "norm2.weight": (dim,), b + "norm2.bias": (dim,),
            b + "mlp.fc1.weight": (4 * dim, dim), b + "mlp.fc1.bias": (4 * dim,),
            b + "mlp.fc2.weight": (dim, 4 * dim), b + "mlp.fc2.bias": (dim,),
        })
    return shapes


def _released_atst_file(encoder, path, layout="pretrainedsed"):
    """Write ``encoder``'s weights in a released file layout."""
    sd = encoder.state_dict()
    if layout == "pretrainedsed":  # ATST-F_weak.pt: flat, encoder under model.atst.
        out = {"model.atst." + k: v.clone() for k, v in sd.items()}
        out["model.atst_mel.mel_transform.spectrogram.window"] = torch.hann_window(1024)
        out["model.atst_mel.mel_transform.mel_scale.fb"] = torch.zeros(513, 64)
        out["weak_head.weight"] = torch.randn(527, encoder.embed_dim)
        out["weak_head.bias"] = torch.zeros(527)
    else:  # audiossl Lightning checkpoint
        out = {"state_dict": {"model.teacher.encoder." + k: v.clone() for k, v in sd.items()},
               "epoch": 3}
    torch.save(out, path)
    return path


def _random_encoder(seed=0, **kw):
    torch.manual_seed(seed)
    enc = ATSTFrameEncoder(**{**SMALL, **kw})
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc


def _calibrated_cnn(model, seed=0):
    """Random CNN with BatchNorm statistics estimated on noise (healthy activations)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.net.train()
    with torch.no_grad():
        for _ in range(2):
            x = torch.randn(2, 32000) * 0.1
            model.net(torch.stack([model.front_end(w) for w in x])[:, None])
    return model.eval()


# ---------------------------------------------------------------------- ATST-Frame
def test_atst_full_size_layout_matches_release():
    with torch.device("meta"):
        enc = ATSTFrameEncoder()
    got = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert got == _expected_atst_layout()


@pytest.mark.parametrize("layout", ["pretrainedsed", "lightning"])
def test_atst_checkpoint_loads_and_runs(tmp_path, layout):
    enc = _random_encoder()
    path = _released_atst_file(enc, tmp_path / "ATST-F_weak.pt", layout)
    emb = ATSTFrameEmbedder(path, model_config=SMALL).fit()
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(emb.module_.encoder.state_dict()[k], v, rtol=0, atol=0)
    out = emb.transform([(_noise(1.0, 16000), 16000)])
    assert out.dim == 16 and out.lengths.tolist() == [25]
    assert np.isfinite(out.values).all()


def test_atst_state_dict_mapping_drops_heads_and_mel():
    sd = {"model.atst.blocks.0.norm1.weight": 1, "model.atst_mel.mel_transform.x": 2,
          "weak_head.bias": 3, "strong_head.weight": 4}
    assert atst_state_dict_from_checkpoint(sd) == {"blocks.0.norm1.weight": 1}


@pytest.mark.parametrize("damage", ["missing", "unexpected", "shape"])
def test_atst_wrong_keys_give_clear_error(tmp_path, damage):
    enc = _random_encoder()
    path = _released_atst_file(enc, tmp_path / "w.pt")
    sd = torch.load(path, weights_only=True)
    if damage == "missing":
        del sd["model.atst.blocks.1.mlp.fc2.bias"]
        expected = "blocks.1.mlp.fc2.bias"
    elif damage == "unexpected":
        sd["model.atst.blocks.0.attn.qkv.bias"] = torch.zeros(48)
        expected = "blocks.0.attn.qkv.bias"
    else:
        sd["model.atst.pos_embed"] = torch.zeros(1, 100, 16)
        expected = "(1, 100, 16)"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"(?s)ATST-Frame checkpoint.*" + re.escape(expected)):
        ATSTFrameEmbedder(path, model_config=SMALL).fit()


def test_atst_missing_file_error(tmp_path):
    with pytest.raises(CheckpointError, match="PretrainedSED"):
        ATSTFrameEmbedder(tmp_path / "nope.pt", model_config=SMALL).fit()


def test_atst_frame_counts_and_frame_times():
    emb = ATSTFrameEmbedder(model_config=SMALL, random_state=0).fit()
    clips = [(_noise(s, 16000, i), 16000) for i, s in enumerate(DURATIONS)]
    out = emb.transform(clips)
    expected = [
        sum(_atst_count_naive(w) for w in _windows_naive(len(c[0]), 160000)) for c in clips
    ]
    assert expected == [1, 25, 250, 750]
    assert out.lengths.tolist() == expected
    assert emb.frame_hop_ == pytest.approx(0.04)
    t = out.frame_times(3)
    np.testing.assert_allclose(t[:, 0], np.arange(750) * 0.04, atol=1e-9)


@settings(deadline=None, max_examples=6)
@given(st.lists(st.integers(1, 48000), min_size=1, max_size=4))
def test_atst_masks_and_batch_invariance(lengths):
    model = ATSTFrame(encoder_kwargs=SMALL)
    enc = _random_encoder(1)
    model.encoder.load_state_dict(enc.state_dict())
    model.eval()
    waves = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        waves[i, :n] = torch.from_numpy(_noise(n / 16000, 16000, i))
    with torch.no_grad():
        frames, mask = model(waves, torch.tensor(lengths))
        assert mask.sum(1).tolist() == [_atst_count_naive(n) for n in lengths]
        assert mask[:, 0].all()
        # masks are a prefix: real frames first, padding after
        assert (mask.int().diff(dim=1) <= 0).all()
        i = int(np.argmin(lengths))  # the shortest clip, padded the most in the batch
        alone, _ = model(waves[i : i + 1, : lengths[i]], torch.tensor([lengths[i]]))
    torch.testing.assert_close(frames[i][mask[i]], alone[0], atol=2e-5, rtol=1e-5)


def test_atst_pad_to_max_masks_padding():
    enc = _random_encoder(2)
    native = ATSTFrame(encoder_kwargs=SMALL)
    padded = ATSTFrame(pad_to_max=True, encoder_kwargs=SMALL)
    native.encoder.load_state_dict(enc.state_dict())
    padded.encoder.load_state_dict(enc.state_dict())
    w = torch.from_numpy(_noise(10.0, 16000))
    waves = torch.stack([w, torch.cat([w[:16000], torch.zeros(144000)])])
    lengths = torch.tensor([160000, 16000])
    with torch.no_grad():
        fa, ma = native.eval()(waves, lengths)
        fb, mb = padded.eval()(waves, lengths)
    assert ma.sum(1).tolist() == mb.sum(1).tolist() == [250, 25]
    torch.testing.assert_close(fa[0], fb[0], atol=1e-5, rtol=1e-5)  # full 10 s: same input
    assert not torch.allclose(fa[1][:25], fb[1][:25], atol=1e-4)  # padding was attended


def test_atst_front_end_matches_naive_numpy():
    wave = _noise(0.7, 16000, 3)
    wave[:2000] *= 20  # loud part: the 80 dB floor is active
    ours = ATSTMelFrontEnd()(torch.from_numpy(wave)).numpy()
    ref = _atst_mel_naive(wave)
    assert ours.shape == ref.shape == (64, 0.7 * 16000 // 160 + 1)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_atst_paper_dimension_3072():
    # 768-d frames, as the released model; one block keeps the test fast
    emb = ATSTFrameEmbedder(model_config=dict(embed_dim=768, depth=1, num_heads=12),
                            random_state=0)
    frames = emb.fit_transform([(_noise(12.5, 16000), 16000), (_noise(0.5, 16000), 16000)])
    assert frames.dim == 768
    pooled = ChunkPooling(frame_stats=("max", "std"), stats=("mean", "std")).fit_transform(frames)
    assert pooled.shape == (2, 3072)
    assert np.isfinite(pooled).all()
    assert SequencePooling(stats=("max", "std")).fit_transform(frames).shape == (2, 1536)


def test_atst_deterministic():
    clips = [(_noise(2.3, 16000), 16000), (_noise(0.4, 16000, 1), 16000)]
    a = ATSTFrameEmbedder(model_config=SMALL, random_state=7).fit(clips)
    b = ATSTFrameEmbedder(model_config=SMALL, random_state=7).fit(clips)
    np.testing.assert_array_equal(a.transform(clips).values, b.transform(clips).values)
    np.testing.assert_array_equal(a.transform(clips).values, a.transform(clips).values)
    c = ATSTFrameEmbedder(model_config=SMALL, random_state=8).fit(clips)
    assert not np.allclose(a.transform(clips).values, c.transform(clips).values)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sample_rate=44100), "sample_rate"),
        (dict(model_config=dict(width=3)), "unknown keys"),
        (dict(module=torch.nn.Identity()), "module"),
    ],
)
def test_atst_bad_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ATSTFrameEmbedder(**kwargs).fit()


# ---------------------------------------------------------------------- EfficientAT
@pytest.mark.parametrize(
    "cls, width, readme_millions",
    [
        (MobileNetAudio, 0.4, 0.983),
        (MobileNetAudio, 1.0, 4.88),
        (MobileNetAudio, 4.0, 68.43),
        (DynamicMobileNetAudio, 0.4, 1.97),
        (DynamicMobileNetAudio, 1.0, 10.57),
        (DynamicMobileNetAudio, 2.0, 40.02),
    ],
)
def test_efficientat_parameter_counts_match_readme(cls, width, readme_millions):
    # the README table of fschmid56/EfficientAT (rounded; dymn counts there differ by <0.5%)
    with torch.device("meta"):
        net = cls(width)
    n = sum(p.numel() for p in net.parameters()) / 1e6
    assert n == pytest.approx(readme_millions, rel=5e-3)


def test_efficientat_full_size_key_layout():
    with torch.device("meta"):
        mn, dymn = MobileNetAudio(1.0), DynamicMobileNetAudio(1.0)
    s = {k: tuple(v.shape) for k, v in mn.state_dict().items()}
    assert s["features.0.0.weight"] == (16, 1, 3, 3)
    assert s["features.1.block.0.0.weight"] == (16, 1, 3, 3)  # block 0: no expansion conv
    assert s["features.2.block.0.0.weight"] == (64, 16, 1, 1)
    assert s["features.4.block.2.conc_se_layers.0.fc1.weight"] == (24, 72)
    assert s["features.16.0.weight"] == (960, 160, 1, 1)
    assert s["classifier.2.weight"] == (1280, 960)
    assert s["classifier.5.weight"] == (527, 1280)
    assert "features.1.block.0.1.running_var" in s
    d = {k: tuple(v.shape) for k, v in dymn.state_dict().items()}
    assert d["in_c.0.weight"] == (16, 1, 3, 3)
    assert not any(k.startswith("layers.0.exp_conv") for k in d)
    assert d["layers.1.exp_conv.weight"] == (1, 1, 4, 64 * 16)
    assert d["layers.1.depth_conv.weight"] == (1, 1, 4, 64 * 9)
    assert d["layers.1.depth_act.coef_net.0.weight"] == (4 * 64, 32)
    assert d["layers.1.depth_act.lambdas"] == (4,)
    assert d["layers.3.context_gen.conv_f.weight"] == (72, 32, 1, 1)
    assert d["out_c.0.weight"] == (960, 160, 1, 1)
    assert d["classifier.5.weight"] == (527, 1280)


def test_efficientat_width_names():
    assert efficientat_width("mn40_as_ext") == ("mn", 4.0)
    assert efficientat_width("dymn04_as") == ("dymn", 0.4)
    with pytest.raises(ValueError, match="unknown EfficientAT model name"):
        efficientat_width("resnet50")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mn01_as", "dymn04_as"])
def test_efficientat_checkpoint_loads_and_wrong_width_fails(tmp_path, name):
    torch.manual_seed(0)
    ref = EfficientAT(name)
    path = tmp_path / f"{name}.pt"
    torch.save(ref.net.state_dict(), path)
    emb = EfficientATEmbedder(path, model_name=name).fit()
    for k, v in ref.net.state_dict().items():
        torch.testing.assert_close(emb.module_.net.state_dict()[k], v, rtol=0, atol=0)
    out = emb.transform([(_noise(1.0, 32000), 32000)])
    assert out.lengths.tolist() == [1] and out.dim == ref.embed_dim
    wrong = dict(model_name="mn02_as") if name.startswith("mn") else dict(model_name=name,
                                                                           width_mult=0.5)
    with pytest.raises(CheckpointError, match=r"(?s)model_name=.*Shape mismatches"):
        EfficientATEmbedder(path, **wrong).fit()


def test_efficientat_family_mismatch_names_keys(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "mn.pt"
    torch.save({"state_dict": {"model." + k: v for k, v in
                               EfficientAT("mn01_as").net.state_dict().items()}}, path)
    assert EfficientATEmbedder(path, model_name="mn01_as").fit()  # wrapper + prefix removed
    with pytest.raises(CheckpointError, match=r"(?s)Missing keys.*in_c\.0\.weight.*Unexpected"):
        EfficientATEmbedder(path, model_name="dymn04_as").fit()


def test_efficientat_state_dict_unwrap():
    assert list(efficientat_state_dict_from_checkpoint({"model": {"net.a": 1}})) == ["a"]


@pytest.mark.parametrize("name", ["mn01_as"])  # counts do not depend on the family
def test_efficientat_counts_for_paper_durations(name):
    chunk = EfficientATEmbedder(model_name=name, random_state=0).fit()
    frames = EfficientATEmbedder(model_name=name, output="frames", random_state=0).fit()
    clips = [(_noise(s, 32000, i), 32000) for i, s in enumerate(DURATIONS + (25.0,))]
    oc, of = chunk.transform(clips), frames.transform(clips)
    assert oc.lengths.tolist() == [1, 1, 1, 3, 3]  # 25 s: [0,10), [10,20), [15,25)
    assert oc.level == "chunk" and chunk.frame_hop_ is None
    np.testing.assert_allclose(oc.frame_times(4), [[0, 10], [10, 20], [15, 25]])
    expected = [
        sum(_efficientat_count_naive(w) for w in _windows_naive(len(c[0]), 320000))
        for c in clips
    ]
    assert of.lengths.tolist() == expected
    assert expected[:4] == [1, 4, 32, 96]
    assert frames.frame_hop_ == pytest.approx(0.32)
    assert oc.dim == of.dim == chunk.module_.embed_dim


@pytest.mark.slow
@settings(deadline=None, max_examples=3)
@given(st.lists(st.integers(1, 24000), min_size=2, max_size=3))
def test_efficientat_batch_invariance_and_masks(lengths):
    model = _calibrated_cnn(EfficientAT("dymn04_as", output="frames"))
    waves = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        waves[i, :n] = torch.from_numpy(_noise(n / 32000, 32000, i))
    with torch.no_grad():
        frames, mask = model(waves, torch.tensor(lengths))
        alone, _ = model(waves[:1, : lengths[0]], torch.tensor(lengths[:1]))
        model.output = "chunk"
        chunks, cmask = model(waves, torch.tensor(lengths))
    assert mask.sum(1).tolist() == [_efficientat_count_naive(n) for n in lengths]
    assert cmask.all() and chunks.shape == (len(lengths), 1, model.embed_dim)
    torch.testing.assert_close(frames[0][mask[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_efficientat_pad_to_max_is_mesh_style():
    native = _calibrated_cnn(EfficientAT("mn01_as", output="frames"))
    padded = EfficientAT("mn01_as", output="frames", pad_to_max=True)
    padded.load_state_dict(native.state_dict())
    padded.eval()
    w = torch.from_numpy(_noise(1.0, 32000))[None]
    with torch.no_grad():
        fa, ma = native(w, torch.tensor([32000]))
        fb, mb = padded(w, torch.tensor([32000]))
    assert ma.sum().item() == mb.sum().item() == 4
    assert not torch.allclose(fa, fb, atol=1e-4)  # SE sees the zero padding


def test_efficientat_deterministic_and_bad_parameters():
    clips = [(_noise(1.5, 32000), 32000)]
    a = EfficientATEmbedder(model_name="mn01_as", random_state=3).fit()
    b = EfficientATEmbedder(model_name="mn01_as", random_state=3).fit()
    np.testing.assert_array_equal(a.transform(clips).values, b.transform(clips).values)
    with pytest.raises(ValueError, match="output"):
        EfficientATEmbedder(output="patches").fit()
    with pytest.raises(ValueError, match="sample_rate"):
        EfficientATEmbedder(sample_rate=16000).fit()
