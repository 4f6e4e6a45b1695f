"""Audio and text embedders: raw clips / metadata text -> embeddings.

Audio embedders return a :class:`~sklearn_mesh.pooling.RaggedEmbeddings` (frames or
chunks per clip) to be pooled with :class:`~sklearn_mesh.pooling.SequencePooling` or
:class:`~sklearn_mesh.pooling.ChunkPooling`; text embedders return a 2-D array.

Names are imported lazily: a backbone's optional dependencies are only needed when it is
used.
"""

from importlib import import_module
from importlib.util import find_spec

# public name -> submodule of sklearn_mesh.embedders
_LAZY = {
    "TorchEmbedder": "base",
    "LogMelEmbedder": "logmel",
    "ClapAudioEmbedder": "clap",
    "ClapTextEmbedder": "clap",
    "SentenceTextEmbedder": "text",
    "PasstEmbedder": "passt",
    "FPasstEmbedder": "passt",
    "BEATsEmbedder": "beats",
    "M2DEmbedder": "m2d",
    "ATSTFrameEmbedder": "atst",
    "EfficientATEmbedder": "efficientat",
    "load_checkpoint": "_checkpoint",
    "load_state_dict_checked": "_checkpoint",
    "CheckpointError": "_checkpoint",
}

__all__ = list(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sklearn_mesh.embedders' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    # only names whose submodule exists (backbones are added by separate modules)
    present = {n for n, m in _LAZY.items() if find_spec(f"{__name__}.{m}") is not None}
    return sorted(set(globals()) | present)
