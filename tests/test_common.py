"""Every public estimator goes through scikit-learn's ``parametrize_with_checks``.

Instances and justified expected failures come from each module's private
``_check_instances()`` (see ``sklearn_mesh.utils.discovery.check_instances``).
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mesh.utils.discovery import all_estimators, check_instances

_PAIRS = check_instances()
_EXPECTED = {id(est): failures for est, failures in _PAIRS}


def _expected_failed_checks(estimator):
    return _EXPECTED.get(id(estimator), {})


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_check_instances(name, cls):
    covered = {type(est) for est, _ in _PAIRS}
    assert cls in covered, f"{name} is not in any module's _check_instances()"


def test_every_expected_failure_has_a_reason():
    for est, failures in _PAIRS:
        for check, reason in failures.items():
            assert isinstance(reason, str) and len(reason) > 15, (type(est).__name__, check)


if _PAIRS:

    @parametrize_with_checks(
        [est for est, _ in _PAIRS], expected_failed_checks=_expected_failed_checks
    )
    def test_sklearn_compatible_estimator(estimator, check):
        check(estimator)
