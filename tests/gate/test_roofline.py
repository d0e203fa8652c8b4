"""The measured peak, % of measured peak per case, the roofline chart and table, DeepBench's convention."""

from dataclasses import replace

import pytest
import torch

from harness.spec.flops import region_bytes, region_flops
from harness.measure.peak import measure_peak
from harness.report.render import plot, roofline_chart, write_report
from harness.report.text import summary_table
from harness.gate.roofline import Peak, percent_of_peak, roofline_points
from harness.errors import ReportError
from tests.report_builders import ENVIRONMENT, make_run, ok_result
from tests.helpers import make_case

PEAK = {"device": "cpu", "label": "CPU", "dtype": "float32", "matmul_tflops": 0.1, "bandwidth_gb_per_s": 20.0,
        "matmul": "torch.mm 512^3", "copy": "32 MiB"}


def _run(peak=PEAK):
    cases = [ok_result(make_case("cudnn"), 2.0), ok_result(make_case("eager"), 8.0),
             ok_result(replace(make_case("cudnn"), lengths="packed", length_min_fraction=0.5), 1.5)]
    run = make_run(cases)
    return replace(run, environment={**ENVIRONMENT, **({"measured_peak": peak} if peak else {})})


def test_cpu_peak_is_measured_and_labelled():
    peak = measure_peak(torch.device("cpu"), "float32")
    assert peak["label"] == "CPU" and peak["dtype"] == "float32"
    assert 1e-4 < peak["matmul_tflops"] < 100 and 0.1 < peak["bandwidth_gb_per_s"] < 10_000


def test_percent_of_peak_follows_the_flop_model_and_the_median():
    run = _run()
    result = run.cases[0]
    expected = region_flops(result.case, "step") / 2.0e-3 / 1e12 / 0.1 * 100
    assert percent_of_peak(run, result) == pytest.approx(expected)
    assert percent_of_peak(_run(peak=None), result) is None  # files from before the measurement
    assert percent_of_peak(_run(peak={**PEAK, "dtype": "bfloat16"}), result) is None  # another dtype's peak


def test_roofline_points_give_both_conventions_and_intensity():
    points = roofline_points(_run())
    assert len(points) == 3
    for point in points:
        case = point.result.case
        assert point.deepbench_tflops < point.achieved_tflops
        assert point.intensity_flops_per_byte == pytest.approx(region_flops(case, "step") / region_bytes(case, "step"))
    assert Peak.of(_run().environment).ridge_intensity == pytest.approx(0.1e12 / 20e9)


def test_roofline_chart_table_and_summary_note(tmp_path):
    run = _run()
    chart = roofline_chart(run, "x")
    assert chart.name == "x-roofline.png" and chart.png.startswith(b"\x89PNG")
    assert roofline_chart(_run(peak=None), "x") is None
    with pytest.raises(ReportError, match="no roofline"):
        plot([_run(peak=None)], chart="roofline")
    written = {path.name: path for path in write_report([run], tmp_path)}
    summary = written["summary.md"].read_text()
    assert "TFLOP/s (DeepBench)" in summary and "-packed-u0.5" in summary
    assert "% of measured peak" in summary_table(run)


@pytest.mark.gpu
def test_gpu_peak_is_measured_in_the_suite_dtype():
    peak = measure_peak(torch.device("cuda"), "bfloat16")
    assert peak["label"] == "GPU" and "8192" in peak["matmul"]
    assert peak["matmul_tflops"] > 10 and peak["bandwidth_gb_per_s"] > 100  # any datacenter GPU of this decade
