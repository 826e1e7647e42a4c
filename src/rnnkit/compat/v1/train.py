"""TF1's optimizers: ``minimize(loss)`` records one op that backpropagates and updates the variables.

    training_op = tf.train.AdamOptimizer(learning_rate=0.001).minimize(loss)
    sess.run(training_op, feed_dict=...)        # loss, its gradients by autograd, one update

The updates are TF1's own, with its defaults (they differ from torch's
in where epsilon goes and, for RMSProp, the accumulator's start):

* ``GradientDescentOptimizer(lr)``: ``w -= lr g``
* ``AdamOptimizer(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)``:
  ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g²``,
  ``w -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)``
* ``RMSPropOptimizer(lr, decay=0.9, momentum=0.0, epsilon=1e-10)``: ``ms``
  starts at 1, ``ms = decay ms + (1-decay) g²``,
  ``mom = momentum mom + lr g / sqrt(ms + eps)``, ``w -= mom``
"""

from __future__ import annotations

import math

import torch

from .graph import Tensor, get_default_graph, unsupported
from .variables import Variable, trainable_variables


class Optimizer:
    """The shared part: ``minimize(loss, var_list=None, global_step=None)`` -> an op."""

    name = "Optimizer"

    def __init__(self, learning_rate, name=None):
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self._name = name or self.name
        self._slots: dict[int, dict] = {}
        self._steps = 0

    def minimize(self, loss, global_step=None, var_list=None, name=None):
        """An op that computes ``loss``, its gradients with respect to ``var_list`` (default: every trainable variable), and updates them."""
        if not isinstance(loss, Tensor):
            raise TypeError(f"loss: expected a graph tensor, got {type(loss).__name__}")
        if loss.shape is not None and len(loss.shape) != 0:
            raise ValueError(f"loss: expected a scalar, got shape {loss.shape}; reduce it with tf.reduce_mean")
        variables = list(var_list) if var_list is not None else trainable_variables()
        if not variables:
            raise ValueError("var_list: no trainable variables to optimize")
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"var_list: expected tf.Variables, got {type(v).__name__}")
        params = [v.param for v in variables]

        def step(loss_value, *_variable_values):
            for p in params:
                p.grad = None
            loss_value.backward()
            with torch.no_grad():
                self._steps += 1
                for p in params:
                    if p.grad is not None:
                        self._update(p, p.grad, self._slots.setdefault(id(p), {}))
            if global_step is not None:
                with torch.no_grad():
                    global_step.param.add_(1)

        graph = get_default_graph()
        op = graph.record_op("Minimize", step, [loss, *variables], {}, name=name or self._name, n_out=0)
        op.trains = True
        return op

    def _update(self, p, g, slots):
        raise NotImplementedError


class GradientDescentOptimizer(Optimizer):
    name = "GradientDescent"

    def _update(self, p, g, slots):  # noqa: ARG002
        p.sub_(self.learning_rate * g)


class AdamOptimizer(Optimizer):
    name = "Adam"

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False, name="Adam"):  # noqa: ARG002
        super().__init__(learning_rate, name)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def _update(self, p, g, slots):
        if not slots:
            slots["m"], slots["v"], slots["t"] = torch.zeros_like(p), torch.zeros_like(p), 0
        slots["t"] += 1
        t = slots["t"]
        slots["m"].mul_(self.beta1).add_(g, alpha=1 - self.beta1)
        slots["v"].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        lr_t = self.learning_rate * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        p.addcdiv_(slots["m"], slots["v"].sqrt().add_(self.epsilon), value=-lr_t)


class RMSPropOptimizer(Optimizer):
    name = "RMSProp"

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False, centered=False, name="RMSProp"):  # noqa: ARG002
        if centered:
            raise ValueError("centered: only centered=False is supported")
        super().__init__(learning_rate, name)
        self.decay, self.momentum, self.epsilon = float(decay), float(momentum), float(epsilon)

    def _update(self, p, g, slots):
        if not slots:
            slots["ms"], slots["mom"] = torch.ones_like(p), torch.zeros_like(p)  # TF1 starts ms at 1
        slots["ms"].mul_(self.decay).addcmul_(g, g, value=1 - self.decay)
        slots["mom"].mul_(self.momentum).addcdiv_(g, slots["ms"].add(self.epsilon).sqrt_(), value=self.learning_rate)
        p.sub_(slots["mom"])


def get_or_create_global_step() -> Variable:
    graph = get_default_graph()
    if getattr(graph, "_global_step", None) is None:
        graph._global_step = Variable(0, trainable=False, name="global_step", dtype=torch.int64)
    return graph._global_step


__all__ = ["AdamOptimizer", "GradientDescentOptimizer", "Optimizer", "RMSPropOptimizer", "get_or_create_global_step"]


def __getattr__(name):
    raise unsupported("tf.train", name)
