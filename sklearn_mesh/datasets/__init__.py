"""BSD metadata loaders, Zenodo fetchers and a synthetic heterogeneous audio set."""

from ._metadata import load_bsd_metadata
from ._synthetic import make_bst_audio

__all__ = ["load_bsd_metadata", "make_bst_audio"]
