"""Native BEATs, PaSST, fPaSST and M2D backbones: front-ends, checkpoint layouts, frames.

Offline, no real checkpoints: random state dicts in the released key layouts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mesh.backbones._beats import BEATS_ITER3_CONFIG, BEATsModel, beats_frame_counts
from sklearn_mesh.backbones._features import (
    KaldiFbank,
    M2DMel,
    PasstMel,
    htk_mel_banks,
    kaldi_mel_banks,
    slaney_mel_banks,
)
from sklearn_mesh.backbones._m2d import M2DModel, m2d_input_frames
from sklearn_mesh.backbones._passt import FPaSSTModel, PaSSTModel
from sklearn_mesh.embedders import BEATsEmbedder, FPasstEmbedder, M2DEmbedder, PasstEmbedder
from sklearn_mesh.embedders._checkpoint import CheckpointError
from sklearn_mesh.pooling import ChunkPooling, SequencePooling

# ----------------------------------------------------------------- naive references


def naive_kaldi_banks(n_mels, n_fft, sr, lo, hi):
    hi = hi if hi > 0 else sr / 2 + hi
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, float) / 700.0)  # noqa: E731
    edges = np.linspace(mel(lo), mel(hi), n_mels + 2)
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, center, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2):
            x = mel(k * sr / n_fft)
            if left < x < right:
                out[m, k] = (x - left) / (center - left) if x <= center else (right - x) / (right - center)
    return out


def naive_fbank(wave, sr=16000, n_mels=128):
    """Kaldi fbank, one frame at a time, float64."""
    wave = np.asarray(wave, float)
    win, hop, n_fft = 400, 160, 512
    n = 1 + (len(wave) - win) // hop if len(wave) >= win else 0
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))) ** 0.85
    banks = naive_kaldi_banks(n_mels, n_fft, sr, 20.0, 0.0)
    rows = []
    for j in range(n):
        frame = wave[j * hop: j * hop + win].copy()
        frame -= frame.mean()
        frame = frame - 0.97 * np.concatenate([frame[:1], frame[:-1]])
        spec = np.abs(np.fft.rfft(frame * window, n_fft)) ** 2
        rows.append(np.log(np.maximum(banks @ spec, np.finfo(np.float32).eps)))
    return np.array(rows).reshape(n, n_mels)


def naive_centered_power(x, n_fft, win_length, hop, window):
    pad = n_fft // 2
    x = np.pad(np.asarray(x, float), pad, mode="reflect")
    w = np.zeros(n_fft)
    off = (n_fft - win_length) // 2
    w[off: off + win_length] = window
    n = 1 + (len(x) - n_fft) // hop
    return np.stack([np.abs(np.fft.rfft(x[j * hop: j * hop + n_fft] * w)) ** 2 for j in range(n)], 1)


def hann(n, periodic):
    m = n if periodic else n - 1
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / m)


# ------------------------------------------------------------------- front-ends


def test_kaldi_mel_banks_match_naive():
    for args in [(128, 512, 16000, 20.0, 0.0), (128, 1024, 32000, 0.0, 15000.0), (128, 512, 16000, 0.0, 7000.0)]:
        np.testing.assert_allclose(kaldi_mel_banks(*args).numpy(), naive_kaldi_banks(*args), atol=2e-5)


def test_slaney_mel_banks_match_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=50, fmax=8000, htk=False, norm="slaney")
    np.testing.assert_allclose(slaney_mel_banks(80, 400, 16000, 50, 8000).numpy(), ref, atol=1e-6)


def test_htk_mel_banks_match_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=60, fmax=7800, htk=True, norm=None)
    np.testing.assert_allclose(htk_mel_banks(64, 1024, 16000, 60.0, 7800.0).numpy(), ref, atol=1e-5)


@settings(deadline=None, max_examples=5)
@given(st.integers(0, 2000), st.integers(0, 2**16))
def test_kaldi_fbank_matches_naive(n, seed):
    wave = np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 1000
    ours = KaldiFbank()(torch.from_numpy(wave)[None])[0].numpy()
    ref = naive_fbank(wave)
    assert ours.shape == ref.shape == (KaldiFbank().n_frames(n), 128)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("kind", ["passt", "fpasst", "m2d"])
def test_mel_front_ends_match_naive(kind):
    rng = np.random.default_rng(0)
    if kind == "passt":
        mod, sr = PasstMel(), 32000
        x = rng.standard_normal(9000)
        y = x[1:] - 0.97 * x[:-1]
        power = naive_centered_power(y, 1024, 800, 320, hann(800, False))
        ref = (np.log(naive_kaldi_banks(128, 1024, sr, 0, 15000) @ power + 1e-5) + 4.5) / 5
    elif kind == "fpasst":
        mod, sr = PasstMel(16000, 512, 400, 160, 128, 0.0, 7000.0, periodic_window=True, log_offset=None), 16000
        x = rng.standard_normal(5000)
        y = x[1:] - 0.97 * x[:-1]
        power = naive_centered_power(y, 512, 400, 160, hann(400, True))
        ref = (np.log(np.maximum(naive_kaldi_banks(128, 512, sr, 0, 7000) @ power, 1e-7)) + 4.5) / 5
    else:
        mod = M2DMel()
        x = rng.standard_normal(5000)
        power = naive_centered_power(x, 400, 400, 160, hann(400, True))
        ref = np.log(slaney_mel_banks(80, 400, 16000, 50, 8000).double().numpy() @ power
                     + np.finfo(np.float32).eps)
    ours = mod(torch.tensor(x, dtype=torch.float32)[None])[0].numpy()
    assert ours.shape == ref.shape
    assert ours.shape[1] == mod.n_frames(len(x))
    np.testing.assert_allclose(ours, ref, atol=5e-3, rtol=1e-3)


# ------------------------------------------------------- full-size key layouts


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_beats_full_size_layout():
    with torch.device("meta"):
        sd = _shapes(BEATsModel({**BEATS_ITER3_CONFIG, "finetuned_model": True}))
    assert sd["patch_embedding.weight"] == (512, 1, 16, 16)
    assert "patch_embedding.bias" not in sd  # conv_bias=False
    assert sd["layer_norm.weight"] == (512,)
    assert sd["post_extract_proj.weight"] == (768, 512)
    assert sd["encoder.pos_conv.0.weight_g"] == (1, 1, 128)
    assert sd["encoder.pos_conv.0.weight_v"] == (768, 48, 128)
    assert sd["encoder.pos_conv.0.bias"] == (768,)
    assert sd["encoder.layer_norm.weight"] == (768,)
    assert sd["predictor.weight"] == (527, 768)
    per_layer = {
        "self_attn.k_proj.weight": (768, 768), "self_attn.k_proj.bias": (768,),
        "self_attn.v_proj.weight": (768, 768), "self_attn.v_proj.bias": (768,),
        "self_attn.q_proj.weight": (768, 768), "self_attn.q_proj.bias": (768,),
        "self_attn.out_proj.weight": (768, 768), "self_attn.out_proj.bias": (768,),
        "self_attn.relative_attention_bias.weight": (320, 12),
        "self_attn.grep_linear.weight": (8, 64), "self_attn.grep_linear.bias": (8,),
        "self_attn.grep_a": (1, 12, 1, 1),
        "self_attn_layer_norm.weight": (768,), "self_attn_layer_norm.bias": (768,),
        "fc1.weight": (3072, 768), "fc1.bias": (3072,), "fc2.weight": (768, 3072), "fc2.bias": (768,),
        "final_layer_norm.weight": (768,), "final_layer_norm.bias": (768,),
    }
    for i in range(12):
        for k, shape in per_layer.items():
            assert sd.pop(f"encoder.layers.{i}.{k}") == shape
    rest = {"patch_embedding.weight", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
            "post_extract_proj.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
            "encoder.pos_conv.0.bias", "encoder.layer_norm.weight", "encoder.layer_norm.bias",
            "predictor.weight", "predictor.bias"}
    assert set(sd) == rest


def _vit_block_keys(sd, prefix, depth, dim=768):
    for i in range(depth):
        for k, shape in {"norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * dim, dim),
                         "attn.qkv.bias": (3 * dim,), "attn.proj.weight": (dim, dim),
                         "attn.proj.bias": (dim,), "norm2.weight": (dim,), "norm2.bias": (dim,),
                         "mlp.fc1.weight": (4 * dim, dim), "mlp.fc1.bias": (4 * dim,),
                         "mlp.fc2.weight": (dim, 4 * dim), "mlp.fc2.bias": (dim,)}.items():
            assert sd.pop(f"{prefix}{i}.{k}") == shape


def test_passt_and_fpasst_full_size_layout():
    with torch.device("meta"):
        passt, fpasst = _shapes(PaSSTModel()), _shapes(FPaSSTModel())
    common = {"cls_token": (1, 1, 768), "dist_token": (1, 1, 768), "new_pos_embed": (1, 2, 768),
              "norm.weight": (768,), "norm.bias": (768,)}
    expected_passt = {**common, "freq_new_pos_embed": (1, 768, 12, 1), "time_new_pos_embed": (1, 768, 1, 99),
                      "patch_embed.proj.weight": (768, 1, 16, 16), "patch_embed.proj.bias": (768,),
                      "head.0.weight": (768,), "head.0.bias": (768,), "head.1.weight": (527, 768),
                      "head.1.bias": (527,), "head_dist.weight": (527, 768), "head_dist.bias": (527,)}
    expected_fpasst = {**common, "freq_new_pos_embed": (1, 768, 1, 1), "time_new_pos_embed": (1, 768, 1, 250),
                       "patch_embed.proj.weight": (768, 16, 128, 2), "patch_embed.proj.bias": (768,),
                       "conv_in_1.weight": (16, 1, 3, 3), "conv_in_1.bias": (16,),
                       "conv_in_2.weight": (32, 16, 3, 3), "conv_in_2.bias": (32,),
                       "conv_in_3.weight": (64, 32, 3, 3), "conv_in_3.bias": (64,)}
    for sd, expected in [(passt, expected_passt), (fpasst, expected_fpasst)]:
        _vit_block_keys(sd, "blocks.", 12)
        assert sd == expected


def test_m2d_full_size_layout():
    with torch.device("meta"):
        sd = _shapes(M2DModel())
    _vit_block_keys(sd, "blocks.", 12)
    assert sd == {"cls_token": (1, 1, 768), "pos_embed": (1, 311, 768), "patch_embed.proj.weight": (768, 1, 16, 16),
                  "patch_embed.proj.bias": (768,), "norm.weight": (768,), "norm.bias": (768,), "norm_stats": (2,)}
    assert m2d_input_frames("x/m2d_clap_vit_base-80x608p16x16-240128/checkpoint-300.pth", 38) == 608
    with pytest.raises(ValueError, match="32 kHz"):
        m2d_input_frames("m2d_as_vit_base-80x1001p16x16p32k-240413_AS-FT_enconly/w.pth", 62)


# --------------------------------------------- random checkpoints in official layouts

TINY_BEATS = {**BEATS_ITER3_CONFIG, "encoder_layers": 2, "encoder_embed_dim": 32, "embed_dim": 16,
              "encoder_ffn_embed_dim": 32, "encoder_attention_heads": 4, "conv_pos": 8,
              "conv_pos_groups": 4, "num_buckets": 16, "max_distance": 40}


def _beats_ckpt(path, cfg=TINY_BEATS):
    torch.manual_seed(1)
    torch.save({"cfg": cfg, "model": BEATsModel(cfg).state_dict()}, path)
    return path


def _passt_ckpt(path, cls, depth=1, dim=32, wrap=False):
    torch.manual_seed(2)
    model = cls(depth=depth, dim=dim, heads=max(1, dim // 64))
    sd = model.state_dict()
    if wrap:  # PretrainedSED's layout: encoder under "model.", heads next to it
        sd = {"model." + k: v for k, v in sd.items()}
        sd["weak_head.weight"], sd["weak_head.bias"] = torch.zeros(527, dim), torch.zeros(527)
    torch.save(sd, path)
    return path


def _m2d_ckpt(folder, depth=1, dim=64):
    torch.manual_seed(3)
    folder = folder / "m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly"
    folder.mkdir()
    sd = M2DModel(depth=depth, dim=dim, heads=1).state_dict()
    sd["norm_stats"] = torch.tensor([-6.0, 3.5])
    sd["audio_proj.0.weight"] = torch.zeros(dim, dim)  # CLAP branch: ignored
    sd["text_proj.weight"] = torch.zeros(dim, dim)
    path = folder / "weights_ep67it3124-0.47898.pth"
    torch.save({"model": sd}, path)
    return path


def _clips(seconds, sr, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(max(1, int(s * sr))).astype(np.float32), sr) for s in seconds]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    return {
        "beats": _beats_ckpt(d / "BEATs_iter3_plus_AS2M.pt"),
        "passt": _passt_ckpt(d / "passt-s-kd-ap.486.pt", PaSSTModel),
        "fpasst": _passt_ckpt(d / "fpasst_weak.pt", FPaSSTModel, wrap=True),
        "m2d": _m2d_ckpt(d),
    }


EMBEDDERS = {"beats": BEATsEmbedder, "passt": PasstEmbedder, "fpasst": FPasstEmbedder, "m2d": M2DEmbedder}


def expected_frames(kind, n):
    """Frames per clip of ``n`` samples at the backbone's rate (independent formulas)."""
    if kind == "beats":
        pieces = [min(160000, n - a) for a in range(0, n, 160000)]
        return sum(max(1, ((p - 400) // 160 + 1 if p >= 400 else 0) // 16) for p in pieces)
    if kind == "passt":
        return math.ceil(n / 320000)
    if kind == "fpasst":
        return sum(math.ceil(min(160000, n - a) / 640) for a in range(0, n, 160000))
    n_mel = 1 + max(n, 201) // 160  # m2d: units of 1001 mel frames
    full, rest = divmod(n_mel, 1001)
    return full * 62 + (min(62, math.ceil(rest / 16)) if rest else 0)


RATES = {"beats": 16000, "passt": 32000, "fpasst": 16000, "m2d": 16000}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(EMBEDDERS))
def test_checkpoint_loads_and_frame_counts(kind, ckpts):
    emb = EMBEDDERS[kind](checkpoint=ckpts[kind], batch_size=2).fit()
    sr = RATES[kind]
    seconds = [0.01, 1.0, 10.0, 30.0]
    out = emb.transform(_clips(seconds, sr))
    assert out.lengths.tolist() == [expected_frames(kind, int(s * sr)) for s in seconds]
    assert np.isfinite(out.values).all()
    hop = emb.frame_hop_
    if hop is not None:  # frame times: consecutive hops inside each window
        t = out.frame_times(1)
        np.testing.assert_allclose(t[:, 0], np.arange(len(t)) * hop, atol=1e-9)


@pytest.mark.parametrize("kind", list(EMBEDDERS))
def test_batch_composition_and_padding_do_not_matter(kind, ckpts):
    sr = RATES[kind]
    clips = _clips([0.3, 2.7, 0.05, 1.3], sr, seed=1)
    together = EMBEDDERS[kind](checkpoint=ckpts[kind], batch_size=4).fit().transform(clips)
    alone = EMBEDDERS[kind](checkpoint=ckpts[kind], batch_size=1).fit().transform(clips)
    assert together.lengths.tolist() == alone.lengths.tolist()
    assert together.lengths.tolist() == [expected_frames(kind, len(w)) for w, _ in clips]
    np.testing.assert_allclose(together.values, alone.values, atol=2e-4, rtol=1e-4)
    again = EMBEDDERS[kind](checkpoint=ckpts[kind], batch_size=4).fit().transform(clips)
    np.testing.assert_array_equal(together.values, again.values)  # deterministic


def test_beats_module_matches_embedder_and_random_state(ckpts):
    ckpt = torch.load(ckpts["beats"], weights_only=True)
    model = BEATsModel(ckpt["cfg"])
    model.load_state_dict(ckpt["model"])
    wave = _clips([1.0], 16000)[0][0]
    frames, mask = model.eval()(torch.from_numpy(wave)[None])
    out = BEATsEmbedder(checkpoint=ckpts["beats"]).fit().transform([(wave, 16000)])
    np.testing.assert_allclose(out.values, frames[0][mask[0]].detach().numpy(), atol=1e-5)
    a = BEATsEmbedder(model_config={"encoder_layers": 1}, random_state=3).fit().transform([(wave, 16000)])
    b = BEATsEmbedder(model_config={"encoder_layers": 1}, random_state=3).fit().transform([(wave, 16000)])
    c = BEATsEmbedder(model_config={"encoder_layers": 1}, random_state=4).fit().transform([(wave, 16000)])
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 400000))
def test_beats_frame_counts_formula(n):
    fb = KaldiFbank().n_frames(n)
    assert int(beats_frame_counts([n])[0]) == max(1, fb // 16)
    assert M2DModel(depth=0, dim=8, heads=1).n_frames(n) == expected_frames("m2d", n)


# ----------------------------------------------------------------- errors


def _mutate(path, tmp_path, fn, name="bad.pt"):
    obj = torch.load(path, weights_only=True)
    fn(obj)
    out = tmp_path / name
    torch.save(obj, out)
    return out


@pytest.mark.parametrize("kind", list(EMBEDDERS))
def test_wrong_keys_give_clear_error(kind, ckpts, tmp_path):
    def change(obj):
        sd = obj["model"] if isinstance(obj.get("model"), dict) else obj
        prefix = "model." if kind == "fpasst" else ""
        missing = prefix + ("encoder.layer_norm.weight" if kind == "beats" else "norm.weight")
        del sd[missing]
        sd[prefix + ("encoder.extra.weight" if kind == "beats" else "blocks.0.extra.weight")] = torch.zeros(3)
        shaped = prefix + ("encoder.layers.0.fc1.bias" if kind == "beats" else "blocks.0.mlp.fc1.bias")
        sd[shaped] = torch.zeros(5)

    bad = _mutate(ckpts[kind], tmp_path, change)
    with pytest.raises(CheckpointError) as info:
        EMBEDDERS[kind](checkpoint=bad).fit()
    msg = str(info.value)
    assert "Missing keys" in msg and "norm.weight" in msg
    assert "Unexpected keys" in msg and "extra.weight" in msg
    assert "Shape mismatches" in msg and "fc1.bias" in msg


def test_checkpoint_errors(ckpts, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        BEATsEmbedder(checkpoint=tmp_path / "nope.pt").fit()
    flat = _mutate(ckpts["beats"], tmp_path, lambda o: o.pop("cfg"))
    with pytest.raises(CheckpointError, match="'cfg' and 'model'"):
        BEATsEmbedder(checkpoint=flat).fit()
    with pytest.raises(ValueError, match="model_config is only"):
        BEATsEmbedder(checkpoint=ckpts["beats"], model_config={"encoder_layers": 1}).fit()
    with pytest.raises(ValueError, match="unknown keys"):
        PasstEmbedder(model_config={"layers": 1}).fit()
    not_m2d = _mutate(ckpts["m2d"], tmp_path, lambda o: o["model"].pop("pos_embed"), "m2d.pth")
    with pytest.raises(CheckpointError, match="pos_embed"):
        M2DEmbedder(checkpoint=not_m2d).fit()
    with pytest.raises(ValueError, match="exceed"):
        PaSSTModel(depth=1, dim=32, heads=1).forward_clip(torch.zeros(1, 330000))


# ------------------------------------------- the paper's pooled dimensions (Table 2)


def _full_dim_ckpt(kind, tmp_path):
    torch.manual_seed(0)
    if kind == "beats":
        cfg = {**BEATS_ITER3_CONFIG, "encoder_layers": 1, "finetuned_model": True}
        path = tmp_path / "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt"
        torch.save({"cfg": cfg, "model": BEATsModel(cfg).state_dict()}, path)
        return path
    if kind == "m2d":
        return _m2d_ckpt(tmp_path, depth=1, dim=768)
    return _passt_ckpt(tmp_path / f"{kind}.pt", PaSSTModel if kind == "passt" else FPaSSTModel,
                       dim=768, wrap=kind == "fpasst")


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, pooling, dim",
    [
        ("beats", ChunkPooling(frame_stats=("mean", "max", "std"), stats=("max",)), 2304),  # BEATs AS2M
        ("beats", ChunkPooling(frame_stats=("mean", "std"), stats=("mean",)), 1536),  # BEATs AS2M FT1
        ("passt", ChunkPooling(stats=("max",)), 768),  # PaSST KD AudioSet
        ("fpasst", ChunkPooling(frame_stats=("mean", "max"), stats=("max", "std")), 3072),  # fPaSST weak
        ("m2d", SequencePooling(stats=("mean", "std")), 7680),  # M2D CLAP ViT-base
    ],
)
def test_paper_pooled_dimensions(kind, pooling, dim, tmp_path):
    emb = EMBEDDERS[kind](checkpoint=_full_dim_ckpt(kind, tmp_path)).fit()
    frames = emb.transform(_clips([0.01, 3.0, 12.0], RATES[kind]))
    X = pooling.fit_transform(frames)
    assert X.shape == (3, dim)
    assert np.isfinite(X).all()
    assert len(pooling.get_feature_names_out()) == dim


def test_passt_frames_output(ckpts):
    emb = PasstEmbedder(checkpoint=ckpts["passt"], output="frames", batch_size=3).fit()
    clips = _clips([0.01, 1.0, 10.0, 12.0], 32000)
    out = emb.transform(clips)
    naive = [sum(min(99, math.ceil(min(320000, len(w) - a) / 3200)) for a in range(0, len(w), 320000))
             for w, _ in clips]
    assert out.lengths.tolist() == naive == [1, 10, 99, 99 + 20]
    assert emb.frame_hop_ == 0.1 and out.dim == 32
    clip_level = PasstEmbedder(checkpoint=ckpts["passt"]).fit().transform(clips)
    assert clip_level.lengths.tolist() == [1, 1, 1, 2]
