"""Tests of the Taxonomy object, BST / BST_FULL and the taxonomy CSV reader."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, clone

from sklearn_mesh.taxonomy import BST, BST_FULL, Taxonomy, check_taxonomy


def test_bst_shape_and_order():
    assert BST.n_leaves == 23 and BST.n_tops == 5
    assert BST.tops == ("m", "is", "sp", "fx", "ss")
    assert BST.leaves[:3] == ("m-sp", "m-si", "m-m")
    assert BST.leaves[-1] == "ss-s"
    assert BST_FULL.n_leaves == 29
    assert BST_FULL.leaves[:23] == BST.leaves
    assert not any(k.endswith("-other") for k in BST.leaves) and "fx-d" not in BST


def test_parent_children_names():
    assert BST.parent_of["fx-el"] == "fx"
    assert BST.children("sp") == ("sp-s", "sp-c", "sp-p")
    assert sum(len(BST.children(t)) for t in BST.tops) == BST.n_leaves
    for leaf in BST.leaves:
        assert leaf in BST.children(BST.parent_of[leaf])
        assert BST.tops[BST.parent_index[BST.leaves.index(leaf)]] == BST.parent_of[leaf]
    assert BST.name_of("m") == "Music"
    assert BST.name_of("fx-v") == "Vehicles"
    assert BST.description_of("sp-s")
    with pytest.raises(ValueError, match="Unknown top-level class 'zz'"):
        BST.children("zz")


def test_parent_of_is_a_copy_and_parent_index_read_only():
    mapping = BST.parent_of
    mapping["m-sp"] = "fx"
    assert BST.parent_of["m-sp"] == "m"
    with pytest.raises(ValueError):
        BST.parent_index[0] = 3


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(0, 22), max_size=50))
def test_encode_decode_round_trip(idx):
    keys = BST.decode(idx)
    assert keys.dtype == object
    assert BST.encode(keys).tolist() == idx
    np.testing.assert_array_equal(BST.encode(np.asarray(idx)), idx)
    np.testing.assert_array_equal(
        BST.to_top(keys), np.asarray([BST.parent_of[k] for k in keys], dtype=object)
    )


def test_unknown_label_error_names_labels():
    with pytest.raises(ValueError) as err:
        BST.validate(["m-sp", "m-other", "zz", "m-other"])
    msg = str(err.value)
    assert "'m-other'" in msg and "'zz'" in msg and "BST_FULL" in msg
    assert BST_FULL.validate(["m-other"]).tolist() == [BST_FULL.leaves.index("m-other")]
    with pytest.raises(ValueError, match=r"outside \[0, 23\)"):
        BST.validate([0, 23])
    with pytest.raises(ValueError, match="1-D"):
        BST.validate(np.zeros((2, 2), dtype=int))


def test_from_mapping_and_validation():
    tax = Taxonomy.from_mapping({"a": ["a-1", "a-2"], "b": ["b-1"]}, name="toy")
    assert tax.leaves == ("a-1", "a-2", "b-1") and tax.tops == ("a", "b")
    assert "toy" in repr(tax) and len(tax) == 3 and "a-2" in tax
    with pytest.raises(ValueError, match="at least one"):
        Taxonomy({})
    with pytest.raises(ValueError, match="both as top-level and second-level"):
        Taxonomy({"a": "a"})
    with pytest.raises(ValueError, match="lacks the top-level"):
        Taxonomy({"x": "a"}, top_order=["b"])


def test_subset_keeps_order_and_validates():
    sub = BST.subset(["ss-n", "m-sp", "fx-o"])
    assert sub.leaves == ("m-sp", "fx-o", "ss-n")
    assert sub.tops == ("m", "fx", "ss")
    with pytest.raises(ValueError, match="nope"):
        BST.subset(["nope"])


def test_equality_survives_deepcopy_pickle_and_clone():
    for tax in (BST, BST_FULL, Taxonomy.from_mapping({"a": ["a-1"], "b": ["b-1"]})):
        clone_ = copy.deepcopy(tax)
        assert clone_ == tax and hash(clone_) == hash(tax)
        restored = pickle.loads(pickle.dumps(tax))
        assert restored == tax and restored.leaves == tax.leaves
        assert restored.encode(list(tax.leaves)).tolist() == list(range(tax.n_leaves))
    assert BST != BST_FULL

    class Holder(BaseEstimator):
        def __init__(self, taxonomy=None):
            self.taxonomy = taxonomy

    est = Holder(taxonomy=BST_FULL)
    cloned = clone(est)
    assert cloned.taxonomy == BST_FULL


def test_check_taxonomy():
    assert check_taxonomy(None) is BST
    assert check_taxonomy(BST_FULL) is BST_FULL
    with pytest.raises(TypeError, match="Taxonomy"):
        check_taxonomy("BST")


def _write_csv(path, rows):
    lines = ["ClassKey,ClassName,TopLevel,Description"] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_from_csv_policies_on_small_file(tmp_path):
    path = _write_csv(
        tmp_path / "tax.csv",
        [
            ("a-x", "X", "Alpha", "d1"),
            ("a-other", "Other", "Alpha", "d2"),
            ("b-y", "Y", "Beta", "d3"),
            ("b-d", "D", "Beta", "d4"),
        ],
    )
    drop = Taxonomy.from_csv(path, extra_classes=("b-d",))
    assert drop.leaves == ("a-x", "b-y")
    assert drop.name_of("a") == "Alpha" and drop.description_of("b-y") == "d3"
    keep = Taxonomy.from_csv(path, other="keep", extra_classes=("b-d",))
    assert keep.leaves == ("a-x", "b-y", "a-other", "b-d")
    assert keep.tops == ("a", "b")
    with pytest.raises(ValueError, match="other must be"):
        Taxonomy.from_csv(path, other="maybe")


def test_from_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Key,Name\nx,y\n")
    with pytest.raises(ValueError, match="ClassKey"):
        Taxonomy.from_csv(bad)
    noprefix = _write_csv(tmp_path / "np.csv", [("ax", "X", "A", "")])
    with pytest.raises(ValueError, match="prefix"):
        Taxonomy.from_csv(noprefix)
    dup = _write_csv(tmp_path / "dup.csv", [("a-x", "X", "A", ""), ("a-x", "X", "A", "")])
    with pytest.raises(ValueError, match="twice"):
        Taxonomy.from_csv(dup)


def test_from_csv_official_file(bsd10k_dir):
    path = bsd10k_dir / "taxonomy.csv"
    if not path.is_file():
        pytest.skip("taxonomy.csv absent")
    drop = Taxonomy.from_csv(path)
    assert drop == BST and drop.leaves == BST.leaves
    keep = Taxonomy.from_csv(path, other="keep")
    assert keep == BST_FULL and keep.n_leaves == 29
    assert keep.name_of("fx-v") == "Vehicles"
