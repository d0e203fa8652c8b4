"""How a run was asked for, as the results file records it (its ``options``): a typed, immutable record.

One record for every writer of a results file (``rnnbench run``, ``ab``, ``merge``) and every reader
(``--resume``, ``compare``, ``merge``, ``history``, the reports). ``to_dict`` writes the same JSON keys, in
the same order, as the files written before this record existed, so old files read and new files are the
same bytes::

    device, backends, filters          what was selected (``--resume`` repeats it)
    shard {index, count}               ``--shard I/N``
    devices [{device, CUDA_VISIBLE_DEVICES}], device_of_case {key: "cuda:1 (worker 1)"}   ``--devices``
    nvtx true                          ``--nvtx``
    rounds, round_orders, planned_order   a run in rounds (and every A/B)
    interleaved {session, side, blocks[, same_code_ok]}, interpreter   one side of an ``rnnbench ab``
    merged_from, merged_environment_differences   ``rnnbench merge``

Keys this rnnbench does not know are kept as they were (``extra``), after the known ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from harness.record.results import freeze, thaw
from harness.spec.shard import ShardSpec


@dataclass(frozen=True)
class WorkerDevice:
    """One ``--devices`` worker: the device as the user named it, what the worker opens, and how it is pinned."""

    requested: str  # as the user named it: "cuda:1", "cpu"
    device: str  # what the worker opens: "cuda:0" (pinned) or "cpu"
    visible: str | None  # the worker's CUDA_VISIBLE_DEVICES; None: inherited unchanged

    def environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        if self.visible is not None:
            environment["CUDA_VISIBLE_DEVICES"] = self.visible
        return environment

    def to_dict(self) -> dict:
        return {"device": self.requested, "CUDA_VISIBLE_DEVICES": self.visible}

    @classmethod
    def from_dict(cls, data: Mapping) -> "WorkerDevice":
        """The record as written; what the worker opens is decided again (``harness.execute.devices.parse_devices``)."""
        return cls(requested=str(data.get("device")), device=str(data.get("device")),
                   visible=data.get("CUDA_VISIBLE_DEVICES"))


@dataclass(frozen=True)
class AbSide:
    """One side of an ``rnnbench ab`` session: the two files of one session share ``session``."""

    session: str
    side: str  # "a", "b" (the calibration benchmark: more)
    blocks: int | None = None
    interpreter: str | None = None  # the interpreter command as given (--a / --b)
    same_code_ok: bool = False  # --same-code-ok: an A/A was asked for

    def interleaved_dict(self) -> dict:
        """The ``interleaved`` record of the file."""
        record = {"session": self.session, "side": self.side, "blocks": self.blocks}
        if self.same_code_ok:
            record["same_code_ok"] = True
        return record


@dataclass(frozen=True)
class RunOptions:
    device: str | None = None
    backends: tuple[str, ...] | None = None
    filters: tuple[str, ...] | None = None
    shard: ShardSpec | None = None
    devices: tuple[WorkerDevice, ...] | None = None
    device_of_case: Mapping[str, str] | None = None
    nvtx: bool = False
    rounds: int | None = None
    round_orders: tuple[tuple[str, ...], ...] | None = None
    planned_order: tuple[str, ...] | None = None
    ab_side: AbSide | None = None  # one side of an A/B: the one way an A/B's file is recognised
    merged_from: tuple[Mapping, ...] | None = None
    merged_environment_differences: tuple[Mapping, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this rnnbench does not know, as written
    # the order of the keys of the record this was read from: written back in that order
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self):
        for name in ("device_of_case", "merged_from", "merged_environment_differences", "extra"):
            object.__setattr__(self, name, freeze(getattr(self, name)))
        for name in ("backends", "filters", "planned_order", "devices"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.round_orders is not None:
            object.__setattr__(self, "round_orders", tuple(tuple(order) for order in self.round_orders))

    @property
    def round_count(self) -> int:
        """How many rounds the run asked for (1: one round, in one process)."""
        return self.rounds or 1

    def with_device_of_case(self, key: str, where: str) -> "RunOptions":
        return replace(self, device_of_case={**(self.device_of_case or {}), key: where})

    def to_dict(self) -> dict:
        document: dict[str, Any] = {}
        if self.device is not None or self.backends is not None or self.filters is not None:
            document["device"] = self.device
        for name in ("backends", "filters"):
            if getattr(self, name) is not None:
                document[name] = list(getattr(self, name))
        if self.shard is not None:
            document["shard"] = self.shard.to_dict()
        if self.devices is not None:
            document["devices"] = [worker.to_dict() for worker in self.devices]
            document["device_of_case"] = thaw(self.device_of_case or {})
        elif self.device_of_case is not None:
            document["device_of_case"] = thaw(self.device_of_case)
        if self.nvtx:
            document["nvtx"] = True
        if self.rounds is not None:
            document["rounds"] = self.rounds
        if self.round_orders is not None:
            document["round_orders"] = [list(order) for order in self.round_orders]
        if self.planned_order is not None:
            document["planned_order"] = list(self.planned_order)
        if self.ab_side is not None:
            document["interleaved"] = self.ab_side.interleaved_dict()
            if self.ab_side.interpreter is not None:
                document["interpreter"] = self.ab_side.interpreter
        for name in ("merged_from", "merged_environment_differences"):
            if getattr(self, name) is not None:
                document[name] = thaw(getattr(self, name))
        document.update(thaw(self.extra))
        if self.key_order:
            position = {key: index for index, key in enumerate(self.key_order)}
            document = dict(sorted(document.items(), key=lambda item: position.get(item[0], len(position))))
        return document

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "RunOptions":
        """Whatever a results file holds: a field that is not what this rnnbench writes is kept in ``extra``
        untouched, never raised about (the store validates what readers rely on)."""
        data = dict(data or {})
        key_order = tuple(data)
        extra = {}
        fields: dict[str, Any] = {}

        def take(name, check, convert=lambda value: value, target=None):
            if name not in data:
                return
            value = data.pop(name)
            try:
                ok = check(value)
            except (TypeError, ValueError, AttributeError):
                ok = False
            if ok:
                fields[target or name] = convert(value)
            else:
                extra[name] = value

        texts = lambda value: isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)  # noqa: E731
        take("device", lambda value: value is None or isinstance(value, str))
        take("backends", texts)
        take("filters", texts)
        take("shard", lambda value: isinstance(value, Mapping) and all(
            isinstance(value.get(k), int) and not isinstance(value.get(k), bool) for k in ("index", "count")),
             lambda value: ShardSpec(value["index"], value["count"]))
        take("devices", lambda value: isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value),
             lambda value: tuple(WorkerDevice.from_dict(v) for v in value))
        take("device_of_case", lambda value: isinstance(value, Mapping))
        take("nvtx", lambda value: value is True)
        take("rounds", lambda value: isinstance(value, int) and not isinstance(value, bool))
        take("round_orders", lambda value: isinstance(value, (list, tuple)) and all(texts(v) for v in value))
        take("planned_order", texts)
        take("merged_from", lambda value: isinstance(value, (list, tuple)))
        take("merged_environment_differences", lambda value: isinstance(value, (list, tuple)))
        interleaved = data.pop("interleaved", None)
        has_interpreter = "interpreter" in data
        interpreter = data.pop("interpreter", None)
        if isinstance(interleaved, Mapping) and not (has_interpreter and not isinstance(interpreter, str)):
            fields["ab_side"] = AbSide(session=interleaved.get("session"), side=interleaved.get("side"),
                                       blocks=interleaved.get("blocks"), interpreter=interpreter,
                                       same_code_ok=interleaved.get("same_code_ok") is True)
            if set(interleaved) - {"session", "side", "blocks", "same_code_ok"} or (
                    "same_code_ok" in interleaved and interleaved["same_code_ok"] is not True):
                fields.pop("ab_side")  # not what this rnnbench writes: kept as it was
                extra["interleaved"] = interleaved
                if has_interpreter:
                    extra["interpreter"] = interpreter
        else:
            if interleaved is not None:
                extra["interleaved"] = interleaved
            if has_interpreter:
                extra["interpreter"] = interpreter
        extra.update(data)
        return cls(**fields, extra=extra, key_order=key_order)
