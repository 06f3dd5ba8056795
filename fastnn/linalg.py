"""fastnn.linalg: torch.linalg's functions on (batches of) matrices in the last two dims.

Forward passes use the tensor's backend array module (`xp.linalg`: LAPACK through NumPy on the CPU); gradients
are the matrix-calculus formulas PyTorch uses (inv, det, slogdet, solve, cholesky, eigh, qr, svd, pinv), written
on the same arrays; the tangent rules (forward mode) are the matching differentials, written with these
functions and fastnn ops, so reverse mode differentiates them again. Norms and lstsq are compositions of
differentiable ops. A factorisation with several outputs (eigh, qr, svd) records one node per output: its
backward is linear in the output gradients, so the nodes' sum is the joint backward.
"""
import builtins
import math
from collections import namedtuple

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result, unbroadcast
from fastnn.ops import elementwise as _ew
from fastnn.ops import math as _math
from fastnn.ops.linalg import matmul
from fastnn.ops import reduce as _red
from fastnn.ops import shape as _sh
from fastnn.ops._util import normalize_dim, scalar_array
from fastnn.tensor import Tensor

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])
EighResult = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
QRResult = namedtuple("qr", ["Q", "R"])
SVDResult = namedtuple("svd", ["U", "S", "Vh"])
LstsqResult = namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])
_INT64 = np.dtype(np.int64)


def _matrix(A, name, arg="A", square=True):
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.{name}(): argument '{arg}' must be a Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"linalg.{name}: {arg} must have at least 2 dimensions, got shape {tuple(A.shape)}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.{name}: {arg} must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if A.dtype.kind != "f":
        raise TypeError(f"linalg.{name}: expected a floating point tensor, got {A.dtype}")
    return A


def _mT(a):
    return a.swapaxes(-1, -2)


def _T(t):
    return _sh.transpose(t, -1, -2)


def _diag(M):
    return _math.diagonal(M, 0, -2, -1)


def _eye_like(A, n):
    return Tensor._wrap(A._backend.xp.eye(n, dtype=A.dtype), A._backend)


def _symmetric_read(t, UPLO):
    """The symmetric matrix a factorisation of symmetric input sees in t: LAPACK reads one triangle only."""
    half = t.tril() if UPLO == "L" else t.triu()
    return half + _T(half) - _math.diag_embed(_diag(t))


def _singular(fn, *args, name):
    try:
        return fn(*args)
    except np.linalg.LinAlgError as e:  # CuPy raises NumPy's (when its linalg errstate asks it to)
        raise ValueError(f"linalg.{name}: {e} (the input is singular or not positive-definite)") from None


def inv(A):
    """The inverse of square matrices; ValueError for a singular one. d(A^-1) = -A^-1 dA A^-1."""
    A = _matrix(A, "inv")
    xp = A._backend.xp
    out = _singular(xp.linalg.inv, A._data, name="inv")
    def tangent(t):
        X = inv(A)
        return -matmul(matmul(X, t), X)
    return make_result(out, (A,), lambda g: (-_mT(out) @ g @ _mT(out),), "linalg_inv", saved=(),
                       saves_output=True, tangent=tangent)


@traced
def det(A):
    """Determinants; the gradient is det * A^-T (for invertible A)."""
    A = _matrix(A, "det")
    xp = A._backend.xp
    out = xp.linalg.det(A._data)
    data = A._data

    def backward(g):
        return ((g * out)[..., None, None] * _mT(_singular(xp.linalg.inv, data, name="det")),)
    # d det = det tr(A^-1 dA) (invertible A)
    return make_result(scalar_array(out, xp), (A,), backward, "linalg_det", saved=(A,),
                       tangent=lambda t: det(A) * _red.sum(_diag(solve(A, t)), -1))


def slogdet(A):
    """(sign, log|det|); the gradient of log|det| is A^-T (sign carries none)."""
    A = _matrix(A, "slogdet")
    xp = A._backend.xp
    sign, logabs = xp.linalg.slogdet(A._data)
    data = A._data

    def backward(g):
        return (g[..., None, None] * _mT(_singular(xp.linalg.inv, data, name="slogdet")),)
    logabs = make_result(scalar_array(logabs, xp), (A,), backward, "linalg_slogdet", saved=(A,),
                         tangent=lambda t: _red.sum(_diag(solve(A, t)), -1))
    return SlogdetResult(Tensor._wrap(scalar_array(sign, xp), A._backend), logabs)


def _vector_rhs(A, B):
    """torch.linalg.solve's rule: B is a (batch of) vector(s) when it is 1-D or has A's batch shape plus one."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A, B, *, left=True):
    """X with A X = B (X A = B with left=False); B may be a vector or a batch of vectors."""
    A = _matrix(A, "solve")
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve(): argument 'B' must be a Tensor, not {type(B).__name__}")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return _sh.transpose(solve(_sh.transpose(A, -1, -2), _sh.transpose(B, -1, -2)), -1, -2)
    if B.dtype != A.dtype:
        raise TypeError(f"linalg.solve: expected B of dtype {A.dtype}, got {B.dtype}")
    xp = A._backend.xp
    vector = _vector_rhs(A, B)
    b = B._data[..., None] if vector else B._data
    if b.shape[-2] != A.shape[-1]:
        raise ValueError(f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(B.shape)}")
    batch = np.broadcast_shapes(A.shape[:-2], b.shape[:-2])
    a = xp.broadcast_to(A._data, batch + A.shape[-2:])
    b = xp.broadcast_to(b, batch + b.shape[-2:])
    x = _singular(xp.linalg.solve, a, b, name="solve")

    def backward(g):
        g = g[..., None] if vector else g
        gb = xp.linalg.solve(_mT(a), g)
        ga = -gb @ _mT(x)
        return (unbroadcast(ga, A.shape), unbroadcast(gb[..., 0] if vector else gb, B.shape))
    def tangent(tA, tB):  # dX = A^-1 (dB - dA X)
        X = solve(A, B)
        rhs = 0
        if tB is not None:
            rhs = _sh.unsqueeze(tB, -1) if vector else tB
        if tA is not None:
            rhs = rhs - matmul(tA, _sh.unsqueeze(X, -1) if vector else X)
        dX = solve(A, rhs)
        return _sh.squeeze(dX, -1) if vector else dX
    return make_result(x[..., 0] if vector else x, (A, B), backward, "linalg_solve", saved=(), tangent=tangent)


def cholesky(A, *, upper=False):
    """L with A = L L^T for symmetric positive-definite A (U = L^T with upper=True); only A's lower triangle is
    read. Gradient: Murray's formula, symmetrised, as PyTorch's."""
    A = _matrix(A, "cholesky")
    xp = A._backend.xp
    L = _singular(xp.linalg.cholesky, A._data, name="cholesky")

    def backward(g):
        gL = xp.tril(_mT(g) if upper else g)  # L's upper triangle is constant zeros
        phi = xp.tril(_mT(L) @ gL)
        idx = xp.arange(L.shape[-1])
        phi[..., idx, idx] *= 0.5
        # S = L^-T phi L^-1, then the symmetric part
        Linv = xp.linalg.inv(L)
        s = _mT(Linv) @ phi @ Linv
        return (0.5 * (s + _mT(s)),)
    def tangent(t):  # dL = L Phi(L^-1 dA L^-T), Phi: the lower triangle with the diagonal halved
        L = cholesky(A)
        Linv = inv(L)
        X = matmul(matmul(Linv, _symmetric_read(t, "L")), _T(Linv))
        dL = matmul(L, X.tril() - _math.diag_embed(_diag(X)) * 0.5)
        return _T(dL) if upper else dL
    return make_result(_mT(L).copy() if upper else L, (A,), backward, "linalg_cholesky", saved=(),
                       tangent=tangent)


def _eigh_arrays(A, UPLO):
    A = _matrix(A, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    xp = A._backend.xp
    w, V = xp.linalg.eigh(A._data, UPLO=UPLO)
    return A, xp, w, V


def _eigh_backward(xp, w, V, gw, gV):
    """gA = V (diag(gw) + F * (V^T gV)) V^T, F_ij = 1 / (w_j - w_i) off the diagonal (distinct eigenvalues)."""
    inner = xp.zeros(V.shape, dtype=V.dtype)
    if gV is not None:
        diff = w[..., None, :] - w[..., :, None]
        n = w.shape[-1]
        off = ~xp.eye(n, dtype=bool)
        F = xp.where(off, 1 / xp.where(off, diff, 1), 0)
        inner = F * (_mT(V) @ gV)
    if gw is not None:
        idx = xp.arange(w.shape[-1])
        inner[..., idx, idx] += gw
    out = V @ inner @ _mT(V)
    return 0.5 * (out + _mT(out))  # A is symmetric: only its symmetric part moves


def eigh(A, UPLO="L"):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices. The eigenvectors' gradient needs
    distinct eigenvalues (and a loss that does not depend on their signs), as in PyTorch."""
    A, xp, w, V = _eigh_arrays(A, UPLO)

    def tangent(which):  # dw = diag(V^T dA V), dV = V (F * V^T dA V) with F_ij = 1 / (w_j - w_i) off the diagonal
        def rule(t):
            w, V = eigh(A, UPLO)
            P = matmul(matmul(_T(V), _symmetric_read(t, UPLO)), V)
            if which == 0:
                return _diag(P)
            eye = _eye_like(A, w.shape[-1])
            return matmul(V, P * (1 - eye) / (_sh.unsqueeze(w, -2) - _sh.unsqueeze(w, -1) + eye))
        return rule
    values = make_result(w, (A,), lambda g: (_eigh_backward(xp, w, V, g, None),), "linalg_eigh", saved=(),
                         tangent=tangent(0))
    vectors = make_result(V, (A,), lambda g: (_eigh_backward(xp, w, V, None, g),), "linalg_eigh", saved=(),
                          tangent=tangent(1))
    return EighResult(values, vectors)


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of symmetric matrices, ascending."""
    return eigh(A, UPLO).eigenvalues


def qr(A, mode="reduced"):
    """A = Q R, Q with orthonormal columns and R upper triangular ('reduced', 'complete' or 'r'). The gradient
    (for full-rank A with at least as many rows as columns, mode 'reduced') is PyTorch's formula."""
    A = _matrix(A, "qr", square=False)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: qr received unrecognized mode {mode!r} but expected one of 'reduced' "
                         f"(default), 'r', or 'complete'")
    xp = A._backend.xp
    Q, R = xp.linalg.qr(A._data, mode="complete" if mode == "complete" else "reduced")
    m, n = A.shape[-2:]

    def backward(gQ, gR):
        if (mode != "reduced" and m != n) or m < n:
            raise NotImplementedError("linalg.qr: the gradient is implemented for mode='reduced' with m >= n only")
        gQ = xp.zeros(Q.shape, Q.dtype) if gQ is None else gQ
        gR = xp.zeros(R.shape, R.dtype) if gR is None else gR
        # gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q, copyltu mirroring the lower triangle upwards
        M = R @ _mT(gR) - _mT(gQ) @ Q
        M = xp.tril(M) + _mT(xp.tril(M, -1))
        return _mT(xp.linalg.solve(R, _mT(gQ + Q @ M)))
    def tangent(which):
        """X = Q^T dA R^-1 and its skew part Omega (from the strict lower triangle): dR = (X - Omega) R and
        dQ = dA R^-1 - Q (X - Omega)."""
        def rule(t):
            if m < n or (mode == "complete" and m != n):
                raise NotImplementedError("linalg.qr: forward mode is implemented for m >= n, and for "
                                          "mode='complete' on square matrices only")
            Q, R = qr(A)
            Rinv = inv(R)
            X = matmul(matmul(_T(Q), t), Rinv)
            low = X.tril(-1)
            upper = X - low + _T(low)  # X - Omega
            return matmul(upper, R) if which == 1 else matmul(t, Rinv) - matmul(Q, upper)
        return rule
    r = make_result(R, (A,), lambda g: (backward(None, g),), "linalg_qr", saved=(), tangent=tangent(1))
    if mode == "r":
        return QRResult(Tensor._wrap(xp.zeros((0,), A.dtype), A._backend), r)
    q = make_result(Q, (A,), lambda g: (backward(g, None),), "linalg_qr", saved=(), tangent=tangent(0))
    return QRResult(q, r)


def _svd_backward(xp, U, S, Vh, gU, gS, gVh):
    """PyTorch's real svd_backward on the reduced factors (k = min(m, n) columns; a full_matrices=True U or Vh
    contributes through its first k): gA = U [skew(U^T gU) / E S + S skew(V^T gV) / E + diag(gS)] V^T
    + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T), with skew(X) = X - X^T and E_ij = S_j^2 - S_i^2. The
    singular vectors' gradient needs distinct nonzero singular values (and a loss blind to their signs)."""
    k = S.shape[-1]
    U, Vh = U[..., :, :k], Vh[..., :k, :]
    m, n = U.shape[-2], Vh.shape[-1]
    inner = xp.zeros(S.shape + (k,), dtype=S.dtype)
    idx = xp.arange(k)
    if gS is not None:
        inner[..., idx, idx] = gS
    if gU is None and gVh is None:
        return (U * inner[..., idx, idx][..., None, :]) @ Vh
    E = S[..., None, :] ** 2 - S[..., :, None] ** 2
    off = ~xp.eye(k, dtype=bool)
    inv_E = xp.where(off, 1 / xp.where(off, E, 1), 0)
    out = 0
    if gU is not None:
        gU = gU[..., :, :k]
        UtgU = _mT(U) @ gU
        inner = inner + ((UtgU - _mT(UtgU)) * inv_E) * S[..., None, :]
        if m > k:
            out = out + (gU - U @ UtgU) / S[..., None, :] @ Vh
    if gVh is not None:
        gV = _mT(gVh[..., :k, :])
        V = _mT(Vh)
        VtgV = Vh @ gV
        inner = inner + S[..., :, None] * ((VtgV - _mT(VtgV)) * inv_E)
        if n > k:
            out = out + (U / S[..., None, :]) @ _mT(gV - V @ VtgV)
    return U @ inner @ Vh + out


def svd(A, full_matrices=True):
    """(U, S, Vh) with A = U diag(S) Vh, differentiable (see _svd_backward for when the vectors' gradient is
    defined)."""
    A = _matrix(A, "svd", square=False)
    xp = A._backend.xp
    U, S, Vh = xp.linalg.svd(A._data, full_matrices=full_matrices)

    def part(which):
        def backward(g):
            grads = [None, None, None]
            grads[which] = g
            return (_svd_backward(xp, U, S, Vh, *grads),)
        return backward
    def tangent(which):
        """With P = U^T dA V: dS = diag(P), dU = U (F * (P S + S P^T)) + (I - U U^T) dA V S^-1 and dV likewise
        with A^T, F_ij = 1 / (S_j^2 - S_i^2) off the diagonal (distinct nonzero singular values)."""
        def rule(t):
            m, n = A.shape[-2:]
            if full_matrices and m != n and which != 1:
                raise NotImplementedError("linalg.svd: forward mode for U and Vh of a non-square input needs "
                                          "full_matrices=False (the completed columns are not unique)")
            U, S, Vh = svd(A, full_matrices=False)
            V = _T(Vh)
            P = matmul(matmul(_T(U), t), V)
            if which == 1:
                return _diag(P)
            Srow = _sh.unsqueeze(S, -2)   # S_j along the columns
            eye = _eye_like(A, S.shape[-1])
            F = (1 - eye) / (Srow * Srow - _T(Srow * Srow) + eye)
            if which == 0:
                side, inner = U, P * Srow + _T(P * Srow)       # P S + S P^T
                projected = matmul(t, V)
            else:
                side, inner = V, _T(P) * Srow + _T(_T(P) * Srow)  # S P + P^T S
                projected = matmul(_T(t), U)
            d = matmul(side, F * inner) + (projected - matmul(side, matmul(_T(side), projected))) / Srow
            return d if which == 0 else _T(d)
        return rule
    u = make_result(U, (A,), part(0), "linalg_svd", saved=(), tangent=tangent(0))
    s = make_result(S, (A,), part(1), "linalg_svd", saved=(), tangent=tangent(1))
    vh = make_result(Vh, (A,), part(2), "linalg_svd", saved=(), tangent=tangent(2))
    return SVDResult(u, s, vh)


def svdvals(A):
    """The singular values, descending (differentiable)."""
    return svd(A, full_matrices=False).S


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """The Moore-Penrose pseudo-inverse (singular values below max(atol, rtol * largest) count as 0). Its
    gradient is the formula for a pseudo-inverse of constant rank."""
    A = _matrix(A, "pinv", square=False)
    xp = A._backend.xp
    if atol is None and rtol is None:
        rtol = np.finfo(A.dtype).eps * builtins.max(A.shape[-2:])
    U, S, Vh = xp.linalg.svd(A._data, full_matrices=False)
    largest = S[..., :1] if S.shape[-1] else xp.zeros(S.shape[:-1] + (1,), S.dtype)
    tol = xp.maximum(float(atol or 0.0), float(rtol or 0.0) * largest)
    keep = S > tol
    inv_s = xp.where(keep, 1 / xp.where(keep, S, 1), 0)
    P = _mT(Vh) @ (inv_s[..., :, None] * _mT(U))
    data = A._data

    def backward(g):
        m, n = data.shape[-2:]
        eye_m = xp.eye(m, dtype=data.dtype)
        eye_n = xp.eye(n, dtype=data.dtype)
        return (-_mT(P) @ g @ _mT(P) + (eye_m - data @ P) @ _mT(g) @ P @ _mT(P)
                + _mT(P) @ P @ _mT(g) @ (eye_n - P @ data),)
    def tangent(t):  # the differential of a pseudo-inverse of constant rank
        P = pinv(A, atol=atol, rtol=rtol, hermitian=hermitian)
        tT = _T(t)
        return (-matmul(matmul(P, t), P) + matmul(matmul(matmul(P, _T(P)), tT), _eye_like(A, m) - matmul(A, P))
                + matmul(matmul(_eye_like(A, n) - matmul(P, A), tT), matmul(_T(P), P)))
    m, n = A.shape[-2:]
    return make_result(P, (A,), backward, "linalg_pinv", saved=(A,), tangent=tangent)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """How many singular values exceed max(atol, rtol * the largest) (rtol defaults to eps * max(m, n))."""
    A = _matrix(A, "matrix_rank", square=False)
    xp = A._backend.xp
    S = xp.linalg.svd(A._data, compute_uv=False)
    if atol is None and rtol is None:
        rtol = np.finfo(A.dtype).eps * builtins.max(A.shape[-2:])
    largest = S[..., :1] if S.shape[-1] else xp.zeros(S.shape[:-1] + (1,), S.dtype)
    tol = xp.maximum(float(atol or 0.0), float(rtol or 0.0) * largest)
    return Tensor._wrap((S > tol).sum(axis=-1).astype(_INT64), A._backend)


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution of A X = B as pinv(A) @ B (differentiable). As on PyTorch's default CPU
    driver ('gelsy'), residuals and singular_values come back empty; rank is computed."""
    A = _matrix(A, "lstsq", square=False)
    solution = matmul(pinv(A) if rcond is None else pinv(A, rtol=rcond), B)
    xp = A._backend.xp
    empty = Tensor._wrap(xp.zeros((0,), A.dtype), A._backend)
    return LstsqResult(solution, empty, matrix_rank(A), empty)


# ---- norms -------------------------------------------------------------------------------------------------------
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ord-norm over dim (all elements, flattened, when None)."""
    return _math.norm(x, ord, dim, keepdim, dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """'fro', 'nuc', 1, -1, 2, -2, inf, -inf norms of the matrices in dims `dim`."""
    A = _matrix(A, "matrix_norm", square=False)
    if dtype is not None:
        from fastnn.tensor import as_dtype
        A = _ew.astype(A, as_dtype(dtype))
    d0, d1 = (normalize_dim(d, A.ndim) for d in dim)
    if ord == "fro":
        return _math.norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = _sh.movedim(A, (d0, d1), (-2, -1))
        s = svdvals(moved)
        out = _red.sum(s, -1) if ord == "nuc" else (_red.amax(s, -1) if ord == 2 else _red.amin(s, -1))
        return _sh.unsqueeze(_sh.unsqueeze(out, builtins.min(d0, d1)), builtins.max(d0, d1)) if keepdim else out
    if ord in (1, -1, math.inf, -math.inf):
        # 1: the largest column sum of |A| (sum over rows, d0); inf: the largest row sum (sum over d1)
        summed_over, then = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = _red.sum(_ew.abs(A), summed_over, True)
        out = (_red.amax if ord > 0 else _red.amin)(sums, then, True)
        return out if keepdim else _sh.squeeze(out, (d0, d1))
    raise ValueError(f"linalg.matrix_norm: order {ord!r} not supported")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """A vector norm (dim an int, or ord None with dim None: all elements) or a matrix norm (dim a pair, or a 2-D
    input with ord given), as torch.linalg.norm decides."""
    if isinstance(dim, int) or (dim is None and (ord is None or A.ndim == 1)):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim != 2:
            raise ValueError(f"linalg.norm: a matrix ord needs a 2-D input or dim, got shape {tuple(A.shape)}")
        dim = (-2, -1)
    if len(dim) == 1:
        return vector_norm(A, 2 if ord is None else ord, dim[0], keepdim, dtype=dtype)
    return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)


def cross(input, other, *, dim=-1):
    """The cross product of 3-vectors along dim (-1 by default, unlike torch.cross's deprecated default)."""
    return _math.cross(input, other, dim)

