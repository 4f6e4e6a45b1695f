"""The one place that imports scikit-learn private helpers.

A scikit-learn upgrade that moves these names touches only this file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import validate_data

__all__ = ["_fit_context", "HasMethods", "Interval", "Options", "StrOptions", "validate_data"]
