"""dlexp.compat.uva2019: the course's names and signatures, checked against references."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from dlexp.compat.uva2019 import (
    cifar10_utils,
    convnet_pytorch,
    custom_batchnorm,
    gradient_check,
    mlp_numpy,
    mlp_pytorch,
    modules,
)
from dlexp.data import load_raw_cifar10
from dlexp.numpy_nn import numerical_gradient, numerical_vjp

EMPTY = inspect.Parameter.empty

# (callable, the course's parameter names in order, the course's defaults)
COURSE_SIGNATURES = [
    (modules.LinearModule, ["in_features", "out_features"], {}),
    (modules.LinearModule.forward, ["self", "x"], {}),
    (modules.LinearModule.backward, ["self", "dout"], {}),
    (modules.LeakyReLUModule, ["neg_slope"], {}),
    (modules.ReLUModule, [], {}),
    (modules.SoftMaxModule, [], {}),
    (modules.CrossEntropyModule, [], {}),
    (modules.CrossEntropyModule.forward, ["self", "x", "y"], {}),
    (modules.CrossEntropyModule.backward, ["self", "x", "y"], {}),
    (mlp_numpy.MLP, ["n_inputs", "n_hidden", "n_classes", "neg_slope"], {}),
    (mlp_numpy.MLP.forward, ["self", "x"], {}),
    (mlp_numpy.MLP.backward, ["self", "dout"], {}),
    (mlp_pytorch.MLP, ["n_inputs", "n_hidden", "n_classes", "neg_slope"], {}),
    (custom_batchnorm.CustomBatchNormAutograd, ["n_neurons", "eps"], {"eps": 1e-5}),
    (custom_batchnorm.CustomBatchNormManualFunction, ["n_neurons"], {}),
    (custom_batchnorm.CustomBatchNormManualModule, ["n_neurons", "eps"], {"eps": 1e-5}),
    (convnet_pytorch.ConvNet, ["n_channels", "n_classes"], {}),
    (cifar10_utils.get_cifar10, ["data_dir", "one_hot", "validation_size"],
     {"data_dir": "cifar10/cifar-10-batches-py", "one_hot": True, "validation_size": 0}),
    (cifar10_utils.DataSet, ["images", "labels"], {}),
    (cifar10_utils.DataSet.next_batch, ["self", "batch_size"], {}),
    (gradient_check.eval_numerical_gradient, ["f", "x", "verbose", "h"],
     {"verbose": True, "h": 1e-5}),
    (gradient_check.eval_numerical_gradient_array, ["f", "x", "df", "h"], {"h": 1e-5}),
]  # fmt: skip


def course_rel_error(x, y) -> float:
    """The course's unittests.py measure: elementwise, with a 1e-8 floor."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


@pytest.mark.parametrize(
    "obj, names, defaults", COURSE_SIGNATURES, ids=[o.__qualname__ for o, _, _ in COURSE_SIGNATURES]
)
def test_course_signature(obj, names, defaults):
    params = list(inspect.signature(obj).parameters.values())
    assert [p.name for p in params[: len(names)]] == names
    for p in params[: len(names)]:
        if p.name in defaults:
            assert p.default == defaults[p.name], p.name
    extra = params[len(names) :]
    assert all(p.default is not EMPTY or p.kind is p.VAR_KEYWORD for p in extra), extra


def test_torch_models_are_modules_with_course_shapes():
    mlp = mlp_pytorch.MLP(3072, [100], 10, 0.02)
    assert isinstance(mlp, nn.Module)
    assert mlp(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    convnet = convnet_pytorch.ConvNet(3, 10)
    assert isinstance(convnet, nn.Module)
    assert convnet.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_torch_mlp_keeps_pytorch_default_init():
    torch.manual_seed(0)
    weight = mlp_pytorch.MLP(3072, [100], 10, 0.02).layers[0].weight
    bound = 1 / np.sqrt(3072)  # nn.Linear's kaiming-uniform(a=sqrt(5)) bound, not N(0, 1e-4)
    assert weight.abs().max() <= bound
    assert weight.std() > 10 * 1e-4


ACTIVATIONS = {
    "leaky_relu": lambda: modules.LeakyReLUModule(0.02),
    "relu": modules.ReLUModule,
    "softmax": modules.SoftMaxModule,
}


@pytest.mark.parametrize("make", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
def test_activation_backward_matches_finite_differences(make):
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((7, 9)), rng.standard_normal((7, 9))
    layer = make()
    layer.forward(x)
    dx = layer.backward(dout)
    dx_num = gradient_check.eval_numerical_gradient_array(lambda xx: make().forward(xx), x, dout)
    assert course_rel_error(dx, dx_num) < 1e-6


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((6, 11)), rng.standard_normal((6, 4))
    layer = modules.LinearModule(11, 4)
    assert layer.params["weight"].dtype == np.float64
    layer.forward(x)
    dx = layer.backward(dout)
    num = gradient_check.eval_numerical_gradient_array
    # The course's lambdas ignore their argument: the weights are perturbed in place.
    dw_num = num(lambda w: layer.forward(x), layer.params["weight"], dout)
    db_num = num(lambda b: layer.forward(x), layer.params["bias"], dout)
    assert course_rel_error(dx, num(lambda xx: layer.forward(xx), x, dout)) < 1e-5
    assert course_rel_error(layer.grads["weight"], dw_num) < 1e-5
    assert course_rel_error(layer.grads["bias"], db_num) < 1e-5


def test_cross_entropy_backward_on_a_fresh_instance():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((8, 5))
    x = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.eye(5)[rng.integers(0, 5, size=8)]
    grads = modules.CrossEntropyModule().backward(x, y)  # no forward before it
    f = lambda _: modules.CrossEntropyModule().forward(x, y)  # noqa: E731 (the course's form)
    num = gradient_check.eval_numerical_gradient(f, x, verbose=False, h=1e-5)
    assert course_rel_error(num, grads) < 1e-5


def test_numpy_mlp_weight_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 6)), np.eye(3)[[0, 2, 1, 2]]
    mlp = mlp_numpy.MLP(6, [5], 3, 0.02, rng=rng, init_std=0.5)
    loss = modules.CrossEntropyModule()
    mlp.forward(x)
    mlp.backward(loss.backward(mlp.forward(x), y))
    first = mlp.linears[0]
    num = gradient_check.eval_numerical_gradient(
        lambda _: loss.forward(mlp.forward(x), y), first.params["weight"], verbose=False
    )
    assert course_rel_error(first.grads["weight"], num) < 1e-5


def test_eval_numerical_gradient_prints_each_index_when_verbose(capsys):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    grad = gradient_check.eval_numerical_gradient(lambda a: float(np.sum(a**2)), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-7)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("(0, 0)")


def test_gradient_check_handles_a_transposed_array_as_the_core_does():
    rng = np.random.default_rng(0)
    weight, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    dout, before = rng.standard_normal((5, 3)), weight.copy()
    w_t = weight.T  # (4, 3), a non-contiguous view: reshape(-1) would copy it
    assert not w_t.flags.c_contiguous
    course = gradient_check.eval_numerical_gradient_array(lambda a: x @ a, w_t, dout)
    core = numerical_vjp(lambda: x @ w_t, w_t, dout)
    np.testing.assert_array_equal(course, core)
    assert course_rel_error(course, x.T @ dout) < 1e-6  # d(x @ W.T) / d(W.T), not zero
    scalar = gradient_check.eval_numerical_gradient(lambda a: float(np.sum(a**3)), w_t, False)
    np.testing.assert_array_equal(scalar, numerical_gradient(lambda: float(np.sum(w_t**3)), w_t))
    assert course_rel_error(scalar, 3 * w_t**2) < 1e-6
    np.testing.assert_array_equal(weight, before)  # every perturbation was undone


@pytest.mark.parametrize(
    "norm_cls",
    [custom_batchnorm.CustomBatchNormAutograd, custom_batchnorm.CustomBatchNormManualModule],
)
def test_batch_norm_modules_standardise_each_feature(norm_cls):
    torch.manual_seed(0)
    x = 2 * torch.randn(64, 7, requires_grad=True) + 10
    y = norm_cls(7)(x)
    assert y.mean(dim=0).abs().max() < 1e-5
    assert (y.var(dim=0, unbiased=False) - 1).abs().max() < 1e-3


def _bn_inputs(n_neurons: int = 5):
    torch.manual_seed(1)
    x = (2 * torch.randn(32, n_neurons, dtype=torch.float64) + 10).requires_grad_()
    gamma = torch.sqrt(10 * torch.arange(1, n_neurons + 1, dtype=torch.float64)).requires_grad_()
    beta = (100 * torch.arange(n_neurons, dtype=torch.float64)).requires_grad_()
    return x, gamma, beta


def test_manual_function_gradcheck_called_on_the_class():
    x, gamma, beta = _bn_inputs()
    fn = custom_batchnorm.CustomBatchNormManualFunction
    y = fn.apply(x, gamma, beta, 1e-5)
    torch.testing.assert_close(y.mean(dim=0), beta.detach(), atol=1e-6, rtol=0)
    assert torch.autograd.gradcheck(fn.apply, (x, gamma, beta, 1e-5))


def test_manual_function_gradcheck_called_on_an_instance():
    x, gamma, beta = _bn_inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch warns on instances; accepted
        fn = custom_batchnorm.CustomBatchNormManualFunction(5)
    y = fn.apply(x, gamma, beta)  # the course's call: eps defaults to 1e-5
    torch.testing.assert_close(y.var(dim=0, unbiased=False), gamma.detach() ** 2, rtol=1e-4, atol=0)
    assert torch.autograd.gradcheck(fn.apply, (x, gamma, beta))


def test_get_cifar10_course_semantics(tiny_cifar):
    data = cifar10_utils.get_cifar10(str(tiny_cifar / "cifar-10-batches-py"), validation_size=50)
    assert data["train"] is data.train and data.validation is data["validation"]
    assert set(data) == {"train", "validation", "test"}
    sizes = {name: split.num_examples for name, split in data.items()}
    assert sizes == {"train": 250, "validation": 50, "test": 50}
    train = data.train
    assert train.images.shape == (250, 3, 32, 32) and train.images.dtype == np.float32
    assert train.labels.shape == (250, 10) and train.labels.dtype == np.float64
    assert np.all(train.labels.sum(axis=1) == 1) and set(np.unique(train.labels)) == {0.0, 1.0}
    raw = load_raw_cifar10(tiny_cifar / "cifar-10-batches-py")
    mean_image = raw.train_x[50:].mean(axis=0).reshape(3, 32, 32)  # 0-255 scale, train split only
    expected_test = raw.test_x.reshape(-1, 3, 32, 32) - mean_image
    np.testing.assert_allclose(data.test.images, expected_test, atol=1e-3)
    np.testing.assert_array_equal(data.test.labels.argmax(axis=1), raw.test_y)
    assert np.abs(train.images.mean(axis=0)).max() < 1e-3
    with pytest.raises(AttributeError):
        _ = data.nope


def test_get_cifar10_dense_labels_and_parent_folder(tiny_cifar):
    data = cifar10_utils.get_cifar10(tiny_cifar, one_hot=False)  # the parent folder works too
    assert data.train.labels.shape == (300,) and data.train.labels.dtype.kind == "i"
    assert data.validation.num_examples == 0
    with pytest.raises(ValueError):
        data.validation.next_batch(1)


def test_next_batch_reshuffles_at_each_epoch_end():
    images = np.arange(10, dtype=np.float32).reshape(10, 1)
    ds = cifar10_utils.DataSet(images, np.arange(10), rng=np.random.default_rng(0))
    first, labels = ds.next_batch(10)
    assert ds.epochs_completed == 0
    np.testing.assert_array_equal(first[:, 0], labels)  # images and labels stay paired
    second, _ = ds.next_batch(10)
    assert ds.epochs_completed == 1
    assert sorted(second[:, 0]) == list(range(10)) and not np.array_equal(first, second)


def test_next_batch_drops_the_tail_across_the_epoch_boundary(tiny_cifar):
    np.random.seed(42)  # the course's seeding still fixes the batches
    data = cifar10_utils.get_cifar10(tiny_cifar / "cifar-10-batches-py", validation_size=50)
    batches = [data.train.next_batch(100) for _ in range(2)]
    assert data.train.epochs_completed == 0
    x, y = data.train.next_batch(100)  # only 50 left: a new epoch starts
    assert data.train.epochs_completed == 1
    assert x.shape == (100, 3, 32, 32) and y.shape == (100, 10)
    np.random.seed(42)
    again = cifar10_utils.get_cifar10(tiny_cifar / "cifar-10-batches-py", validation_size=50)
    np.testing.assert_array_equal(again.train.next_batch(100)[0], batches[0][0])
