"""The numba.cuda kernels (fastnn/_kernels/cuda_*.py) against the NumPy references, under the CUDA simulator.

Run by tests/test_cuda_sim.py in a subprocess with NUMBA_ENABLE_CUDASIM=1 (the simulator must be chosen before
numba.cuda is first imported, and it must not leak into the other tests). Prints one JSON object: check name ->
"ok" or the failure's traceback, or {"__skip__": reason} when numba.cuda cannot be imported. Shapes are tiny:
the simulator runs every GPU thread as a Python thread.
"""
import json
import os
import sys
import traceback

import numpy as np

CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def close(actual, desired, dtype, rtol32=2e-5):
    tol = rtol32 if np.dtype(dtype) == np.float32 else 1e-12
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol)


def _rng():
    return np.random.default_rng(0)


DTYPES = (np.float32, np.float64)
ACTIVATIONS = [("hardtanh", (-1.0, 1.0)), ("leaky_relu", (0.1,)), ("elu", (1.2, 1.05)), ("swish", (1.3,)),
               ("softplus", (1.5, 4.0)), ("mish", ()), ("gelu", (False,)), ("gelu", (True,)), ("sigmoid", ()),
               ("tanh", ())]


@check
def elementwise_activations():
    from fastnn._kernels import cuda_activation as C, ref_activation as R
    for dtype in DTYPES:
        x = (_rng().standard_normal(40) * 3).astype(dtype)
        x[:4] = (-1.0, 1.0, 0.0, 30.0)  # hardtanh's edges, relu's kink, softplus's threshold
        g = _rng().standard_normal(40).astype(dtype)
        for name, args in ACTIVATIONS:
            out = getattr(C, name + "_forward")(x, *args, np.empty_like(x))
            assert out.dtype == dtype, (name, out.dtype)
            close(out, getattr(R, name + "_forward")(x, *args, np.empty_like(x)), dtype)
            saved = out if name in ("sigmoid", "tanh") else x  # their backward reads the output
            close(getattr(C, name + "_backward")(g, saved, *args), getattr(R, name + "_backward")(g, saved, *args),
                  dtype)


@check
def swish_beta_gradient():
    from fastnn._kernels import cuda_activation as C, ref_activation as R
    for dtype in DTYPES:
        x, g = (_rng().standard_normal((2, 37)).astype(dtype))
        grad, partials = C.swish_backward_with_beta(g, x, 0.7)
        ref_grad, ref_partials = R.swish_backward_with_beta(g, x, 0.7)
        close(grad, ref_grad, dtype)
        close(partials.sum(keepdims=True), ref_partials, dtype)


@check
def prelu_and_maxout():
    from fastnn._kernels import cuda_activation as C, ref_activation as R
    for dtype in DTYPES:
        x = _rng().standard_normal((2, 6, 5)).astype(dtype)
        x[0, 0, :2] = np.nan  # NaN wins a maxout group
        w = _rng().standard_normal(6).astype(dtype)
        g = _rng().standard_normal((2, 6, 5)).astype(dtype)
        np.testing.assert_array_equal(C.prelu_forward(x, w), R.prelu_forward(x, w))
        for a, b in zip(C.prelu_backward(g, x, w), R.prelu_backward(g, x, w)):
            close(a, b, dtype)
        np.testing.assert_array_equal(C.maxout_forward(x, 3), R.maxout_forward(x, 3))
        x[1, 1, 1] = x[1, 0, 1]  # a tie goes to the first piece
        g2 = _rng().standard_normal((2, 2, 5)).astype(dtype)
        np.testing.assert_array_equal(C.maxout_backward(g2, x, 3), R.maxout_backward(g2, x, 3))


@check
def optimizer_steps():
    from fastnn._kernels import cuda_optim as C, ref_optim as R1, ref_optim_adaptive as R2
    cases = [
        ("sgd_step", R1, 1, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=True,
                                 maximize=False, first_step=False)),
        ("sgd_step", R1, 1, dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
                                 maximize=True, first_step=True)),
        ("sgd_step", R1, 1, dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                                 maximize=True, first_step=True)),
        ("adam_step", R1, 3, dict(step=3, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                                  amsgrad=True, decoupled_weight_decay=False, maximize=False)),
        ("adam_step", R1, 3, dict(step=1, lr=0.01, beta1=0.3, beta2=0.99, eps=1e-8, weight_decay=0.1,
                                  amsgrad=False, decoupled_weight_decay=True, maximize=True)),
        ("adagrad_step", R2, 1, dict(step=4, lr=0.1, lr_decay=0.01, weight_decay=0.01, eps=1e-10, maximize=False)),
        ("rmsprop_step", R2, 3, dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=0.9, centered=True,
                                     maximize=False)),
        ("rmsprop_step", R2, 3, dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                                     maximize=True)),
        ("nadam_step", R2, 2, dict(step=5, mu_product=0.5, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8,
                                   weight_decay=0.01, momentum_decay=0.004, decoupled_weight_decay=True,
                                   maximize=False)),
    ]
    for dtype in DTYPES:
        for name, ref, n_state, kwargs in cases:
            rng = _rng()
            param, grad = rng.standard_normal((2, 45)).astype(dtype)
            state = [np.abs(rng.standard_normal(45)).astype(dtype) for _ in range(n_state)]
            state[0] += 20  # centered RMSprop: square_avg > grad_avg**2 (the simulator's sqrt raises on < 0)
            copies = [param.copy()] + [s.copy() for s in state]
            ours = getattr(C, name)(param, grad, *state, **kwargs)
            theirs = getattr(ref, name)(copies[0], grad, *copies[1:], **kwargs)
            assert (ours is None) == (theirs is None) and (ours is None or abs(ours - theirs) < 1e-12), name
            for a, b in zip([param] + state, copies):
                close(a, b, dtype)


@check
def batch_norm():
    from fastnn._kernels import cuda_norm as C, ref_norm as R
    for dtype in DTYPES:
        rng = _rng()
        x = (rng.standard_normal((3, 4, 7)) * 5 + 2).astype(dtype)
        w, b = rng.standard_normal((2, 4)).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        y, mean, var = C.batch_norm_forward(x, w, b, 1e-5)
        assert mean.dtype == var.dtype == np.float64
        for a, r in zip((y, mean, var), R.batch_norm_forward(x, w, b, 1e-5)):
            close(a, r, dtype)
        invstd = 1 / np.sqrt(var + 1e-5)
        close(C.batch_norm_apply(x, mean, invstd, w, b), R.batch_norm_apply(x, mean, invstd, w, b), dtype)
        for batch_stats in (True, False):
            first = C.batch_norm_backward(g, x, mean, invstd, w, batch_stats)
            for a, r in zip(first, R.batch_norm_backward(g, x, mean, invstd, w, batch_stats)):
                close(a, r, dtype, rtol32=1e-4)
            # fixed-order reductions: the same bits on a second run
            for a, again in zip(first, C.batch_norm_backward(g, x, mean, invstd, w, batch_stats)):
                np.testing.assert_array_equal(a, again)


@check
def layer_norm():
    from fastnn._kernels import cuda_norm as C, ref_norm as R
    for dtype in DTYPES:
        rng = _rng()
        x = (rng.standard_normal((3, 37)) * 3 - 1).astype(dtype)
        w, b = rng.standard_normal((2, 37)).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        y, mean, invstd = C.layer_norm_forward(x, w, b, 1e-5)
        for a, r in zip((y, mean, invstd), R.layer_norm_forward(x, w, b, 1e-5)):
            close(a, r, dtype)
        first = C.layer_norm_backward(g, x, mean, invstd, w)
        for a, r in zip(first, R.layer_norm_backward(g, x, mean, invstd, w)):
            close(a, r, dtype, rtol32=1e-4)
        for a, again in zip(first, C.layer_norm_backward(g, x, mean, invstd, w)):
            np.testing.assert_array_equal(a, again)


def _out_size(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@check
def max_pool2d():
    from fastnn._kernels import cuda_pool as C, ref_pool as R
    for dtype in DTYPES:
        x = _rng().standard_normal((2, 5, 6)).astype(dtype)
        x[0, 1, 1], x[1, 2, 2], x[1, 0, :] = np.nan, -np.inf, -np.inf
        for kh, kw, sh, sw, ph, pw, dh, dw in [(2, 2, 2, 2, 0, 0, 1, 1), (3, 3, 2, 1, 1, 1, 1, 1),
                                               (2, 3, 1, 2, 1, 1, 2, 1)]:
            oh, ow = _out_size(5, kh, sh, ph, dh), _out_size(6, kw, sw, pw, dw)
            args = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
            (out, idx), (ref_out, ref_idx) = C.max_pool2d_forward(x, *args), R.max_pool2d_forward(x, *args)
            np.testing.assert_array_equal(out, ref_out)
            np.testing.assert_array_equal(idx, ref_idx)
            g = _rng().standard_normal(out.shape).astype(dtype)
            close(C.max_pool2d_backward(g, idx, 5, 6), R.max_pool2d_backward(g, ref_idx, 5, 6), dtype)


@check
def avg_pool2d():
    from fastnn._kernels import cuda_pool as C, ref_pool as R
    for dtype in DTYPES:
        x = _rng().standard_normal((2, 5, 6)).astype(dtype)
        for kh, kw, sh, sw, ph, pw in [(2, 2, 2, 2, 0, 0), (3, 3, 2, 1, 1, 1), (3, 2, 2, 3, 1, 1)]:
            oh, ow = _out_size(5, kh, sh, ph), _out_size(6, kw, sw, pw)
            for count_include_pad, divisor in [(True, 0), (False, 0), (True, 5)]:
                args = (kh, kw, sh, sw, ph, pw)
                out = C.avg_pool2d_forward(x, *args, oh, ow, count_include_pad, divisor)
                close(out, R.avg_pool2d_forward(x, *args, oh, ow, count_include_pad, divisor), dtype)
                g = _rng().standard_normal(out.shape).astype(dtype)
                close(C.avg_pool2d_backward(g, 5, 6, *args, count_include_pad, divisor),
                      R.avg_pool2d_backward(g, 5, 6, *args, count_include_pad, divisor), dtype)


@check
def pool3d():
    from fastnn._kernels import cuda_pool_nd as C, ref_pool_nd as R
    for dtype in DTYPES:
        x = _rng().standard_normal((2, 4, 5, 6)).astype(dtype)
        x[0, 1, 1, 1], x[1, 0, 0, :] = np.nan, -np.inf
        for args in [(2, 2, 2, 2, 2, 2, 0, 0, 0, 1, 1, 1), (3, 2, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1),
                     (2, 2, 2, 1, 1, 1, 1, 0, 1, 2, 1, 2)]:
            kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw = args
            sizes = (_out_size(4, kd, sd, pd, dd), _out_size(5, kh, sh, ph, dh), _out_size(6, kw, sw, pw, dw))
            for a, r in zip(C.max_pool3d_forward(x, *args, *sizes), R.max_pool3d_forward(x, *args, *sizes)):
                np.testing.assert_array_equal(a, r)
        x = _rng().standard_normal((2, 4, 5, 6)).astype(dtype)
        for args in [(2, 2, 2, 2, 2, 2, 0, 0, 0), (3, 2, 3, 1, 2, 2, 1, 1, 1)]:
            kd, kh, kw, sd, sh, sw, pd, ph, pw = args
            sizes = (_out_size(4, kd, sd, pd), _out_size(5, kh, sh, ph), _out_size(6, kw, sw, pw))
            for count_include_pad, divisor in [(True, 0), (False, 0), (False, 3)]:
                out = C.avg_pool3d_forward(x, *args, *sizes, count_include_pad, divisor)
                close(out, R.avg_pool3d_forward(x, *args, *sizes, count_include_pad, divisor), dtype)
                g = _rng().standard_normal(out.shape).astype(dtype)
                close(C.avg_pool3d_backward(g, 4, 5, 6, *args, count_include_pad, divisor),
                      R.avg_pool3d_backward(g, 4, 5, 6, *args, count_include_pad, divisor), dtype)


@check
def adaptive_and_fractional_pool2d():
    from fastnn._kernels import cuda_pool_nd as C, ref_pool_nd as R
    for dtype in DTYPES:
        x = _rng().standard_normal((3, 7, 5)).astype(dtype)
        x[1, 2, 2] = np.nan
        for oh, ow in [(3, 2), (7, 5), (1, 1), (4, 4)]:  # overlapping, identity, global, uneven regions
            out = C.adaptive_avg_pool2d_forward(x, oh, ow)
            close(out, R.adaptive_avg_pool2d_forward(x, oh, ow), dtype)
            g = _rng().standard_normal(out.shape).astype(dtype)
            close(C.adaptive_avg_pool2d_backward(g, 7, 5), R.adaptive_avg_pool2d_backward(g, 7, 5), dtype)
            for a, r in zip(C.adaptive_max_pool2d_forward(x, oh, ow), R.adaptive_max_pool2d_forward(x, oh, ow)):
                np.testing.assert_array_equal(a, r)
        x = _rng().standard_normal((3, 9, 8)).astype(dtype)
        samples = _rng().random((3, 2)).astype(dtype)
        for a, r in zip(C.fractional_max_pool2d_forward(x, samples, 2, 3, 4, 3),
                        R.fractional_max_pool2d_forward(x, samples, 2, 3, 4, 3)):
            np.testing.assert_array_equal(a, r)


@check
def augmentation():
    from fastnn._kernels import cuda_augment as C, ref_augment as R
    rng = _rng()
    for dtype in (np.uint8, np.float32):
        images = (rng.random((3, 2, 5, 6)) * 255).astype(dtype)
        fill = np.array([7, 9], dtype)
        tops, lefts = np.array([0, -2, 3]), np.array([1, 4, -7])  # inside, partly outside, wholly outside
        for hflip, vflip in [([False, True, False], [True, False, False]), ([True, True, True], [False, True, True])]:
            hflip, vflip = np.array(hflip), np.array(vflip)
            np.testing.assert_array_equal(C.crop_flip(images, tops, lefts, 4, 3, hflip, vflip, fill),
                                          R.crop_flip(images, tops, lefts, 4, 3, hflip, vflip, fill))
        for scale in ([1 / 255, 1], [1, 255]):  # ToDtype's multiplier, ToTensor's divisor
            coefficients = np.array(scale, np.float32), np.array([0.5, 0.25], np.float32), np.array([2, 0.5], np.float32)
            np.testing.assert_array_equal(C.scale_normalize(images, *coefficients),
                                          R.scale_normalize(images, *coefficients))
        boxes = np.array([[[1, 1, 2, 3], [0, 0, 0, 0]], [[0, 2, 5, 1], [3, 0, 1, 6]], [[4, 5, 1, 1], [0, 0, 1, 1]]])
        values = np.array([[1, 2], [3, 4], [5, 6]], dtype)
        np.testing.assert_array_equal(C.erase_constant(images, boxes, values), R.erase_constant(images, boxes, values))
        boxes1 = np.ascontiguousarray(boxes[:, 0])  # kernels take C-contiguous arrays
        sizes = 2 * boxes1[:, 2] * boxes1[:, 3]
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        noise = (rng.random(sizes.sum()) * 255).astype(dtype)
        np.testing.assert_array_equal(C.erase_noise(images, boxes1, noise, offsets),
                                      R.erase_noise(images, boxes1, noise, offsets))
    images = rng.random((2, 3, 5, 6)).astype(np.float32)
    angle = 0.4
    matrices = np.array([[np.cos(angle), -np.sin(angle), 0.5, np.sin(angle), np.cos(angle), -0.25],
                         [1.0, 0.0, 0.5, 0.0, 1.0, 0.5]])  # a rotation, and a shift landing on pixel halves
    fill = np.array([0.1, 0.2, 0.3], np.float32)
    for bilinear in (False, True):
        for use_fill in (False, True):
            close(C.affine_sample(images, matrices, 4, 7, bilinear, fill, use_fill),
                  R.affine_sample(images, matrices, 4, 7, bilinear, fill, use_fill), np.float32)


@check
def color_ops():
    from fastnn._kernels import augment_codes as A, cuda_augment as C, ref_augment as R
    rng = _rng()
    ops = np.array([[A.OP_BRIGHTNESS, A.OP_CONTRAST, A.OP_SATURATION, A.OP_HUE],
                    [A.OP_HUE, A.OP_GRAYSCALE, A.OP_CONTRAST, A.OP_NONE],
                    [A.OP_CONTRAST, A.OP_NONE, A.OP_BRIGHTNESS, A.OP_SATURATION]])
    for dtype in (np.float32, np.float64):
        for integer in (True, False):
            for channels in (3, 1):
                scale = 255 if integer else 1
                images = rng.random((3, channels, 4, 5)) * scale
                images = (np.floor(images) if integer else images).astype(dtype)
                factors = np.array([[1.3, 0.7, 1.6, 0.2], [-0.3, 1.0, 1.4, 1.0], [0.5, 1.0, 0.9, 0.1]], dtype)
                alphas = (1 - factors.astype(np.float64)).astype(dtype)
                consts = A.color_constants(dtype, integer)
                ours = C.color_ops(images, ops, factors, alphas, consts, integer)
                theirs = R.color_ops(images, ops, factors, alphas, consts, integer)
                if integer:  # uint8 values: the same truncations
                    np.testing.assert_array_equal(ours, theirs)
                else:  # contrast's mean is summed in another order
                    close(ours, theirs, dtype)


@check
def scatter_add_and_embedding_backward():
    from fastnn._kernels import cuda_index as C
    for dtype in DTYPES:
        rng = _rng()
        target = rng.standard_normal((4, 3)).astype(dtype)
        values = rng.standard_normal((5, 3)).astype(dtype)
        rows, cols = np.array([1, 3, 1, 1, 0]), np.array([0, 2, 0, 1, 2])
        for index, vals in (((rows,), values), ((rows, cols), values[:, 0]), ((slice(None), 1), dtype(2.5))):
            ours, ref = target.copy(), target.copy()
            C.scatter_add(ours, index if len(index) > 1 else index[0], vals)
            np.add.at(ref, index if len(index) > 1 else index[0], vals)
            close(ours, ref, dtype)
        ref = np.zeros((6, 3), dtype)
        np.add.at(ref, rows, values)
        close(C.embedding_backward(values, rows, 6), ref, dtype)


def _simulated_backend():
    """The CUDA backend's kernels and policies on host arrays: what the simulator can run of CUDABackend."""
    from fastnn._kernels import cuda, cuda_conv
    from fastnn._kernels.backend import Backend

    class SimulatedCUDA(Backend):
        kind = "cudasim"
        xp = np
        array_types = (np.ndarray,)
        conv_algorithms = cuda_conv.ALGORITHMS

        def __init__(self, index=None):
            super().__init__(index, cuda.kernel_namespace())

        def from_host(self, array):
            return np.array(array, copy=True)

        def to_host(self, array):
            return np.array(array, copy=True)

        conv_algorithm = cuda.CUDABackend.conv_algorithm
    return SimulatedCUDA


@check
def training_steps_through_ops():
    """Ops, layers and optimizers on the CUDA kernels (simulated) give the CPU's training steps."""
    import fastnn
    from fastnn import _dispatch, nn
    _dispatch.register("cudasim", _simulated_backend())
    rng = _rng()
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 2])
    results = {}
    for device in ("cpu", "cudasim"):
        for optimizer_name in ("Adam", "SGD"):
            fastnn.manual_seed(0)
            # no bias before BatchNorm: its gradient is zero up to rounding, which Adam would amplify
            model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.GELU(),
                                  nn.MaxPool2d(2), nn.Conv2d(3, 2, 3), nn.LayerNorm([2, 2, 2]), nn.AvgPool2d(2),
                                  nn.Flatten(), nn.Linear(2, 3)).to(device)
            kwargs = dict(lr=0.1, momentum=0.9) if optimizer_name == "SGD" else dict(lr=0.01)
            optimizer = getattr(fastnn.optim, optimizer_name)(model.parameters(), **kwargs)
            inputs, targets = fastnn.tensor(x).to(device), fastnn.tensor(y).to(device)
            losses = []
            for _ in range(2):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(inputs), targets)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            results[device, optimizer_name] = losses, [p.detach().numpy() for p in model.parameters()]
    for optimizer_name in ("Adam", "SGD"):
        (cpu_losses, cpu_params), (sim_losses, sim_params) = (results[d, optimizer_name] for d in ("cpu", "cudasim"))
        np.testing.assert_allclose(sim_losses, cpu_losses, rtol=1e-5)
        for a, b in zip(sim_params, cpu_params):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    embedding = nn.Embedding(5, 3).to("cudasim")
    embedding(fastnn.tensor(np.array([1, 3, 1])).to("cudasim")).sum().backward()
    np.testing.assert_array_equal(embedding.weight.grad.numpy()[:, 0], [0, 2, 0, 1, 0])


@check
def kernel_namespace_complete():
    """Every declared entry point, with its declared parameters (what CUDABackend's construction checks)."""
    from fastnn._kernels import cuda
    from fastnn._kernels.backend import Backend
    from fastnn._kernels.interface import KERNELS

    class _Check(Backend):
        kind = "cuda"
    namespace = _Check._check_kernels(cuda.kernel_namespace())
    assert sorted(vars(namespace)) == sorted(KERNELS)
    gaps = cuda.missing()
    assert not set(gaps) & set(cuda.FALLBACKS)
    for name in gaps:
        try:
            getattr(namespace, name)(*[None] * len(KERNELS[name].split(")")[0].split(",")))
        except NotImplementedError as exc:
            assert name in str(exc) and "CUDA" in str(exc)
        else:
            raise AssertionError("a missing kernel must say so")


def main():
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"
    try:
        from numba import cuda  # noqa: F401
    except ImportError as exc:
        print(json.dumps({"__skip__": f"numba.cuda is not importable ({exc}); pip install numba-cuda"}))
        return
    only = sys.argv[1:]
    results = {}
    for name, fn in CHECKS.items():
        if only and name not in only:
            continue
        try:
            fn()
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
