"""One batch as a user feeds it: layout, variable lengths (padded or packed), and the call around the model.

Fixed-length cases run ``model(x)`` as before. Variable-length cases (``lengths: padded | packed``) get
per-sequence lengths (:attr:`harness.spec.cases.Case.sequence_lengths`), inputs and targets that are zero past
each sequence's end, and a call that a user of such batches writes:

- padded: the whole batch runs to the longest sequence, and the output is multiplied by the mask of real
  tokens (what a masked loss does), so padding adds nothing to the loss or the gradients;
- packed: ``pack_padded_sequence`` (lengths on the CPU, ``enforce_sorted=False``), the model, then
  ``pad_packed_sequence`` back to the padded length. Packing and unpacking are in the timed forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.spec.cases import Case
from harness.spec.dtypes import torch_dtype


@dataclass(frozen=True)
class Batch:
    x: Tensor       # (T, B, I) or (B, T, I)
    target: Tensor  # shaped like the output
    mask: Tensor | None  # 1 for real tokens, 0 for padding, broadcastable to the output; None: fixed lengths


def make_batch(case: Case, seed: int, device: torch.device) -> Batch:
    """Input and an MSE target shaped like the output, seeded; the same values in both layouts."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(case.seq_len, case.batch, case.input_size, generator=generator)
    target = torch.randn(case.seq_len, case.batch, case.directions * case.output_size, generator=generator)
    mask = None
    if case.varlen:
        lengths = torch.tensor(case.sequence_lengths)
        mask = (torch.arange(case.seq_len)[:, None] < lengths[None, :]).unsqueeze(2)  # (T, B, 1)
        x, target = x * mask, target * mask
    if case.batch_first:
        x, target = x.transpose(0, 1).contiguous(), target.transpose(0, 1).contiguous()
        mask = mask.transpose(0, 1).contiguous() if mask is not None else None
    dtype = torch_dtype(case.dtype)
    return Batch(x=x.to(device, dtype), target=target.to(device, dtype),
                 mask=mask.to(device, dtype) if mask is not None else None)


class VariableLengthCall:
    """``model`` called on a variable-length batch as a user does it (padded and masked, or packed)."""

    def __init__(self, model, case: Case, mask: Tensor):
        self.model = model
        self.packed = case.lengths == "packed"
        self.batch_first = case.batch_first
        self.total_length = case.seq_len
        self.lengths = torch.tensor(case.sequence_lengths, dtype=torch.int64)  # on the CPU, as pack wants
        self.mask = mask

    def __call__(self, x: Tensor):
        if not self.packed:
            output, state = self.model(x)
            return output * self.mask, state
        packed = pack_padded_sequence(x, self.lengths, batch_first=self.batch_first, enforce_sorted=False)
        output, state = self.model(packed)
        output, _ = pad_packed_sequence(output, batch_first=self.batch_first, total_length=self.total_length)
        return output, state


def as_called(model, case: Case, batch: Batch):
    """The model as the case calls it: itself for fixed lengths, wrapped for variable lengths."""
    return model if batch.mask is None else VariableLengthCall(model, case, batch.mask)
