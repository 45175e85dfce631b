/* calib._kernels: the compiled loops of calib (blocks.c: the solver's small-block sums;
 * bal.c: the BAL reprojection; lie.c: the SE3 update, SO3's Exp, Log and quaternion;
 * registration.c: point-to-plane residuals; checks.c: the finite test of residuals and
 * Jacobians; cholesky.c: the tiny path's damped solve). Python wrappers with shapes and
 * units: calib/solver/blocks.py, calib/solver/linear_solver.py,
 * calib/residuals/bal_projection.py, calib/solver/manifold.py, calib/lie/so3.py and
 * calib/residuals/point_to_plane.py. */
#include "arrays.h"

static PyMethodDef methods[] = {
    {"segment_gram", segment_gram, METH_VARARGS, "Per segment sum of ja^T jb."},
    {"pair_products", pair_products, METH_VARARGS, "Schur pair products of L^-1 W^T."},
    {"inverse_cholesky", inverse_cholesky, METH_VARARGS,
     "Batched L^-1 and inverse of SPD blocks."},
    {"bal_project", bal_project, METH_VARARGS, "BAL residuals and Jacobians."},
    {"se3_plus", se3_plus, METH_VARARGS, "SE3 left update Exp(delta) T."},
    {"so3_exp", so3_exp, METH_VARARGS, "Rotation matrices Exp(phi)."},
    {"so3_quat", so3_quat, METH_VARARGS, "Quaternions (x, y, z, w) of rotation matrices."},
    {"so3_log", so3_log, METH_VARARGS, "Rotation vectors Log(R)."},
    {"so3_deviation", so3_deviation, METH_VARARGS, "max |R^T R - I| and det R."},
    {"point_to_plane", point_to_plane, METH_VARARGS, "Point-to-plane residuals and Jacobians."},
    {"dense_gram", dense_gram, METH_VARARGS, "Dense J^T J and J^T r from scattered columns."},
    {"all_finite", all_finite, METH_VARARGS, "Are all entries of the arrays finite?"},
    {"damped_solve", damped_solve, METH_VARARGS, "(A + mu diag(d))^-1 (-g) by scipy's LAPACK."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "calib's compiled kernels (see csrc).", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
