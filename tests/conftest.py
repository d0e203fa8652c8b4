import gc

import pytest
import torch

from tests.helpers import short_machine_window as _short_machine_window


def pytest_collection_finish(session):
    # Every case the runner measures collects garbage three times, and each full collection walks the
    # million objects that importing torch and the test modules made: 0.1 s a time on the 2-core machine.
    # Frozen, they are left out of every later collection; what the tests create is collected as before.
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        # Under pytest-xdist (the README's `-n 2 --dist loadgroup`) the GPU tests share one worker: two at once on
        # one GPU would each see the other as a busy GPU and share its memory, clocks and energy counter.
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.xdist_group("gpu"))
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine (run scripts/gpu-check.sh on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(name="short_machine_window")
def short_machine_window_fixture():
    """tests.helpers.short_machine_window for one test."""
    with _short_machine_window():
        yield


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A command run in this process sets the suite's thread count (threads: 1) on the pytest process; the next
    test, on whichever xdist worker and in whichever order, starts from the process's own count."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
