"""Function transforms with torch.func's names and signatures: jvp, vjp, grad, jacrev, jacfwd, hessian.

jvp and jacfwd run forward mode (fastnn.autograd.forward_ad): one pass of `func` per input direction. vjp, grad
and jacrev run reverse mode (autograd.grad): one backward pass per output direction. So jacfwd is the cheaper
Jacobian when inputs are few and outputs many, jacrev in the opposite case.

Compositions: tangent rules are built from ops that reverse mode records, so reverse-over-forward works and
hessian is jacrev(jacfwd(func)). Backward closures compute on arrays, so neither reverse-over-reverse (jacrev of
jacrev, which needs autograd.grad(create_graph=True)) nor forward-over-reverse (jacfwd of jacrev) can see through
a backward pass: those raise NotImplementedError instead of returning zeros. Forward-over-forward nests dual
levels and works. There is no vmap: the Jacobians loop over basis vectors, calling `func` once per input element
(jacfwd) or running one backward pass per output element (jacrev); a random op in `func` draws anew each call.
Results of vjp, grad and jacrev are outside the caller's graph.
"""
from fastnn import autograd
from fastnn.autograd import _forward, forward_ad
from fastnn.tensor import Tensor

__all__ = ["grad", "hessian", "jacfwd", "jacrev", "jvp", "vjp"]

_reverse_depth = [0]  # vjp calls now evaluating their function (nesting them is reverse-over-reverse)


def _tensors(values, what):
    """`values` (a Tensor or a tuple/list of them) as a tuple, and whether it was a single Tensor."""
    if isinstance(values, Tensor):
        return (values,), True
    if isinstance(values, (tuple, list)) and all(isinstance(v, Tensor) for v in values):
        return tuple(values), False
    raise TypeError(f"{what} must be a Tensor or a tuple of Tensors, got {type(values).__name__}")


def _split_aux(result, has_aux, name):
    if not has_aux:
        return result, None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ValueError(f"{name}(f, ..., has_aux=True): f must return a pair (output, aux), got "
                         f"{type(result).__name__}")
    return result[0], result[1]


def _zeros_like(t):
    return Tensor._wrap(t._backend.xp.zeros(t.shape, t.dtype), t._backend)


def _repack(values, single):
    return values[0] if single else tuple(values)


# ---- forward mode ---------------------------------------------------------------------------------------------
def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """(func(*primals), J(primals) @ tangents) [+ aux]: one forward pass carrying the tangents.
    primals and tangents are tuples of Tensors of equal shapes and dtypes. An output independent of the inputs
    gets a zero tangent, or with strict=True raises, as in torch.func."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp: primals and tangents must be tuples, got {type(primals).__name__} and "
                        f"{type(tangents).__name__}")
    primals, _ = _tensors(tuple(primals), "jvp: primals")
    tangents, _ = _tensors(tuple(tangents), "jvp: tangents")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in zip(primals, tangents)]
        output, aux = _split_aux(func(*duals), has_aux, "jvp")
        outputs, single = _tensors(output, "jvp: the output of func")
        unpacked = [forward_ad.unpack_dual(o) for o in outputs]
        if strict and any(u.tangent is None for u in unpacked):
            raise RuntimeError("jvp(f, primals, tangents, strict=True): the output of f is independent of the "
                               "inputs. This is not allowed with strict=True.")
        primal_out = [u.primal for u in unpacked]
        tangent_out = [_zeros_like(o) if u.tangent is None else u.tangent for o, u in zip(outputs, unpacked)]
    result = (_repack(primal_out, single), _repack(tangent_out, single))
    return result + (aux,) if has_aux else result


def _check_argnums(argnums, count, name):
    """argnums as a tuple of valid positions, and whether it was a single int."""
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    nums = (argnums,) if single else argnums
    if not isinstance(nums, tuple) or not nums or not all(isinstance(n, int) and not isinstance(n, bool)
                                                          for n in nums):
        raise TypeError(f"{name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    for n in nums:
        if not -count <= n < count:
            raise ValueError(f"{name}: argnums {n} is out of range for a function called with {count} positional "
                             f"arguments")
    return tuple(n % count for n in nums), single


def _partial(func, args, kwargs, argnums, name):
    """func as a function of the arguments at `argnums` only (the others fixed), those arguments, and whether
    argnums was a single int."""
    nums, single = _check_argnums(argnums, len(args), name)
    for n in nums:
        if not isinstance(args[n], Tensor):
            raise TypeError(f"{name}: argument {n} must be a Tensor to differentiate with respect to it, got "
                            f"{type(args[n]).__name__}")

    def of_selected(*selected):
        full = list(args)
        for n, value in zip(nums, selected):
            full[n] = value
        return func(*full, **kwargs)
    return of_selected, tuple(args[n] for n in nums), single


def jacfwd(func, argnums=0, has_aux=False):
    """A function returning the Jacobian of func with respect to the arguments at argnums, by forward mode: one
    jvp per input element. Its shape is output.shape + input.shape (a tuple per argnum / per output when those
    are tuples); with has_aux, (jacobian, aux). torch.func's `randomness` is not supported (no vmap)."""
    def jacobian(*args, **kwargs):
        of_selected, primals, single_arg = _partial(func, args, kwargs, argnums, "jacfwd")
        columns, aux, single_out = [], None, True  # columns[i][k]: output tangents for input i, element k
        for i, p in enumerate(primals):
            columns.append([])
            for e in _basis(p):
                with forward_ad.dual_level():
                    selected = list(primals)
                    selected[i] = forward_ad.make_dual(p, e)
                    output, aux = _split_aux(of_selected(*selected), has_aux, "jacfwd")
                    outputs, single_out = _tensors(output, "jacfwd: the output of func")
                    tangents = [forward_ad.unpack_dual(o).tangent for o in outputs]
                columns[i].append([_zeros_like(o) if t is None else t for o, t in zip(outputs, tangents)])
        per_output = []
        for o, out in enumerate(outputs):
            per_arg = [_assemble([col[o] for col in columns[i]], out.shape, p.shape, last=True)
                       for i, p in enumerate(primals)]
            per_output.append(_repack(per_arg, single_arg))
        jac = _repack(per_output, single_out)
        return (jac, aux) if has_aux else jac
    return jacobian


def _basis(t):
    """The standard basis of t's space, one tensor shaped like t per element (made one at a time)."""
    xp = t._backend.xp
    for k in range(t._data.size):
        e = xp.zeros(t._data.size, dtype=t.dtype)
        e[k] = 1
        yield Tensor._wrap(e.reshape(t.shape), t._backend)


def _assemble(pieces, out_shape, in_shape, last):
    """The Jacobian out_shape + in_shape from one piece per input element (last=True: each piece has the output's
    shape, a column) or per output element (last=False: each has the input's shape, a row), through ops so
    that reverse mode differentiates it (hessian)."""
    from fastnn.ops.shape import reshape, stack
    if not pieces:
        raise ValueError(f"jacobian: empty inputs or outputs are not supported (output shape {tuple(out_shape)}, "
                         f"input shape {tuple(in_shape)})")
    return reshape(stack(pieces, -1 if last else 0), tuple(out_shape) + tuple(in_shape))


# ---- reverse mode ---------------------------------------------------------------------------------------------
def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn) [+ aux]; vjp_fn(cotangents) returns one gradient per primal: the
    vector-Jacobian product with cotangents (a Tensor shaped like the output, or a tuple for a tuple output).
    It may be called several times."""
    primals, _ = _tensors(tuple(primals), "vjp: primals")
    if _forward.visible:
        raise NotImplementedError("vjp inside a dual level (forward-over-reverse, e.g. jacfwd(jacrev(f))): fastnn's "
                                  "backward closures compute on arrays, so tangents cannot flow through them; use "
                                  "hessian / jacrev(jacfwd(f)) (reverse-over-forward) instead")
    if _reverse_depth[0]:
        raise NotImplementedError("vjp/grad/jacrev inside another one (reverse-over-reverse): it needs "
                                  "autograd.grad(create_graph=True), which fastnn's array backward closures cannot "
                                  "record; use hessian / jacrev(jacfwd(f)) (reverse-over-forward) instead")
    inputs = tuple(p.detach().requires_grad_(True) for p in primals)
    _reverse_depth[0] += 1
    try:
        with autograd.enable_grad():
            output, aux = _split_aux(func(*inputs), has_aux, "vjp")
    finally:
        _reverse_depth[0] -= 1
    outputs, single = _tensors(output, "vjp: the output of func")

    def vjp_fn(cotangents):
        cotangents, _ = _tensors(cotangents, "vjp_fn: cotangents")
        if len(cotangents) != len(outputs):
            raise ValueError(f"vjp_fn: got {len(cotangents)} cotangents for {len(outputs)} outputs")
        for o, c in zip(outputs, cotangents):
            if c.shape != o.shape:
                raise ValueError(f"vjp_fn: cotangent shape {tuple(c.shape)} does not match the output shape "
                                 f"{tuple(o.shape)}")
        live = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]  # others do not depend on inputs
        if not live:
            return tuple(_zeros_like(p) for p in primals)
        grads = autograd.grad([o for o, _ in live], inputs, [c for _, c in live], retain_graph=True,
                              allow_unused=True)
        return tuple(_zeros_like(p) if g is None else g for p, g in zip(primals, grads))
    result = (_repack([o.detach() for o in outputs], single), vjp_fn)
    return result + (aux,) if has_aux else result


def grad(func, argnums=0, has_aux=False):
    """A function returning the gradient of func (which must return a one-element Tensor) with respect to the
    arguments at argnums (a tuple of gradients for a tuple); with has_aux, (gradient, aux)."""
    def gradient(*args, **kwargs):
        of_selected, primals, single_arg = _partial(func, args, kwargs, argnums, "grad")
        output, vjp_fn, aux = vjp(of_selected, *primals, has_aux=True) if has_aux else \
            vjp(of_selected, *primals) + (None,)
        if not isinstance(output, Tensor) or output._data.size != 1:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise RuntimeError(f"grad(f)(*args): expected f(*args) to return a one-element Tensor, got {shape}; "
                               f"use vjp or jacrev for other outputs")
        grads = vjp_fn(Tensor._wrap(output._backend.xp.ones(output.shape, output.dtype), output._backend))
        result = _repack(grads, single_arg)
        return (result, aux) if has_aux else result
    return gradient


def jacrev(func, argnums=0, *, has_aux=False):
    """A function returning the Jacobian of func with respect to the arguments at argnums, by reverse mode: one
    backward pass per output element. Shapes as jacfwd's; with has_aux, (jacobian, aux). torch.func's
    chunk_size is not supported (no vmap)."""
    def jacobian(*args, **kwargs):
        of_selected, primals, single_arg = _partial(func, args, kwargs, argnums, "jacrev")
        output, vjp_fn, aux = vjp(of_selected, *primals, has_aux=True) if has_aux else \
            vjp(of_selected, *primals) + (None,)
        outputs, single_out = _tensors(output, "jacrev: the output of func")
        per_output = []
        for o, out in enumerate(outputs):
            rows = []  # rows[k]: the gradients of output element k, one per primal
            for e in _basis(out):
                cotangents = [e if j == o else _zeros_like(other) for j, other in enumerate(outputs)]
                rows.append(vjp_fn(tuple(cotangents)))
            per_arg = [_assemble([row[i] for row in rows], out.shape, p.shape, last=False)
                       for i, p in enumerate(primals)]
            per_output.append(_repack(per_arg, single_arg))
        jac = _repack(per_output, single_out)
        return (jac, aux) if has_aux else jac
    return jacobian


def hessian(func, argnums=0):
    """The Hessian of func with respect to the arguments at argnums: jacrev(jacfwd(func)) (reverse-over-forward;
    torch.func composes jacfwd(jacrev(func)), the order fastnn's array backward closures cannot run). For a
    one-element output its shape is input.shape + input.shape."""
    return jacrev(jacfwd(func, argnums), argnums)
