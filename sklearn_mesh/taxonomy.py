"""Two-level class hierarchies, and the Broad Sound Taxonomy (BST).

A :class:`Taxonomy` holds an ordered set of second-level classes (*leaves*), each with
exactly one top-level parent. The leaf order is the class order of every estimator in
this package (``classes_``, probability columns), so two models built on the same
taxonomy always agree on column order.

Policy for ``*-other`` classes
------------------------------
The BSD10k label space (:data:`BST`, 23 leaves) has no ``*-other`` classes and no
``fx-d``; the crowd-sourced BSD35k-CS set uses them. The official baseline drops those
clips, and so do our loaders by default (``unknown_labels="drop"`` in
:func:`sklearn_mesh.datasets.load_bsd_metadata` with ``taxonomy=BST``). To keep them,
use :data:`BST_FULL` (29 leaves) or ``Taxonomy.from_csv(path, other="keep")``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from os import PathLike

import numpy as np

__all__ = ["Taxonomy", "BST", "BST_FULL"]


class Taxonomy:
    """An immutable two-level hierarchy with a stable class order.

    Parameters
    ----------
    parent_of : mapping of str to str
        Second-level class → its top-level class, in the desired class order.
    top_order : sequence of str, optional
        Order of the top-level classes; defaults to first appearance in ``parent_of``.
    names : mapping of str to str, optional
        Human-readable names of leaves and tops.
    descriptions : mapping of str to str, optional
        Descriptions of the leaves.
    name : str, default=""
        A short name for the taxonomy (shown in ``repr``).

    Examples
    --------
    >>> from sklearn_mesh.taxonomy import Taxonomy
    >>> tax = Taxonomy.from_mapping({"a": ["a-1", "a-2"], "b": ["b-1"]})
    >>> tax.leaves, tax.tops
    (('a-1', 'a-2', 'b-1'), ('a', 'b'))
    >>> tax.parent_of["b-1"]
    'b'
    >>> tax.encode(["b-1", "a-1"]).tolist()
    [2, 0]
    """

    def __init__(
        self,
        parent_of: Mapping[str, str],
        *,
        top_order: Iterable[str] | None = None,
        names: Mapping[str, str] | None = None,
        descriptions: Mapping[str, str] | None = None,
        name: str = "",
    ):
        if not parent_of:
            raise ValueError("A taxonomy needs at least one second-level class.")
        leaves = tuple(str(k) for k in parent_of)
        if len(set(leaves)) != len(leaves):
            raise ValueError("Second-level class keys must be unique.")
        seen_tops = list(dict.fromkeys(str(v) for v in parent_of.values()))
        if top_order is None:
            tops = tuple(seen_tops)
        else:
            tops = tuple(str(t) for t in top_order)
            missing = sorted(set(seen_tops) - set(tops))
            if missing:
                raise ValueError(f"top_order lacks the top-level classes {missing}.")
            tops = tuple(t for t in tops if t in set(seen_tops))
        overlap = sorted(set(leaves) & set(tops))
        if overlap:
            raise ValueError(f"Keys used both as top-level and second-level class: {overlap}.")
        self._leaves = leaves
        self._tops = tops
        self._parent_of = {str(k): str(v) for k, v in parent_of.items()}
        self._names = dict(names or {})
        self._descriptions = dict(descriptions or {})
        self.name = name
        self._leaf_index = {k: i for i, k in enumerate(leaves)}
        self._top_index = {t: i for i, t in enumerate(tops)}
        parent_idx = np.array([self._top_index[self._parent_of[k]] for k in leaves], dtype=np.intp)
        parent_idx.setflags(write=False)
        self._parent_index = parent_idx

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_mapping(cls, children: Mapping[str, Iterable[str]], **kwargs) -> Taxonomy:
        """Build from ``{top: [leaf, ...]}``; leaves are ordered top by top."""
        parent_of = {leaf: top for top, kids in children.items() for leaf in kids}
        kwargs.setdefault("top_order", list(children))
        return cls(parent_of, **kwargs)

    @classmethod
    def from_csv(
        cls,
        path: str | PathLike,
        *,
        other: str = "drop",
        extra_classes: Iterable[str] = ("fx-d",),
        name: str = "",
    ) -> Taxonomy:
        """Read the BSD ``taxonomy.csv`` format.

        Columns ``ClassKey, ClassName, TopLevel, Description[, Examples]``. The top-level
        key is the prefix of ``ClassKey`` before the first ``-``; ``TopLevel`` is its name.

        Parameters
        ----------
        other : {"drop", "keep"}, default="drop"
            ``"drop"`` leaves out the classes outside the BSD10k label space: every
            ``*-other`` class and ``extra_classes``. ``"keep"`` keeps every row, with
            those classes moved after the others (so the first leaves, and their
            indices, are the same under both policies). On the official CSV this gives
            :data:`BST` and :data:`BST_FULL` respectively.
        extra_classes : iterable of str, default=("fx-d",)
            Classes treated like ``*-other`` classes (crowd-sourced data only).

        Examples
        --------
        >>> import io, tempfile, os
        >>> from sklearn_mesh.taxonomy import Taxonomy
        >>> text = "ClassKey,ClassName,TopLevel\\na-x,X,A\\na-other,Other,A\\nb-y,Y,B\\n"
        >>> path = os.path.join(tempfile.mkdtemp(), "tax.csv")
        >>> _ = open(path, "w").write(text)
        >>> Taxonomy.from_csv(path).leaves, Taxonomy.from_csv(path, other="keep").leaves
        (('a-x', 'b-y'), ('a-x', 'b-y', 'a-other'))
        """
        if other not in ("drop", "keep"):
            raise ValueError(f"other must be 'drop' or 'keep', got {other!r}.")
        extra = set(extra_classes)
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        needed = {"ClassKey", "ClassName", "TopLevel"}
        if not rows or not needed <= set(rows[0]):
            have = sorted(rows[0]) if rows else []
            raise ValueError(
                f"{path}: a taxonomy CSV needs the columns {sorted(needed)}; found {have}."
            )
        main, tail, names, descriptions, tops = {}, {}, {}, {}, []
        for row in rows:
            key = row["ClassKey"].strip()
            if "-" not in key:
                raise ValueError(f"{path}: class key {key!r} has no '<top>-' prefix.")
            if key in main or key in tail:
                raise ValueError(f"{path}: class key {key!r} appears twice.")
            top = key.split("-", 1)[0]
            if top not in tops:
                tops.append(top)
            is_extra = key.endswith("-other") or key in extra
            if is_extra and other == "drop":
                continue
            (tail if is_extra else main)[key] = top
            names[key] = row["ClassName"].strip()
            names.setdefault(top, row["TopLevel"].strip())
            descriptions[key] = (row.get("Description") or "").strip()
        parent_of = {**main, **tail}
        return cls(
            parent_of,
            top_order=[t for t in tops if t in set(parent_of.values())],
            names=names,
            descriptions=descriptions,
            name=name,
        )

    def subset(self, leaves: Iterable[str], *, name: str | None = None) -> Taxonomy:
        """A taxonomy restricted to ``leaves`` (kept in this taxonomy's order)."""
        wanted = set(self.validate(list(leaves), return_indices=False))
        keep = {k: self._parent_of[k] for k in self._leaves if k in wanted}
        return Taxonomy(
            keep,
            top_order=self._tops,
            names=self._names,
            descriptions=self._descriptions,
            name=self.name if name is None else name,
        )

    # ---------------------------------------------------------------- accessors
    @property
    def leaves(self) -> tuple[str, ...]:
        """Second-level classes in class order."""
        return self._leaves

    @property
    def tops(self) -> tuple[str, ...]:
        """Top-level classes in order."""
        return self._tops

    @property
    def parent_of(self) -> dict[str, str]:
        """Mapping leaf → top (a copy)."""
        return dict(self._parent_of)

    @property
    def parent_index(self) -> np.ndarray:
        """Read-only int array: index of each leaf's top, in leaf order."""
        return self._parent_index

    @property
    def n_leaves(self) -> int:
        return len(self._leaves)

    @property
    def n_tops(self) -> int:
        return len(self._tops)

    def children(self, top: str) -> tuple[str, ...]:
        """Leaves under ``top``, in class order."""
        if top not in self._top_index:
            raise ValueError(f"Unknown top-level class {top!r}; known: {list(self._tops)}.")
        return tuple(k for k in self._leaves if self._parent_of[k] == top)

    def name_of(self, key: str) -> str:
        """Human-readable name of a leaf or top (the key itself when unknown)."""
        return self._names.get(key, key)

    def description_of(self, leaf: str) -> str:
        return self._descriptions.get(leaf, "")

    # --------------------------------------------------------------- validation
    def _lookup(self):
        """A cached ``pandas.Index`` of the leaves (hash-table label lookup)."""
        index = self.__dict__.get("_leaf_pd_index")
        if index is None:
            import pandas as pd

            index = pd.Index(self._leaves, dtype=object)
            self.__dict__["_leaf_pd_index"] = index
        return index

    def validate(self, labels, *, return_indices: bool = True) -> np.ndarray:
        """Check that every label is a leaf of this taxonomy.

        Labels may be leaf keys (str) or leaf indices (int in ``[0, n_leaves)``).
        Returns leaf indices (``return_indices=True``) or leaf keys.

        Raises
        ------
        ValueError
            Naming the unknown labels and listing the known ones.
        """
        arr = np.asarray(labels)
        if arr.ndim != 1:
            arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise ValueError(f"Labels must be 1-D, got an array of shape {arr.shape}.")
        if arr.size == 0:
            idx = np.zeros(0, dtype=np.intp)
        elif arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0)):
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError("Labels contain NaN or infinite values.")
            idx = arr.astype(np.intp)
            bad = np.unique(arr[(idx < 0) | (idx >= self.n_leaves)])
            if bad.size:
                raise ValueError(
                    f"Label indices {bad.tolist()} are outside [0, {self.n_leaves}) for "
                    f"{self!r}."
                )
        elif arr.dtype.kind in "OUS":
            # hash lookup (pandas) instead of sorting the strings: ~50x faster on 100k labels
            values = arr if arr.dtype.kind == "O" else arr.astype(str).astype(object)
            idx = self._lookup().get_indexer(values).astype(np.intp, copy=False)
            bad = idx < 0
            unknown = np.unique(values[bad].astype(str)) if bad.any() else np.array([])
            if unknown.size:
                shown = unknown[:20].tolist()
                more = f" (and {unknown.size - 20} more)" if unknown.size > 20 else ""
                raise ValueError(
                    f"Unknown labels {shown}{more} for {self!r}; known second-level classes "
                    f"are {list(self._leaves)}. Map or drop them first (for '*-other' "
                    "classes use BST_FULL or load with unknown_labels='drop')."
                )
        else:
            raise ValueError(f"Labels must be strings or integers, got dtype {arr.dtype}.")
        if return_indices:
            return idx
        return np.asarray(self._leaves, dtype=object)[idx]

    def encode(self, labels) -> np.ndarray:
        """Leaf keys (or indices) → leaf indices."""
        return self.validate(labels, return_indices=True)

    def decode(self, indices) -> np.ndarray:
        """Leaf indices → leaf keys (object array)."""
        return self.validate(np.asarray(indices, dtype=np.intp), return_indices=False)

    def to_top(self, labels, *, return_indices: bool = False) -> np.ndarray:
        """Top-level class of each label."""
        top_idx = self._parent_index[self.encode(labels)]
        if return_indices:
            return top_idx
        return np.asarray(self._tops, dtype=object)[top_idx]

    # ------------------------------------------------------------------- dunder
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_leaf_pd_index", None)  # a cache, rebuilt on demand
        return state

    def _key(self):
        return (self._leaves, self._tops, tuple(self._parent_of[k] for k in self._leaves))

    def __eq__(self, other):
        return isinstance(other, Taxonomy) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __len__(self):
        return self.n_leaves

    def __contains__(self, label):
        return label in self._leaf_index

    def __repr__(self):
        label = f"{self.name}: " if self.name else ""
        return f"Taxonomy({label}{self.n_leaves} leaves under {self.n_tops} tops)"


_TOP_NAMES = {
    "m": "Music",
    "is": "Instrument samples",
    "sp": "Speech",
    "fx": "Sound effects",
    "ss": "Soundscapes",
}

# (key, name, description) in the official class order (BSD10k class_idx 0..22); the
# ``*-other`` classes and ``fx-d`` (crowd-sourced data only) follow.
_BST_ROWS = [
    ("m-sp", "Solo percussion", "Music excerpts with solo percussive instruments."),
    ("m-si", "Solo instrument", "Music excerpts with only one instrument, except percussion."),
    ("m-m", "Multiple instruments", "Music excerpts with more than one instrument."),
    ("is-p", "Percussion", "Percussive instrument samples (idiophones or membranophones)."),
    ("is-s", "String", "Instrument samples of the string family."),
    ("is-w", "Wind", "Instrument samples of the wind family (aerophones)."),
    ("is-k", "Keyboard", "Samples of keyboard instruments that are not synthesized."),
    ("is-e", "Synths / Electronic", "Instrument samples synthesized or produced electronically."),
    ("sp-s", "Solo speech", "A single voice, except singing."),
    ("sp-c", "Conversation / Crowd", "Several people talking: conversation, dialogue, crowd."),
    ("sp-p", "Processed / Synthetic", "Voices from an indirect source, processed or synthesized."),
    ("fx-o", "Objects / House appliances", "Everyday objects, at home or small in size."),
    ("fx-v", "Vehicles", "Sounds produced by a vehicle."),
    ("fx-m", "Other mechanisms, engines, machines", "Machine-like sounds except vehicles."),
    ("fx-h", "Human sounds and actions", "Sounds of the human body, except speech."),
    ("fx-a", "Animals", "Animal vocalizations or sounds."),
    ("fx-n", "Natural elements and explosions", "Events from natural processes, explosions."),
    ("fx-ex", "Experimental", "Experimental or heavily processed recordings."),
    ("fx-el", "Electronic & Design", "Computer-made effects, user-interface sounds."),
    ("ss-n", "Nature", "Soundscapes from natural habitats."),
    ("ss-i", "Indoors", "Soundscapes from closed or indoor spaces."),
    ("ss-u", "Urban", "Soundscapes from cities or outdoor places with human presence."),
    ("ss-s", "Synthetic / Artificial", "Synthesized or computer-made ambiences."),
]
_EXTRA_ROWS = [
    ("m-other", "Other", "Music outside the other music classes."),
    ("is-other", "Other", "Instrument samples outside the other instrument classes."),
    ("sp-other", "Other", "Voice-predominant recordings outside the other speech classes."),
    ("fx-d", "Design", "Specialized effects for sound design, interfaces, animations."),
    ("fx-other", "Other", "Sound effects outside the other effect classes."),
    ("ss-other", "Other", "Soundscapes outside the other soundscape classes."),
]


def _build_bst(rows, name):
    parent_of = {k: k.split("-", 1)[0] for k, _, _ in rows}
    names = {**_TOP_NAMES, **{k: n for k, n, _ in rows}}
    descriptions = {k: d for k, _, d in rows}
    return Taxonomy(
        parent_of, top_order=list(_TOP_NAMES), names=names, descriptions=descriptions, name=name
    )


#: The 23 second-level classes of BSD10k under 5 top-level classes, in official order.
BST = _build_bst(_BST_ROWS, "BST")

#: BST plus the ``*-other`` classes and ``fx-d`` used by BSD35k-CS (29 leaves). Its first
#: 23 leaves are those of :data:`BST` in the same order.
BST_FULL = _build_bst(_BST_ROWS + _EXTRA_ROWS, "BST_FULL")


def check_taxonomy(taxonomy) -> Taxonomy:
    """``None`` → :data:`BST`; a :class:`Taxonomy` passes; anything else is an error."""
    if taxonomy is None:
        return BST
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    raise TypeError(f"taxonomy must be a Taxonomy or None (for BST), got {type(taxonomy)!r}.")
