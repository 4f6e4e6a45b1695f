"""Native PyTorch implementations of the pretrained audio backbones MESH uses.

Pure ``torch.nn`` modules (no timm / torchaudio / hear21passt needed) that load the
checkpoints exactly as their authors release them; the embedders in
:mod:`sklearn_mesh.embedders` wrap them. Names are imported lazily.
"""

from importlib import import_module

# public name -> private submodule (one line per name; other backbones append lines)
_LAZY = {
    "kaldi_fbank": "_features",
    "htk_mel_banks": "_features",
    "kaldi_mel_banks": "_features",
    "slaney_mel_banks": "_features",
    "KaldiFbank": "_features",
    "PasstMel": "_features",
    "M2DMel": "_features",
    "BEATsModel": "_beats",
    "PaSSTModel": "_passt",
    "FPaSSTModel": "_passt",
    "M2DModel": "_m2d",
    "ATSTFrame": "_atst",
    "ATSTFrameEncoder": "_atst",
    "EfficientAT": "_efficientat",
    "MobileNetAudio": "_efficientat",
    "DynamicMobileNetAudio": "_efficientat",
}

__all__ = list(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sklearn_mesh.backbones' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
