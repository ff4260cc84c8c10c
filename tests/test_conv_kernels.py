"""conv_cpu's Numba kernels against their naive numpy twins (the numpy implementation they
replaced, kept here as the reference): random shapes, stride 2, padding, non-square kernels,
ties, NaN and -inf, float32 and float64."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from tinygrad_edu.backend import conv_cpu

# (N, C, H, W), kernel, stride, padding
CASES = [
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1)),
    ((1, 2, 9, 8), (3, 2), (2, 2), (1, 0)),
    ((3, 1, 5, 7), (2, 3), (2, 1), (0, 1)),
    ((2, 2, 6, 6), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 8, 9), (3, 3), (2, 3), (1, 1)),
    ((2, 1, 4, 4), (4, 4), (1, 1), (2, 2)),
]
DTYPES = [np.float32, np.float64]


# ----- the numpy reference -----


def _pad(x, padding, value=0.0):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp, kernel, stride):
    n, c, h, w = xp.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3))


def ref_col2im(dwin, padded_shape, stride, padding):
    n, c, oh, ow, kh, kw = dwin.shape
    (sh, sw), (ph, pw) = stride, padding
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dwin[:, :, :, :, i, j]
    return dxp[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw]


def _padded(x_shape, padding):
    return (x_shape[0], x_shape[1], x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])


def ref_max_pool(x, kernel, stride, padding):
    win = _windows(_pad(x, padding, -np.inf), kernel, stride)
    flat = win.reshape(*win.shape[:4], -1)
    arg = flat.argmax(axis=-1)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], arg


def ref_max_pool_backward(g, arg, x_shape, kernel, stride, padding):
    n, c, oh, ow = g.shape
    dwin = np.zeros((n, c, oh, ow, kernel[0] * kernel[1]), dtype=g.dtype)
    np.put_along_axis(dwin, arg[..., None], g[..., None], axis=-1)
    dwin = dwin.reshape(n, c, oh, ow, *kernel)
    return ref_col2im(dwin, _padded(x_shape, padding), stride, padding)


def ref_avg_pool(x, kernel, stride, padding):
    return _windows(_pad(x, padding), kernel, stride).mean(axis=(4, 5), dtype=x.dtype)


def ref_avg_pool_backward(g, x_shape, kernel, stride, padding):
    share = (g / (kernel[0] * kernel[1])).astype(g.dtype, copy=False)
    dwin = np.broadcast_to(share[..., None, None], (*g.shape, *kernel))
    return ref_col2im(dwin, _padded(x_shape, padding), stride, padding)


def ref_conv2d_forward(x, w, b, stride, padding):
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    win = _windows(_pad(x, padding), (kh, kw), stride)
    oh, ow = win.shape[2], win.shape[3]
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(c * kh * kw, -1)
    y = w.reshape(o, -1) @ cols
    if b is not None:
        y += b.reshape(o, 1)
    return y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3), cols


def ref_conv2d_backward(g, cols, x_shape, w, stride, padding):
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    gt = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, n * oh * ow)
    dcols = w.reshape(o, -1).T @ gt
    dwin = dcols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    dx = ref_col2im(dwin, _padded(x_shape, padding), stride, padding)
    return dx, (gt @ cols.T).reshape(w.shape), gt.sum(axis=1)


# ----- the tests -----


def _out(x_shape, kernel, stride, padding):
    size = conv_cpu.out_size
    return tuple(size(x_shape[2 + a], kernel[a], stride[a], padding[a]) for a in (0, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kernel,stride,padding", CASES)
def test_col2im_matches_reference(x_shape, kernel, stride, padding, dtype):
    rng = np.random.default_rng(0)
    n, c = x_shape[:2]
    oh, ow = _out(x_shape, kernel, stride, padding)
    dcols = rng.standard_normal((c * kernel[0] * kernel[1], n * oh * ow)).astype(dtype)
    dx = np.zeros(x_shape, dtype)
    conv_cpu._col2im(dcols, dx, *kernel, *stride, *padding, oh, ow)
    dwin = dcols.reshape(c, *kernel, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    expected = ref_col2im(dwin, _padded(x_shape, padding), stride, padding)
    np.testing.assert_array_equal(dx, expected)  # the same additions in the same order


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,kernel,stride,padding", CASES)
def test_conv2d_matches_reference(x_shape, kernel, stride, padding, bias, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((4, x_shape[1], *kernel)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype) if bias else None
    y, cols = conv_cpu.conv2d_forward(x, w, b, stride, padding)
    ry, rcols = ref_conv2d_forward(x, w, b, stride, padding)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(cols, rcols)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv_cpu.conv2d_backward(g, cols, x_shape, w, stride, padding, True, True, True)
    for got, want in zip((dx, dw, db), ref_conv2d_backward(g, rcols, x_shape, w, stride, padding)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)


def _pool_input(x_shape, dtype, special):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    if special == "ties":
        x = np.round(x).astype(dtype)  # few distinct values: many tied maxima
    elif special == "nan_inf":
        mask = rng.random(x_shape)
        x[mask < 0.1] = np.nan
        x[(mask >= 0.1) & (mask < 0.3)] = -np.inf
        x[(mask >= 0.3) & (mask < 0.35)] = np.inf
    elif special == "all_neg_inf":
        x[:] = -np.inf
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("special", ["random", "ties", "nan_inf", "all_neg_inf"])
@pytest.mark.parametrize("x_shape,kernel,stride,padding", CASES)
def test_max_pool_matches_reference(x_shape, kernel, stride, padding, special, dtype):
    x = _pool_input(x_shape, dtype, special)
    y, arg = conv_cpu.max_pool2d_forward(x, kernel, stride, padding)
    ry, rarg = ref_max_pool(x, kernel, stride, padding)
    assert y.dtype == dtype and arg.dtype == rarg.dtype
    np.testing.assert_array_equal(arg, rarg)  # the first maximum; the first NaN
    np.testing.assert_array_equal(y, ry)
    g = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    dx = conv_cpu.max_pool2d_backward(g, arg, x_shape, kernel, stride, padding)
    expected = ref_max_pool_backward(g, rarg, x_shape, kernel, stride, padding)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,kernel,stride,padding", CASES)
def test_avg_pool_matches_reference(x_shape, kernel, stride, padding, dtype):
    x = _pool_input(x_shape, dtype, "random")
    y = conv_cpu.avg_pool2d_forward(x, kernel, stride, padding)
    assert y.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14  # numpy's reduction may order the sum otherwise
    np.testing.assert_allclose(y, ref_avg_pool(x, kernel, stride, padding), rtol=rtol, atol=rtol)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    dx = conv_cpu.avg_pool2d_backward(g, x_shape, kernel, stride, padding)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, ref_avg_pool_backward(g, x_shape, kernel, stride, padding))


def test_avg_pool_propagates_nan_and_inf():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0], x[0, 0, 3, 3] = np.nan, np.inf
    y = conv_cpu.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(y[0, 0, 0, 0]) and np.isinf(y[0, 0, 1, 1]) and y[0, 0, 0, 1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slice_entries", [1, 200, 10**9])  # one image a slice, a few, all
def test_conv2d_in_image_slices_matches_reference(monkeypatch, slice_entries, dtype):
    """The batch computed a few whole images at a time (config.CONV_SLICE) gives the reference's
    numbers: every image lands in its own rows of the output and of dx, none twice."""
    monkeypatch.setattr(conv_cpu.config, "CONV_SLICE", slice_entries)
    x_shape, kernel, stride, padding = (5, 2, 6, 5), (3, 3), (1, 1), (1, 1)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((3, x_shape[1], *kernel)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    assert len(conv_cpu._image_slices(5, 3 * 6 * 5)) == {1: 5, 200: 3, 10**9: 1}[slice_entries]
    y, cols = conv_cpu.conv2d_forward(x, w, b, stride, padding)
    ry, rcols = ref_conv2d_forward(x, w, b, stride, padding)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(y, ry, **tol)  # BLAS may block a narrower product differently
    g = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv_cpu.conv2d_backward(g, cols, x_shape, w, stride, padding, True, True, True)
    for got, want in zip((dx, dw, db), ref_conv2d_backward(g, rcols, x_shape, w, stride, padding)):
        np.testing.assert_allclose(got, want, **tol)
