"""rnnbench history: runs kept in SQLite per environment fingerprint, trend charts, and asv-style step detection
that fails (exit 1) when the latest step of a series is a regression. Built from the real H100 results files."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from harness.record.history import History, HistoryError, pack_samples, unpack_samples
from harness.gate.step_detect import fit_segments, significant_steps
from harness.record.results_store import read_results
from tests.helpers import cli

H100 = Path("/work/shared/gpu-runs/h100-2026-11-27")
SLOWED = "lstm/cudnn/forward_backward/B64-T100-I512-H512-L1/float32/cuda"
pytestmark = pytest.mark.skipif(not H100.is_dir(), reason="the H100 results are not on this machine")


def nightly(tmp_path: Path, index: int, factor_of: dict[str, float], rng) -> Path:
    """A run of reg-a.json or reg-b.json as if made on night ``index``: each case's samples scaled by a
    night-to-night jitter of about 1 % (and ``factor_of`` its key), its times and commit that night's."""
    document = json.loads((H100 / ("reg-a.json" if index % 2 else "reg-b.json")).read_text())
    stamp = f"2026-11-{index + 1:02d}T03:00:00+00:00"
    document["started_utc"] = document["environment"]["collected_utc"] = stamp
    document["environment"]["commit"]["id"] = f"{index:02d}" + "c0ffee" * 6
    for case in document["cases"]:
        case["started_utc"] = stamp
        factor = factor_of.get(case["key"], 1.0) * float(np.exp(rng.normal(0, 0.01)))
        case["samples_ms"] = {region: [s * factor for s in samples] for region, samples in case["samples_ms"].items()}
    path = tmp_path / f"night-{index:02d}.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def slowed_history(tmp_path_factory):
    """12 nights of the regression suite; from night 8 on, SLOWED is 20 % slower."""
    folder = tmp_path_factory.mktemp("history")
    rng = np.random.default_rng(7)
    nights = [nightly(folder, index, {SLOWED: 1.2} if index >= 8 else {}, rng) for index in range(12)]
    database = folder / "history.sqlite"
    done = cli("history", "add", *nights, "--db", database)
    assert done.exit_code == 0, done.output
    return folder, database, nights


def test_add_keeps_one_row_per_run_and_case_with_every_sample_exact(slowed_history):
    folder, database, nights = slowed_history
    original = read_results(nights[0])
    with History(database, create=False) as store:
        assert store.run_count() == 12
        (series,) = store.series(SLOWED)
        assert len(series.points) == 12 and series.facts["GPU model"] == "NVIDIA H100 80GB HBM3"
        assert series.facts["torch"] == "2.11.0+cu130" and series.facts["math precision"] == "fp32"
        case = next(c for c in original.cases if c.key == SLOWED)
        assert store.samples(series.points[0].run_id, SLOWED) == dict(case.samples_ms)
        assert series.points[0].median_ms == pytest.approx(case.median_ms())
    row = sqlite3.connect(database).execute("SELECT commit_id, gpu_driver, cudnn FROM runs WHERE id = 1").fetchone()
    assert row == ("00" + "c0ffee" * 6, "580.159.04", "91900")


def test_samples_are_kept_compactly():
    case = read_results(H100 / "small-cuda.json").cases[0]
    layout, blob = pack_samples(case)
    raw = sum(len(s) for s in case.samples_ms.values()) * 8
    assert len(blob) <= raw and unpack_samples(layout, blob) == dict(case.samples_ms)


def test_regressions_names_the_step_and_exits_1(slowed_history):
    _, database, _ = slowed_history
    done = cli("history", "regressions", "--db", database)
    assert done.exit_code == 1, done.output
    assert f"latest step a regression in 1: {SLOWED}" in done.output
    assert "REGRESSION: +2" in done.output and "between run 8" in done.output and "and run 9" in done.output
    assert cli("history", "regressions", "--db", database, "--case", "gru/*").exit_code == 0
    assert cli("history", "regressions", "--db", database, "--threshold", "30%").exit_code == 0


def test_show_prints_the_series_and_draws_a_chart_per_case(slowed_history, tmp_path):
    _, database, _ = slowed_history
    done = cli("history", "show", "--db", database, "--case", "lstm/cudnn/forward_backward/*", "-o", tmp_path)
    assert done.exit_code == 0, done.output
    charts = sorted(tmp_path.glob("*.png"))
    assert len(charts) == 2 and all(chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for chart in charts)
    assert SLOWED in done.output and "REGRESSION" in done.output and "c0ffee" not in done.output.split()
    backward = cli("history", "show", "--db", database, "--case", SLOWED, "--metric", "backward", "--no-charts")
    assert backward.exit_code == 0 and "[backward;" in backward.output


def test_a_file_already_added_is_refused_and_nothing_is_added(slowed_history, tmp_path):
    _, database, nights = slowed_history
    fresh = nightly(tmp_path, 30, {}, np.random.default_rng(1))
    before = database.read_bytes()
    done = cli("history", "add", fresh, nights[3], "--db", database)
    assert done.exit_code == 2 and "already in the history" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    with History(database, create=False) as store:
        assert store.run_count() == 12  # the fresh file before it was not added either
    assert database.read_bytes() == before


def test_each_environment_is_its_own_series(tmp_path):
    rng = np.random.default_rng(3)
    nights = [nightly(tmp_path, index, {}, rng) for index in range(4)]
    document = json.loads(nights[3].read_text())
    document["environment"]["torch"]["version"] = "2.12.0+cu130"
    document["started_utc"] = document["environment"]["collected_utc"] = "2026-12-01T00:00:00+00:00"
    for case in document["cases"]:
        case["started_utc"] = "2026-12-01T00:00:00+00:00"
        case["samples_ms"] = {r: [2 * s for s in samples] for r, samples in case["samples_ms"].items()}
    upgraded = tmp_path / "upgraded.json"
    upgraded.write_text(json.dumps(document))
    database = tmp_path / "h.sqlite"
    assert cli("history", "add", *nights, upgraded, "--db", database).exit_code == 0
    with History(database, create=False) as store:
        series = store.series(SLOWED)
    assert sorted(len(s.points) for s in series) == [1, 4]  # a torch upgrade twice as slow is not a step
    assert cli("history", "regressions", "--db", database).exit_code == 0


def test_a_corrupt_database_is_one_line_and_left_as_it_was(tmp_path):
    database = tmp_path / "h.sqlite"
    content = b"garbage, not a database" * 100
    database.write_bytes(content)
    for command in (("history", "add", H100 / "reg-a.json"), ("history", "show"), ("history", "regressions")):
        done = cli(*command, "--db", database)
        assert done.exit_code == 2, done.output
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert database.read_bytes() == content


def test_another_sqlite_database_is_not_taken_for_a_history(tmp_path):
    database = tmp_path / "other.sqlite"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    done = cli("history", "add", H100 / "reg-a.json", "--db", database)
    assert done.exit_code == 2 and "not an rnnbench history" in done.stderr
    with pytest.raises(HistoryError, match="no history database"):
        History(tmp_path / "missing.sqlite", create=False)


def two_shards(tmp_path: Path, change_second) -> list[Path]:
    """small-cuda.json cut into 2 shard files; ``change_second(document)`` alters the second."""
    document = json.loads((H100 / "small-cuda.json").read_text())
    paths = []
    for index in range(2):
        part = copy.deepcopy(document)
        part["cases"] = part["cases"][index::2]
        part["options"]["shard"] = {"index": index, "count": 2}
        if index:
            change_second(part)
        paths.append(tmp_path / f"h{index}.json")
        paths[-1].write_text(json.dumps(part))
    return paths


def test_a_merge_of_mixed_environments_is_refused(tmp_path):
    halves = two_shards(tmp_path, lambda part: part["environment"]["gpu"].update(driver="590.0"))
    assert cli("merge", *halves, "-o", tmp_path / "m.json", "--allow-env-mismatch").exit_code == 0
    done = cli("history", "add", tmp_path / "m.json", "--db", tmp_path / "h.sqlite")
    assert done.exit_code == 2 and "different environments" in done.stderr


def test_a_merged_file_is_refused_after_one_of_its_shards(tmp_path):
    halves = two_shards(tmp_path, lambda part: part["environment"]["machine"].update(node="another-runner"))
    assert cli("merge", *halves, "-o", tmp_path / "m.json").exit_code == 0
    database = tmp_path / "h.sqlite"
    assert cli("history", "add", halves[1], "--db", database).exit_code == 0
    done = cli("history", "add", tmp_path / "m.json", "--db", database)
    assert done.exit_code == 2 and "already in the history" in done.stderr


def test_step_detection_finds_a_step_and_leaves_noise_alone():
    rng = np.random.default_rng(0)
    flat = list(10 * np.exp(rng.normal(0, 0.02, 40)))
    assert significant_steps(fit_segments(flat), 0.05) == []
    stepped = flat[:25] + [1.15 * v for v in flat[25:]]
    (step,) = significant_steps(fit_segments(stepped), 0.05)
    assert step.index == 25 and step.regression and step.change == pytest.approx(0.15, abs=0.03)
    assert significant_steps(fit_segments(stepped), 0.20) == []  # below the threshold
    improved = stepped + [v / 1.15 for v in flat[:15]]
    steps = significant_steps(fit_segments(improved), 0.05)
    assert [s.regression for s in steps] == [True, False]
    one_outlier = flat[:20] + [30.0] + flat[20:]
    assert significant_steps(fit_segments(one_outlier), 0.05) == []
