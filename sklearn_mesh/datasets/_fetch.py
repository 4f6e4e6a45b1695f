"""Download-and-cache fetchers for the public BSD10k-v1.2 and BSD35k-CS Zenodo records.

Files are downloaded to ``<name>.part`` and renamed only after their checksum matched
(atomic: a cache never holds a half-written archive under its final name); an
interrupted download resumes with an HTTP ``Range`` request where the server supports
it. Archives are extracted into a temporary folder that is then moved into place.

Registry
--------
:data:`ZENODO_RECORDS` lists the records and files. Zenodo's API
(``https://zenodo.org/api/records/<id>``) publishes an MD5 and a size for every file; when
a registry entry has no pinned checksum, the fetcher reads it from that record at
download time and refuses a file whose checksum does not match. The BSD35k-CS
``metadata.zip`` / ``audio.zip`` checksums are pinned from values reported in public
third-party code, *not verified by us*; BSD10k-v1.2 checksums are not pinned. Override
any entry with the ``files`` argument (a mapping ``part -> RemoteFile``) or the API base
URL with ``base_url`` / the ``SKLEARN_MESH_ZENODO_API`` environment variable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from .._version import __version__
from ._metadata import load_bsd_metadata

__all__ = [
    "RemoteFile",
    "ZENODO_RECORDS",
    "get_data_home",
    "download_file",
    "fetch_bsd10k",
    "fetch_bsd35k_cs",
]

DEFAULT_API = "https://zenodo.org/api/records"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a Zenodo record.

    ``url=None`` means ``<api>/<record>/files/<name>/content``. ``md5`` / ``sha256`` /
    ``size`` pin the expected content; when all are ``None`` the MD5 and size are read
    from the record's API entry at download time.

    Examples
    --------
    >>> from sklearn_mesh.datasets import ZENODO_RECORDS, RemoteFile
    >>> ZENODO_RECORDS["bsd35k_cs"]["files"]["metadata"].size
    4374871
    >>> RemoteFile("metadata.zip", md5="0" * 32).url is None  # <api>/<record>/files/...
    True
    """

    name: str
    url: str | None = None
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None


#: Public records: BSD10k-v1.2 (concept DOI 10.5281/zenodo.17233904 → version record
#: 19868804) and BSD35k-CS (DOI 10.5281/zenodo.19187100).
ZENODO_RECORDS = {
    "bsd10k": {
        "record": "19868804",
        "doi": "10.5281/zenodo.19868804",
        "folder": "BSD10k-v1.2",
        "files": {
            "metadata": RemoteFile("metadata.zip"),
            "features": RemoteFile("features.zip"),
            "audio": RemoteFile("audio.zip"),
        },
    },
    "bsd35k_cs": {
        "record": "19187100",
        "doi": "10.5281/zenodo.19187100",
        "folder": "BSD35k-CS",
        "files": {
            # reported by public third-party code; not verified by us
            "metadata": RemoteFile(
                "metadata.zip",
                md5="9876254ce2ed845691a9a76efe13fe5a",
                size=4_374_871,
            ),
            "features": RemoteFile("features.zip"),
            "audio": RemoteFile(
                "audio.zip", md5="d47968c99ad4e93a081f380b2d273acd", size=35_091_942_026
            ),
        },
    },
}


def get_data_home(data_home=None) -> Path:
    """The cache folder: ``data_home``, else ``$SKLEARN_MESH_DATA``, else ``~/sklearn_mesh_data``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_mesh.datasets import get_data_home
    >>> get_data_home(os.path.join(tempfile.mkdtemp(), "my_cache")).name
    'my_cache'
    """
    if data_home is None:
        data_home = os.environ.get("SKLEARN_MESH_DATA", os.path.join("~", "sklearn_mesh_data"))
    path = Path(os.path.expanduser(str(data_home)))
    path.mkdir(parents=True, exist_ok=True)
    return path


class DownloadError(OSError):
    """A download failed (offline, HTTP error, interrupted transfer, checksum mismatch)."""


def _hash_file(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open(url, *, timeout, headers=None):
    req = urllib.request.Request(url, headers={"User-Agent": f"sklearn-mesh/{__version__}"})
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http(s) only)


def download_file(url, dest, *, md5=None, sha256=None, size=None, timeout=10.0, verbose=False):
    """Download ``url`` to ``dest`` atomically, resuming a previous ``dest.part``.

    The bytes go to ``dest + ".part"``; on success the checksum(s) are verified and the
    file is renamed to ``dest``. A ``.part`` left by an interrupted transfer is resumed
    with a ``Range`` request (restarted when the server ignores it). A checksum mismatch
    deletes the ``.part`` and raises.

    Raises
    ------
    DownloadError
        On network errors (after ``timeout`` seconds at most per socket operation),
        HTTP errors, truncated transfers and checksum mismatches.

    Examples
    --------
    A complete ``.part`` left by an earlier call is verified and renamed without any
    network access:

    >>> import hashlib, os, tempfile
    >>> from sklearn_mesh.datasets import download_file
    >>> dest = os.path.join(tempfile.mkdtemp(), "data.bin")
    >>> with open(dest + ".part", "wb") as fh:
    ...     _ = fh.write(b"abc")
    >>> md5 = hashlib.md5(b"abc").hexdigest()
    >>> download_file("https://example.org/data.bin", dest, md5=md5, size=3).name
    'data.bin'
    """
    if not str(url).startswith(("http://", "https://")):
        raise ValueError(f"Only http(s) URLs can be downloaded, got {url!r}.")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    complete = size is not None and have == size
    if not complete:
        headers = {"Range": f"bytes={have}-"} if have else None
        try:
            resp = _open(url, timeout=timeout, headers=headers)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to fetch: verify what we have
                resp = None
            else:
                raise DownloadError(
                    f"HTTP error {exc.code} downloading {url}: {exc.reason}"
                ) from exc
        except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"Could not connect to download {url}: {reason}") from exc
        if resp is not None:
            with resp:
                resumed = have > 0 and resp.status == 206
                mode = "ab" if resumed else "wb"
                if not resumed:
                    have = 0
                expected_len = resp.headers.get("Content-Length")
                got = 0
                try:
                    with open(part, mode) as fh:
                        while True:
                            block = resp.read(1 << 20)
                            if not block:
                                break
                            fh.write(block)
                            got += len(block)
                except (OSError, socket.timeout, TimeoutError, ValueError) as exc:
                    raise DownloadError(
                        f"Download of {url} was interrupted after {have + got} bytes ({exc}); "
                        f"the partial file {part} is kept: call again to resume."
                    ) from exc
                if expected_len is not None and got < int(expected_len):
                    raise DownloadError(
                        f"Download of {url} stopped after {have + got} bytes; the partial file "
                        f"{part} is kept: call again to resume."
                    )
    if not part.exists():
        raise DownloadError(f"Nothing was downloaded from {url}.")
    actual_size = part.stat().st_size
    problems = []
    if size is not None and actual_size != size:
        problems.append(f"size {actual_size} != expected {size}")
    if md5 is not None:
        got_md5 = _hash_file(part, "md5")
        if got_md5 != md5.lower():
            problems.append(f"md5 {got_md5} != expected {md5}")
    if sha256 is not None:
        got_sha = _hash_file(part, "sha256")
        if got_sha != sha256.lower():
            problems.append(f"sha256 {got_sha} != expected {sha256}")
    if problems:
        part.unlink()
        raise DownloadError(
            f"Checksum mismatch for {url}: {'; '.join(problems)}. The download was deleted; "
            "call again to retry, or check the registry entry (sklearn_mesh.datasets."
            "ZENODO_RECORDS)."
        )
    os.replace(part, dest)
    if verbose:
        print(f"downloaded {url} -> {dest} ({actual_size} bytes)", file=sys.stderr)
    return dest


def _api_base(base_url):
    return (base_url or os.environ.get("SKLEARN_MESH_ZENODO_API") or DEFAULT_API).rstrip("/")


def _record_files(api, record, timeout):
    """``name -> (md5, size)`` from a Zenodo record's API JSON."""
    url = f"{api}/{record}"
    try:
        with _open(url, timeout=timeout) as resp:
            info = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP error {exc.code} reading the record {url}.") from exc
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"Could not read the record {url}: {reason}") from exc
    out = {}
    for entry in info.get("files", []):
        checksum = str(entry.get("checksum", ""))
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else None
        out[entry.get("key")] = (md5, entry.get("size"))
    return out


_PART_LAYOUT = {
    "metadata": "a '*metadata*.csv' file (e.g. metadata/BSD10k_metadata.csv)",
    "features": "a 'features/' folder",
    "audio": "an 'audio/' folder with '<sound_id>.wav' files",
}


def _part_present(root: Path, part: str) -> bool:
    if part == "metadata":
        return _find_metadata(root) is not None
    folder = root / part
    return folder.is_dir() and any(folder.iterdir())


def _find_metadata(root: Path):
    if not root.is_dir():
        return None
    hits = sorted(p for p in root.rglob("*metadata*.csv") if not p.name.startswith("."))
    return hits[0] if hits else None


def _extract(archive: Path, root: Path):
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (tmp / member).resolve()
                if not str(target).startswith(str(tmp.resolve())):
                    raise DownloadError(f"Refusing to extract {member!r} outside {root}.")
            zf.extractall(tmp)
        for item in tmp.iterdir():
            dest = root / item.name
            if dest.exists():
                if dest.is_dir() and item.is_dir():
                    for sub in item.iterdir():
                        os.replace(sub, dest / sub.name)
                    continue
                if dest.is_dir():
                    shutil.rmtree(dest)
                else:
                    dest.unlink()
            os.replace(item, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(
    key,
    *,
    data_home,
    download_if_missing,
    parts,
    files,
    base_url,
    timeout,
    keep_archives,
    verbose,
):
    spec = ZENODO_RECORDS[key]
    registry = dict(spec["files"])
    if files:
        for part, rf in files.items():
            registry[part] = rf if isinstance(rf, RemoteFile) else RemoteFile(**rf)
    if isinstance(parts, str):
        parts = (parts,)
    unknown = sorted(set(parts) - set(registry))
    if unknown:
        raise ValueError(f"Unknown parts {unknown}; choose from {sorted(registry)}.")
    root = get_data_home(data_home) / spec["folder"]
    root.mkdir(parents=True, exist_ok=True)
    record = spec["record"]
    api = _api_base(base_url)
    missing = [p for p in parts if not _part_present(root, p)]
    manual = (
        f"Download them by hand from https://doi.org/{spec['doi']} (files: "
        + ", ".join(registry[p].name for p in missing)
        + f") and extract them into {root} so that it holds "
        + "; ".join(_PART_LAYOUT.get(p, p) for p in missing)
        + ". Then call again (with download_if_missing=False to stay offline)."
    )
    if missing and not download_if_missing:
        raise FileNotFoundError(
            f"{key}: {missing} not found in {root} and download_if_missing=False. {manual}"
        )
    if missing:
        needs_record = [
            p for p in missing if registry[p].md5 is None and registry[p].sha256 is None
        ]
        try:
            remote = _record_files(api, record, timeout) if needs_record else {}
            for p in missing:
                rf = registry[p]
                if p in needs_record:
                    if rf.name not in remote:
                        raise DownloadError(
                            f"The record {api}/{record} has no file {rf.name!r} "
                            f"(it has {sorted(remote)})."
                        )
                    md5, size = remote[rf.name]
                    if md5 is None:
                        raise DownloadError(
                            f"The record {api}/{record} gives no MD5 for {rf.name!r}; pin a "
                            "checksum with files={part: RemoteFile(..., sha256=...)}."
                        )
                    rf = replace(rf, md5=md5, size=rf.size if rf.size is not None else size)
                url = rf.url or f"{api}/{record}/files/{rf.name}/content"
                archive = root / "downloads" / rf.name
                if not archive.exists():
                    download_file(
                        url,
                        archive,
                        md5=rf.md5,
                        sha256=rf.sha256,
                        size=rf.size,
                        timeout=timeout,
                        verbose=verbose,
                    )
                if archive.suffix == ".zip":
                    _extract(archive, root)
                    if not keep_archives:
                        archive.unlink()
                else:
                    os.replace(archive, root / rf.name)
        except DownloadError as exc:
            raise DownloadError(f"{key}: {exc} {manual}") from exc
    return root


def _fetch_and_load(key, *, data_home, download_if_missing, parts, files, base_url, timeout,
                    keep_archives, verbose, load_kwargs):
    root = _fetch(
        key,
        data_home=data_home,
        download_if_missing=download_if_missing,
        parts=parts,
        files=files,
        base_url=base_url,
        timeout=timeout,
        keep_archives=keep_archives,
        verbose=verbose,
    )
    metadata_path = _find_metadata(root)
    if metadata_path is None:
        raise FileNotFoundError(
            f"{key}: no '*metadata*.csv' under {root}; fetch with parts including 'metadata' "
            "or put the metadata CSV there."
        )
    audio_dir = root / "audio"
    use_audio = "audio" in parts and audio_dir.is_dir()
    data = load_bsd_metadata(
        metadata_path, audio_dir=audio_dir if use_audio else None, **load_kwargs
    )
    data.data_dir = str(root)
    data.metadata_path = str(metadata_path)
    data.audio_dir = str(audio_dir) if use_audio else None
    features = root / "features"
    data.features_dir = str(features) if features.is_dir() else None
    return data


def fetch_bsd10k(
    data_home=None,
    download_if_missing=True,
    *,
    parts=("metadata",),
    taxonomy=None,
    unknown_labels="raise",
    files=None,
    base_url=None,
    timeout=10.0,
    keep_archives=False,
    verbose=True,
    **load_kwargs,
):
    """Fetch (download once, then cache) BSD10k-v1.2 and load its metadata.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder (see :func:`get_data_home`); the data goes to
        ``<data_home>/BSD10k-v1.2``.
    download_if_missing : bool, default=True
        If False, missing files raise ``FileNotFoundError`` telling where to put them.
    parts : sequence of {"metadata", "features", "audio"}, default=("metadata",)
        What to fetch. ``"audio"`` is about 7 GB.
    taxonomy, unknown_labels, **load_kwargs :
        Passed to :func:`load_bsd_metadata`.
    files : mapping of part to RemoteFile, optional
        Override registry entries (URL, checksums).
    base_url : str, optional
        Zenodo API base (default ``$SKLEARN_MESH_ZENODO_API`` or
        ``https://zenodo.org/api/records``).
    timeout : float, default=10
        Seconds per network operation; offline, the call fails after at most this long.
    keep_archives : bool, default=False
        Keep the downloaded zip files in ``<folder>/downloads``.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_bsd_metadata`, plus ``data_dir``, ``metadata_path``,
        ``audio_dir`` and ``features_dir``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_mesh.datasets import fetch_bsd10k
    >>> fetch_bsd10k(tempfile.mkdtemp(), download_if_missing=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: bsd10k: ['metadata'] not found in ...
    """
    return _fetch_and_load(
        "bsd10k",
        data_home=data_home,
        download_if_missing=download_if_missing,
        parts=parts,
        files=files,
        base_url=base_url,
        timeout=timeout,
        keep_archives=keep_archives,
        verbose=verbose,
        load_kwargs=dict(taxonomy=taxonomy, unknown_labels=unknown_labels, **load_kwargs),
    )


def fetch_bsd35k_cs(
    data_home=None,
    download_if_missing=True,
    *,
    parts=("metadata",),
    taxonomy=None,
    unknown_labels="drop",
    files=None,
    base_url=None,
    timeout=10.0,
    keep_archives=False,
    verbose=True,
    **load_kwargs,
):
    """Fetch (download once, then cache) the crowd-sourced BSD35k-CS and load its metadata.

    Same arguments as :func:`fetch_bsd10k`; the data goes to ``<data_home>/BSD35k-CS``.
    By default the ``*-other`` / ``fx-d`` clips are dropped (``unknown_labels="drop"``
    with ``taxonomy=None`` = BST, as the official baseline does; see ``dropped``); pass
    ``taxonomy=BST_FULL`` to keep them. ``"audio"`` is about 35 GB.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_mesh.datasets import fetch_bsd35k_cs
    >>> fetch_bsd35k_cs(tempfile.mkdtemp(), download_if_missing=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: bsd35k_cs: ['metadata'] not found in ...
    """
    return _fetch_and_load(
        "bsd35k_cs",
        data_home=data_home,
        download_if_missing=download_if_missing,
        parts=parts,
        files=files,
        base_url=base_url,
        timeout=timeout,
        keep_archives=keep_archives,
        verbose=verbose,
        load_kwargs=dict(taxonomy=taxonomy, unknown_labels=unknown_labels, **load_kwargs),
    )
