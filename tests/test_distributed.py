"""fastnn.distributed on a real `mpiexec -n 2` on localhost: collectives against NumPy, DDP and SyncBatchNorm
against single-process training on the concatenated batch, failures that end the job, and the launcher.

The ranks run tests/distributed_worker.py; the references are recomputed here from the same data functions.
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastnn
from fastnn import nn, optim
from fastnn.cli import build_model
from fastnn.distributed import DistributedSampler, SyncBatchNorm
from fastnn.distributed.launch import find_mpiexec

import distributed_worker as W

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = str(HERE / "distributed_worker.py")


def _mpi_or_skip():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install 'fastnn[distributed]' to run the MPI tests")
    try:
        return find_mpiexec()
    except FileNotFoundError as error:
        pytest.skip(str(error))


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               NUMBA_NUM_THREADS="1")
    env.update(extra)
    return env


def mpirun(args, n=2, timeout=60):
    """Run `python args...` as n ranks; returns (CompletedProcess, seconds)."""
    mpiexec = _mpi_or_skip()
    start = time.perf_counter()
    proc = subprocess.run([mpiexec, "-n", str(n), sys.executable] + list(args), env=_env(), cwd=HERE,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The two ranks' results of distributed_worker.py all."""
    out = tmp_path_factory.mktemp("ranks")
    proc, _ = mpirun([WORKER, "all", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(W.WORLD)]


# ---- collectives ---------------------------------------------------------------------------------------
REDUCE = {"SUM": lambda a: np.sum(a, axis=0), "AVG": lambda a: np.mean(a, axis=0),
          "PRODUCT": lambda a: np.prod(a, axis=0), "MAX": lambda a: np.max(a, axis=0),
          "MIN": lambda a: np.min(a, axis=0)}


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype,op", [(d, o) for d in W.DTYPES for o in W.OPS if (d, o) != ("int64", "AVG")])
def test_all_reduce_and_reduce_scatter_against_numpy(ranks, dtype, op):
    for key, salt in (("all_reduce", 1), ("all_reduce_async", 2)):
        expected = REDUCE[op](np.stack([W.rank_data(r, dtype, salt) for r in range(W.WORLD)]))
        for r in range(W.WORLD):
            got = ranks[r][f"{key}/{dtype}/{op}"]
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, expected, **_tol(dtype), err_msg=f"{key} {op} rank {r}")
    for r in range(W.WORLD):
        expected = REDUCE[op](np.stack([W.rank_data(s, dtype, 10 + r) for s in range(W.WORLD)]))
        np.testing.assert_allclose(ranks[r][f"reduce_scatter/{dtype}/{op}"], expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", W.DTYPES)
def test_broadcast_and_all_gather_against_numpy(ranks, dtype):
    for r in range(W.WORLD):
        np.testing.assert_array_equal(ranks[r][f"broadcast/{dtype}"], W.rank_data(1, dtype, 3))
        np.testing.assert_array_equal(ranks[r][f"all_gather/{dtype}"],
                                      np.stack([W.rank_data(s, dtype, 4) for s in range(W.WORLD)]))


def test_in_place_into_non_contiguous_view_and_async_reduce_scatter(ranks):
    expected = sum(W.rank_data(r, "float64", 5, shape=(4, 3)) for r in range(W.WORLD))
    for r in range(W.WORLD):
        np.testing.assert_allclose(ranks[r]["all_reduce/transposed"], expected.T, rtol=1e-12)
        expected_rs = sum(W.rank_data(s, "float64", 10 + r) for s in range(W.WORLD))
        np.testing.assert_allclose(ranks[r]["reduce_scatter_async/float64/SUM"], expected_rs, rtol=1e-12)


def test_bad_collective_arguments_raise_clear_errors(ranks):
    errors = {key.split("/")[1]: str(value) for key, value in ranks[0].items() if key.startswith("errors/")}
    assert errors == {
        "avg_int": "TypeError: ReduceOp.AVG needs a floating-point tensor, got dtype int64",
        "bad_src": "ValueError: src must be a rank in [0, 1], got 2",
        "bad_op": "ValueError: op must be a fastnn.distributed.ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got 'sum'",
        "bad_list": "ValueError: tensor_list must be a list of world_size=2 tensors, got list of length 1"}


# ---- DDP -----------------------------------------------------------------------------------------------
def _reference_grads(model, *batches):
    for x, y in batches:
        nn.CrossEntropyLoss()(model(fastnn.tensor(x)), fastnn.tensor(y)).backward()
    return W.grads(model)


@pytest.mark.parametrize("label", ["one_bucket", "many_buckets"])
def test_ddp_gradients_equal_single_process_on_concatenated_batch(ranks, label):
    fastnn.manual_seed(0)
    expected = _reference_grads(W.make_mlp(), W.batch(0))
    assert int(ranks[0][f"ddp/{label}/buckets"]) == (1 if label == "one_bucket" else 5)
    n_params = len(expected)
    ready = list(ranks[0][f"ddp/{label}/ready_at_start"])
    if label == "one_bucket":
        assert ready == [n_params]
    else:
        # Buckets [last bias, last weight], [bias 1], [weight 1], [bias 0], [weight 0] start in that order while
        # backward is still running, each as soon as it and the buckets before it are complete: the first once
        # the last layer's 2 gradients are ready, the next two after layer 1's (the engine reaches each layer's
        # weight, then its bias), the last two after layer 0's.
        assert ready == [2, 4, 4, 6, 6]
    for r in range(W.WORLD):
        for i, g in enumerate(expected):
            np.testing.assert_allclose(ranks[r][f"ddp/{label}/grad{i}"], g, rtol=0, atol=1e-6)
            np.testing.assert_allclose(ranks[r][f"ddp/{label}/grad{i}"], g, rtol=1e-9, atol=1e-12)


def test_no_sync_accumulates_locally_then_averages(ranks):
    fastnn.manual_seed(0)
    expected = _reference_grads(W.make_mlp(), W.batch(1), W.batch(2))
    x1, y1 = W.batch(1)
    for r in range(W.WORLD):
        # Inside no_sync each rank holds the gradient of its own micro-batch only (on rank 0's parameters).
        fastnn.manual_seed(0)
        local = _reference_grads(W.make_mlp(), (W.shard(x1, r), W.shard(y1, r)))[0]
        np.testing.assert_allclose(ranks[r]["no_sync/local_grad0"], local, rtol=1e-9, atol=1e-12)
        for i, g in enumerate(expected):
            np.testing.assert_allclose(ranks[r][f"no_sync/grad{i}"], g, rtol=1e-9, atol=1e-12)
    assert not np.allclose(ranks[0]["no_sync/local_grad0"], ranks[1]["no_sync/local_grad0"])


@pytest.mark.parametrize("flag", [False, True])
def test_unused_parameters_get_zero_gradients(ranks, flag):
    fastnn.manual_seed(0)
    model = W.TwoHeads().double()
    x, y = W.batch(0)
    nn.CrossEntropyLoss()(model(fastnn.tensor(x)), fastnn.tensor(y)).backward()
    for r in range(W.WORLD):
        for name, p in model.named_parameters():
            expected = np.zeros(p.shape) if name.startswith("unused") else p.grad.detach().numpy()
            np.testing.assert_allclose(ranks[r][f"unused/{flag}/{name}"], expected, rtol=1e-9, atol=1e-12)


def test_layer_called_twice_and_parameter_read_by_the_parent(ranks):
    fastnn.manual_seed(0)
    model = W.Shared().double()
    x, y = W.batch(0)
    nn.CrossEntropyLoss()(model(fastnn.tensor(x)), fastnn.tensor(y)).backward()
    for r in range(W.WORLD):
        for name, p in model.named_parameters():
            np.testing.assert_allclose(ranks[r][f"shared/{name}"], p.grad.detach().numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=name)


def test_twenty_sgd_steps_equal_one_process_with_the_doubled_batch(ranks):
    fastnn.manual_seed(0)
    model = W.make_mlp()
    opt = optim.SGD(model.parameters(), **W.SGD_OPTIONS)
    for step in range(W.SGD_STEPS):
        x, y = W.batch(100 + step)
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(fastnn.tensor(x)), fastnn.tensor(y)).backward()
        opt.step()
    fastnn.manual_seed(0)
    initial = list(W.make_mlp().parameters())
    for i, p in enumerate(model.parameters()):
        assert not np.allclose(p.detach().numpy(), initial[i].detach().numpy())   # training moved them
        for r in range(W.WORLD):
            np.testing.assert_allclose(ranks[r][f"sgd/param{i}"], p.detach().numpy(), rtol=0, atol=1e-6)
            np.testing.assert_allclose(ranks[r][f"sgd/param{i}"], p.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_batchnorm_buffers_come_from_rank_0_at_each_forward(ranks):
    own = [ranks[r]["buffers/after_train_forward"] for r in range(W.WORLD)]
    assert not np.allclose(own[0], own[1])          # each rank's running mean saw its own half of the batch
    x, _ = W.batch(0)
    for r in range(W.WORLD):
        # momentum 0.1 from zeros: 0.1 * the batch mean of rank r's first-layer outputs.
        fastnn.manual_seed(0)
        first = W.make_mlp(nn.BatchNorm1d)[0]
        with fastnn.no_grad():
            expected = 0.1 * first(fastnn.tensor(W.shard(x, r))).detach().numpy().mean(axis=0)
        np.testing.assert_allclose(own[r], expected, rtol=1e-9)
        np.testing.assert_array_equal(ranks[r]["buffers/after_eval_forward"], own[0])


# ---- SyncBatchNorm -------------------------------------------------------------------------------------
def test_sync_batchnorm_under_ddp_equals_batchnorm_on_the_concatenated_batch(ranks):
    fastnn.manual_seed(0)
    model = W.make_mlp(nn.BatchNorm1d)
    x, y = W.batch(3)
    logits = model(fastnn.tensor(x))
    nn.CrossEntropyLoss()(logits, fastnn.tensor(y)).backward()
    for r in range(W.WORLD):
        np.testing.assert_allclose(ranks[r]["syncbn_ddp/logits"], W.shard(logits.detach().numpy(), r), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(ranks[r]["syncbn_ddp/running_mean"], model[1].running_mean.detach().numpy(),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ranks[r]["syncbn_ddp/running_var"], model[1].running_var.detach().numpy(),
                                   rtol=1e-9)
        for i, g in enumerate(W.grads(model)):
            np.testing.assert_allclose(ranks[r][f"syncbn_ddp/grad{i}"], g, rtol=1e-9, atol=1e-12)


def test_sync_batchnorm_gradcheck_across_ranks_and_against_batchnorm2d(ranks):
    for r in range(W.WORLD):
        np.testing.assert_allclose(ranks[r]["syncbn/input_grad"], ranks[r]["syncbn/input_grad_numeric"],
                                   rtol=1e-5, atol=1e-7)
    bn = nn.BatchNorm2d(W.BN_SHAPE[1]).double()
    bn.weight.data[...] = [0.5, 1.5, -1.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3]
    x = fastnn.tensor(np.concatenate([np.random.default_rng(200 + r).standard_normal(W.BN_SHAPE)
                                      for r in range(W.WORLD)]), dtype=fastnn.float64)
    x.requires_grad_(True)
    proj = np.concatenate([W.bn_projection(r) for r in range(W.WORLD)])
    (bn(x) * fastnn.tensor(proj)).sum().backward()
    np.testing.assert_allclose(np.concatenate([ranks[r]["syncbn/input_grad"] for r in range(W.WORLD)]),
                               x.grad.detach().numpy(), rtol=1e-9, atol=1e-12)
    # Without DDP each rank holds its part of the parameter gradient; they add up to the full-batch one.
    for name in ("weight", "bias"):
        total = sum(ranks[r][f"syncbn/{name}_grad"] for r in range(W.WORLD))
        np.testing.assert_allclose(total, getattr(bn, name).grad.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_sync_batchnorm_alone_is_batchnorm_and_converts():
    fastnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Sequential(nn.BatchNorm1d(3))).double()
    model[1].running_mean.data[...] = [1.0, 2.0, 3.0]
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], SyncBatchNorm) and isinstance(converted[2][0], SyncBatchNorm)
    assert converted[1].weight is model[1].weight and converted[1].running_mean is model[1].running_mean
    sync = SyncBatchNorm(3).double()
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((5, 3, 2)), dtype=fastnn.float64)
    x.requires_grad_(True)
    fastnn.autograd.gradcheck(lambda t: sync(t), [x])
    with pytest.raises(ValueError, match="process group"):
        SyncBatchNorm(3, process_group=object())


# ---- failures ------------------------------------------------------------------------------------------
def test_a_rank_raising_ends_the_job_with_its_message(tmp_path):
    proc, seconds = mpirun([WORKER, "raise", str(tmp_path)], timeout=60)
    assert proc.returncode != 0, proc.stderr
    assert "rank 1 (of 2) failed with an uncaught exception" in proc.stderr, proc.stderr
    assert "RuntimeError: injected failure in the middle of the epoch" in proc.stderr, proc.stderr
    assert seconds < 30, f"the job took {seconds:.1f}s to end"


def test_a_collective_past_the_timeout_aborts_the_job(tmp_path):
    proc, seconds = mpirun([WORKER, "timeout", str(tmp_path)], timeout=60)
    assert proc.returncode != 0, proc.stderr
    assert re.search(r"rank 0 \(of 2\): all_reduce of \(3,\) float64 did not complete within 0:00:02",
                     proc.stderr), proc.stderr
    # Rank 1 sleeps 60 s: the job must end long before that, at the 2 s deadline plus start-up.
    assert seconds < 30, f"the job took {seconds:.1f}s to end"


# ---- without a launcher, and without mpi4py ------------------------------------------------------------
def test_without_a_launcher_it_is_a_world_of_one(tmp_path):
    _mpi_or_skip()
    proc = subprocess.run([sys.executable, WORKER, "single", str(tmp_path)], env=_env(), cwd=HERE,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "single: rank 0 of 1, all_reduce [0.0, 1.0, 2.0]" in proc.stdout
    assert "initialized after destroy: False" in proc.stdout


def test_without_mpi4py_import_works_and_init_says_how_to_install():
    code = """
import sys
sys.modules["mpi4py"] = None          # makes `import mpi4py` raise ImportError
import fastnn, fastnn.distributed as dist
from fastnn.cli import main
assert dist.get_world_size() == 1 and dist.get_rank() == 0 and not dist.is_initialized()
assert not dist.is_available()
assert list(dist.DistributedSampler(list(range(5)), shuffle=False)) == [0, 1, 2, 3, 4]
try:
    dist.init_process_group("mpi")
except ImportError as error:
    print("ImportError:", error)
print("train --nproc exit status", main(["train", "--nproc", "2"]))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ImportError: fastnn.distributed needs mpi4py" in proc.stdout
    assert "pip install 'fastnn[distributed]'" in proc.stdout
    assert "train --nproc exit status 1" in proc.stdout
    assert "fastnn: fastnn.distributed needs mpi4py and an MPI library: pip install 'fastnn[distributed]'" in \
        proc.stderr


def test_collectives_need_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        fastnn.distributed.all_reduce(fastnn.zeros(3))


# ---- the launcher --------------------------------------------------------------------------------------
def test_fastnn_run_starts_ranks_with_their_share_of_the_cores(tmp_path):
    _mpi_or_skip()
    script = tmp_path / "show.py"
    # Each rank writes its own file: the ranks' stdout lines may interleave.
    script.write_text("import os, sys\nimport fastnn.distributed as dist\ndist.init_process_group()\n"
                      "r = dist.get_rank()\n"
                      "open(os.path.join(os.path.dirname(__file__), f'rank{r}.txt'), 'w').write(\n"
                      "    f\"rank {r} of {dist.get_world_size()} threads {os.environ['NUMBA_NUM_THREADS']} \"\n"
                      "    f\"args {sys.argv[1:]}\")\n")
    env = _env()
    del env["NUMBA_NUM_THREADS"]
    proc = subprocess.run([sys.executable, "-m", "fastnn.cli", "run", "-n", "2", str(script), "--flag", "x"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    for r in range(2):
        assert (tmp_path / f"rank{r}.txt").read_text() == f"rank {r} of 2 threads {share} args ['--flag', 'x']"


def test_fastnn_train_nproc_trains_data_parallel_and_only_rank_0_prints(tmp_path):
    _mpi_or_skip()
    save = tmp_path / "model.fastnn"
    proc = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--nproc", "2", "--model", "mlp",
                           "--epochs", "1", "--limit", "1024", "--embedded", "--no-progress", "--save", str(save)],
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("test accuracy:") == 1, proc.stdout
    assert "distributed: 2 ranks" in proc.stdout
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", proc.stdout).group(1))
    assert accuracy > 0.55, proc.stdout    # one epoch on 1,024 images: chance is 0.10
    # Rank 0 saved the unwrapped model: the plain model's keys, no DDP "module." prefix.
    assert set(fastnn.load(str(save))) == set(build_model("mlp").state_dict())


# ---- DistributedSampler ----------------------------------------------------------------------------------

def test_sampler_matches_pytorch_index_logic():
    # torch.utils.data.DistributedSampler(range(10), num_replicas=4, shuffle=False): padded with 0, 1.
    assert [list(DistributedSampler(range(10), 4, r, shuffle=False)) for r in range(4)] == \
        [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    # drop_last: ceil((10 - 4) / 4) = 2 samples each, the last two indices dropped.
    assert [list(DistributedSampler(range(10), 4, r, shuffle=False, drop_last=True)) for r in range(4)] == \
        [[0, 4], [1, 5], [2, 6], [3, 7]]
    # Padding longer than the data set repeats it: 2 items over 5 ranks -> 0 1 0 1 0.
    assert [list(DistributedSampler(range(2), 5, r, shuffle=False)) for r in range(5)] == [[0], [1], [0], [1], [0]]
    with pytest.raises(ValueError, match="Invalid rank 4"):
        DistributedSampler(range(10), 4, 4)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(10), 0, 0)


@given(n=st.integers(0, 60), world=st.integers(1, 4), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**31), epoch=st.integers(0, 5))
def test_sampler_partitions_the_indices_each_epoch(n, world, shuffle, drop_last, seed, epoch):
    samplers = [DistributedSampler(range(n), world, r, shuffle=shuffle, seed=seed, drop_last=drop_last)
                for r in range(world)]
    for s in samplers:
        s.set_epoch(epoch)
    shares = [list(s) for s in samplers]
    assert all(len(share) == len(samplers[0]) for share in shares)
    everything = sorted(i for share in shares for i in share)
    if drop_last:
        assert len(everything) == len(set(everything)) == n - n % world
    else:
        assert sorted(set(everything)) == list(range(n))                  # every index at least once
        assert len(everything) == -(-n // world) * world                   # padded to a multiple of world
        if n:
            # The padding repeats the index list from its start: no index more than ceil(total / n) times.
            assert np.bincount(everything).max() <= -(-len(everything) // n)
    again = DistributedSampler(range(n), world, 0, shuffle=shuffle, seed=seed, drop_last=drop_last)
    again.set_epoch(epoch)
    assert list(again) == shares[0]                  # every rank derives the same order from seed + epoch


def test_bad_arguments_raise_clear_errors():
    from fastnn.distributed import DistributedDataParallel as DDP, init_process_group
    with pytest.raises(TypeError, match="module must be a fastnn.nn.Module, got object"):
        DDP(object())
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number, got 0"):
        DDP(nn.Linear(2, 2), bucket_cap_mb=0)
    with pytest.raises(ValueError, match="device_ids and output_device are for GPU replicas"):
        DDP(nn.Linear(2, 2), device_ids=[0])
    with pytest.raises(ValueError, match="only the default process group"):
        DDP(nn.Linear(2, 2), process_group="group")
    with pytest.raises(ValueError, match="backend 'nccl' is not supported"):
        init_process_group("nccl")
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        DistributedSampler(range(4), 2, 0, seed=-1)
    with pytest.raises(ValueError, match="epoch must be a non-negative int, got 1.5"):
        DistributedSampler(range(4), 2, 0).set_epoch(1.5)


def test_ddp_without_a_group_is_the_module_itself():
    fastnn.manual_seed(0)
    model = W.make_mlp()
    ddp = fastnn.distributed.DistributedDataParallel(model)
    x, y = W.batch(0)
    nn.CrossEntropyLoss()(ddp(fastnn.tensor(x)), fastnn.tensor(y)).backward()
    fastnn.manual_seed(0)
    expected = _reference_grads(W.make_mlp(), (x, y))
    for g, e in zip(W.grads(model), expected):
        np.testing.assert_array_equal(g, e)
    assert set(ddp.state_dict()) == {f"module.{k}" for k in model.state_dict()}   # PyTorch's key prefix


def test_fastnn_run_rejects_bad_arguments():
    from fastnn.distributed.launch import main as run_main
    with pytest.raises(SystemExit):
        run_main(["-n", "0", "script.py"])
    with pytest.raises(SystemExit):
        run_main(["-n", "2"])


def test_ddp_refuses_parameters_changed_after_wrapping(monkeypatch):
    ddp = fastnn.distributed.DistributedDataParallel(nn.Linear(2, 2))
    ddp.world_size = 2              # what a group of two would give; the check comes before any collective
    monkeypatch.setattr(ddp, "broadcast_buffers", False)
    ddp.module.double()
    with pytest.raises(RuntimeError, match="convert the module .* before wrapping it"):
        ddp(fastnn.zeros((1, 2), dtype=fastnn.float64))
