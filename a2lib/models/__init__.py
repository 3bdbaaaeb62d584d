"""The models the kit gives students (their own models live in the notebooks)."""
from .resnet import BasicBlock, ResNetCIFAR, resnet32

# Models the command line can build by name (a config's ``model:`` entry).
MODELS = {"resnet32": resnet32}


def build_model(name: str, num_classes: int = 10):
    """Build a kit model by name; students' models are built in their notebooks."""
    if name not in MODELS:
        raise KeyError(
            f"Unknown model {name!r}: the kit provides {sorted(MODELS)}. Models you write "
            "(TwoLayerNet, VanillaCNN, MyModel) are trained from their notebook."
        )
    return MODELS[name](num_classes=num_classes)


__all__ = ["BasicBlock", "MODELS", "ResNetCIFAR", "build_model", "resnet32"]
