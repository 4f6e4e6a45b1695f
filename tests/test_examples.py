"""Every script under examples/ runs to completion at a small size (own process each)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# small-size arguments; scripts not listed are small already
SMALL_ARGS = {
    "quickstart_pipeline.py": ["--n-samples", "92"],
    "mesh_systems.py": ["--size", "0.5"],
    "select_embedding_sets.py": ["--n-samples", "600", "--no-minilm", "--outer-folds", "2",
                                 "--inner-folds", "2"],
}
# scripts that need the real BSD10k metadata (skipped without it)
NEEDS_BSD10K = {"select_embedding_sets.py"}
# every example takes a few CPU seconds or more (5-20 s on 2 shared cores): still run in
# CI, but outside the quick selection (-m "not slow")
SLOW = {p.name for p in EXAMPLES.glob("*.py")}


def _scripts():
    for path in sorted(EXAMPLES.glob("*.py")):
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, id=path.name, marks=marks)


def test_every_example_is_listed_with_a_docstring():
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert "quickstart_pipeline.py" in names and len(names) >= 8
    assert set(SMALL_ARGS) <= names
    for path in EXAMPLES.glob("*.py"):
        assert path.read_text().lstrip().startswith(('"""', 'r"""')), path.name


@pytest.mark.parametrize("path", list(_scripts()))
def test_example_runs(path, tmp_path, request):
    if path.name in NEEDS_BSD10K:
        request.getfixturevalue("bsd10k_dir")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(path), *SMALL_ARGS.get(path.name, [])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{path.name} printed nothing"
