"""Window slicing and summaries: pure functions over synthetic samples (no NVML, no process)."""

import pytest

from harness.measure.telemetry.window import (WindowMeasurement, energy_delta, slice_window, summarize_window)


def samples(begin=100.0, end=102.0, period=0.02, **overrides):
    """Samples every ``period`` s over [begin, end] and one just after end, as the sampler takes them;
    energy rises at 300 W."""
    out = []
    n = int(round((end - begin) / period))
    for i in range(n + 2):
        t = begin + i * period if i <= n else end + 0.001
        sample = {"t": t, "memory_used_bytes": 1000 + i, "memory_total_bytes": 10_000,
                  "gpu_utilization_pct": 90.0, "memory_utilization_pct": 40.0, "power_mw": 300_000.0,
                  "energy_mj": 1_000_000 + int((t - begin) * 300_000), "sm_clock_mhz": 1980.0 - (i % 3),
                  "mem_clock_mhz": 2619.0, "temperature_c": 60.0 + (i % 5), "clock_event_reasons": 0}
        for key, value in overrides.items():
            if callable(value):
                value = value(i, t)
            if value is None:
                sample.pop(key, None)
            else:
                sample[key] = value
        out.append(sample)
    return out


def test_slice_keeps_samples_inside_the_window_in_time_order():
    data = [{"t": t} for t in (5.0, 1.0, 2.0, 3.0, 4.0)]
    assert [s["t"] for s in slice_window(data, 2.0, 4.0)] == [2.0, 3.0, 4.0]
    assert slice_window(data, 10.0, 11.0) == []


def test_energy_delta_brackets_the_window_with_the_first_reading_after_its_end():
    data = [{"t": 0.5, "energy_mj": 0}, {"t": 1.0, "energy_mj": 1000}, {"t": 1.5, "energy_mj": 1500},
            {"t": 2.01, "energy_mj": 2010}, {"t": 3.0, "energy_mj": 9999}]
    joules, span, why = energy_delta(data, 1.0, 2.0)
    assert why is None
    assert joules == pytest.approx(1.010)  # 2010 - 1000 mJ, not the reading before begin nor the late one
    assert span == pytest.approx(1.01)


def test_energy_delta_without_a_reading_after_the_end_uses_the_last_inside():
    data = [{"t": 1.0, "energy_mj": 1000}, {"t": 1.9, "energy_mj": 1900}]
    joules, span, _ = energy_delta(data, 1.0, 2.0)
    assert joules == pytest.approx(0.9) and span == pytest.approx(0.9)


def test_energy_counter_going_backwards_is_absent_with_a_reason():
    data = [{"t": 1.0, "energy_mj": 5_000_000}, {"t": 2.0, "energy_mj": 100}]
    joules, span, why = energy_delta(data, 1.0, 2.0)
    assert joules is None and span is None
    assert "went backwards" in why


def test_no_energy_readings_is_absent_with_a_reason():
    assert energy_delta([{"t": 1.0}], 0.0, 2.0)[2] == "no energy counter reading in the window"
    assert "only one" in energy_delta([{"t": 1.0, "energy_mj": 5}], 0.0, 2.0)[2]


def test_summary_of_every_metric():
    data = samples(begin=100.0, end=102.0)
    window = summarize_window(data, 100.0, 102.0, region="step", period_s=0.02, iterations=200, batch=16,
                              memory_api="v2")
    inside = [s for s in data if s["t"] <= 102.0]
    assert window.region == "step"
    assert window.duration_s == pytest.approx(2.0)
    assert window.samples == len(inside) == 101
    assert window.memory_used_peak_bytes == 1100
    assert window.memory_used_mean_bytes == pytest.approx(1050)
    assert window.memory_total_bytes == 10_000 and window.memory_api == "v2"
    assert window.gpu_utilization_mean_pct == 90.0 and window.memory_utilization_mean_pct == 40.0
    assert window.power_mean_w == pytest.approx(300.0) and window.power_max_w == pytest.approx(300.0)
    assert window.energy_j == pytest.approx(300 * 2.001, rel=1e-3)
    assert window.energy_mean_power_w == pytest.approx(300.0, rel=1e-3)
    assert window.energy_per_iteration_j == pytest.approx(window.energy_j / 200)
    assert window.energy_per_sequence_j == pytest.approx(window.energy_j / 200 / 16)
    assert window.sm_clock_min_mhz == 1978.0
    assert window.mem_clock_min_mhz == 2619.0
    assert window.temperature_max_c == 64.0
    assert window.throttled == {"thermal": False, "power": False, "any": False, "reasons": []}
    assert not window.low_confidence and window.low_confidence_why == ()


def test_throttle_reasons_are_ored_over_the_window_and_classified():
    # one sample power-capped (0x4), one thermally slowed (0x40); idle (0x1) is not a throttle
    data = samples(clock_event_reasons=lambda i, t: {10: 0x4, 20: 0x40}.get(i, 0x1))
    window = summarize_window(data, 100.0, 102.0, region="step", period_s=0.02)
    assert window.throttled["thermal"] and window.throttled["power"] and window.throttled["any"]
    assert window.throttled["reasons"] == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]
    idle = summarize_window(samples(clock_event_reasons=0x1), 100.0, 102.0, region="step", period_s=0.02)
    assert idle.throttled == {"thermal": False, "power": False, "any": False, "reasons": ["gpu_idle"]}
    hw = summarize_window(samples(clock_event_reasons=0x8), 100.0, 102.0, region="step", period_s=0.02)
    assert hw.throttled["any"] and not hw.throttled["thermal"] and hw.throttled["reasons"] == ["hw_slowdown"]


def test_short_window_is_low_confidence_never_silently_precise():
    data = samples(begin=100.0, end=100.1)
    window = summarize_window(data, 100.0, 100.1, region="forward", period_s=0.02, iterations=10, batch=1)
    assert window.low_confidence
    why = " ".join(window.low_confidence_why)
    assert "utilization sample period" in why and "energy spans" in why
    assert window.energy_j is not None  # still reported, flagged


def test_counter_that_did_not_move_and_too_few_samples_are_flagged():
    data = samples(energy_mj=7, period=1.0)
    window = summarize_window(data, 100.0, 102.0, region="step", period_s=1.0)
    assert window.energy_j == 0
    assert any("did not move" in w for w in window.low_confidence_why)
    assert any("sample(s) in the window" in w for w in window.low_confidence_why)


def test_missing_metrics_are_absent_not_zero():
    data = samples(power_mw=None, energy_mj=None, gpu_utilization_pct=None, memory_utilization_pct=None)
    window = summarize_window(data, 100.0, 102.0, region="step", period_s=0.02, iterations=5, batch=2,
                              absent={"power": "Not Supported (NVML error 3)"})
    document = window.to_dict()
    for key in ("power_mean_w", "energy_j", "energy_per_sequence_j", "gpu_utilization_mean_pct"):
        assert key not in document
    assert document["absent"]["power"] == "Not Supported (NVML error 3)"
    assert document["absent"]["energy"] == "no energy counter reading in the window"
    assert document["memory_used_peak_bytes"] == 1100


def test_measurement_is_immutable_and_serialises():
    window = summarize_window(samples(), 100.0, 102.0, region="step", period_s=0.02, iterations=4, batch=2)
    with pytest.raises(AttributeError):
        window.energy_j = 1.0
    document = window.to_dict()
    assert document["energy_per_sequence_j"] == pytest.approx(window.energy_j / 8)
    assert document["low_confidence"] is False and document["low_confidence_why"] == []
    assert "absent" not in document  # nothing absent: no empty mapping
    assert isinstance(WindowMeasurement(region="x", duration_s=1, samples=0, period_ms=20).to_dict(), dict)
