"""Reading BSD metadata CSVs (BSD10k v1.0 / v1.2, BSD35k-CS, evaluation set)."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..taxonomy import check_taxonomy

__all__ = ["load_bsd_metadata", "AUDIO_EXTENSIONS", "index_audio_dir"]

#: Audio file extensions found by :func:`index_audio_dir`, in order of preference.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aiff", ".aif")

_ID_CANDIDATES = ("sound_id", "id", "clip_id", "fname", "filename", "file_name", "audio_id")
_LABEL_CANDIDATES = ("class", "label")
_PATH_CANDIDATES = ("audio_path", "filepath", "file_path", "path")


def _parse_tags(value) -> list[str]:
    """Tags as a list: from ``"a,b,c"``, ``"['a', 'b']"``, a list, or a missing value."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif _is_missing(value):
        return []
    else:
        text = str(value).strip()
        if not text:
            return []
        items = None
        if text[0] in "[(" and text[-1] in "])":
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, (list, tuple)):
                items = list(parsed)
        if items is None:
            items = text.split(",")
    return [str(t).strip() for t in items if str(t).strip()]


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _field_text(value) -> str:
    if _is_missing(value):
        return ""
    return str(value).strip()


def index_audio_dir(audio_dir, extensions=AUDIO_EXTENSIONS) -> dict[str, str]:
    """Map file stem → path for every audio file under ``audio_dir`` (recursive).

    When a stem exists with several extensions, the earlier extension in ``extensions``
    wins. The folder is walked once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn_mesh.datasets._metadata import index_audio_dir
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "12.wav").write_bytes(b""); _ = (d / "notes.txt").write_text("x")
    >>> sorted(index_audio_dir(d))
    ['12']
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"audio_dir {str(audio_dir)!r} is not a directory.")
    rank = {ext.lower(): i for i, ext in enumerate(extensions)}
    found: dict[str, tuple[int, str]] = {}
    for root, _, files in os.walk(audio_dir):
        for name in files:
            stem, ext = os.path.splitext(name)
            r = rank.get(ext.lower())
            if r is None:
                continue
            prev = found.get(stem)
            if prev is None or r < prev[0]:
                found[stem] = (r, os.path.join(root, name))
    return {stem: path for stem, (_, path) in found.items()}


def _strip_audio_ext(value: str) -> str:
    stem, ext = os.path.splitext(value)
    return stem if ext.lower() in AUDIO_EXTENSIONS else value


def _read_dtypes(text_fields, id_column):
    """Text fields as strings; id columns as raw strings (keeps ids such as ``"007"``)."""
    dtypes = {f: "string" for f in text_fields}
    for c in (id_column, *_ID_CANDIDATES):
        if c is not None:
            dtypes[c] = str
    return dtypes


def _normalise_ids(ids: pd.Series) -> pd.Series:
    """Integer ids (Freesound ``sound_id``) as int64 when every id is a canonical integer."""
    if ids.dtype.kind in "iu" or ids.isna().any():
        return ids
    text = ids.astype(str).str.strip()
    canonical = text.str.fullmatch(r"0|[1-9][0-9]{0,17}")
    if len(text) and bool(canonical.all()):
        return text.astype(np.int64)
    return text.astype(object)


def _resolve_csv(path) -> Path:
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*metadata*.csv"))
        if len(candidates) != 1:
            raise FileNotFoundError(
                f"{str(path)!r} is a folder; expected exactly one '*metadata*.csv' in it, "
                f"found {[c.name for c in candidates]}. Pass the CSV file itself."
            )
        return candidates[0]
    if not path.is_file():
        raise FileNotFoundError(f"Metadata file {str(path)!r} does not exist.")
    return path


def load_bsd_metadata(
    path,
    *,
    audio_dir=None,
    taxonomy=None,
    text_fields: Sequence[str] = ("title", "tags", "description"),
    text_sep: str = ". ",
    tag_sep: str = " ",
    unknown_labels: str = "raise",
    id_column: str | None = None,
    label_column: str | None = None,
    audio_column: str | None = None,
    missing_audio: str = "raise",
    audio_extensions: Sequence[str] = AUDIO_EXTENSIONS,
):
    """Load a BSD metadata CSV: labels, metadata text, confidence, ids and audio paths.

    Reads BSD10k v1.0 (``sound_id, class, class_idx, class_top, set, uploader, license,
    tags, title``), v1.2 (adds ``confidence`` and ``description``), BSD35k-CS (empty
    ``confidence``, ``*-other`` classes) and evaluation metadata (an id column, no labels).

    Parameters
    ----------
    path : str, path-like or pandas.DataFrame
        The CSV file, a folder holding exactly one ``*metadata*.csv``, or a DataFrame.
    audio_dir : str or path-like, default=None
        Folder searched (recursively, once) for ``<id>.<ext>`` audio files. Relative
        paths in an audio-path column are resolved against it (else the CSV's folder).
    taxonomy : Taxonomy, default=None
        Label space; ``None`` means :data:`~sklearn_mesh.taxonomy.BST` (23 classes). Use
        :data:`~sklearn_mesh.taxonomy.BST_FULL` to keep BSD35k-CS's ``*-other`` classes.
    text_fields : sequence of str, default=("title", "tags", "description")
        Columns joined into the metadata text; absent columns and empty values are
        skipped.
    text_sep : str, default=". "
        Separator between fields.
    tag_sep : str, default=" "
        Separator between tags (tags may be stored comma-separated or as a list literal).
    unknown_labels : {"raise", "drop"}, default="raise"
        Labels outside ``taxonomy`` (and missing labels) raise a ValueError naming them,
        or the rows are dropped and reported in ``dropped``.
    id_column : str, default=None
        Defaults to the first of ``sound_id, id, clip_id, fname, filename, file_name,
        audio_id`` present.
    label_column : str, default=None
        Defaults to ``class`` (or ``label``); no such column means unlabelled
        (evaluation) metadata and ``target=None``.
    audio_column : str, default=None
        Column with audio file paths; defaults to ``audio_path``/``filepath``/
        ``file_path``/``path`` when present, else paths are found in ``audio_dir``.
    missing_audio : {"raise", "drop", "ignore"}, default="raise"
        What to do with clips whose audio file cannot be found (only when audio paths
        are resolved): raise an error listing some of them, drop them (reported in
        ``dropped``), or keep them with a ``None`` path.
    audio_extensions : sequence of str
        Extensions searched in ``audio_dir``, in order of preference.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``frame`` (DataFrame with added ``text`` and ``audio_path`` columns), ``text``
        (list of str), ``target`` (object array of second-level labels, or None),
        ``target_top``, ``confidence`` (float array, NaN when empty, or None when the
        column is absent), ``ids``, ``id_column``, ``audio_paths`` (object array or None),
        ``taxonomy`` and ``dropped`` (DataFrame ``id, label, reason``).

    Examples
    --------
    >>> import io
    >>> from sklearn_mesh.datasets import load_bsd_metadata
    >>> csv = io.StringIO(
    ...     "sound_id,class,title,tags\\n1,fx-a,Dog bark,\\"dog,bark\\"\\n2,m-other,Tune,\\n"
    ... )
    >>> data = load_bsd_metadata(csv, unknown_labels="drop")
    >>> data.text, data.target.tolist(), data.dropped["reason"].tolist()
    (['Dog bark. dog bark'], ['fx-a'], ['unknown label'])
    """
    taxonomy = check_taxonomy(taxonomy)
    if unknown_labels not in ("raise", "drop"):
        raise ValueError(f"unknown_labels must be 'raise' or 'drop', got {unknown_labels!r}.")
    if missing_audio not in ("raise", "drop", "ignore"):
        raise ValueError(
            f"missing_audio must be 'raise', 'drop' or 'ignore', got {missing_audio!r}."
        )
    if isinstance(text_fields, str):
        text_fields = (text_fields,)

    csv_dir = None
    source = "the DataFrame"
    if isinstance(path, pd.DataFrame):
        frame = path.copy()
    elif hasattr(path, "read"):
        frame = pd.read_csv(path, dtype=_read_dtypes(text_fields, id_column))
        source = "the metadata"
    else:
        csv_path = _resolve_csv(path)
        csv_dir = csv_path.parent
        source = str(csv_path)
        frame = pd.read_csv(csv_path, dtype=_read_dtypes(text_fields, id_column))
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = list(frame.columns)

    # ---- ids
    if id_column is None:
        id_column = next((c for c in _ID_CANDIDATES if c in columns), None)
        if id_column is None:
            raise ValueError(
                f"{source}: no id column found (looked for {list(_ID_CANDIDATES)}); columns "
                f"are {columns}. Pass id_column=..."
            )
    elif id_column not in columns:
        raise ValueError(f"{source}: id_column {id_column!r} is missing; columns are {columns}.")
    if frame[id_column].isna().any():
        bad = np.flatnonzero(frame[id_column].isna().to_numpy())[:5].tolist()
        raise ValueError(f"{source}: the id column {id_column!r} is empty in rows {bad}.")
    frame[id_column] = _normalise_ids(frame[id_column])
    dup = frame[id_column][frame[id_column].duplicated(keep=False)]
    if len(dup):
        shown = pd.unique(dup)[:10].tolist()
        raise ValueError(
            f"{source}: {dup.nunique()} ids occur more than once in {id_column!r}, e.g. "
            f"{shown}. Ids must be unique."
        )

    # ---- labels
    if label_column is None:
        label_column = next((c for c in _LABEL_CANDIDATES if c in columns), None)
    elif label_column not in columns:
        raise ValueError(
            f"{source}: label_column {label_column!r} is missing; columns are {columns}."
        )
    dropped = []
    if label_column is not None:
        raw = frame[label_column]
        missing = raw.isna() | (raw.astype("string").str.strip() == "")
        labels = raw.astype("string").str.strip().fillna("")
        known = labels.isin(taxonomy.leaves) & ~missing
        if not known.all():
            bad_labels = labels[~known & ~missing]
            if unknown_labels == "raise":
                counts = bad_labels.value_counts()
                parts = [f"{k!r} ({v} rows)" for k, v in counts.items()]
                msg = f"{source}: "
                if len(counts):
                    msg += (
                        f"labels not in {taxonomy!r}: {', '.join(parts[:20])}"
                        + (f" and {len(parts) - 20} more" if len(parts) > 20 else "")
                        + ". "
                    )
                if missing.any():
                    msg += f"{int(missing.sum())} rows have no label. "
                msg += (
                    "Pass unknown_labels='drop' to drop those rows, or a taxonomy that "
                    "contains them (e.g. BST_FULL for the '*-other' classes)."
                )
                raise ValueError(msg)
            for i in np.flatnonzero(~known.to_numpy()):
                dropped.append(
                    (
                        frame[id_column].iat[i],
                        None if missing.iat[i] else labels.iat[i],
                        "missing label" if missing.iat[i] else "unknown label",
                    )
                )
            frame = frame[known.to_numpy()]
            labels = labels[known]
        frame = frame.assign(**{label_column: labels.astype(object).to_numpy()})
        if "class_top" in frame.columns:
            expected = taxonomy.to_top(frame[label_column].to_numpy())
            given = frame["class_top"].astype("string").str.strip().to_numpy(dtype=object)
            mismatch = (given != expected) & pd.notna(frame["class_top"]).to_numpy()
            if mismatch.any():
                i = int(np.flatnonzero(mismatch)[0])
                raise ValueError(
                    f"{source}: {int(mismatch.sum())} rows have a class_top that is not the "
                    f"parent of their class in {taxonomy!r}, e.g. id "
                    f"{frame[id_column].iat[i]!r}: class {frame[label_column].iat[i]!r}, "
                    f"class_top {given[i]!r}."
                )

    # ---- text
    present = [f for f in text_fields if f in frame.columns]
    per_field = []
    for f in present:
        if f == "tags":
            per_field.append([tag_sep.join(_parse_tags(v)) for v in frame[f].tolist()])
        else:
            per_field.append([_field_text(v) for v in frame[f].tolist()])
    if per_field:
        texts = [text_sep.join(p for p in parts if p) for parts in zip(*per_field)]
    else:
        texts = [""] * len(frame)

    # ---- confidence
    confidence = None
    if "confidence" in frame.columns:
        conf = pd.to_numeric(frame["confidence"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isnan(conf) & ((conf < 1) | (conf > 5))
        if bad.any():
            raise ValueError(
                f"{source}: confidence must lie in 1..5 (or be empty), got "
                f"{np.unique(conf[bad])[:5].tolist()}."
            )
        confidence = conf

    # ---- audio paths
    ids = frame[id_column].to_numpy()
    audio_paths = None
    if audio_column is None:
        audio_column = next((c for c in _PATH_CANDIDATES if c in frame.columns), None)
    elif audio_column not in frame.columns:
        raise ValueError(
            f"{source}: audio_column {audio_column!r} is missing; columns are "
            f"{list(frame.columns)}."
        )
    search_dir = None
    if audio_column is not None:
        base = Path(audio_dir) if audio_dir is not None else csv_dir
        paths = []
        for v in frame[audio_column].tolist():
            if _is_missing(v) or not str(v).strip():
                paths.append(None)
                continue
            p = Path(str(v).strip())
            if not p.is_absolute() and base is not None:
                p = base / p
            paths.append(str(p))
        exists = np.array([p is not None and os.path.isfile(p) for p in paths], dtype=bool)
        audio_paths = np.array(paths, dtype=object)
        search_dir = base
    elif audio_dir is not None:
        index = index_audio_dir(audio_dir, audio_extensions)
        keys = [_strip_audio_ext(str(i)) for i in ids]
        audio_paths = np.array([index.get(k) for k in keys], dtype=object)
        exists = np.array([p is not None for p in audio_paths], dtype=bool)
        search_dir = audio_dir
    if audio_paths is not None and not exists.all():
        n_missing = int((~exists).sum())
        if missing_audio == "raise":
            shown = [str(i) for i in ids[~exists][:5]]
            how = (
                f"column {audio_column!r}"
                if audio_column is not None
                else f"'<id><ext>' with ext in {list(audio_extensions)}"
            )
            raise FileNotFoundError(
                f"{n_missing} of {len(ids)} clips have no audio file in {str(search_dir)!r} "
                f"(looked for {how}); e.g. ids {shown}. Put the files there, fix audio_dir, "
                "or pass missing_audio='drop' (or 'ignore')."
            )
        if missing_audio == "drop":
            labs = frame[label_column].to_numpy() if label_column is not None else [None] * len(ids)
            for i in np.flatnonzero(~exists):
                dropped.append((ids[i], labs[i], "missing audio"))
            keep = exists
            frame = frame[keep]
            texts = [t for t, k in zip(texts, keep) if k]
            ids = ids[keep]
            audio_paths = audio_paths[keep]
            if confidence is not None:
                confidence = confidence[keep]
        else:
            audio_paths = np.where(exists, audio_paths, None).astype(object)

    frame = frame.reset_index(drop=True)
    frame["text"] = texts
    frame["audio_path"] = audio_paths if audio_paths is not None else None
    target = target_top = None
    if label_column is not None:
        target = frame[label_column].to_numpy(dtype=object)
        target_top = taxonomy.to_top(target) if len(target) else np.array([], dtype=object)
    dropped_frame = pd.DataFrame(dropped, columns=["id", "label", "reason"])
    return Bunch(
        frame=frame,
        text=list(texts),
        target=target,
        target_top=target_top,
        confidence=confidence,
        ids=ids,
        id_column=id_column,
        label_column=label_column,
        audio_paths=audio_paths,
        taxonomy=taxonomy,
        dropped=dropped_frame,
    )
