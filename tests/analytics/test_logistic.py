import numpy as np
import pytest
from scipy import optimize, sparse
from sklearn.linear_model import LogisticRegression

from pickwise.analytics.logistic import fit_logistic, logistic_loss_and_gradient


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    design = rng.normal(size=(50, 4))
    target = rng.choice([0.0, 0.5, 1.0], 50)
    weight = rng.uniform(0.5, 2.0, 50)
    ridge = np.array([0.0, 0.1, 0.0, 1.0])

    error = optimize.check_grad(
        lambda b: logistic_loss_and_gradient(b, design, target, weight, ridge)[0],
        lambda b: logistic_loss_and_gradient(b, design, target, weight, ridge)[1],
        rng.normal(size=4),
    )

    assert error < 1e-5


def test_matches_sklearn_and_sparse_equals_dense() -> None:
    rng = np.random.default_rng(1)
    design = rng.normal(size=(3_000, 3))
    target = rng.random(3_000) < 1 / (1 + np.exp(-design @ np.array([0.5, -1.0, 0.0])))

    dense = fit_logistic(design, target)
    from_sparse = fit_logistic(sparse.csr_array(design), target)
    reference = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    reference.fit(design, target)

    assert dense.converged
    np.testing.assert_allclose(dense.coefficients, reference.coef_[0], atol=1e-6)
    np.testing.assert_allclose(from_sparse.coefficients, dense.coefficients, atol=1e-9)
    np.testing.assert_allclose(from_sparse.covariance, dense.covariance, rtol=1e-6)


def test_wald_intervals_use_the_inverse_hessian() -> None:
    rng = np.random.default_rng(2)
    design = rng.normal(size=(2_000, 2))
    target = rng.random(2_000) < 1 / (1 + np.exp(-design @ np.array([1.0, 0.0])))

    fit = fit_logistic(design, target)
    lower, upper = fit.intervals(0.95)

    p = 1 / (1 + np.exp(-design @ fit.coefficients))
    information = design.T @ (design * (p * (1 - p))[:, None])
    standard_errors = np.sqrt(np.diag(np.linalg.inv(information)))
    np.testing.assert_allclose(upper - fit.coefficients, 1.959964 * standard_errors, rtol=1e-5)
    assert lower[0] < 1.0 < upper[0]
    assert fit.coefficients[1] == pytest.approx(0.0, abs=4 * standard_errors[1])
