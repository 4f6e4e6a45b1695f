"""Find the package's public estimators (used by the common test suite)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

import sklearn_mesh


def _iter_modules():
    for info in pkgutil.walk_packages(sklearn_mesh.__path__, prefix="sklearn_mesh."):
        parts = info.name.split(".")
        # private modules (and __main__) are reached through their public package; the
        # CLI defines no estimators
        if any(p.startswith("_") for p in parts[1:]) or parts[-1] == "cli":
            continue
        yield importlib.import_module(info.name)


def all_estimators():
    """Sorted ``(name, class)`` pairs of public, concrete estimators of the package.

    Examples
    --------
    >>> from sklearn_mesh.utils.discovery import all_estimators
    >>> names = [name for name, _ in all_estimators()]
    >>> isinstance(names, list)
    True
    """
    found = {}
    for module in _iter_modules():
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("sklearn_mesh")
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())


def check_instances():
    """``(estimator, expected_failed_checks)`` pairs for ``parametrize_with_checks``.

    Every module that defines estimators provides a private ``_check_instances()``
    returning a list of ``(estimator_instance, {check_name: reason})``.
    """
    pairs = []
    seen_modules = set()
    for _, cls in all_estimators():
        module = importlib.import_module(cls.__module__)
        if module.__name__ in seen_modules:
            continue
        seen_modules.add(module.__name__)
        factory = getattr(module, "_check_instances", None)
        if factory is not None:
            pairs.extend(factory())
    return pairs
