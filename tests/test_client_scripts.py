"""The example scripts (examples/*.py), PyTorch code but for their imports, run small: they train to a stated floor.
When torch is importable, the very same source with `fastnn` swapped for `torch` in its import lines runs too,
which is what "runs unmodified but for imports" means."""
import pathlib
import types

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

LSTM_ARGS = ["--epochs", "2", "--train-size", "512", "--test-size", "256", "--seq-len", "12"]
GPT_ARGS = ["--max-iters", "25", "--eval-interval", "25", "--n-layer", "1", "--block-size", "16", "--n-embd", "32",
            "--sample-tokens", "5"]


def load(name, framework="fastnn"):
    """examples/<name>.py as a module; with framework="torch", its import lines name torch instead of fastnn."""
    source = (EXAMPLES / f"{name}.py").read_text()
    if framework == "torch":
        lines = source.splitlines()
        swapped = [line.replace("fastnn", "torch") if line.startswith(("import fastnn", "from fastnn")) else line
                   for line in lines]
        assert swapped != lines
        source = "\n".join(swapped)
    module = types.ModuleType(f"example_{name}_{framework}")
    module.__file__ = str(EXAMPLES / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def test_lstm_classifier_learns_the_counting_task(capsys):
    accuracy = load("lstm_classifier").main(LSTM_ARGS)
    assert accuracy >= 0.85  # chance is ~0.5; 2 small epochs reach ~0.93
    assert "epoch 2: train loss" in capsys.readouterr().out


def test_char_gpt_training_lowers_the_loss_with_either_attention_form():
    gpt = load("char_gpt")
    first, last = gpt.main(GPT_ARGS)
    assert first > 3.5 and last < first - 1.0  # ln(vocab) ~ 3.6 at the start
    # the explicit masked_fill(tril == 0, -inf) attention computes the same model (same seed, same dropout draws)
    short = ["--max-iters", "4", "--eval-interval", "4"]
    _, last_sdpa = gpt.main(GPT_ARGS + short)
    first_manual, last_manual = gpt.main(GPT_ARGS + short + ["--manual-attention"])
    assert first_manual == pytest.approx(first, abs=1e-6)
    assert last_manual == pytest.approx(last_sdpa, abs=1e-4)


@pytest.mark.slow
def test_the_same_sources_run_on_torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    assert load("lstm_classifier", "torch").main(LSTM_ARGS) >= 0.85
    first, last = load("char_gpt", "torch").main(GPT_ARGS)
    assert last < first - 1.0
