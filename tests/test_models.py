"""Model zoo: torchvision-compatible state_dicts and parameter counts, output shapes, gradients reaching every
parameter, eval determinism, block-level gradchecks and initialisation."""
import hashlib
import math

import numpy as np
import pytest

import fastnn
from fastnn import models, nn
from fastnn.autograd import gradcheck
from fastnn.models.densenet import DenseLayer
from fastnn.models.googlenet import GoogLeNetOutputs, Inception
from fastnn.models.resnet import (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, SqueezeExcitation,
                                  ResNet, ZeroPadShortcut, cifar_resnet)
from fastnn.models.vgg import vgg

# torchvision 0.28 facts: (parameter count, state_dict entries, first 16 hex digits of the sha256 of the
# state_dict's "key:shape" lines in order), with torchvision's default arguments (1000 classes).
TORCHVISION = {
    "alexnet": (61100840, 16, "7cf57469ad654ca3"),
    "vgg11": (132863336, 22, "5e6ee14c22dc415d"),
    "vgg11_bn": (132868840, 62, "96ee5d41fde5cc7f"),
    "vgg13": (133047848, 26, "054bce641758c677"),
    "vgg13_bn": (133053736, 76, "98a0a0f25977c5dd"),
    "vgg16": (138357544, 32, "77334610293d95e2"),
    "vgg16_bn": (138365992, 97, "a463166a74dc0850"),
    "vgg19": (143667240, 38, "b4eb1243614e83cf"),
    "vgg19_bn": (143678248, 118, "e6e7b876b32ca010"),
    "resnet18": (11689512, 122, "3e58b0798c806a0c"),
    "resnet34": (21797672, 218, "97e365907d64da74"),
    "resnet50": (25557032, 320, "781bb16f43b8f96f"),
    "resnet101": (44549160, 626, "708e8813e2eb3461"),
    "resnet152": (60192808, 932, "9e3321003337a848"),
    "resnext50_32x4d": (25028904, 320, "7140c3dbddac5382"),
    "resnext101_32x8d": (88791336, 626, "d8d4f6f347fc1097"),
    "wide_resnet50_2": (68883240, 320, "31ec3ad967f7b3b9"),
    "densenet121": (7978856, 727, "604b78c2bbed70c0"),
    "densenet161": (28681000, 967, "3f911412d51f2ecc"),
    "densenet169": (14149480, 1015, "56728b035e841ddf"),
    "densenet201": (20013928, 1207, "82cfe2e7fe9f5e8e"),
    "googlenet": (6624904, 344, "2fe40eb262730098"),
}
GOOGLENET_AUX = (13004888, 364, "563d3cdadc5f3358")
# The counts the project brief lists: checked in every run; the rest of TORCHVISION only with -m slow.
REQUIRED = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg16", "vgg16_bn", "vgg19",
            "alexnet", "googlenet", "resnext50_32x4d", "densenet121"}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def state_signature(model):
    sd = model.state_dict()
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sd.items())
    return n_params(model), len(sd), hashlib.sha256(text.encode()).hexdigest()[:16]


def eval_twice(model, x):
    model.eval()
    with fastnn.no_grad():
        a, b = model(x)._data, model(x)._data
    assert np.array_equal(a, b), "eval-mode forward is not deterministic"
    return a


def x_of(*shape, seed=0):
    return fastnn.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def check_backward(model, x):
    """Train-mode forward and backward of a sum-of-squares loss over every output: every parameter gets a finite
    gradient. Returns the outputs as a tuple."""
    model.train()
    model.zero_grad()
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    loss = fastnn.sum(outs[0] * outs[0])
    for extra in outs[1:]:
        loss = loss + fastnn.sum(extra * extra)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}"
        assert p.grad.shape == p.shape
        assert np.isfinite(p.grad._data).all(), f"non-finite gradient in {name}"
    return outs


# ---- torchvision compatibility ------------------------------------------------------------------------------
SAMPLE_KEYS = {
    "densenet121": ["features.conv0.weight", "features.denseblock1.denselayer1.norm1.running_var",
                    "features.denseblock4.denselayer16.conv2.weight", "features.transition3.conv.weight",
                    "features.norm5.num_batches_tracked", "classifier.bias"],
    "resnet50": ["conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_mean", "fc.weight"],
    "googlenet": ["inception3a.branch2.1.conv.weight", "inception5b.branch4.1.bn.running_mean", "fc.bias"],
}


# Deep variants whose forward adds only time to the default run: their blocks run in resnet50's forward.
FORWARD_WHEN_SLOW = {"resnet101", "resnet152"}


def check_torchvision_model(name, forward=True):
    """State_dict signature and parameter count as torchvision; eval forward at the smallest convenient size
    (AlexNet needs 63 px, the others run at 32 px)."""
    model = getattr(models, name)()
    assert state_signature(model) == TORCHVISION[name]
    assert set(SAMPLE_KEYS.get(name, [])) <= set(model.state_dict())
    if forward:
        side = 64 if name == "alexnet" else 32
        model.eval()
        with fastnn.no_grad():
            assert model(x_of(1, 3, side, side)).shape == (1, 1000)


@pytest.mark.parametrize("name", [n for n in TORCHVISION if n in REQUIRED])
def test_torchvision_state_dict_params_and_forward(name):
    check_torchvision_model(name, forward=name not in FORWARD_WHEN_SLOW)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TORCHVISION if n not in REQUIRED or n in FORWARD_WHEN_SLOW])
def test_torchvision_state_dict_params_and_forward_more(name):
    check_torchvision_model(name)


def test_non_default_heads_and_channels():
    """Every constructor takes num_classes and in_channels: they change exactly the first conv and the head."""
    model = models.resnet18(num_classes=7, in_channels=1)
    assert model.conv1.weight.shape == (64, 1, 7, 7) and model.fc.weight.shape == (7, 512)
    assert n_params(model) == 11689512 - 2 * 64 * 49 - 993 * 513


# ---- every other model: output shape, eval determinism, gradients -------------------------------------------
# (factory, kwargs, input shape (N, C, H, W), check backward); built with num_classes=10, in_channels=C.
CASES = {
    "lenet5": (models.lenet5, {}, (2, 1, 28, 28), True),
    "lenet5_classic": (models.lenet5, {"variant": "classic"}, (2, 1, 28, 28), True),
    "alexnet_small": (models.alexnet, {"small_input": True}, (2, 1, 28, 28), True),
    "vgg11_cifar": (models.vgg11_cifar, {}, (2, 1, 28, 28), False),
    "vgg11_bn_cifar": (models.vgg11_bn_cifar, {}, (2, 3, 32, 32), True),
    "vgg16_bn_cifar": (models.vgg16_bn_cifar, {}, (2, 1, 28, 28), False),
    "nin_small": (models.nin, {"small_input": True}, (2, 1, 28, 28), True),
    "resnet18_small": (models.resnet18, {"small_input": True}, (2, 1, 28, 28), True),
    "resnext50_32x4d": (models.resnext50_32x4d, {}, (2, 3, 32, 32), True),
    "preact_resnet18": (models.preact_resnet18, {"small_input": True}, (2, 3, 32, 32), True),
    "preact_resnet50": (models.preact_resnet50, {}, (1, 3, 32, 32), False),
    "se_resnet18": (models.se_resnet18, {"small_input": True}, (2, 3, 32, 32), True),
    "se_resnet50": (models.se_resnet50, {}, (1, 3, 32, 32), False),
    "densenet121_small": (models.densenet121, {"small_input": True}, (1, 3, 28, 28), False),
    "resnet20": (models.resnet20, {}, (2, 3, 32, 32), True),
    "resnet20_b": (models.resnet20, {"shortcut": "B"}, (2, 1, 28, 28), True),
    "resnet32": (models.resnet32, {}, (1, 3, 32, 32), False),
}
# Backward through the big ImageNet-layout nets: their blocks are checked above and in CASES at small sizes.
SLOW_BACKWARD = {
    "resnet50": (models.resnet50, {}, (2, 3, 32, 32), True),
    "preact_resnet50": (models.preact_resnet50, {}, (2, 3, 32, 32), True),
    "se_resnet50": (models.se_resnet50, {}, (2, 3, 32, 32), True),
    "densenet121": (models.densenet121, {}, (2, 3, 32, 32), True),
    "googlenet": (models.googlenet, {"aux_logits": True}, (2, 3, 64, 64), True),
}


def check_case(factory, kwargs, shape, backward):
    model = factory(num_classes=10, in_channels=shape[1], **kwargs)
    x = x_of(*shape)
    out = eval_twice(model, x)
    assert out.shape == (shape[0], 10)
    assert np.isfinite(out).all()
    if backward:
        outs = check_backward(model, x)
        assert all(o.shape == (shape[0], 10) for o in outs)


@pytest.mark.parametrize("case", CASES)
def test_forward_shape_eval_determinism_and_backward(case):
    check_case(*CASES[case])


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_BACKWARD)
def test_forward_and_backward_large(case):
    check_case(*SLOW_BACKWARD[case])


SLOW_FORWARD = ["vgg13_cifar", "vgg13_bn_cifar", "vgg16_cifar", "vgg19_cifar", "vgg19_bn_cifar", "resnet44",
                "resnet56", "resnet110", "preact_resnet34", "preact_resnet101", "preact_resnet152"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_FORWARD)
def test_forward_shape_more(name):
    model = getattr(models, name)(num_classes=10, in_channels=3)
    assert eval_twice(model, x_of(1, 3, 32, 32)).shape == (1, 10)


def test_every_model_is_exercised():
    factories = {n for n in dir(models) if n[0].islower() and callable(getattr(models, n))} - {"mlp"}
    covered = ({f.__name__ for f, *_ in CASES.values()} | set(SLOW_FORWARD) | set(TORCHVISION) |
               {"alexnet", "zfnet", "nin", "googlenet"})  # forward-tested below
    assert factories <= covered, f"models without a test: {sorted(factories - covered)}"


def test_googlenet_aux_heads_lrn_and_outputs_by_mode():
    assert state_signature(models.googlenet(aux_logits=True)) == GOOGLENET_AUX
    # LRN has no parameters: the paper's form loads the same checkpoints.
    assert state_signature(models.googlenet(lrn=True)) == TORCHVISION["googlenet"]
    model = models.googlenet(num_classes=5, aux_logits=True, lrn=True, small_input=True)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    x = x_of(2, 3, 28, 28)
    outs = check_backward(model, x)  # train mode
    assert isinstance(outs, GoogLeNetOutputs) and [o.shape for o in outs] == [(2, 5)] * 3
    out = eval_twice(model, x)
    assert out.shape == (2, 5)


# ---- parameter counts of the non-torchvision models ---------------------------------------------------------
def test_cifar_resnet_params():
    """He et al.'s option-A nets: 269,722 + 97,216 per extra block in each of the three stages."""
    assert n_params(models.resnet20()) == 269722
    assert n_params(models.resnet32()) == 464154
    assert n_params(models.resnet56()) == 853018
    assert n_params(models.resnet110()) == 1727962
    # Option B adds a 1×1 conv + BN at the two stage transitions: 16·32 + 64 and 32·64 + 128.
    assert n_params(models.resnet20(shortcut="B")) == 269722 + 16 * 32 + 64 + 32 * 64 + 128


def test_preact_and_se_params():
    # Pre-activation: the first block of stages 2-4 normalises its input (64/128/256 channels, not 128/256/512),
    # the projection shortcuts lose their BN, and a final BN(512) is added.
    assert n_params(models.preact_resnet18()) == 11689512 - 2 * (64 + 128 + 256) - 2 * (128 + 256 + 512) + 2 * 512
    # SE unit on C channels: C·C/16 + C/16 + C/16·C + C.
    se = sum(2 * c * (c // 16) + c // 16 + c for c in [64] * 2 + [128] * 2 + [256] * 2 + [512] * 2)
    assert n_params(models.se_resnet18()) == 11689512 + se
    assert n_params(models.se_resnet50()) == 28088024


def test_alexnet_original_and_zfnet_structure():
    model = models.alexnet(variant="original")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    lrns = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert [(m.size, m.alpha, m.beta, m.k) for m in lrns] == [(5, 1e-4, 0.75, 2.0)] * 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert [(m.kernel_size, m.stride) for m in pools] == [(3, 2)] * 3
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert eval_twice(model, x_of(1, 3, 64, 64)).shape == (1, 1000)
    zf = models.zfnet(num_classes=10)
    assert zf.features[0].kernel_size == (7, 7) and zf.features[0].stride == (2, 2)
    assert zf.features[4].kernel_size == (5, 5) and zf.features[4].stride == (2, 2)
    # 64 px: conv1 30, pool 15 (ceil mode), conv2 6, pool 3, pool 1.
    assert eval_twice(zf, x_of(1, 3, 64, 64)).shape == (1, 10)
    with pytest.raises(ValueError, match="variant"):
        models.alexnet(variant="v2")


def test_nin_has_no_linear_layer():
    model = models.nin(num_classes=10)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules()) == 8
    # 67 px is the smallest input: conv 15, pools 7, 3, 1.
    assert eval_twice(model, x_of(1, 3, 67, 67)).shape == (1, 10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        cifar_resnet(21)
    with pytest.raises(ValueError, match="shortcut"):
        models.resnet20(shortcut="C")
    with pytest.raises(ValueError, match="depth"):
        vgg(12)
    with pytest.raises(ValueError, match="groups=1"):
        BasicBlock(4, 4, groups=2)


# ---- initialisation -----------------------------------------------------------------------------------------
def test_initialisation_follows_torchvision():
    model = models.resnet20(shortcut="B")
    w = model.layer3[1].conv1.weight._data
    assert w.std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)  # kaiming_normal_, fan_out, relu
    bn = model.layer2[0].bn1
    assert np.all(bn.weight._data == 1) and np.all(bn.bias._data == 0)

    net = models.vgg11_cifar()
    lin = net.classifier[1]
    assert lin.weight._data.std() == pytest.approx(0.01, rel=0.05) and np.all(lin.bias._data == 0)
    assert np.all(net.features[0].bias._data == 0)

    dense = models.densenet121(num_classes=10, small_input=True)
    assert np.all(dense.classifier.bias._data == 0)
    w = dense.features.denseblock2.denselayer3.conv2.weight._data  # kaiming_normal_, fan_in
    assert w.std() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.05)

    goog = models.googlenet(num_classes=10, small_input=True)
    w = goog.inception4a.branch2[1].conv.weight._data
    assert w.std() == pytest.approx(0.01, rel=0.05)


def test_zero_init_residual_makes_blocks_start_as_identity():
    model = models.resnet18(num_classes=10, small_input=True, zero_init_residual=True)
    assert np.all(model.layer1[0].bn2.weight._data == 0)
    bottlenecks = ResNet(Bottleneck, [1, 1], widths=(8, 16), zero_init_residual=True)
    assert all(np.all(b.bn3.weight._data == 0) for b in (bottlenecks.layer1[0], bottlenecks.layer2[0]))
    block = model.layer2[1].eval()
    x = fastnn.relu(x_of(2, 128, 4, 4))
    with fastnn.no_grad():
        assert np.array_equal(block(x)._data, x._data)
    pre = models.preact_resnet18(small_input=True, zero_init_residual=True)
    assert np.all(pre.layer3[0].conv2.weight._data == 0)


def test_zero_pad_shortcut():
    x = x_of(2, 4, 6, 6)
    out = ZeroPadShortcut(4, 8, 2)(x)
    assert out.shape == (2, 8, 3, 3)
    assert np.array_equal(out._data[:, 2:6], x._data[:, :, ::2, ::2])
    assert np.all(out._data[:, :2] == 0) and np.all(out._data[:, 6:] == 0)


# ---- block-level gradient checks (float64, tiny shapes) ----------------------------------------------------
def check_block_gradients(module, inputs, call=None, directions=4, eps=1e-6, seed=0):
    """Autograd vs central finite differences of <w, module(*inputs)> along random directions through the inputs
    and every parameter at once (train mode, batch statistics): each direction costs two forwards instead of two
    per element, and a wrong gradient in any element shows up in every direction. `call(xs)` runs the module
    (default: module(*xs))."""
    call = call or (lambda xs: module(*xs))
    module.double().train()
    rng = np.random.default_rng(seed)
    xs = [fastnn.tensor(rng.standard_normal(shape), requires_grad=True) for shape in inputs]
    tensors = xs + list(module.parameters())
    out = call(xs)
    weights = rng.standard_normal(out.shape)
    module.zero_grad()
    out.backward(weights)
    grads = [t.grad._data.copy() for t in tensors]

    def projected(step):
        for t, v in zip(tensors, step):
            t._data += v
        with fastnn.no_grad():
            value = float(np.sum(call(xs)._data * weights))
        for t, v in zip(tensors, step):
            t._data -= v
        return value

    for _ in range(directions):
        direction = [rng.standard_normal(t.shape) for t in tensors]
        numeric = (projected([eps * v for v in direction]) - projected([-eps * v for v in direction])) / (2 * eps)
        analytic = sum(float(np.sum(g * v)) for g, v in zip(grads, direction))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("block, args, x_shape", [
    (BasicBlock, (2, 2), (2, 2, 3, 3)),
    (BasicBlock, (2, 3, 2, nn.Sequential(nn.Conv2d(2, 3, 1, stride=2, bias=False), nn.BatchNorm2d(3))),
     (2, 2, 3, 3)),
    (Bottleneck, (4, 1), (2, 4, 3, 3)),
    (Bottleneck, (8, 2, 1, None, 2, 32, 4), (2, 8, 2, 2)),
    (PreActBasicBlock, (2, 3, 2, nn.Sequential(nn.Conv2d(2, 3, 1, stride=2, bias=False))), (2, 2, 3, 3)),
    (PreActBottleneck, (4, 1), (2, 4, 3, 3)),
    (SqueezeExcitation, (4, 2), (2, 4, 3, 3)),
    (Inception, (3, 2, 2, 2, 1, 2, 1), (2, 3, 4, 4)),
], ids=["basic", "basic_downsample", "bottleneck", "grouped_se_bottleneck", "preact_basic", "preact_bottleneck",
        "squeeze_excitation", "inception"])
def test_block_gradients(block, args, x_shape):
    check_block_gradients(block(*args), [x_shape])


def test_dense_layer_gradients():
    layer = DenseLayer(3, growth_rate=2, bn_size=2, drop_rate=0.0)
    check_block_gradients(layer, [(2, 2, 3, 3), (2, 1, 3, 3)], call=layer)  # it concatenates a list of inputs
    assert layer([fastnn.randn(1, 2, 3, 3, dtype=fastnn.float64),
                  fastnn.randn(1, 1, 3, 3, dtype=fastnn.float64)]).shape == (1, 2, 3, 3)


def test_squeeze_excitation_elementwise_gradcheck():
    module = SqueezeExcitation(4, reduction=2).double()
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((1, 4, 2, 2)), requires_grad=True)
    assert gradcheck(module, [x])
    assert module.fc1.out_channels == 2


def test_inception_output_channels():
    module = Inception(3, 2, 2, 2, 1, 2, 1)
    assert module(fastnn.randn(1, 3, 5, 5)).shape == (1, 7, 5, 5)
