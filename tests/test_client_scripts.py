"""The example scripts (examples/*.py), PyTorch code but for their imports, run small: they train to a stated floor.
When torch is importable, the very same source with `fastnn` swapped for `torch` in its import lines runs too,
which is what "runs unmodified but for imports" means."""
import math
import pathlib
import types

import pytest

from fastnn.data.datasets import EMBEDDED_DIR

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

LSTM_ARGS = ["--epochs", "2", "--train-size", "512", "--test-size", "256", "--seq-len", "12"]
EMBEDDED = str(EMBEDDED_DIR)  # the 10k/2k Fashion-MNIST subset shipped with fastnn
MNIST_ARGS = ["--epochs", "2", "--train-size", "256", "--test-size", "128", "--batch-size", "32",
              "--test-batch-size", "128", "--width", "8", "--log-interval", "100", "--data-root", EMBEDDED]
VAE_ARGS = ["--epochs", "2", "--train-size", "256", "--test-size", "128", "--batch-size", "64", "--hidden", "32",
            "--latent", "4", "--log-interval", "100", "--data-root", EMBEDDED]
DCGAN_ARGS = ["--niter", "1", "--niter-batches", "3", "--train-size", "24", "--batchSize", "8", "--nz", "4",
              "--ngf", "2", "--ndf", "2", "--dataroot", EMBEDDED]
RESNET_ARGS = ["--train-size", "32", "--test-size", "100", "--batch-size", "16", "--width", "4", "--blocks", "1",
               "--lr", "0.05"]
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


def test_mnist_convnet_with_adadelta_and_steplr_learns():
    history = load("pytorch_style/mnist_convnet").main(MNIST_ARGS)
    first, second = history
    assert first["lr"] == 1.0 and second["lr"] == pytest.approx(0.7)  # StepLR(step_size=1, gamma=0.7) per epoch
    assert first["train_losses"][0] == pytest.approx(math.log(10), abs=0.15)  # an untrained net is near uniform
    assert second["test_loss"] < first["test_loss"] < math.log(10)
    assert second["accuracy"] >= 0.45  # chance is 0.1; 2 x 8 batches reach ~0.6


def test_vae_loss_decreases_and_samples_are_probabilities():
    train_losses, test_losses, samples = load("pytorch_style/vae").main(VAE_ARGS)
    # BCE summed over 784 pixels of an untrained decoder (outputs ~0.5) is ~784 ln 2 = 543 per image
    assert train_losses[0] == pytest.approx(784 * math.log(2), rel=0.1)
    assert train_losses[1] < train_losses[0] and test_losses[1] < test_losses[0]
    values = samples.detach().numpy()
    assert samples.shape == (64, 1, 28, 28) and values.min() > 0 and values.max() < 1


def test_dcgan_steps_train_the_discriminator():
    history, fake, netG, netD = load("pytorch_style/dcgan").main(DCGAN_ARGS)
    assert len(history) == 3 and tuple(fake.shape) == (8, 1, 64, 64)
    # An untrained D outputs ~0.5 on everything: errD = -log(0.5) twice
    assert history[0]["errD"] == pytest.approx(2 * math.log(2), abs=0.15)
    for step in history:
        # D's Adam step, taken between the two evaluations of the same fakes, lowers D(G(z))
        assert step["D_G_z2"] < step["D_G_z1"]
    assert all(math.isfinite(step["errG"]) for step in history)


def test_resnet_resumed_from_checkpoint_continues_exactly(tmp_path):
    resnet = load("pytorch_style/cifar_resnet")
    straight = resnet.main(RESNET_ARGS + ["--epochs", "2", "--checkpoint", str(tmp_path / "a" / "ckpt.pth")])
    checkpoint = str(tmp_path / "b" / "ckpt.pth")
    interrupted = resnet.main(RESNET_ARGS + ["--epochs", "1", "--checkpoint", checkpoint])
    resumed = resnet.main(RESNET_ARGS + ["--epochs", "2", "--checkpoint", checkpoint, "--resume"])
    assert interrupted[0]["train_losses"] == straight[0]["train_losses"]
    assert list(resumed) == [1]
    # fresh model, optimizer (momentum buffers), scheduler and RNG from the file: the same numbers, bit for bit
    assert resumed[1]["train_losses"] == straight[1]["train_losses"]
    assert max(straight[1]["train_losses"]) < min(straight[0]["train_losses"])


@pytest.mark.slow
def test_the_same_sources_run_on_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    assert load("lstm_classifier", "torch").main(LSTM_ARGS) >= 0.85
    first, last = load("char_gpt", "torch").main(GPT_ARGS)
    assert last < first - 1.0
    history = load("pytorch_style/cifar_resnet", "torch").main(RESNET_ARGS + ["--epochs", "1",
                                                                  "--checkpoint", str(tmp_path / "ckpt.pth")])
    assert len(history[0]["train_losses"]) == 2
