"""Lie groups SO(3) and SE(3), batch-first.

Conventions (stated once for the whole project; other modules refer here):

* Arrays are batch-first: rotation vectors ``(N, 3)``, rotation matrices ``(N, 3, 3)``,
  twists ``(N, 6)``, transforms ``(N, 4, 4)``, points ``(N, 3)``. Every function takes a
  single element (no batch axis) or a batch, and returns the same form.
* ``T_a_b`` maps points from frame ``b`` into frame ``a``: ``p_a = T_a_b * p_b`` and
  ``T_a_c = T_a_b * T_b_c``.
* Twists are translation first: ``xi = (rho, phi)`` (Sophus, Barfoot).
* Perturbations are on the left: ``X <- Exp(delta) X``. Jacobians of actions and
  residuals are taken with respect to that ``delta``.
* ``left_jacobian(x)`` is ``J_l`` with ``Exp(x + d) ~= Exp(J_l(x) d) Exp(x)``;
  ``right_jacobian(x)`` is ``J_r`` with ``Exp(x + d) ~= Exp(x) Exp(J_r(x) d)``;
  ``J_r(x) = J_l(-x)``.
* ``log`` of a rotation returns a rotation vector with norm in ``[0, pi]``.
* Near ``theta -> 0`` and ``theta -> pi`` Taylor series or stable closed forms are used
  (thresholds in :mod:`calib.lie._series`); no NaN on any valid input.
* Units: radians and metres.
"""

from . import se3, so3

__all__ = ["so3", "se3"]
