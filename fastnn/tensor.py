"""Tensor: an ndarray plus what autograd needs (grad, requires_grad, the node that produced it, device)."""
import numpy as np

from fastnn import autograd

float32 = np.dtype("float32")
float64 = np.dtype("float64")
float16 = np.dtype("float16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")
_DTYPE_NAMES = {"float": float32, "float32": float32, "float64": float64, "double": float64, "float16": float16,
                "half": float16, "int32": int32, "int": int32, "int64": int64, "long": int64, "uint8": uint8,
                "bool": bool_}


def as_dtype(dtype):
    """Normalise a dtype given as np.dtype, NumPy type or name ('float32', 'long', ...)."""
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}")
        return _DTYPE_NAMES[dtype]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


_default_dtype = [float32]  # set_default_dtype's setting, read by the factories


def get_default_dtype():
    """The dtype factories give floating point data when no dtype is passed (float32 unless set otherwise)."""
    return _default_dtype[0]


def set_default_dtype(d):
    """Make `d` (a floating point dtype) what zeros, rand, tensor(1.5), arange(0.5, ...), ... build by default."""
    d = as_dtype(d)
    if d.kind != "f":
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_dtype[0] = d


def _float_info(type, name, kinds, other):
    dtype = get_default_dtype() if type is None else as_dtype(type.dtype if isinstance(type, Tensor) else type)
    if dtype.kind not in kinds:
        raise TypeError(f"fastnn.{name}() requires a {'floating point' if kinds == 'f' else 'integer'} input type, "
                        f"got {dtype}; use fastnn.{other} for it")
    return dtype


def finfo(type=None):
    """Machine limits of a floating point dtype (default: the default dtype): eps, max, min, tiny, smallest_normal,
    resolution, bits, dtype, as torch.finfo (NumPy's finfo holds the same numbers)."""
    return np.finfo(_float_info(type, "finfo", "f", "iinfo"))


def iinfo(type):
    """Limits of an integer dtype: min, max, bits, dtype (torch.iinfo; bool is refused as there)."""
    return np.iinfo(_float_info(type, "iinfo", "iu", "finfo"))


def promote_types(type1, type2):
    """The dtype two dtypes promote to by PyTorch's table (int64 with float16 gives float16)."""
    return _ops._util.promote_types(as_dtype(type1), as_dtype(type2))


def result_type(tensor1, tensor2):
    """The dtype of an op on two operands (tensors or numbers), by PyTorch's rules (fastnn.ops._util)."""
    return _ops._util.result_type(tensor1, tensor2)


def can_cast(from_, to):
    """Whether PyTorch's in-place ops cast `from_` to `to` (within or down a kind: float64 -> float32 yes, float ->
    int no, int -> bool no)."""
    return _can_cast(as_dtype(from_), as_dtype(to))


def is_signed(input):
    return input.is_signed()


def is_complex(input):
    """Always False: fastnn tensors hold no complex data."""
    if not isinstance(input, Tensor):
        raise TypeError(f"is_complex(): argument 'input' must be a Tensor, not {type(input).__name__}")
    return False


# set_printoptions' settings, as np.array2string's arguments (PyTorch's defaults: 4 digits, summarise past 1000)
_print_options = dict(precision=4, threshold=1000, edgeitems=3, max_line_width=80, suppress_small=False)
_PRINT_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, max_line_width=80),
                   "short": dict(precision=2, threshold=1000, edgeitems=2, max_line_width=80),
                   "full": dict(precision=4, threshold=2 ** 63 - 1, edgeitems=3, max_line_width=80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """How tensors print, as torch.set_printoptions: a profile ('default', 'short', 'full') and/or single
    settings; sci_mode=False never uses scientific notation (True: NumPy's choice, as None)."""
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ValueError(f"set_printoptions: profile must be 'default', 'short' or 'full', got {profile!r}")
        _print_options.update(_PRINT_PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("max_line_width", linewidth)):
        if value is not None:
            _print_options[key] = int(value)
    if sci_mode is not None:
        _print_options["suppress_small"] = not sci_mode


_SUPPORTED_KINDS = "biuf"  # bool, signed/unsigned int, float: what kernels and ops are written for


def _backend_for(data, device):
    """The backend a new tensor lives on: `device`'s, else the one whose array type `data` has, else the CPU's."""
    if device is not None:
        return _dispatch.backend(device)
    if isinstance(data, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return _dispatch.backend("cpu")
    for candidate in list(_dispatch._instances.values()):
        if isinstance(data, candidate.array_types):
            return candidate
    return _dispatch.backend("cpu")


def _unpickle(host, device, requires_grad, cls):
    t = Tensor(host, device=device)
    if cls is not Tensor:
        t.__class__ = cls
    return t.requires_grad_(requires_grad) if requires_grad else t


class Tensor:
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators
    _fw_tangents = None  # {dual level: tangent Tensor}, set by forward-mode AD (fastnn.autograd.forward_ad)
    _hooks = None  # autograd._TensorHooks once a hook is registered (the engine's only check for hooks)

    def __init__(self, data, requires_grad=False, device=None, _node=None):
        if isinstance(data, Tensor):
            source = data
            data = source._data
            backend = source._backend if device is None else _dispatch.backend(device)
            if backend is not source._backend:
                data = backend.from_host(source._backend.to_host(data))
        else:
            backend = _backend_for(data, device)
            if not isinstance(data, backend.array_types):
                data = backend.asarray(data)
        if data.dtype.kind not in _SUPPORTED_KINDS:
            raise TypeError(f"fastnn tensors hold bool, integer or floating point data; got dtype {data.dtype}")
        if not data.dtype.isnative:  # e.g. big-endian data read from a file: kernels compute in native order
            data = data.astype(data.dtype.newbyteorder("="))
        self._data = data
        self._backend = backend
        self._grad = None
        self._node = _node
        self._retains_grad = False
        self._version_counter = [0]
        self._view_of = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, backend, node=None, version_counter=None):
        """A tensor around an array already of `backend`'s type and a supported dtype (the ops' fast path)."""
        t = cls.__new__(cls)
        t._data = data
        t._backend = backend
        t._grad = None
        t._node = node
        t._retains_grad = False
        t._version_counter = [0] if version_counter is None else version_counter
        t._view_of = None
        t.requires_grad = node is not None
        return t

    @property
    def data(self):
        """This tensor's storage as a new tensor outside the graph. Unlike detach(), it has its own version
        counter (as in PyTorch): in-place edits through it (`p.data.add_(...)`) are not seen by backward."""
        return Tensor._wrap(self._data, self._backend)

    @data.setter
    def data(self, value):
        # PyTorch's set_data: swaps the storage (shape and dtype may change), keeps the graph identity.
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        if value._backend is not self._backend:
            raise RuntimeError(f"data set to a tensor on {value.device} for a tensor on {self.device}")
        self._data = value._data

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        # Checked on assignment, as PyTorch does, so that no optimizer kernel ever sees a mismatched gradient.
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value._backend is not self._backend:
                raise RuntimeError(f"assigned grad has data located on {value.device}, the tensor on {self.device}")
            if value.dtype != self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: {value.dtype}, the tensor is "
                                   f"{self.dtype}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: {tuple(value.shape)}, the tensor "
                                   f"has shape {tuple(self.shape)}")
        self._grad = value

    @property
    def device(self):
        return self._backend.device

    @property
    def is_cuda(self):
        return self._backend.device.type == "cuda"

    @property
    def _version(self):
        """How many in-place modifications this tensor's storage has seen (checked by backward, as in PyTorch)."""
        return self._version_counter[0]

    def _bump_version(self):
        if self._fw_tangents:  # its tangent would silently go stale
            raise NotImplementedError("in-place operation on a dual tensor (forward-mode AD); use an out-of-place op")
        self._version_counter[0] += 1

    # ---- properties -------------------------------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else self._node.name

    @property
    def T(self):
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return int(self._data.size)

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # ---- conversion -------------------------------------------------------------------------------------
    def numpy(self):
        """The values as a host ndarray: shares memory on the CPU (like torch's .numpy()), a copy elsewhere."""
        if self.requires_grad:
            raise RuntimeError("can't call numpy() on a Tensor that requires grad; use tensor.detach().numpy()")
        return self._backend.to_host(self._data)

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"only a tensor with one element can be converted to a Python scalar, got shape "
                             f"{self.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._backend.to_host(self._data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous (shape "
                               f"{tuple(self.shape)})")
        return bool(self.item())

    def __index__(self):
        if self._data.size != 1 or self.dtype.kind not in "biu":
            raise TypeError(f"only integer tensors of a single element can be converted to an index (got dtype "
                            f"{self.dtype}, shape {tuple(self.shape)})")
        return int(self.item())

    def __format__(self, spec):
        # f"{loss:.4f}" formats the value of a one-element tensor, as PyTorch does; others format as their repr.
        if self._data.ndim == 0 or (spec and self._data.size == 1):
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __contains__(self, element):
        if not isinstance(element, (Tensor, bool, int, float)):
            raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                               f"{type(element).__name__}")
        return bool((self == element)._data.any())

    def __dlpack__(self, stream=None):
        host = self._backend.to_host(self._data) if self._backend.device.type == "cpu" else self._data
        return host.__dlpack__() if stream is None else host.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        host = self._backend.to_host(self._data) if self._backend.device.type == "cpu" else self._data
        return host.__dlpack_device__()

    def __reduce_ex__(self, protocol):
        # Pickles as host values plus dtype, device and requires_grad (multiprocessing, copy.deepcopy); like
        # PyTorch, a non-leaf tensor that requires grad is refused: its graph cannot travel.
        if self._node is not None:
            raise RuntimeError("can't pickle a non-leaf tensor that requires grad; detach() it first")
        return (_unpickle, (self._backend.to_host(self._data), str(self.device), self.requires_grad, type(self)))

    def __array__(self, dtype=None, copy=None):
        host = self._backend.to_host(self._data)
        return host if dtype is None else host.astype(dtype)

    def detach(self):
        # Shares storage, hence the version counter too: an in-place edit through either is seen by backward.
        return Tensor._wrap(self._data, self._backend, version_counter=self._version_counter)

    def clone(self):
        return _ops.clone(self)

    def contiguous(self):
        return self if self._data.flags.c_contiguous else _ops.clone(self)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors")
        self.requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook):
        """hook(grad) runs when the gradient with respect to this tensor is computed (its total, once per backward
        or autograd.grad); a Tensor it returns replaces the gradient. Returns a handle with .remove()."""
        return self._add_hook("pre", hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after backward has accumulated this leaf's gradient into .grad."""
        if self._node is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        return self._add_hook("post", hook)

    def _add_hook(self, kind, hook):
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        from fastnn.nn.modules.module import _HookHandle  # the handle Module hooks return (nn imports tensor)
        if self._hooks is None:
            self._hooks = autograd._TensorHooks()
        return _HookHandle(getattr(self._hooks, kind), hook)

    def retain_grad(self):
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is not None:
            self._retains_grad = True

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if create_graph:
            raise NotImplementedError("backward(create_graph=True): gradients of gradients are not recorded")
        autograd.backward(self, gradient, bool(retain_graph), inputs)

    def _tracks_inplace(self, *args):
        """Whether an in-place op on self with `args` must be recorded by autograd (PyTorch's rule)."""
        return autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args))

    def _apply_inplace(self, name, fn, *args, **kwargs):
        """Write fn(self, *args, **kwargs)'s values into this tensor's storage (views see them) and bump its version.

        Under grad mode with self or an argument requiring grad, this is PyTorch's differentiable in-place op: fn runs
        on a snapshot of self's current value, and self takes the result's place in the graph. A leaf that requires
        grad is refused, as in PyTorch; so is a view in a graph (fastnn does not rewrite its base's graph)."""
        if not self._tracks_inplace(*args):
            with autograd.no_grad():
                result = fn(self, *args, **kwargs)
        else:
            # The snapshot keeps the value the result's backward may read safe from this very write.
            result = fn(_ops.clone(self._graph_stand_in(name)), *args, **kwargs)
        if result.dtype != self.dtype and not _can_cast(result.dtype, self.dtype):
            raise TypeError(f"{name}: result type {result.dtype} can't be cast to the desired output type "
                            f"{self.dtype}")
        self._data[...] = result._data
        self._bump_version()
        if result._node is not None:
            self._node, self.requires_grad = result._node, True
        return self

    def _graph_stand_in(self, name):
        """For a recorded in-place op on self: a tensor standing for self's value before the write (self's storage,
        node and version counter), which the op's node lists as its input while self becomes its output. Refuses,
        as PyTorch does, a leaf that requires grad; and a view (fastnn does not rewrite its base's graph)."""
        if self.requires_grad and self._node is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place "
                               f"operation; wrap it in fastnn.no_grad() or use an out-of-place op")
        if self._view_of is not None:
            raise RuntimeError(f"{name}: in-place operation on a view of a tensor in the autograd graph is not "
                               f"supported by fastnn; use an out-of-place op (e.g. x = x.clone(), then edit x)")
        current = Tensor._wrap(self._data, self._backend, self._node, self._version_counter)
        current.requires_grad = self.requires_grad
        return current

    def _write_through(self, name, op, *args):
        """PyTorch's in-place form of the element-wise `op` (an op of fastnn.ops.activation or .dropout taking
        `_inplace`): op(source, *args, _inplace=True) writes its values straight into this tensor's storage and
        returns a tensor on that storage (sharing its version counter) with the op's node, whose place this tensor
        then takes. Unlike _apply_inplace there is no clone and no copy back; an op whose backward needs the input
        keeps a copy of it itself. The version is bumped before the op runs, so that a node reading the written
        output records the new version."""
        source = self._graph_stand_in(name) if self._tracks_inplace() else self
        self._bump_version()
        try:
            result = op(source, *args, _inplace=True)
        except Exception:  # refused before writing (a bad argument): nothing was modified
            self._version_counter[0] -= 1
            raise
        if result._node is not None:
            self._node, self.requires_grad = result._node, True
        return self

    def _operand(self, value):
        """`value` as something this tensor's array accepts in an in-place op: a same-device array or a scalar."""
        if isinstance(value, Tensor):
            if value._backend is not self._backend:
                raise RuntimeError(f"expected all tensors on the same device, got {self.device} and {value.device}")
            return value._data
        if isinstance(value, (bool, int, float)):
            return value
        return self._backend.asarray(value)

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        if self._tracks_inplace(value):
            return self._apply_inplace("fill_", _ops.index_put, Ellipsis, value)
        self._data[...] = self._operand(value)
        self._bump_version()
        return self

    def copy_(self, src):
        if isinstance(src, Tensor) and src._backend is not self._backend:
            src = src.to(self.device)
        if self._tracks_inplace(src):
            return self._apply_inplace("copy_", _ops.index_put, Ellipsis, src)
        self._data[...] = self._operand(src)
        self._bump_version()
        return self

    def to(self, *args, dtype=None, device=None):
        for a in args:
            if isinstance(a, Tensor):  # .to(other): other's dtype and device
                dtype, device = a.dtype, a.device
            elif isinstance(a, _dispatch.device) or (isinstance(a, str) and a not in _DTYPE_NAMES):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None and as_dtype(dtype) != self.dtype:
            out = _ops.astype(out, as_dtype(dtype))
        if device is not None and _dispatch.backend(device) is not self._backend:
            out = _ops.to_device(out, device)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else _dispatch.device("cuda", device) if isinstance(device, int)
                       else device)

    def type(self, dtype):
        return self.to(dtype=dtype)

    def float(self):
        return self.to(dtype=float32)

    def half(self):
        return self.to(dtype=float16)

    def double(self):
        return self.to(dtype=float64)

    def long(self):
        return self.to(dtype=int64)

    def int(self):
        return self.to(dtype=int32)

    def bool(self):
        return self.to(dtype=bool_)

    def __repr__(self):
        host = self._backend.to_host(self._data)
        body = np.array2string(host, separator=", ", prefix="tensor(", **_print_options)  # host: formatting a copy
        extras = []
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __hash__(self):
        return id(self)

    # ---- operators --------------------------------------------------------------------------------------
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)
    def __getitem__(self, index): return _ops.getitem(self, index)
    def __eq__(self, other): return _ops.eq(self, other)
    def __ne__(self, other): return _ops.ne(self, other)
    def __lt__(self, other): return _ops.lt(self, other)
    def __le__(self, other): return _ops.le(self, other)
    def __gt__(self, other): return _ops.gt(self, other)
    def __ge__(self, other): return _ops.ge(self, other)

    def __setitem__(self, index, value):
        if self._tracks_inplace(value):
            self._apply_inplace("item assignment", _ops.index_put, index, value)
            return
        self._data[_ops.to_index(index)] = self._operand(value)
        self._bump_version()

    def __iadd__(self, other): return self._inplace("add", other)
    def __isub__(self, other): return self._inplace("subtract", other)
    def __imul__(self, other): return self._inplace("multiply", other)
    def __itruediv__(self, other): return self._inplace("true_divide", other)

    def _inplace(self, ufunc, other):
        if self._tracks_inplace(other):
            return self._apply_inplace(ufunc, _INPLACE_BINARY[ufunc], other)
        getattr(self._backend.xp, ufunc)(self._data, self._operand(other), out=self._data, casting="same_kind")
        self._bump_version()
        return self

    # ---- method forms of ops ----------------------------------------------------------------------------
    def add(self, other): return _ops.add(self, other)
    def sub(self, other): return _ops.sub(self, other)
    def mul(self, other): return _ops.mul(self, other)
    def div(self, other): return _ops.div(self, other)
    def pow(self, exponent): return _ops.pow(self, exponent)
    def neg(self): return _ops.neg(self)
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def abs(self): return _ops.abs(self)
    def clamp(self, min=None, max=None): return _ops.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return _ops.maximum(self, other)
    def minimum(self, other): return _ops.minimum(self, other)
    def matmul(self, other): return _ops.matmul(self, other)
    # reductions also take NumPy's axis=/keepdims=/out=None (as torch does), so np.sum(t), np.all(t == 1) work
    def sum(self, dim=None, keepdim=False, *, dtype=None, **np_args):
        return _ops.sum(self._as_dtype(dtype), *_dim_args("sum", dim, keepdim, np_args))

    def mean(self, dim=None, keepdim=False, *, dtype=None, **np_args):
        return _ops.mean(self._as_dtype(dtype), *_dim_args("mean", dim, keepdim, np_args))

    def max(self, dim=None, keepdim=False, **np_args): return _ops.max(self, *_dim_args("max", dim, keepdim, np_args))
    def min(self, dim=None, keepdim=False, **np_args): return _ops.min(self, *_dim_args("min", dim, keepdim, np_args))
    def amax(self, dim=None, keepdim=False, **np_args):
        return _ops.amax(self, *_dim_args("amax", dim, keepdim, np_args))
    def amin(self, dim=None, keepdim=False, **np_args):
        return _ops.amin(self, *_dim_args("amin", dim, keepdim, np_args))
    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return _ops.var(self, dim, unbiased, keepdim, correction)
    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return _ops.std(self, dim, unbiased, keepdim, correction)
    def logsumexp(self, dim, keepdim=False): return _ops.logsumexp(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False, **np_args):
        return _ops.argmax(self, *_dim_args("argmax", dim, keepdim, np_args))
    def argmin(self, dim=None, keepdim=False, **np_args):
        return _ops.argmin(self, *_dim_args("argmin", dim, keepdim, np_args))

    def _as_dtype(self, dtype):
        return self if dtype is None or as_dtype(dtype) == self.dtype else _ops.astype(self, as_dtype(dtype))
    def reshape(self, *shape): return _ops.reshape(self, _ops.shape_args(shape))
    def view(self, *shape): return _ops.reshape(self, _ops.shape_args(shape))
    def flatten(self, start_dim=0, end_dim=-1): return _ops.flatten(self, start_dim, end_dim)
    def transpose(self, dim0, dim1): return _ops.transpose(self, dim0, dim1)
    def t(self): return _ops.t(self)
    def permute(self, *dims): return _ops.permute(self, _ops.shape_args(dims))
    def expand(self, *sizes): return _ops.expand(self, _ops.shape_args(sizes))
    def expand_as(self, other): return _ops.expand(self, other.shape)
    def view_as(self, other): return _ops.reshape(self, other.shape)
    def reshape_as(self, other): return _ops.reshape(self, other.shape)
    def squeeze(self, dim=None): return _ops.squeeze(self, dim)
    def unsqueeze(self, dim): return _ops.unsqueeze(self, dim)
    def relu(self): return _ops.relu(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def tanh(self): return _ops.tanh(self)
    def softmax(self, dim): return _ops.softmax(self, dim)
    def log_softmax(self, dim): return _ops.log_softmax(self, dim)
    def eq(self, other): return _ops.eq(self, other)
    def ne(self, other): return _ops.ne(self, other)
    def lt(self, other): return _ops.lt(self, other)
    def le(self, other): return _ops.le(self, other)
    def gt(self, other): return _ops.gt(self, other)
    def ge(self, other): return _ops.ge(self, other)
    greater_equal, greater, less_equal, less, not_equal = ge, gt, le, lt, ne

    # math
    def mm(self, mat2): return _ops.mm(self, mat2)
    def bmm(self, mat2): return _ops.bmm(self, mat2)
    def addmm(self, mat1, mat2, *, beta=1, alpha=1): return _ops.addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    def outer(self, vec2): return _ops.outer(self, vec2)
    def cumsum(self, dim, *, dtype=None): return _ops.cumsum(self, dim, dtype=dtype)
    def cumprod(self, dim, *, dtype=None): return _ops.cumprod(self, dim, dtype=dtype)
    def prod(self, dim=None, keepdim=False, *, dtype=None, **np_args):
        return _ops.prod(self, *_dim_args("prod", dim, keepdim, np_args), dtype=dtype)
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None): return _ops.math.norm(self, p, dim, keepdim, dtype)
    def dist(self, other, p=2): return _ops.dist(self, other, p)
    def sign(self): return _ops.sign(self)
    def floor(self): return _ops.floor(self)
    def ceil(self): return _ops.ceil(self)
    def round(self, *, decimals=0): return _ops.round(self, decimals=decimals)
    def trunc(self): return _ops.trunc(self)
    def fmod(self, other): return _ops.fmod(self, other)
    def remainder(self, other): return _ops.remainder(self, other)
    def __mod__(self, other): return _ops.remainder(self, other)
    def floor_divide(self, other): return _ops.floor_divide(self, other)
    def __floordiv__(self, other): return _ops.floor_divide(self, other)
    def __rfloordiv__(self, other): return _ops.floor_divide(other, self)
    def __rmod__(self, other): return _ops.remainder(other, self)
    def lerp(self, end, weight): return _ops.lerp(self, end, weight)
    def reciprocal(self): return _ops.reciprocal(self)
    def rsqrt(self): return _ops.rsqrt(self)
    def sin(self): return _ops.sin(self)
    def cos(self): return _ops.cos(self)
    def tan(self): return _ops.tan(self)
    def sinh(self): return _ops.sinh(self)
    def cosh(self): return _ops.cosh(self)
    def asin(self): return _ops.asin(self)
    def acos(self): return _ops.acos(self)
    def atan(self): return _ops.atan(self)
    arcsin, arccos, arctan = asin, acos, atan
    def atan2(self, other): return _ops.atan2(self, other)
    arctan2 = atan2
    def log1p(self): return _ops.log1p(self)
    def expm1(self): return _ops.expm1(self)
    def log2(self): return _ops.log2(self)
    def log10(self): return _ops.log10(self)
    def erf(self): return _ops.erf(self)
    def square(self): return _ops.square(self)
    def exp2(self): return _ops.exp2(self)
    def tril(self, diagonal=0): return _ops.tril(self, diagonal)
    def triu(self, diagonal=0): return _ops.triu(self, diagonal)
    def diag(self, diagonal=0): return _ops.diag(self, diagonal)
    def einsum(self, equation, *operands): return _ops.einsum(equation, self, *operands)
    def diagonal(self, offset=0, dim1=0, dim2=1): return _ops.diagonal(self, offset, dim1, dim2)
    def trace(self): return _ops.trace(self)
    def count_nonzero(self, dim=None): return _ops.count_nonzero(self, dim)
    def bincount(self, weights=None, minlength=0): return _ops.bincount(self, weights, minlength)
    def clamp_min(self, min): return _ops.clamp_min(self, min)
    def clamp_max(self, max): return _ops.clamp_max(self, max)
    def logical_and(self, other): return _ops.logical_and(self, other)
    def logical_or(self, other): return _ops.logical_or(self, other)
    def logical_xor(self, other): return _ops.logical_xor(self, other)
    def logical_not(self): return _ops.logical_not(self)
    def bitwise_and(self, other): return _ops.bitwise_and(self, other)
    def bitwise_or(self, other): return _ops.bitwise_or(self, other)
    def bitwise_xor(self, other): return _ops.bitwise_xor(self, other)
    def bitwise_not(self): return _ops.bitwise_not(self)
    # &, |, ^, ~ as in PyTorch: logical on bool tensors, bitwise on integers
    def __and__(self, other): return _ops.bitwise_and(self, other)
    def __rand__(self, other): return _ops.bitwise_and(other, self)
    def __or__(self, other): return _ops.bitwise_or(self, other)
    def __ror__(self, other): return _ops.bitwise_or(other, self)
    def __xor__(self, other): return _ops.bitwise_xor(self, other)
    def __rxor__(self, other): return _ops.bitwise_xor(other, self)
    def __invert__(self): return _ops.bitwise_not(self)

    # tests on values
    def isnan(self): return _ops.isnan(self)
    def isinf(self): return _ops.isinf(self)
    def isfinite(self): return _ops.isfinite(self)
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None): return _ops.nan_to_num(self, nan, posinf, neginf)
    def any(self, dim=None, keepdim=False, **np_args): return _ops.any(self, *_dim_args("any", dim, keepdim, np_args))
    def all(self, dim=None, keepdim=False, **np_args): return _ops.all(self, *_dim_args("all", dim, keepdim, np_args))
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _ops.allclose(self, other, rtol, atol, equal_nan)
    def equal(self, other): return _ops.equal(self, other)

    # selection
    def topk(self, k, dim=-1, largest=True, sorted=True): return _ops.topk(self, k, dim, largest, sorted)
    def sort(self, dim=-1, descending=False, stable=False): return _ops.sort(self, dim, descending, stable)
    def argsort(self, dim=-1, descending=False, stable=False): return _ops.argsort(self, dim, descending, stable)
    def kthvalue(self, k, dim=-1, keepdim=False): return _ops.kthvalue(self, k, dim, keepdim)
    def median(self, dim=None, keepdim=False): return _ops.median(self, dim, keepdim)
    def mode(self, dim=-1, keepdim=False): return _ops.mode(self, dim, keepdim)
    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return _ops.unique(self, sorted, return_inverse, return_counts, dim)
    def masked_fill(self, mask, value): return _ops.masked_fill(self, mask, value)
    def masked_select(self, mask): return _ops.masked_select(self, mask)
    def gather(self, dim, index): return _ops.gather(self, dim, index)
    def take_along_dim(self, indices, dim=None): return _ops.take_along_dim(self, indices, dim)
    def scatter(self, dim, index, src=None, *, value=None): return _ops.scatter(self, dim, index, src, value=value)
    def scatter_add(self, dim, index, src): return _ops.scatter_add(self, dim, index, src)
    def index_select(self, dim, index): return _ops.index_select(self, dim, index)
    def index_add(self, dim, index, source, *, alpha=1): return _ops.index_add(self, dim, index, source, alpha=alpha)
    def nonzero(self, *, as_tuple=False): return _ops.nonzero(self, as_tuple=as_tuple)
    def argwhere(self): return _ops.argwhere(self)
    def where(self, condition, other): return _ops.where(condition, self, other)

    # shape
    def split(self, split_size, dim=0): return _ops.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return _ops.chunk(self, chunks, dim)
    def unbind(self, dim=0): return _ops.unbind(self, dim)
    def narrow(self, dim, start, length): return _ops.narrow(self, dim, start, length)
    def repeat(self, *sizes): return _ops.repeat(self, *sizes)
    def tile(self, *dims): return _ops.tile(self, _ops.shape_args(dims))
    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return _ops.repeat_interleave(self, repeats, dim, output_size=output_size)
    def roll(self, shifts, dims=None): return _ops.roll(self, shifts, dims)
    def flip(self, *dims): return _ops.flip(self, _ops.shape_args(dims))
    def movedim(self, source, destination): return _ops.movedim(self, source, destination)
    moveaxis = movedim
    def swapaxes(self, axis0, axis1): return _ops.transpose(self, axis0, axis1)
    swapdims = swapaxes
    def unflatten(self, dim, sizes): return _ops.unflatten(self, dim, sizes)

    def broadcast_to(self, size): return _ops.broadcast_to(self, size)

    # introspection PyTorch code asks for
    def is_floating_point(self): return self.dtype.kind == "f"
    def is_complex(self): return False
    def is_signed(self): return self.dtype.kind in "if"
    def is_same_size(self, other): return self.shape == other.shape
    def get_device(self): return -1 if self.device.type == "cpu" else (self.device.index or 0)

    def data_ptr(self):
        """The address of this tensor's first element (the device's address off the CPU)."""
        return _address(self._data, "data_ptr")

    @property
    def itemsize(self): return self.dtype.itemsize

    @property
    def nbytes(self): return self.numel() * self.dtype.itemsize

    @property
    def is_cpu(self): return self.device.type == "cpu"

    def storage_offset(self):
        """Elements from the start of the storage this view sees to its first element (0 for a tensor that owns
        its storage)."""
        base = self._data
        while type(getattr(base, "base", None)) is type(self._data):
            base = base.base
        return (_address(self._data, "storage_offset") - _address(base, "storage_offset")) // self.dtype.itemsize

    def is_contiguous(self): return bool(self._data.flags.c_contiguous)
    def element_size(self): return self.dtype.itemsize
    def nelement(self): return self.numel()
    def ndimension(self): return self.ndim

    def stride(self, dim=None):
        """Strides in elements, as PyTorch counts them (NumPy counts bytes)."""
        strides = tuple(s // self.dtype.itemsize for s in self._data.strides)
        return strides if dim is None else strides[dim]

    @property
    def mT(self):
        if self.ndim < 2:
            raise ValueError(f"tensor.mT is only supported on matrices or batches of matrices; got a {self.ndim}-D "
                             f"tensor")
        return _ops.transpose(self, -2, -1)

    # creation from this tensor: its dtype and device unless given
    def _new(self, fn, size, dtype, device, requires_grad, *fill):
        from fastnn import factory
        return getattr(factory, fn)(_ops.shape_args(size), *fill, dtype=dtype or self.dtype,
                                    device=device or self.device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new("zeros", size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new("ones", size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new("empty", size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return self._new("full", (size,), dtype, device, requires_grad, fill_value)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        from fastnn import factory
        return factory.tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                              requires_grad=requires_grad)

    def type_as(self, other): return self.to(dtype=other.dtype)
    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return _ops.multinomial(self, num_samples, replacement, generator=generator)
    def bernoulli(self, p=None, *, generator=None): return _ops.bernoulli(self, p, generator=generator)

    # more math, reductions, indexing and shape methods (the functions live in fastnn.ops.*, fastnn.linalg)
    def addcmul(self, tensor1, tensor2, *, value=1): return _ops.math.addcmul(self, tensor1, tensor2, value=value)
    def addcdiv(self, tensor1, tensor2, *, value=1): return _ops.math.addcdiv(self, tensor1, tensor2, value=value)
    def dot(self, tensor): return _ops.math.dot(self, tensor)
    def vdot(self, other): return _ops.math.vdot(self, other)
    def mv(self, vec): return _ops.math.mv(self, vec)
    def inner(self, other): return _ops.math.inner(self, other)
    def kron(self, other): return _ops.math.kron(self, other)
    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.math.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops.math.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def addmv(self, mat, vec, *, beta=1, alpha=1): return _ops.math.addmv(self, mat, vec, beta=beta, alpha=alpha)
    def addr(self, vec1, vec2, *, beta=1, alpha=1): return _ops.math.addr(self, vec1, vec2, beta=beta, alpha=alpha)
    def cross(self, other, dim=None): return _ops.math.cross(self, other, dim)
    def logcumsumexp(self, dim): return _ops.math.logcumsumexp(self, dim)
    def logaddexp(self, other): return _ops.math.logaddexp(self, other)
    def logaddexp2(self, other): return _ops.math.logaddexp2(self, other)
    def hypot(self, other): return _ops.math.hypot(self, other)
    def xlogy(self, other): return _ops.math.xlogy(self, other)
    def logit(self, eps=None): return _ops.math.logit(self, eps)
    def erfc(self): return _ops.math.erfc(self)
    def sinc(self): return _ops.math.sinc(self)
    def deg2rad(self): return _ops.math.deg2rad(self)
    def rad2deg(self): return _ops.math.rad2deg(self)
    def frac(self): return _ops.math.frac(self)
    def fmax(self, other): return _ops.math.fmax(self, other)
    def fmin(self, other): return _ops.math.fmin(self, other)
    def copysign(self, other): return _ops.math.copysign(self, other)
    def heaviside(self, values): return _ops.math.heaviside(self, values)
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _ops.math.isclose(self, other, rtol, atol, equal_nan)
    def isneginf(self): return _ops.math.isneginf(self)
    def isposinf(self): return _ops.math.isposinf(self)
    def signbit(self): return _ops.math.signbit(self)
    def logdet(self): return _ops.math.logdet(self)
    def det(self): return _linalg().det(self)
    def slogdet(self): return _linalg().slogdet(self)
    def inverse(self): return _linalg().inv(self)
    def pinverse(self, rcond=1e-15): return _linalg().pinv(self, rtol=rcond)
    def aminmax(self, *, dim=None, keepdim=False): return _ops.reduce.aminmax(self, dim=dim, keepdim=keepdim)
    def nansum(self, dim=None, keepdim=False, *, dtype=None): return _ops.reduce.nansum(self, dim, keepdim, dtype=dtype)
    def nanmean(self, dim=None, keepdim=False, *, dtype=None):
        return _ops.reduce.nanmean(self, dim, keepdim, dtype=dtype)
    def nanmedian(self, dim=None, keepdim=False): return _ops.reduce.nanmedian(self, dim, keepdim)
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return _ops.reduce.quantile(self, q, dim, keepdim, interpolation=interpolation)
    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return _ops.reduce.nanquantile(self, q, dim, keepdim, interpolation=interpolation)
    def index_fill(self, dim, index, value): return _ops.indexing.index_fill(self, dim, index, value)
    def index_copy(self, dim, index, source): return _ops.indexing.index_copy(self, dim, index, source)
    def masked_scatter(self, mask, source): return _ops.indexing.masked_scatter(self, mask, source)
    def put(self, index, source, accumulate=False): return _ops.indexing.put(self, index, source, accumulate)
    def take(self, index): return _ops.indexing.take(self, index)
    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return _ops.indexing.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    def cummax(self, dim): return _ops.indexing.cummax(self, dim)
    def cummin(self, dim): return _ops.indexing.cummin(self, dim)
    def isin(self, test_elements, *, assume_unique=False, invert=False):
        return _ops.indexing.isin(self, test_elements, invert=invert)
    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        return _ops.indexing.unique_consecutive(self, return_inverse, return_counts, dim)
    def histc(self, bins=100, min=0, max=0): return _ops.indexing.histc(self, bins, min, max)
    def tensor_split(self, indices_or_sections, dim=0): return _ops.shape.tensor_split(self, indices_or_sections, dim)
    def split_with_sizes(self, split_sizes, dim=0): return _ops.shape.split_with_sizes(self, split_sizes, dim)
    def hsplit(self, sections): return _ops.shape.hsplit(self, sections)
    def vsplit(self, sections): return _ops.shape.vsplit(self, sections)
    def dsplit(self, sections): return _ops.shape.dsplit(self, sections)
    def ravel(self): return _ops.shape.ravel(self)
    def select(self, dim, index): return _ops.shape.select(self, dim, index)
    def rot90(self, k=1, dims=(0, 1)): return _ops.shape.rot90(self, k, dims)
    def fliplr(self): return _ops.shape.fliplr(self)
    def flipud(self): return _ops.shape.flipud(self)
    def unfold(self, dimension, size, step): return _ops.shape.unfold(self, dimension, size, step)
    def diff(self, n=1, dim=-1, prepend=None, append=None): return _ops.shape.diff(self, n, dim, prepend, append)
    def absolute(self): return _ops.abs(self)
    def fix(self): return _ops.trunc(self)
    def positive(self): return self
    negative, multiply, true_divide = neg, mul, div

    def asinh(self): return _ops.math.asinh(self)
    def acosh(self): return _ops.math.acosh(self)
    def atanh(self): return _ops.math.atanh(self)
    arcsinh, arccosh, arctanh = asinh, acosh, atanh
    def lgamma(self): return _ops.math.lgamma(self)
    def digamma(self): return _ops.math.digamma(self)
    def polygamma(self, n): return _ops.math.polygamma(n, self)
    def erfinv(self): return _ops.math.erfinv(self)
    def sgn(self): return _ops.sign(self)
    def float_power(self, exponent): return _ops.math.float_power(self, exponent)
    def matrix_power(self, n): return _ops.math.matrix_power(self, n)
    def diag_embed(self, offset=0, dim1=-2, dim2=-1): return _ops.math.diag_embed(self, offset, dim1, dim2)
    def diagflat(self, offset=0): return _ops.math.diagflat(self, offset)
    def cov(self, *, correction=1, fweights=None, aweights=None):
        return _ops.math.cov(self, correction=correction, fweights=fweights, aweights=aweights)
    def corrcoef(self): return _ops.math.corrcoef(self)
    def msort(self): return _ops.math.msort(self)
    def cholesky(self, upper=False): return _linalg().cholesky(self, upper=upper)

    def qr(self, some=True):
        """torch.qr: (Q, R), reduced unless some=False."""
        return _linalg().qr(self, "reduced" if some else "complete")

    def svd(self, some=True, compute_uv=True):
        """torch.svd: (U, S, V) with V, not Vh (reduced unless some=False)."""
        u, s, vh = _linalg().svd(self, full_matrices=not some)
        if compute_uv:
            return u, s, vh.mT
        zeros = self._backend.xp.zeros
        return (Tensor._wrap(zeros(u.shape, self.dtype), self._backend), s,
                Tensor._wrap(zeros(vh.mT.shape, self.dtype), self._backend))

    def index_put(self, indices, values, accumulate=False):
        """A copy with self[indices] = values (indices: a tuple of index tensors); accumulate=True adds, repeats
        included."""
        indices = tuple(indices)
        if not accumulate:
            return _ops.index_put(self, indices, values)
        xp = self._backend.xp
        parts = xp.broadcast_arrays(*(i._data.astype(int64) for i in indices))
        flat = xp.ravel_multi_index(tuple(p % n for p, n in zip(parts, self.shape)), self.shape[:len(parts)])
        rest = int(np.prod(self.shape[len(parts):]))
        flat = (flat[..., None] * rest + xp.arange(rest)).reshape(-1)
        values = values if isinstance(values, Tensor) else _ops._util.as_tensor(values, self)
        target = tuple(parts[0].shape) + tuple(self.shape[len(parts):])  # the shape self[indices] has
        return _ops.indexing.put(self, Tensor._wrap(flat, self._backend),
                                 _ops.reshape(_ops.expand(values, target), (-1,)), accumulate=True)

    def sum_to_size(self, *size):
        """The sum of this tensor down to `size`, a shape it broadcasts to (the reverse of expand)."""
        size = _ops.shape_args(size)
        lead = self.ndim - len(size)
        if lead < 0 or any(n != 1 and n != m for n, m in zip(size, self.shape[lead:])):
            raise ValueError(f"sum_to_size: size {size} is not expandable to size {tuple(self.shape)}")
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(size) if n == 1 and self.shape[lead + i] != 1)
        return _ops.reshape(_ops.sum(self, axes) if axes else self, size)

    def byte(self): return self.to(dtype=uint8)
    def char(self): return self.to(dtype=np.dtype(np.int8))
    def short(self): return self.to(dtype=np.dtype(np.int16))
    def is_nonzero(self):
        if self.numel() != 1:
            what = "no values" if self.numel() == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {what} is ambiguous")
        return bool(self.item())
    def is_inference(self): return False

    @property
    def retains_grad(self): return self._retains_grad

    @property
    def mH(self): return self.mT

    def adjoint(self): return self.mT

    @property
    def H(self):
        if self.ndim > 2:
            raise ValueError(f"tensor.H is only supported on matrices (2-D tensors), got a {self.ndim}-D tensor")
        return self.t()

    def subtract(self, other, *, alpha=1): return _ops.sub(self, self._scaled(other, alpha))

    def divide(self, other, *, rounding_mode=None):
        from fastnn import divide
        return divide(self, other, rounding_mode=rounding_mode)

    def as_strided(self, size, stride, storage_offset=0):
        """The elements at storage_offset + sum(i_k * stride[k]) of this tensor's (row-major) elements, in the
        shape `size`: a gather, so it reads like PyTorch's view and carries gradient (writes do not go back)."""
        size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
        if len(size) != len(stride):
            raise ValueError(f"as_strided: mismatch in length of strides {stride} and shape {size}")
        xp = self._backend.xp
        positions = xp.full(size, int(storage_offset), dtype=int64)
        for axis, (n, st) in enumerate(zip(size, stride)):
            positions = positions + (xp.arange(n) * st).reshape((1,) * axis + (n,) + (1,) * (len(size) - axis - 1))
        if positions.size and (int(positions.min()) < 0 or int(positions.max()) >= self.numel()):
            raise ValueError(f"as_strided: size {size}, stride {stride} and offset {storage_offset} reach outside "
                             f"the tensor's {self.numel()} elements")
        return _ops.shape.ravel(self)[Tensor._wrap(positions, self._backend)]

    # in-place forms: the out-of-place op's values written into this tensor's storage, recorded by autograd as
    # PyTorch does (see _apply_inplace)
    _inplace_op = _apply_inplace

    def _scaled(self, other, alpha):
        if alpha == 1:
            return other
        if isinstance(other, Tensor):
            with autograd.no_grad():
                return _ops.mul(other, alpha)
        return other * alpha

    def add_(self, other, *, alpha=1): return self._inplace("add", self._scaled(other, alpha))
    def sub_(self, other, *, alpha=1): return self._inplace("subtract", self._scaled(other, alpha))
    def mul_(self, other): return self._inplace("multiply", other)

    def div_(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self._inplace("true_divide", other)
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div_(): rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        rounding = _ops.trunc if rounding_mode == "trunc" else _ops.floor
        return self._inplace_op("div_", lambda t: rounding(_ops.div(t, other)).to(dtype=t.dtype))

    def clamp_(self, min=None, max=None): return self._inplace_op("clamp_", _ops.clamp, min, max)
    clip_ = clamp_
    def masked_fill_(self, mask, value): return self._inplace_op("masked_fill_", _ops.masked_fill, mask, value)
    def index_add_(self, dim, index, source, *, alpha=1):
        return self._inplace_op("index_add_", _ops.index_add, dim, index, source, alpha=alpha)
    def scatter_(self, dim, index, src=None, *, value=None):
        return self._inplace_op("scatter_", _ops.scatter, dim, index, src, value=value)
    def scatter_add_(self, dim, index, src): return self._inplace_op("scatter_add_", _ops.scatter_add, dim, index, src)
    def relu_(self): return self._write_through("relu_", _ops.relu)
    def abs_(self): return self._inplace_op("abs_", _ops.abs)
    def neg_(self): return self._inplace_op("neg_", _ops.neg)
    def exp_(self): return self._inplace_op("exp_", _ops.exp)
    def log_(self): return self._inplace_op("log_", _ops.log)
    def sqrt_(self): return self._inplace_op("sqrt_", _ops.sqrt)
    def pow_(self, exponent): return self._inplace_op("pow_", _ops.pow, exponent)
    def sigmoid_(self): return self._write_through("sigmoid_", _ops.sigmoid)
    def tanh_(self): return self._write_through("tanh_", _ops.tanh)
    def floor_(self): return self._inplace_op("floor_", _ops.floor)
    def ceil_(self): return self._inplace_op("ceil_", _ops.ceil)
    def round_(self, *, decimals=0): return self._inplace_op("round_", _ops.round, decimals=decimals)
    def trunc_(self): return self._inplace_op("trunc_", _ops.trunc)
    def sign_(self): return self._inplace_op("sign_", _ops.sign)
    def reciprocal_(self): return self._inplace_op("reciprocal_", _ops.reciprocal)
    def square_(self): return self._inplace_op("square_", _ops.square)
    def fmod_(self, other): return self._inplace_op("fmod_", _ops.fmod, other)
    def remainder_(self, other): return self._inplace_op("remainder_", _ops.remainder, other)
    def lerp_(self, end, weight): return self._inplace_op("lerp_", _ops.lerp, end, weight)
    def tril_(self, diagonal=0): return self._inplace_op("tril_", _ops.tril, diagonal)
    def triu_(self, diagonal=0): return self._inplace_op("triu_", _ops.triu, diagonal)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return self._inplace_op("normal_", _random.fill, "normal", generator, mean=mean, std=std)

    def uniform_(self, *args, generator=None, **bounds):
        # PyTorch names the bounds `from` and `to`, which Python accepts only as **kwargs
        low, high = (list(args) + [None, None])[:2]
        low = bounds.pop("from", 0.0 if low is None else low)
        high = bounds.pop("to", 1.0 if high is None else high)
        if bounds:
            raise TypeError(f"uniform_() got unexpected keyword arguments {sorted(bounds)}")
        return self._inplace_op("uniform_", _random.fill, "uniform", generator, low=low, high=high)

    def exponential_(self, lambd=1.0, *, generator=None):
        return self._inplace_op("exponential_", _random.fill, "exponential", generator, lambd=lambd)

    def bernoulli_(self, p=0.5, *, generator=None):
        return self._inplace_op("bernoulli_", _random.fill, "bernoulli", generator, p=p)

    def random_(self, *args, generator=None, **bounds):
        """random_(), random_(to) or random_(from, to): integers in [from, to) (see fastnn.ops.random)."""
        low, high = ((0, None) if not args else (0, args[0]) if len(args) == 1 else tuple(args))
        low, high = bounds.pop("from", low), bounds.pop("to", high)
        if bounds:
            raise TypeError(f"random_() got unexpected keyword arguments {sorted(bounds)}")
        return self._inplace_op("random_", _random.fill, "random", generator, low=low, high=high)

    def geometric_(self, p, *, generator=None):
        return self._inplace_op("geometric_", _random.fill, "geometric", generator, p=p)

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        return self._inplace_op("log_normal_", _random.fill, "log_normal", generator, mean=mean, std=std)

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        return self._inplace_op("cauchy_", _random.fill, "cauchy", generator, median=median, sigma=sigma)


from fastnn import _dispatch  # noqa: E402
from fastnn import ops as _ops  # noqa: E402  (ops import Tensor; method bodies resolve _ops at call time)
from fastnn.ops import random as _random  # noqa: E402


_INPLACE_BINARY = {"add": _ops.add, "subtract": _ops.sub, "multiply": _ops.mul, "true_divide": _ops.div}


def _linalg():
    from fastnn import linalg
    return linalg


def _dim_args(name, dim, keepdim, np_args):
    """(dim, keepdim) from PyTorch's arguments or NumPy's aliases axis=, keepdims= (out= only as None), which
    numpy's functions pass when they call a tensor's method."""
    unknown = set(np_args) - {"axis", "keepdims", "out"}
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(unknown)}")
    if np_args.get("out") is not None:
        raise TypeError(f"{name}(): out= is not supported by fastnn; use the returned tensor")
    axis = np_args.get("axis")
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{name}(): got both dim and its alias axis")
        dim = tuple(axis) if isinstance(axis, list) else axis
    if np_args.get("keepdims") is not None:
        keepdim = np_args["keepdims"]
    return dim, bool(keepdim)


def _address(array, name):
    interface = getattr(array, "__array_interface__", None) or getattr(array, "__cuda_array_interface__", None)
    if interface is None:
        raise RuntimeError(f"{name}(): arrays of type {type(array).__name__} expose no address")
    return int(interface["data"][0])


def _can_cast(src, dst):
    return np.can_cast(src, dst, casting="same_kind")


def _inplace_form(name, fn):
    def method(self, *args, **kwargs):
        return self._apply_inplace(name, fn, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place {name[:-1]}: its values written into this tensor (see Tensor._apply_inplace)."
    return method


def _method_of(name):
    return lambda self, *args, **kwargs: getattr(Tensor, name)(self, *args, **kwargs)


# In-place forms of out-of-place methods, PyTorch's name + "_": differentiable and version-counted like add_.
_INPLACE_FORMS = (
    "acos", "asin", "atan", "arccos", "arcsin", "arctan", "cos", "sin", "tan", "sinh", "cosh", "log1p", "log2",
    "log10", "expm1", "exp2", "erf", "erfc", "rsqrt", "sinc", "deg2rad", "rad2deg", "frac", "logit", "absolute",
    "fix", "negative", "nan_to_num", "clamp_min", "clamp_max", "cumsum", "cumprod", "atan2", "arctan2", "hypot",
    "xlogy", "copysign", "heaviside", "floor_divide", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "eq", "ne", "lt", "le", "gt", "ge", "greater",
    "greater_equal", "less", "less_equal", "not_equal", "multiply", "true_divide", "subtract", "divide", "addcmul",
    "addcdiv", "baddbmm", "addbmm", "addmv", "addr", "addmm", "index_fill", "index_copy", "masked_scatter",
    "scatter_reduce", "put", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "sgn", "float_power",
    "index_put", "lgamma", "digamma", "polygamma", "erfinv")
for _name in _INPLACE_FORMS:
    assert not hasattr(Tensor, _name + "_"), _name  # never shadow a hand-written in-place method
    setattr(Tensor, _name + "_", _inplace_form(_name + "_", _method_of(_name)))


def _restride(name, fn):
    """In-place shape changes (t_, transpose_, squeeze_, unsqueeze_): this tensor becomes the view fn returns,
    keeping its storage; in a graph it takes the view's place, as PyTorch's in-place view ops do."""
    def method(self, *args):
        if self._tracks_inplace() and self.requires_grad and self._node is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation")
        current = Tensor._wrap(self._data, self._backend, self._node, self._version_counter)
        current.requires_grad = self.requires_grad
        result = fn(current, *args)
        self._data = result._data
        if result._node is not None:
            self._node = result._node
        self._bump_version()
        return self
    method.__name__ = method.__qualname__ = name
    return method


Tensor.t_ = _restride("t_", _ops.t)
Tensor.transpose_ = _restride("transpose_", _ops.transpose)
Tensor.swapdims_ = Tensor.swapaxes_ = _restride("swapdims_", _ops.transpose)
Tensor.squeeze_ = _restride("squeeze_", _ops.squeeze)
Tensor.unsqueeze_ = _restride("unsqueeze_", _ops.unsqueeze)


def _detach_(self):
    """Detach this tensor from the graph that made it, in place: it becomes a leaf that does not require grad."""
    if self._view_of is not None and self._node is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead")
    self._node, self.requires_grad = None, False
    return self


def _fill_diagonal_(self, fill_value, wrap=False):
    """Write fill_value on the main diagonal (all indices equal; a tensor of >2 dims must have equal sizes). For
    a tall matrix, wrap=True restarts the diagonal every cols + 1 rows, as PyTorch (and numpy.fill_diagonal) do."""
    if self.ndim < 2:
        raise ValueError(f"fill_diagonal_: dimensions must be larger than 1, got {self.ndim}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise ValueError(f"fill_diagonal_: all dimensions of input must be of equal length, got {tuple(self.shape)}")
    xp = self._backend.xp
    rows, cols = self.shape[0], self.numel() // self.shape[0]
    step = sum(self.numel() // int(np.prod(self.shape[:d + 1])) for d in range(self.ndim))  # a row-major diagonal step
    end = self.numel() if wrap and self.ndim == 2 else min(rows, self.shape[1]) * cols
    positions = Tensor._wrap(xp.arange(0, end, step, dtype=int64), self._backend)

    def fill(t, value):
        return _ops.reshape(_ops.index_put(_ops.reshape(t, (-1,)), (positions,), value), t.shape)
    return self._apply_inplace("fill_diagonal_", fill, fill_value)


Tensor.detach_ = _detach_
Tensor.fill_diagonal_ = _fill_diagonal_
