/* all_finite(arrays): True when every entry of every float64 array (any shape, any
 * strides) is finite: the solver's check of residuals and Jacobians in one call, where
 * numpy's isfinite(x).all() costs a temporary and two passes per array. */
#include <math.h>

#include "arrays.h"

static int finite_nd(const double *p, const Py_buffer *v, int dim)
{
    Py_ssize_t st = v->strides ? v->strides[dim] / 8 : 0;
    if (!v->strides) { /* C-contiguous */
        st = 1;
        for (int j = dim + 1; j < v->ndim; j++)
            st *= v->shape[j];
    }
    for (Py_ssize_t i = 0; i < v->shape[dim]; i++) {
        const double *q = p + i * st;
        if (dim + 1 < v->ndim) {
            if (!finite_nd(q, v, dim + 1))
                return 0;
        } else if (!isfinite(*q)) {
            return 0;
        }
    }
    return 1;
}

PyObject *all_finite(PyObject *self, PyObject *args)
{
    PyObject *seq = PySequence_Fast(args, "calib._kernels: all_finite takes arrays");
    if (seq == NULL)
        return NULL;
    int result = 1;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(seq); k++) { /* every one checked */
        Py_buffer v;
        PyObject *obj = PySequence_Fast_GET_ITEM(seq, k);
        if (PyObject_GetBuffer(obj, &v, PyBUF_RECORDS_RO) < 0) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "calib._kernels: all_finite takes float64 arrays");
            Py_DECREF(seq);
            return NULL;
        }
        const char *f = v.format ? v.format : "B";
        if (*f == '<' || *f == '=' || *f == '@')
            f++;
        int bad = v.itemsize != 8 || *f != 'd' || (uintptr_t)v.buf % 8;
        for (int d = 0; !bad && v.strides && d < v.ndim; d++)
            bad = v.strides[d] % 8 != 0;
        if (bad) {
            PyBuffer_Release(&v);
            PyErr_SetString(PyExc_ValueError,
                            "calib._kernels: all_finite takes aligned float64 arrays");
            Py_DECREF(seq);
            return NULL;
        }
        int empty = 0;
        for (int d = 0; d < v.ndim; d++)
            empty |= v.shape[d] == 0;
        if (result && !empty) { /* once one is not finite, the rest are only checked as arrays */
            if (v.ndim == 0) {
                result = isfinite(*(const double *)v.buf);
            } else {
                Py_BEGIN_ALLOW_THREADS
                result = finite_nd(v.buf, &v, 0);
                Py_END_ALLOW_THREADS
            }
        }
        PyBuffer_Release(&v);
    }
    Py_DECREF(seq);
    return PyBool_FromLong(result);
}
