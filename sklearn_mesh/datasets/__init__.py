"""BSD metadata loaders, Zenodo fetchers and a synthetic heterogeneous audio set.

- :func:`load_bsd_metadata` reads BSD10k v1.0 / v1.2, BSD35k-CS and evaluation
  metadata CSVs (labels, metadata text, confidence, ids, audio paths).
- :func:`fetch_bsd10k` / :func:`fetch_bsd35k_cs` download the public Zenodo records once
  (checksums, atomic and resumable writes) and load them from the cache.
- :func:`make_bst_audio` synthesises a heterogeneous audio set on the Broad Sound
  Taxonomy for demos and tests.
"""

from ._fetch import (
    ZENODO_RECORDS,
    DownloadError,
    RemoteFile,
    download_file,
    fetch_bsd10k,
    fetch_bsd35k_cs,
    get_data_home,
)
from ._metadata import AUDIO_EXTENSIONS, index_audio_dir, load_bsd_metadata
from ._synthetic import make_bst_audio

__all__ = [
    "load_bsd_metadata",
    "fetch_bsd10k",
    "fetch_bsd35k_cs",
    "make_bst_audio",
    "get_data_home",
    "download_file",
    "DownloadError",
    "RemoteFile",
    "ZENODO_RECORDS",
    "index_audio_dir",
    "AUDIO_EXTENSIONS",
]
