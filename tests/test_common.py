"""Every public estimator goes through scikit-learn's estimator checks.

Instances and justified expected failures come from each module's private
``_check_instances()`` (see ``sklearn_mesh.utils.discovery.check_instances``). This is
``parametrize_with_checks`` with stable test ids (class name + instance number + check),
so an estimator whose repr holds a temporary path still collects identically on every
pytest-xdist worker.
"""

from collections import Counter
from functools import partial

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from sklearn_mesh.utils.discovery import all_estimators, check_instances

_PAIRS = check_instances()


def _check_name(check):
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def _params():
    seen = Counter()
    params = []
    for estimator, failures in _PAIRS:
        cls = type(estimator).__name__
        number = seen[cls]
        seen[cls] += 1
        for item in estimator_checks_generator(
            estimator, expected_failed_checks=failures, mark="xfail"
        ):
            # expected failures come back as pytest.param(..., marks=xfail)
            (est, check), marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            params.append(
                pytest.param(est, check, marks=marks, id=f"{cls}{number}-{_check_name(check)}")
            )
    return params


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_check_instances(name, cls):
    covered = {type(est) for est, _ in _PAIRS}
    assert cls in covered, f"{name} is not in any module's _check_instances()"


def test_every_expected_failure_has_a_reason():
    for est, failures in _PAIRS:
        for check, reason in failures.items():
            assert isinstance(reason, str) and len(reason) > 15, (type(est).__name__, check)


@pytest.mark.parametrize("estimator, check", _params())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
