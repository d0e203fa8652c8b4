"""The user's own backend: a factory ``build(reference, case)`` (harness.spec.custom_backends) that returns a
module called like ``nn.LSTM``/``nn.GRU``, built and checked here into a backend like any other.

Parity compares gradients name by name, so the module's parameters must carry the reference's names
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ...), either at the top or all under one prefix (a module
that wraps an ``nn.LSTM`` as ``self.rnn`` has ``rnn.weight_ih_l0``, and is accepted as it is).

A factory that cannot run a case raises ``harness.errors.BackendUnavailable`` or ``NotImplementedError``: the
case is skipped with its message. Anything else it raises, a model whose parameters do not match, or a first
call that does not return ``(output, state)`` shaped as ``nn.LSTM``'s fails the case with one line naming the
backend and its factory. The shapes are checked on the first call with and without autograd only, so the
timed calls are the model's own (and one Python call around it).
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from harness.measure.backends import BuiltBackend
from harness.spec.cases import Case
from harness.spec.custom_backends import resolve
from harness.errors import BackendUnavailable, RnnbenchError


class CustomBackendError(RnnbenchError):
    """A user's backend that does not behave as the contract says (one line: which backend, what is wrong)."""


def build(name: str, spec: str, reference: nn.RNNBase, case: Case) -> BuiltBackend:
    where = f"custom backend {name!r} ({spec})"
    factory = resolve(name, spec, f"backend {name}")
    try:
        model = factory(reference, case)
    except (BackendUnavailable, NotImplementedError) as exc:
        raise BackendUnavailable(f"{name}: {_first_line(exc)}") from None
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        raise CustomBackendError(f"{where}: build(reference, case) raised {type(exc).__name__}: "
                                 f"{_first_line(exc)}") from None
    if not callable(model):
        raise CustomBackendError(f"{where}: build(reference, case) returned {_describe(model)}, not a module "
                                 "called like nn.LSTM")
    parameters = _reference_named_parameters(model, reference, where)
    module_file = getattr(sys.modules.get(spec.partition(":")[0]), "__file__", None)
    facts = {"implementation": f"the user's {type(model).__module__}.{type(model).__qualname__} from {spec}",
             "custom": {"factory": spec, "module_file": module_file}}
    return BuiltBackend(name=name, model=_CheckedCalls(model, case, where), parameters=parameters, facts=facts)


def _reference_named_parameters(model, reference: nn.RNNBase, where: str) -> dict[str, nn.Parameter]:
    """The model's parameters under the reference's names; a CustomBackendError when they are not those."""
    expected = [name for name, _ in reference.named_parameters()]
    found = dict(model.named_parameters()) if isinstance(model, nn.Module) else {}
    if set(found) == set(expected):
        return {name: found[name] for name in expected}
    for candidate in found:
        if candidate.endswith("." + expected[0]):
            prefix = candidate[: -len(expected[0])]
            if set(found) == {prefix + name for name in expected}:
                return {name: found[prefix + name] for name in expected}
    shown = ", ".join(sorted(found)[:4]) + (", ..." if len(found) > 4 else "") if found else "none"
    raise CustomBackendError(f"{where}: parity compares gradients by nn.{reference.mode}'s parameter names "
                             f"({', '.join(expected[:4])}{', ...' if len(expected) > 4 else ''}); the module's "
                             f"parameters are: {shown}")


class _CheckedCalls:
    """The user's model; its first call with and its first without autograd must return what nn.LSTM/nn.GRU
    return for this case."""

    def __init__(self, model, case: Case, where: str):
        self.model = model
        self.case = case
        self.where = where
        self.checked: set[bool] = set()

    def __call__(self, x):
        result = self.model(x)
        grad = torch.is_grad_enabled()
        if grad not in self.checked:
            problem = output_problem(result, self.case, isinstance(x, PackedSequence))
            if problem:
                raise CustomBackendError(f"{self.where}: model(x) {problem}")
            self.checked.add(grad)
        return result


def output_problem(result, case: Case, packed: bool = False) -> str | None:
    """Why ``result`` is not what nn.LSTM/nn.GRU return for ``case``, or None."""
    is_lstm = case.cell == "lstm"
    form = "(output, (h_n, c_n)) as nn.LSTM does" if is_lstm else "(output, h_n) as nn.GRU does"
    if not isinstance(result, tuple) or len(result) != 2:
        return f"must return {form}; it returned {_describe(result)}"
    output, state = result
    steps_batch = (case.batch, case.seq_len) if case.batch_first else (case.seq_len, case.batch)
    want = {"output": (*steps_batch, case.directions * case.output_size),
            "h_n": (case.num_layers * case.directions, case.batch, case.output_size),
            "c_n": (case.num_layers * case.directions, case.batch, case.hidden_size)}
    if packed:
        if not isinstance(output, PackedSequence):
            return f"got a PackedSequence and must return one as output; it returned {_describe(output)}"
    elif not isinstance(output, Tensor) or tuple(output.shape) != want["output"]:
        return f"must return {form} with output of shape {want['output']}; output is {_describe(output)}"
    states = state if is_lstm else (state,)
    if is_lstm and (not isinstance(state, tuple) or len(state) != 2):
        return f"must return {form}; its state is {_describe(state)}"
    for label, tensor in zip(("h_n", "c_n"), states):
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != want[label]:
            return f"must return {form} with {label} of shape {want[label]}; {label} is {_describe(tensor)}"
    return None


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
