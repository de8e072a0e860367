"""Weighted logistic regression with soft targets, fitted by L-BFGS on the exact gradient.

Shared by the style-controlled leaderboard (sparse design: one column per model plus the
style features) and the "what the preferences teach" model (dense design). A target of 0.5
is a tie: it adds half a win and half a loss to the likelihood, as Chatbot Arena does.
"""

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse, special, stats

from pickwise.analytics.arrays import FloatArray, as_float_array

# A dense (rows, coefficients) array or a scipy.sparse matrix/array of the same shape.
Design: TypeAlias = Any


@dataclass(frozen=True)
class LogisticFit:
    coefficients: FloatArray
    # Inverse of the observed Fisher information (Hessian of the summed negative
    # log-likelihood plus ridge) at the estimate: the Wald covariance of the coefficients.
    covariance: FloatArray
    converged: bool

    def standard_errors(self) -> FloatArray:
        return as_float_array(np.sqrt(np.diag(self.covariance)))

    def intervals(self, confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Two-sided Wald intervals, coefficient ± z · standard error."""
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        half_width = z * self.standard_errors()
        return self.coefficients - half_width, self.coefficients + half_width


def linear_predictor(design: Design, coefficients: FloatArray) -> FloatArray:
    return as_float_array(design @ coefficients)


def logistic_loss_and_gradient(
    coefficients: FloatArray,
    design: Design,
    target: FloatArray,
    weight: FloatArray,
    ridge: FloatArray,
) -> tuple[float, FloatArray]:
    """Summed weighted negative log-likelihood plus ½·Σ ridge·β², and its gradient."""
    logits = linear_predictor(design, coefficients)
    # log(1 + e^η) − y·η is the negative log-likelihood of a (soft) label y, overflow-free.
    loss = float(weight @ (np.logaddexp(0.0, logits) - target * logits))
    loss += 0.5 * float(ridge @ coefficients**2)
    residual = weight * (special.expit(logits) - target)
    gradient = as_float_array(design.T @ residual) + ridge * coefficients
    return loss, gradient


def logistic_hessian(
    coefficients: FloatArray, design: Design, weight: FloatArray, ridge: FloatArray
) -> FloatArray:
    probability = special.expit(linear_predictor(design, coefficients))
    curvature = weight * probability * (1.0 - probability)
    if sparse.issparse(design):
        weighted = sparse.csr_array(design.multiply(curvature[:, None]))
        information = np.asarray((design.T @ weighted).toarray(), dtype=np.float64)
    else:
        information = np.asarray(design.T @ (design * curvature[:, None]), dtype=np.float64)
    return as_float_array(information + np.diag(ridge))


def fit_logistic(
    design: Design,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ridge: npt.ArrayLike = 0.0,
    initial: npt.ArrayLike | None = None,
) -> LogisticFit:
    """Maximum-likelihood logistic regression without intercept (add a column of ones for one).

    ``ridge`` is a per-coefficient (or common) L2 penalty on the summed loss; use a tiny one
    only where the design leaves a direction unidentified (e.g. a constant added to every
    model's strength). ``initial`` is where the search starts (zeros if not given): a good
    guess saves iterations, the estimate does not depend on it.
    """
    y = as_float_array(target)
    n_rows, n_coefficients = design.shape
    w = np.ones(n_rows) if weight is None else as_float_array(weight)
    penalty = np.broadcast_to(as_float_array(ridge), (n_coefficients,)).copy()
    # The optimizer sees the mean loss so that its tolerances do not depend on the data size.
    total_weight = max(float(w.sum()), 1.0)

    def mean_loss_and_gradient(coefficients: FloatArray) -> tuple[float, FloatArray]:
        loss, gradient = logistic_loss_and_gradient(coefficients, design, y, w, penalty)
        return loss / total_weight, gradient / total_weight

    result = optimize.minimize(
        mean_loss_and_gradient,
        np.zeros(n_coefficients) if initial is None else as_float_array(initial),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-15},
    )
    coefficients = as_float_array(result.x)
    hessian = logistic_hessian(coefficients, design, w, penalty)
    coefficients, converged = _newton_polish(coefficients, hessian, design, y, w, penalty)
    hessian = logistic_hessian(coefficients, design, w, penalty)
    return LogisticFit(coefficients, _inverse_or_nan(hessian), converged)


def _newton_polish(
    coefficients: FloatArray,
    hessian: FloatArray,
    design: Design,
    target: FloatArray,
    weight: FloatArray,
    ridge: FloatArray,
) -> tuple[FloatArray, bool]:
    """One exact Newton step after L-BFGS: it stops on a loose criterion near the optimum,
    where Newton converges quadratically, so the estimate becomes exact to rounding."""
    loss, gradient = logistic_loss_and_gradient(coefficients, design, target, weight, ridge)
    try:
        step = np.linalg.solve(hessian, gradient)
    except np.linalg.LinAlgError:
        return coefficients, False
    candidate = coefficients - step
    candidate_loss, candidate_gradient = logistic_loss_and_gradient(
        candidate, design, target, weight, ridge
    )
    if candidate_loss <= loss:
        coefficients, gradient = candidate, candidate_gradient
    scale = max(float(weight.sum()), 1.0)
    return coefficients, bool(np.max(np.abs(gradient), initial=0.0) / scale < 1e-6)


def _inverse_or_nan(matrix: FloatArray) -> FloatArray:
    try:
        return as_float_array(np.linalg.inv(matrix))
    except np.linalg.LinAlgError:
        return np.full_like(matrix, np.nan)
