"""Safe checkpoint loading shared by every torch backbone.

Two functions, used by :class:`~sklearn_mesh.embedders.TorchEmbedder` subclasses:

- :func:`load_checkpoint` reads a file with ``torch.load(..., weights_only=True)`` and
  turns the three usual failures (missing file, not a torch file, a pickle that needs
  arbitrary code) into one clear error each;
- :func:`load_state_dict_checked` compares a state dict with a module (names and
  shapes) and raises one error listing every missing, unexpected and mis-shaped key
  before loading strictly.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["CheckpointError", "load_checkpoint", "load_state_dict_checked", "strip_prefix"]


class CheckpointError(ValueError):
    """A checkpoint file could not be used (missing, corrupt, unsafe or mismatched)."""


def _where(source):
    return f" It can be obtained from {source}." if source else ""


def load_checkpoint(path, *, key=None, source=None, map_location="cpu"):
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (``.pt``, ``.pth``, ``.ckpt``, ``.bin``).
    key : str or sequence of str, default=None
        Entry to return from a dict checkpoint, e.g. ``"model"`` or ``"state_dict"``. A
        sequence means "the first of these keys that exists". ``None`` returns the whole
        object.
    source : str, default=None
        Where users can get the file (URL or instructions); quoted in the error raised
        when the file is missing.
    map_location : str or torch.device, default="cpu"

    Returns
    -------
    object
        The loaded object (usually a dict of tensors).

    Raises
    ------
    CheckpointError
        If the file is missing, is not a torch checkpoint, needs ``weights_only=False``
        (an arbitrary pickle, refused because loading it could run code), or lacks ``key``.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from sklearn_mesh.embedders._checkpoint import load_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save({"model": {"w": torch.zeros(2)}}, path)
    >>> load_checkpoint(path, key="model")["w"].shape
    torch.Size([2])
    """
    if path is None:
        raise CheckpointError("No checkpoint file was given." + _where(source))
    path = Path(os.fspath(path)).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint file not found: {str(path)!r}. Download it and pass its local "
            f"path (nothing is downloaded automatically).{_where(source)}"
        )
    if path.is_dir():
        raise CheckpointError(f"Checkpoint path {str(path)!r} is a directory, expected a file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint file {str(path)!r} is empty (0 bytes); re-download it.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "weights_only" in msg or "Unsupported global" in msg or "WeightsUnpickler" in msg:
            raise CheckpointError(
                f"Checkpoint {str(path)!r} contains Python objects beyond tensors and "
                "plain containers, so it can only be read with torch.load(weights_only=False), "
                "which can execute arbitrary code. sklearn_mesh refuses to do that. If you "
                "trust the file, convert it once to a plain state dict, e.g. "
                "`torch.save(torch.load(path, weights_only=False)['model'].state_dict(), "
                f"'clean.pt')`, and pass the new file. Details: {msg.splitlines()[0]}"
            ) from exc
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is not a readable torch file (corrupt or truncated "
            f"download?): {msg.splitlines()[0] if msg else type(exc).__name__}"
        ) from exc
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, IndexError, ... on junk
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is not a readable torch file (corrupt or truncated "
            f"download, or another format?): {msg}"
        ) from exc
    if key is None:
        return obj
    keys = [key] if isinstance(key, str) else list(key)
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"Checkpoint {str(path)!r} holds a {type(obj).__name__}, not a dict, so entry "
            f"{keys!r} cannot be taken from it."
        )
    for k in keys:
        if k in obj:
            return obj[k]
    raise CheckpointError(
        f"Checkpoint {str(path)!r} has none of the entries {keys!r}; it has "
        f"{sorted(map(str, obj))[:10]!r}."
    )


def strip_prefix(state_dict, prefix):
    """Remove ``prefix`` from every key that starts with it (e.g. ``"module."`` of DDP).

    Examples
    --------
    >>> from sklearn_mesh.embedders._checkpoint import strip_prefix
    >>> sorted(strip_prefix({"module.a": 1, "b": 2}, "module."))
    ['a', 'b']
    """
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__


def load_state_dict_checked(module, state_dict, *, name, ignore=()):
    """Load ``state_dict`` into ``module`` strictly, after one readable comparison.

    Parameters
    ----------
    module : torch.nn.Module
    state_dict : mapping of str to tensor
    name : str
        What is being loaded (e.g. ``"BEATs checkpoint 'x.pt'"``), used in the error.
    ignore : sequence of str, default=()
        Key prefixes to drop from both sides before comparing (e.g. buffers that old
        checkpoints carry and new code recomputes).

    Returns
    -------
    module : torch.nn.Module
        The same module, with the weights loaded.

    Raises
    ------
    CheckpointError
        Listing every missing key, unexpected key and shape mismatch (with shapes).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.embedders._checkpoint import load_state_dict_checked
    >>> net = torch.nn.Linear(2, 3)
    >>> _ = load_state_dict_checked(net, {"weight": torch.ones(3, 2), "bias": torch.zeros(3)},
    ...                             name="demo")
    >>> float(net.weight.detach().sum())
    6.0
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(
            f"{name}: expected a dict of tensors (a state dict), got {type(state_dict).__name__}."
        )

    def keep(k):
        return not any(k.startswith(p) for p in ignore)

    own = {k: v for k, v in module.state_dict().items() if keep(k)}
    given = {k: v for k, v in state_dict.items() if keep(k)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    mismatched = sorted(
        (k, _shape(given[k]), _shape(own[k]))
        for k in set(own) & set(given)
        if _shape(given[k]) != _shape(own[k])
    )
    if missing or unexpected or mismatched:

        def show(items, limit=20):
            items = list(items)
            more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
            return ", ".join(map(str, items[:limit])) + more

        parts = [f"{name} does not match the model ({len(own)} expected keys, {len(given)} given)."]
        if missing:
            parts.append(f"Missing keys ({len(missing)}): {show(missing)}.")
        if unexpected:
            parts.append(f"Unexpected keys ({len(unexpected)}): {show(unexpected)}.")
        if mismatched:
            parts.append(
                f"Shape mismatches ({len(mismatched)}): "
                + show(f"{k} checkpoint {a} vs model {b}" for k, a, b in mismatched)
                + "."
            )
        parts.append("Check that the checkpoint belongs to this architecture/configuration.")
        raise CheckpointError(" ".join(parts))
    module.load_state_dict(
        {k: v for k, v in state_dict.items() if keep(k)}, strict=not ignore
    )
    return module
