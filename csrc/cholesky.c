/* damped_solve(A, g, d, mu, work, x): the tiny path's damped step
 * x = -(A + mu diag(d))^-1 g in one call, by LAPACK's dpotrf / dpotrs: scipy's, whose
 * function pointers this file takes from scipy.linalg.cython_lapack on first use (calib
 * links no LAPACK of its own; the caller imports scipy.linalg first). The damped matrix is
 * written to `work` in Fortran order, lower triangle, the same memory and the same LAPACK
 * calls as scipy.linalg.lapack.dpotrf(S, lower=1) then dpotrs, so the step is bitwise the
 * one of that path, without its two wrappers' argument handling and copies.
 * A (n, n) strided, g (n,), d (n,) strided; work (n, n) and x (n,) C-contiguous outputs.
 * Returns LAPACK's info: 0 solved, k > 0 the leading minor of order k is not positive
 * definite (x then holds -g), < 0 an argument LAPACK refused. */
#include "arrays.h"

typedef void potrf_t(char *uplo, int *n, double *a, int *lda, int *info);
typedef void potrs_t(char *uplo, int *n, int *nrhs, double *a, int *lda, double *b, int *ldb,
                     int *info);

static potrf_t *potrf;
static potrs_t *potrs;

/* the pointer of scipy.linalg.cython_lapack's routine `name` (a borrowed capsule of
 * its __pyx_capi__), or NULL with an exception set */
static void *lapack_routine(PyObject *capi, const char *name)
{
    PyObject *cap = PyDict_GetItemString(capi, name);
    if (cap == NULL || !PyCapsule_CheckExact(cap)) {
        PyErr_Format(PyExc_ImportError, "calib._kernels: scipy.linalg.cython_lapack has no %s",
                     name);
        return NULL;
    }
    return PyCapsule_GetPointer(cap, PyCapsule_GetName(cap));
}

/* potrf and potrs set from scipy (once: the GIL is held), else 0 with an exception */
static int load_lapack(void)
{
    if (potrf != NULL && potrs != NULL)
        return 1;
    PyObject *mod = PyImport_ImportModule("scipy.linalg.cython_lapack");
    PyObject *capi = mod ? PyObject_GetAttrString(mod, "__pyx_capi__") : NULL;
    if (capi != NULL && !PyDict_Check(capi))
        PyErr_SetString(PyExc_ImportError,
                        "calib._kernels: scipy.linalg.cython_lapack.__pyx_capi__ is not a dict");
    else if (capi != NULL) {
        potrf = lapack_routine(capi, "dpotrf");
        potrs = potrf ? lapack_routine(capi, "dpotrs") : NULL;
    }
    Py_XDECREF(capi);
    Py_XDECREF(mod);
    return potrf != NULL && potrs != NULL;
}

PyObject *damped_solve(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    double mu;
    if (!PyArg_ParseTuple(args, "OOOdOO", &o[0], &o[1], &o[2], &mu, &o[3], &o[4]) ||
        !load_lapack())
        return NULL;
    Arr A[5];
    memset(A, 0, sizeof(A));
    int ok = get_arr(o[0], &A[0], 2, 0, 0, "A");
    Py_ssize_t n = ok ? A[0].shape[0] : 0;
    ok = ok && check_shape(&A[0], 1, n, "A") &&
         get_shaped(o[1], &A[1], 1, 0, 0, n, -1, -1, "g") &&
         get_shaped(o[2], &A[2], 1, 0, 0, n, -1, -1, "d") &&
         get_shaped(o[3], &A[3], 2, 0, 1, n, n, -1, "work") &&
         get_shaped(o[4], &A[4], 1, 0, 1, n, -1, -1, "x");
    if (ok && n > 46340) { /* n * n must fit LAPACK's int */
        PyErr_SetString(PyExc_ValueError, "calib._kernels: damped_solve takes n <= 46340");
        ok = 0;
    }
    if (!ok) {
        release(A, 5);
        return NULL;
    }
    const double *a = A[0].view.buf, *g = A[1].view.buf, *d = A[2].view.buf;
    const Py_ssize_t s0 = A[0].step[0], s1 = A[0].step[1], sg = A[1].step[0], sd = A[2].step[0];
    double *w = A[3].view.buf, *x = A[4].view.buf;
    int info = 0;
    if (n > 0) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) { /* w[j * n + i] = S[i, j]: Fortran order */
            for (Py_ssize_t j = 0; j < n; j++)
                w[j * n + i] = a[i * s0 + j * s1];
            w[i * n + i] = a[i * s0 + i * s1] + mu * d[i * sd];
            x[i] = -g[i * sg];
        }
        char lower = 'L';
        int ni = (int)n, one = 1;
        potrf(&lower, &ni, w, &ni, &info);
        if (info == 0)
            potrs(&lower, &ni, &one, w, &ni, x, &ni, &info);
        Py_END_ALLOW_THREADS
    }
    release(A, 5);
    return PyLong_FromLong(info);
}
