"""Optional dependencies: imported at use time, with an install hint on failure."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install.

    Examples
    --------
    >>> np = require("numpy", "core")
    >>> np.__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised through monkeypatch
        what = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"{module!r} is needed{what} but could not be imported ({exc}). "
            f'Install it with: pip install "sklearn-mesh[{extra}]"'
        ) from exc
