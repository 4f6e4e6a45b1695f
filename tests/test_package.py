"""Package-level contracts: lazy public names, light import, optional-dependency errors."""

import subprocess
import sys

import pytest

import sklearn_mesh
from sklearn_mesh._optional import require


@pytest.mark.parametrize("name", sorted(sklearn_mesh._LAZY))
def test_every_public_name_resolves(name):
    assert getattr(sklearn_mesh, name) is not None
    assert name in dir(sklearn_mesh)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sklearn_mesh.nope  # noqa: B018


def test_import_does_not_pull_optional_dependencies():
    code = (
        "import sys, sklearn_mesh\n"
        "from sklearn_mesh import BST, hf_scorer, HProxyClassifier\n"
        "heavy = [m for m in ('laion_clap', 'sentence_transformers', 'matplotlib', "
        "'imblearn', 'cleanlab', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "laion_clap", None)
    with pytest.raises(ImportError, match=r"pip install \"sklearn-mesh\[clap\]\""):
        require("laion_clap", "clap", purpose="CLAP embeddings")


def test_version_is_single_sourced():
    from importlib.metadata import version

    assert sklearn_mesh.__version__ == version("sklearn-mesh")
