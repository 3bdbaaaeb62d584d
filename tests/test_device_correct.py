"""Every student-facing loss and model keeps its tensors where ``.to(device)`` moves them.

``fit`` moves the model and the loss with ``.to(device)``, which moves parameters and buffers and
leaves plain tensor attributes on the CPU: a loss that stores its class weights as a plain attribute
passes every check on a CPU and fails on a GPU (Colab) at ``self.weight[target]``. On the CPU this
test checks that every tensor attribute of every module is a registered parameter or buffer; where
there is a GPU (or Apple's MPS) it also moves each module there and runs it, with the natural
student alternatives.
"""
import re

import pytest
import torch
from torch import nn

from a2lib.models import resnet32
from autograder.locations import SOURCE_NOTEBOOKS
from autograder.tools.corpus import strip_solution_delimiters
from autograder.harness.cells import grade_id

ACCELERATOR = ("cuda" if torch.cuda.is_available()
               else "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else None)

# The forward a student writes most naturally into the FocalLoss skeleton: it indexes the weights with the targets.
NATURAL_FOCAL_FORWARD = '''
        log_p = F.log_softmax(input, dim=1)[torch.arange(len(target), device=target.device), target]
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is None:
            return loss.mean()
        w = self.weight[target]
        return (w * loss).sum() / w.sum()
'''


def _cell(stem: str, gid: str) -> str:
    import nbformat

    nb = nbformat.read(SOURCE_NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    return next(c.source for c in nb.cells if grade_id(c) == gid)


def _namespace() -> dict:
    import torch.nn.functional as F  # noqa: N812

    return {"torch": torch, "nn": nn, "F": F}


def _focal_classes() -> dict[str, type]:
    """FocalLoss as the solution writes it, and as the release's skeleton completed the natural way."""
    source = _cell("04_data_wrangling", "focal_loss")
    solution, skeleton = _namespace(), _namespace()
    exec(strip_solution_delimiters(source), solution)  # noqa: S102 (the kit's own notebook)
    natural = re.sub(r"^[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[^\n]*\n?", NATURAL_FOCAL_FORWARD.lstrip("\n"),
                     source, flags=re.S | re.M)
    exec(natural, skeleton)  # noqa: S102
    return {"solution": solution["FocalLoss"], "skeleton, natural forward": skeleton["FocalLoss"]}


def _nb3_models() -> dict[str, nn.Module]:
    ns = _namespace()
    for gid in ("two_layer_net", "vanilla_cnn", "my_model_blocks", "my_model"):
        exec(strip_solution_delimiters(_cell("03_cnn_design", gid)), ns)  # noqa: S102
    return {"TwoLayerNet": ns["TwoLayerNet"](3072, 16, 10), "VanillaCNN": ns["VanillaCNN"](), "MyModel": ns["MyModel"]()}


def _modules() -> dict[str, tuple[nn.Module, callable]]:
    """name -> (module, a call on inputs made on the module's device)."""
    out = {}
    weight = torch.tensor([0.5, 1.0, 1.5, 2.0])
    for name, cls in _focal_classes().items():
        for label, loss in ((f"FocalLoss ({name}, weighted)", cls(weight=weight, gamma=2.0)),
                            (f"FocalLoss ({name}, no weights)", cls(gamma=2.0))):
            out[label] = (loss, lambda m, d: m(torch.randn(6, 4, device=d), torch.tensor([0, 1, 2, 3, 3, 1], device=d)))
    for name, model in {**_nb3_models(), "resnet32": resnet32()}.items():
        out[name] = (model, lambda m, d: m(torch.randn(2, 3, 32, 32, device=d)))
    return out


def plain_tensor_attributes(module: nn.Module) -> list[str]:
    """Tensor attributes of ``module`` and its submodules that are neither parameters nor buffers."""
    return [f"{prefix or type(module).__name__}.{key}" for prefix, m in module.named_modules()
            for key, value in vars(m).items() if isinstance(value, torch.Tensor)]


def test_a_plain_tensor_attribute_is_found():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.ones(3)

    assert plain_tensor_attributes(Plain()) == ["Plain.weight"]
    assert plain_tensor_attributes(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))) == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_tensor_attribute_is_a_parameter_or_a_buffer(name):
    module, call = _modules()[name]
    assert plain_tensor_attributes(module) == [], f"{name} keeps tensors that .to(device) would not move"
    out = call(module.eval(), "cpu")
    assert torch.isfinite(out).all()


@pytest.mark.skipif(ACCELERATOR is None, reason="no GPU or MPS device on this machine (the CPU test above runs everywhere)")
@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_runs_on_the_accelerator(name):
    module, call = _modules()[name]
    module.to(ACCELERATOR).eval()
    out = call(module, ACCELERATOR)
    assert out.device.type == ACCELERATOR and torch.isfinite(out).all()
