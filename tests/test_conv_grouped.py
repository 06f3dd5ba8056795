"""Blocked direct forwards that split each (image, group) into stride phases (for stride 1, the padded image)
inside the kernel (cpu_conv._tap_sum_blocked_phases, _group_phases; resnext50's stride-2 grouped 3x3 convs, resnet20's
16-channel convs) against the NumPy reference, and the policy for grouped convs, with and without a backward to
follow."""
import numpy as np
import pytest

import fastnn
from fastnn._kernels import cpu_conv, ref_conv
from fastnn.ops.conv import conv2d


def _assert_close(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    tol = 1e-10 if actual.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max()))


def _forward_kernels(monkeypatch, x, w, b, args, groups):
    """conv2d_forward_direct(x, w, b, *args, groups) and the names of the blocked kernels it ran."""
    ran = []
    with_slp = cpu_conv.with_slp

    def spy(kernel, *kernel_args):
        ran.append(kernel.py_func.__name__)
        return with_slp(kernel, *kernel_args)

    monkeypatch.setattr(cpu_conv, "with_slp", spy)
    return cpu_conv.conv2d_forward_direct(x, w, b, *args, groups), ran


_PHASES_CASES = [
    ((3, 16, 12, 12), (16, 4, 3, 3), 4, ((2, 2), (1, 1), (1, 1))),     # resnext50's s2 grouped 3x3, small, serial
    ((4, 64, 34, 34), (64, 8, 3, 3), 8, ((2, 2), (1, 1), (1, 1))),     # on the thread pool (over 4M multiply-adds)
    ((2, 6, 11, 13), (24, 2, 3, 3), 3, ((2, 2), (0, 2), (1, 1))),      # 8 per group: 2 blocks; odd plane, no row pad
    ((2, 12, 17, 19), (36, 4, 3, 3), 3, ((3, 2), (2, 1), (1, 1))),     # 12 per group (3 blocks), stride 3 rows
    ((2, 8, 15, 15), (16, 4, 3, 2), 2, ((2, 2), (2, 1), (2, 1))),      # dilated rows, padding beyond a stride
    ((1, 3, 40, 40), (8, 3, 5, 5), 1, ((2, 2), (2, 2), (1, 1))),       # ungrouped: a small stem
    ((8, 16, 20, 20), (16, 16, 3, 3), 1, ((1, 1), (1, 1), (1, 1))),    # stride 1 (resnet20's 16 channels), pooled
    ((2, 8, 9, 21), (8, 4, 3, 3), 2, ((1, 1), (2, 0), (1, 2))),        # stride 1, dilated columns, serial
]


# float64 on the first (serial) case by default; the pooled float64 kernel's compile (~35 s cold) only in slow runs.
@pytest.mark.parametrize("x_shape, w_shape, groups, args, dtype",
                         [(*case, np.float32) for case in _PHASES_CASES] + [(*_PHASES_CASES[0], np.float64)]
                         + [pytest.param(*case, np.float64, marks=pytest.mark.slow) for case in _PHASES_CASES[1:]])
def test_phases_path_matches_reference(monkeypatch, x_shape, w_shape, groups, args, dtype):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, ran = _forward_kernels(monkeypatch, x, w, b, args, groups)
    assert ran and ran[0].startswith("_tap_sum_blocked_phases")
    expected = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args,
                                       groups)
    _assert_close(out, expected.astype(dtype))
    assert np.array_equal(cpu_conv.conv2d_forward_direct(x, w, b, *args, groups), out)  # deterministic


@pytest.mark.parametrize("x_shape, w_shape, groups, args", [
    ((2, 12, 14, 14), (18, 4, 3, 3), 3, ((2, 2), (1, 1), (1, 1))),     # 6 per group: not in blocks of 4
    ((2, 8, 5, 5), (8, 4, 3, 3), 2, ((2, 2), (1, 1), (1, 1))),         # a 3x3 output: a wide plane under 16
    ((1, 16, 64, 64), (32, 16, 3, 3), 1, ((2, 2), (1, 1), (1, 1))),    # pooled, one (image, group): split once
])
def test_strided_grouped_convs_off_the_phases_path_match_reference(monkeypatch, x_shape, w_shape, groups, args):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    out, ran = _forward_kernels(monkeypatch, x, w, None, args, groups)
    assert not any(name.startswith("_tap_sum_blocked_phases") for name in ran)
    _assert_close(out, ref_conv.conv2d_forward(x, w, None, *args, groups))


@pytest.mark.parametrize("x_shape, w_shape, groups, stride, padding", [
    ((2, 8, 11, 13), (8, 4, 3, 3), 2, (2, 2), (1, 1)),
    ((1, 6, 10, 9), (6, 2, 3, 3), 3, (3, 2), (2, 0)),
])
def test_group_phases_is_the_layouts_split_of_one_group(x_shape, w_shape, groups, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    layout = cpu_conv._DirectLayout(x_shape, w_shape, stride, padding, (1, 1), groups)
    whole = layout.split(x, stride, padding)
    cin_g = x_shape[1] // groups
    size = cin_g * stride[0] * stride[1] * layout.hq * layout.wq
    for n in range(x_shape[0]):
        for g in range(groups):
            flat = np.full(size + layout.span, np.nan)
            cpu_conv._group_phases(x[n, g * cin_g:(g + 1) * cin_g], flat, *stride, *padding, layout.hq, layout.wq)
            assert np.array_equal(flat[:size], whole[n, g * size:(g + 1) * size])
            assert not flat[size:].any()


def test_grouped_policy():
    choose = cpu_conv.choose_algorithm
    # resnext50's 32-group 3x3 convs: stride 1 direct at every width (its 7x7 layer4 too), stride 2 from 32
    # channels per group im2col, whose backward wins there.
    assert choose((128, 4, 3, 3), 32, (1, 1), (56, 56)) == "direct"
    assert choose((512, 16, 3, 3), 32, (1, 1), (14, 14)) == "direct"
    assert choose((1024, 32, 3, 3), 32, (1, 1), (7, 7)) == "direct"
    assert choose((512, 16, 3, 3), 32, (2, 2), (14, 14)) == "direct"
    assert choose((1024, 32, 3, 3), 32, (2, 2), (7, 7)) == "im2col"
    # Groups of 128 output channels and more keep the ungrouped rule: a small plane goes to im2col.
    assert choose((256, 128, 3, 3), 2, (1, 1), (14, 14)) == "im2col"


def test_forward_only_policy():
    choose = cpu_conv.choose_algorithm
    # Without a backward, resnext50's 1024-channel stride-2 layer (32 per group) runs direct, which wins its forward
    # (~0.75x im2col's time) but not forward + backward.
    assert choose((1024, 32, 3, 3), 32, (2, 2), (7, 7), backward=False) == "direct"
    assert choose((1024, 32, 3, 3), 32, (2, 2), (7, 7), backward=True) == "im2col"
    assert choose((512, 16, 3, 3), 16, (2, 2), (7, 7), backward=False) == "direct"
    # From 64 output channels per group im2col wins the forward too.
    assert choose((256, 64, 3, 3), 4, (2, 2), (14, 14), backward=False) == "im2col"
    assert choose((512, 128, 3, 3), 4, (2, 2), (7, 7), backward=False) == "im2col"
    # Ungrouped strided convs keep im2col: resnet20's and resnet18's 3x3 and 1x1 stride-2 convs.
    assert choose((32, 16, 3, 3), 1, (2, 2), (16, 16), backward=False) == "im2col"
    assert choose((64, 32, 3, 3), 1, (2, 2), (8, 8), backward=False) == "im2col"
    assert choose((128, 64, 3, 3), 1, (2, 2), (28, 28), backward=False) == "im2col"
    assert choose((128, 64, 1, 1), 1, (2, 2), (28, 28), backward=False) == "im2col"
    # Stride-1 choices do not depend on it.
    for shape, groups in (((64, 64, 3, 3), 1), ((64, 16, 3, 3), 1), ((1024, 32, 3, 3), 32), ((256, 128, 3, 3), 2)):
        assert choose(shape, groups, (1, 1), (7, 7), backward=False) == choose(shape, groups, (1, 1), (7, 7))


def _conv_algorithms(monkeypatch):
    """The algorithms the CPU backend's conv2d_forward is called with, in order."""
    kernels = fastnn.tensor([0.0])._backend.kernels
    seen = []
    forward = kernels.conv2d_forward

    def spy(*args):
        seen.append(args[-1])
        return forward(*args)

    monkeypatch.setattr(kernels, "conv2d_forward", spy)
    return seen


def test_conv2d_picks_the_forward_only_algorithm_without_a_backward(monkeypatch):
    # 2 groups of 32 output channels, stride 2: im2col when a backward follows, direct when none will.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 32, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((64, 16, 3, 3)) / 12).astype(np.float32)
    expected = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, (2, 2), (1, 1), (1, 1), 2)
    seen = _conv_algorithms(monkeypatch)
    xt, wt = fastnn.tensor(x, requires_grad=True), fastnn.tensor(w, requires_grad=True)
    with fastnn.no_grad():
        inference = conv2d(xt, wt, stride=2, padding=1, groups=2)
    frozen = conv2d(fastnn.tensor(x), fastnn.tensor(w), stride=2, padding=1, groups=2)
    training = conv2d(xt, wt, stride=2, padding=1, groups=2)
    assert seen == ["direct", "direct", "im2col"]
    assert not inference.requires_grad and training.requires_grad
    for out in (inference, frozen, training):
        _assert_close(out.detach().numpy(), expected.astype(np.float32))
    np.testing.assert_array_equal(inference.numpy(), frozen.numpy())
    # Only the weight needing its gradient still takes the backward into account.
    seen.clear()
    conv2d(fastnn.tensor(x), wt, stride=2, padding=1, groups=2)
    assert seen == ["im2col"]


def test_conv2d_under_no_grad_equals_conv2d_with_grad(device):
    rng = np.random.default_rng(6)
    data = [rng.standard_normal(shape).astype(np.float32) for shape in ((2, 32, 8, 8), (64, 16, 3, 3), (64,))]
    x, w, b = (fastnn.tensor(a, device=device, requires_grad=True) for a in data)
    with fastnn.no_grad():
        inference = conv2d(x, w, b, stride=2, padding=1, groups=2)
    training = conv2d(x, w, b, stride=2, padding=1, groups=2)
    _assert_close(inference.cpu().numpy(), training.detach().cpu().numpy())
    training.sum().backward()
    # The gradients of the sum against the reference: the bias's is the pixel count of each output plane.
    grad_x, grad_w, grad_b = ref_conv.conv2d_backward(np.ones((2, 64, 4, 4)), *[a.astype(np.float64) for a in data[:2]],
                                                      (2, 2), (1, 1), (1, 1), 2)
    for t, expected in ((x, grad_x), (w, grad_w), (b, grad_b)):
        _assert_close(t.grad.cpu().numpy(), expected.astype(np.float32))
