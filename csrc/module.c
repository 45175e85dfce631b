/* calib._kernels: the compiled loops of calib (blocks.c: the solver's small-block sums;
 * bal.c: the BAL reprojection; lie.c: the SE3 update; registration.c: point-to-plane
 * residuals). Python wrappers with shapes and units: calib/solver/blocks.py,
 * calib/residuals/bal_projection.py, calib/solver/manifold.py and
 * calib/residuals/point_to_plane.py. */
#include "arrays.h"

static PyMethodDef methods[] = {
    {"segment_gram", segment_gram, METH_VARARGS, "Per segment sum of ja^T jb."},
    {"pair_products", pair_products, METH_VARARGS, "Schur pair products of L^-1 W^T."},
    {"inverse_cholesky", inverse_cholesky, METH_VARARGS,
     "Batched L^-1 and inverse of SPD blocks."},
    {"bal_project", bal_project, METH_VARARGS, "BAL residuals and Jacobians."},
    {"se3_plus", se3_plus, METH_VARARGS, "SE3 left update Exp(delta) T."},
    {"point_to_plane", point_to_plane, METH_VARARGS, "Point-to-plane residuals and Jacobians."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "calib's compiled kernels (see csrc).", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
