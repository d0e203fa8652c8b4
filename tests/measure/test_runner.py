import torch

from harness.measure.backends import build_backend
from harness.errors import BackendUnavailable
from harness.measure.runner import make_inputs, make_reference, run_case
from tests.helpers import cpu_settings, tiny_case


def test_every_backend_of_a_configuration_gets_the_same_weights_and_inputs():
    settings = cpu_settings()
    a, b = tiny_case(backend="cudnn"), tiny_case(backend="eager")
    for pa, pb in zip(make_reference(a, settings).parameters(), make_reference(b, settings).parameters()):
        assert torch.equal(pa, pb)
    assert all(torch.equal(x, y) for x, y in zip(make_inputs(a, settings), make_inputs(b, settings)))
    other = tiny_case(hidden_size=7)
    assert not torch.equal(make_inputs(a, settings)[1][..., :6], make_inputs(other, settings)[1][..., :6])


def test_ok_result_carries_samples_statistics_and_derived_figures():
    result = run_case(tiny_case(), cpu_settings())
    assert result.ok
    assert 3 <= len(result.samples_ms["step"]) <= 5
    stats = result.stats["step"]
    assert stats.min_ms <= stats.median_ms <= stats.max_ms
    assert result.derived["step"]["sequences_per_s"] == 3 / (stats.median_ms / 1e3)
    assert result.first_iteration_ms["step"] > 0
    assert result.backend["kernel_library"].startswith(("oneDNN", "ATen"))


def test_unavailable_backend_is_skipped_with_its_reason():
    def unavailable(name, reference):
        raise BackendUnavailable("TorchScript is not available in torch 9.9")

    result = run_case(tiny_case(backend="torchscript"), cpu_settings(), build=unavailable)
    assert result.status == "skipped"
    assert result.reason == "TorchScript is not available in torch 9.9"


def test_a_crashing_backend_fails_its_case_only():
    def crashing(name, reference):
        raise RuntimeError("kernel exploded\nsecond line of detail")

    result = run_case(tiny_case(backend="eager"), cpu_settings(), build=crashing)
    assert result.status == "failed"
    assert result.reason == "RuntimeError: kernel exploded"


def test_out_of_memory_is_reported_as_such():
    def oom(name, reference):
        built = build_backend(name, reference)

        def model(x):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        built.model = model
        return built

    result = run_case(tiny_case(backend="eager"), cpu_settings(), build=oom)
    assert result.status == "failed"
    assert result.reason.startswith("out of memory: CUDA out of memory")
