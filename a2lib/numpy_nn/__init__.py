"""The numpy network scaffolding of notebook 2: what students are given, never what they write.

Students implement ``Conv2D``, ``MaxPooling``, ``ReLU``, ``Linear`` and ``SGD`` in the notebook on
top of these pieces:

* :class:`Module`: the layer base class (``forward(x)``, ``backward(dout)``, ``cache``, ``dx``, and
  for layers with parameters ``weight``/``bias`` with gradients ``dw``/``db``, exposed as the dicts
  ``params()`` / ``grads()`` that optimizers walk);
* :class:`SoftmaxCrossEntropy` and :class:`ConvNet` (``ConvNet(modules, criterion)``);
* numeric gradients (:func:`eval_numerical_gradient`, :func:`eval_numerical_gradient_array`) and
  :func:`rel_error`;
* :func:`fit`: the mini-batch training loop that produces the learning curve.
"""
from .gradcheck import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from .loss import SoftmaxCrossEntropy
from .module import Module
from .network import ConvNet
from .train import accuracy, fit, iterate_minibatches

__all__ = [
    "ConvNet", "Module", "SoftmaxCrossEntropy", "accuracy", "eval_numerical_gradient",
    "eval_numerical_gradient_array", "fit", "iterate_minibatches", "rel_error",
]
