"""Record the kernel names of real CUDA traces of small nn.LSTM / nn.GRU cases (cuDNN, gate-level eager), with
the class harness/measure/kernel_classes.py gives each, to refresh tests/data/kernel_names.json from a GPU.

    PYTHONPATH=. python scripts/record-kernel-names.py OUT.json

Each case is profiled as ``rnnbench profile`` does (harness.measure.profiling). The file lists every distinct kernel,
copy and memset with its trace category, the class the classifier gave, and where it was seen (case, GPU,
torch, cuDNN). A person checks the classes before adding names to the test data (the classifier must not
grade itself).
"""

from __future__ import annotations

import json
import sys

import torch

from harness.measure.activity import complete_events
from harness.spec.cases import Case
from harness.measure.kernel_classes import classify_kernel
from harness.measure.profiling import ProfileSettings, profile_case
from harness.measure.runner import RunSettings
from harness.spec.suite import Timing

CASES = [  # (cell, backend, dtype, batch, seq_len, input_size, hidden_size): standard, small-H and persistent
    ("lstm", "cudnn", "float32", 16, 20, 256, 256),
    ("lstm", "cudnn", "float32", 16, 20, 64, 64),
    ("lstm", "cudnn", "float16", 64, 50, 512, 512),
    ("gru", "cudnn", "float32", 16, 20, 256, 256),
    ("lstm", "eager", "float32", 8, 10, 64, 64),
]


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "kernel-names.json"
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: nothing to record")
    device = torch.device("cuda")
    settings = RunSettings(device=device, timing=Timing(warmup_iters=2))
    seen: dict = {}
    for cell, backend, dtype, batch, seq_len, input_size, hidden_size in CASES:
        case = Case(cell=cell, backend=backend, mode="forward_backward", batch=batch, seq_len=seq_len,
                    input_size=input_size, hidden_size=hidden_size, num_layers=1, bidirectional=False, dtype=dtype,
                    device_type="cuda")
        trace = f"{out}.{case.cell}-{case.backend}-{dtype}-H{hidden_size}.trace.json"
        record = profile_case(case, settings, ProfileSettings(steps=2), trace)
        if record["status"] != "ok":
            print(f"{case.key}: {record['status']}: {record['reason']}")
            continue
        with open(trace, encoding="utf-8") as handle:
            events = complete_events(json.load(handle)["traceEvents"])
        for event in events:
            if event.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
                entry = seen.setdefault(event["name"], {"name": event["name"], "category": event["cat"],
                                                        "classifier_says": classify_kernel(event["name"], event["cat"]).name,
                                                        "seen_in": []})
                if case.key not in entry["seen_in"]:
                    entry["seen_in"].append(case.key)
        print(f"{case.key}: predicted {record['cudnn_algorithm'].get('forward')}, kernels show "
              f"{record['profile'].get('cudnn_algorithm_seen')}")
    document = {"source": {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()},
                "kernels": sorted(seen.values(), key=lambda e: e["name"])}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    print(f"{len(seen)} distinct names -> {out}")


if __name__ == "__main__":
    main()
