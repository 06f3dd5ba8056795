"""Forward vs reverse mode: fastnn.func.jacfwd and jacrev on an MLP with few inputs and many outputs, and on one
with many inputs and few outputs (the README's "Forward-mode AD and fastnn.func" numbers).

    python bench/bench_jacobian.py [--inputs 8] [--outputs 1024] [--hidden 256]

jacfwd costs one forward pass (carrying a tangent) per input element, jacrev one backward pass per output
element, so the cheaper mode is the one whose count is smaller. Prints the CPU model and the load average.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _timing import best_times, cpu_model  # noqa: E402

import fastnn  # noqa: E402
import fastnn.nn.functional as F  # noqa: E402
from fastnn import func  # noqa: E402



def mlp(n_in, hidden, n_out, rng):
    w1 = fastnn.tensor((rng.standard_normal((hidden, n_in)) / np.sqrt(n_in)).astype(np.float32))
    w2 = fastnn.tensor((rng.standard_normal((n_out, hidden)) / np.sqrt(hidden)).astype(np.float32))
    return lambda x: F.linear(F.tanh(F.linear(x, w1)), w2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--outputs", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for n_in, n_out in ((args.inputs, args.outputs), (args.outputs, args.inputs)):
        f = mlp(n_in, args.hidden, n_out, rng)
        x = fastnn.tensor(rng.standard_normal(n_in).astype(np.float32))
        forward, reverse = func.jacfwd(f)(x), func.jacrev(f)(x)
        assert np.allclose(forward.numpy(), reverse.numpy(), rtol=1e-4, atol=1e-5)
        t_fwd, t_rev = best_times([lambda: func.jacfwd(f)(x), lambda: func.jacrev(f)(x)], args.reps)
        faster, ratio = ("jacfwd", t_rev / t_fwd) if t_fwd < t_rev else ("jacrev", t_fwd / t_rev)
        print(f"R^{n_in} -> R^{n_out} (hidden {args.hidden}): jacfwd {t_fwd * 1e3:8.1f} ms ({n_in} jvps)   "
              f"jacrev {t_rev * 1e3:8.1f} ms ({n_out} vjps)   {faster} {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
