"""The kernel interface: every entry point a backend must provide, with its parameters, in one place.

A backend's `kernels` namespace holds one callable per name below. Kernels take arrays of the backend's type
(already validated, C-contiguous and of a kernel dtype: the ops check and convert before calling) and Python or
NumPy scalars, and return new arrays; only the optimizer steps update their first arguments in place, and the
element-wise activation forwards write into (and return) their `out` argument. A backend
that lacks an entry point fails at registration with a message naming it (see Backend.__init__).

Conventions shared by several kernels:
- activations work on flat 1-D arrays; an element-wise `*_forward(x, ..., out)` writes into `out`, a new array of
  x's shape and dtype or x itself (PyTorch's in-place forms); `*_backward(grad_out, saved, ...)` reads the saved
  input (or output, for sigmoid and tanh, and for the in-place piecewise-linear forms);
- pools work on (planes, H, W) / (planes, D, H, W) stacks, one plane per (image, channel); max-type pools return
  (out, indices) with flat positions inside each input plane, and `max_pool2d_backward` scatters a gradient to
  those positions for every max-type pool (2-D, 3-D, adaptive, fractional), since that is all their backward is;
- convolutions take symmetric zero padding and an `algorithm` the backend's `conv_algorithm` policy chose.
"""

KERNELS = {
    # activations (flat arrays)
    "hardtanh_forward": "(x, min_val, max_val, out)",
    "hardtanh_backward": "(grad_out, x, min_val, max_val)",
    "leaky_relu_forward": "(x, negative_slope, out)",
    "leaky_relu_backward": "(grad_out, x, negative_slope)",
    "elu_forward": "(x, alpha, scale, out)",
    "elu_backward": "(grad_out, x, alpha, scale)",
    "sigmoid_forward": "(x, out)",
    "sigmoid_backward": "(grad_out, out)",
    "tanh_forward": "(x, out)",
    "tanh_backward": "(grad_out, out)",
    "swish_forward": "(x, beta, out)",
    "swish_backward": "(grad_out, x, beta)",
    "swish_backward_with_beta": "(grad_out, x, beta)",
    "softplus_forward": "(x, beta, threshold, out)",
    "softplus_backward": "(grad_out, x, beta, threshold)",
    "mish_forward": "(x, out)",
    "mish_backward": "(grad_out, x)",
    "gelu_forward": "(x, tanh_approximation, out)",
    "gelu_backward": "(grad_out, x, tanh_approximation)",
    "prelu_forward": "(x, weight)",
    "prelu_backward": "(grad_out, x, weight)",
    "maxout_forward": "(x, pieces)",
    "maxout_backward": "(grad_out, x, pieces)",
    # softmax / log-softmax (when `log`) over axis 1 of (outer, C, inner); the backward reads the saved output
    "softmax_forward": "(x, log)",
    "softmax_backward": "(grad_out, out, log)",
    # convolution (NCHW, weight (Cout, Cin/groups, kh, kw))
    "conv2d_forward": "(x, w, b, stride, padding, dilation, groups, algorithm)",
    "conv2d_backward": "(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias, "
                       "algorithm)",
    # normalization
    "batch_norm_forward": "(x, weight, bias, eps)",
    "batch_norm_apply": "(x, mean, invstd, weight, bias)",
    "batch_norm_backward": "(grad_out, x, mean, invstd, weight, batch_stats)",
    "layer_norm_forward": "(x, weight, bias, eps)",
    "layer_norm_backward": "(grad_out, x, mean, invstd, weight)",
    "local_response_norm_forward": "(x, size, alpha, beta, k)",
    "local_response_norm_backward": "(grad_out, x, y, base, size, alpha, beta)",
    # optimizer updates (in place on param and state; flat arrays of one parameter)
    "sgd_step": "(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step)",
    "adam_step": "(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, "
                 "amsgrad, decoupled_weight_decay, maximize)",
    "adagrad_step": "(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize)",
    "rmsprop_step": "(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum, "
                    "centered, maximize)",
    "nadam_step": "(param, grad, exp_avg, exp_avg_sq, step, mu_product, lr, beta1, beta2, eps, weight_decay, "
                  "momentum_decay, decoupled_weight_decay, maximize)",
    "adadelta_step": "(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize)",
    "adamax_step": "(param, grad, exp_avg, exp_inf, step, lr, beta1, beta2, eps, weight_decay, maximize)",
    "radam_step": "(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, "
                  "decoupled_weight_decay, maximize)",
    # returns the next (eta, mu)
    "asgd_step": "(param, grad, ax, step, eta, mu, lr, lambd, alpha, t0, weight_decay, maximize)",
    "rprop_step": "(param, grad, prev, step_size, etaminus, etaplus, step_size_min, step_size_max, maximize)",
    # updates only the rows (runs of row_size elements) whose gradient has a nonzero entry
    "sparse_adam_step": "(param, grad, exp_avg, exp_avg_sq, row_size, step, lr, beta1, beta2, eps, maximize)",
    # pooling (plane stacks)
    "max_pool2d_forward": "(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)",
    "max_pool2d_backward": "(grad_out, indices, height, width)",
    "avg_pool2d_forward": "(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override)",
    "avg_pool2d_backward": "(grad_out, height, width, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)",
    "max_pool3d_forward": "(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow)",
    "avg_pool3d_forward": "(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, od, oh, ow, count_include_pad, divisor_override)",
    "avg_pool3d_backward": "(grad_out, depth, height, width, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, "
                           "divisor_override)",
    "adaptive_avg_pool2d_forward": "(x, oh, ow)",
    "adaptive_avg_pool2d_backward": "(grad_out, height, width)",
    "adaptive_max_pool2d_forward": "(x, oh, ow)",
    "fractional_max_pool2d_forward": "(x, samples, kh, kw, oh, ow)",
    # indexing with repeated indices, which NumPy's and CuPy's `a[index] += v` would not accumulate:
    # target[index] += values in place, for any NumPy-style index (getitem and embedding backward)
    "scatter_add": "(target, index, values)",
    # grad of an embedding lookup: (num_embeddings, dim) sums of grad_out rows (n, dim) by flat indices (n,)
    "embedding_backward": "(grad_out, indices, num_embeddings)",
    # special functions NumPy lacks (CuPy has them in cupyx.scipy.special): element-wise, same shape and dtype
    "erf": "(x)",
    # data augmentation on (N, C, H, W) image batches, uint8 or float, one parallel iteration per image
    # (fastnn.data.transforms.functional decides the per-image parameters; codes in augment_codes.py)
    "crop_flip": "(images, tops, lefts, out_h, out_w, hflip, vflip, fill)",
    "scale_normalize": "(images, scale, mean, std)",
    "affine_sample": "(images, matrices, out_h, out_w, bilinear, fill, use_fill)",
    "color_ops": "(images, ops, factors, alphas, consts, integer)",
    "erase_constant": "(images, boxes, values)",
    "erase_noise": "(images, boxes, noise, offsets)",
}
