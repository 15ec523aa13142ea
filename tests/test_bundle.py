"""The result bundle: manifest, RO-Crate, verification against tampering, determinism."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign import io
from brainalign.bundle import RUN_RECORD, read_manifest, validate_crate, verify_bundle, write_crate, write_manifest
from brainalign.bundle.record import collect_run_record, devices_used, relative_command
from brainalign.bundle.steps import dataset_description, drop_job_times, group_mean_map, scrub_paths, stable_rules

from .conftest import REPO, snakemake


@pytest.fixture(scope="module")
def extraction_log(tmp_path_factory) -> Path:
    """An extraction job's log, through the job's log handler and the loader's own logger.

    (Loading a real tiny model here costs 10-40 s of torch imports; the slow demo test
    checks the line that features.loading.load_model really writes.)
    """
    import logging

    from brainalign.logs import log_to_file

    log = tmp_path_factory.mktemp("logs") / "model-clip_cond-joint_task-word_events.log"
    with log_to_file(log):
        logging.getLogger("brainalign.features.loading").info(
            "model %s loaded: device %s dtype %s", "clip", "cpu", "float32")
    return log


def _run_record(logs: list[Path]) -> dict:
    environ = {"BRAINALIGN_RUN_START": "2026-01-01T00:00:00+00:00",
               "BRAINALIGN_COMMAND": "/opt/venv/bin/snakemake --profile profiles/default --cores 2"}
    models = {"clip": {"device": "cpu", "dtype": "bfloat16"}, "bert": {"device": "auto", "dtype": "float32"}}
    return collect_run_record(models, logs, environ=environ)


def test_run_record_has_the_device_and_dtype_used(extraction_log):
    assert devices_used([extraction_log]) == {"clip": {"device": "cpu", "dtype": "float32"}}
    devices = _run_record([extraction_log])["devices"]
    assert devices["clip"] == {"device": "cpu", "dtype": "float32", "requested": "cpu bfloat16"}
    assert devices["bert"] == {"device": "not loaded", "dtype": "not loaded", "requested": "auto float32"}


def _build(root: Path, logs: list[Path]) -> Path:
    """A small bundle written with the real writers (Parquet, JSON, NIfTI, the Snakefile)."""
    io.write_table(pd.DataFrame({"roi": ["visual", "language"], "mean_r": [0.31, 0.12]}), root / "tables/encoding_group.parquet")
    io.write_json(dataset_description({"dataset": {"root": "results/demo/dataset"}}), root / "dataset_description.json")
    io.save_nifti(nib.Nifti1Image(np.arange(7 * 8 * 9, dtype=np.float32).reshape(7, 8, 9), np.eye(4)),
                  root / "maps/sub-01/sub-01_stat-r_statmap.nii.gz")
    (root / "workflow").mkdir()
    shutil.copyfile(REPO / "Snakefile", root / "workflow/Snakefile")
    (root / "figures").mkdir()
    (root / "figures" / ".snakemake_timestamp").write_text("")
    write_manifest(root)
    write_crate(root, version="0.1.0", inputs={"stimuli:concepts.tsv": "0" * 64}, run=_run_record(logs))
    return root


@pytest.fixture(scope="module")
def good(tmp_path_factory, extraction_log) -> Path:
    return _build(tmp_path_factory.mktemp("bundle") / "bundle", [extraction_log])


@pytest.fixture()
def bundle(good, tmp_path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "bundle"))


def test_manifest_lists_every_file_and_sha256sums_agrees(good):
    manifest = read_manifest(good)
    assert list(manifest["path"]) == ["dataset_description.json", "maps/sub-01/sub-01_stat-r_statmap.nii.gz",
                                      "tables/encoding_group.parquet", "workflow/Snakefile"]
    assert not list(good.rglob(".snakemake_timestamp"))
    sums = (good / "SHA256SUMS").read_text().splitlines()
    assert sums[0] == f"{io.sha256_file(good / 'dataset_description.json')}  dataset_description.json"


def test_good_bundle_verifies_and_crate_is_valid(good):
    assert verify_bundle(good) == []


def test_crate_describes_workflow_run_inputs_and_results(good):
    graph = {e["@id"]: e for e in json.loads((good / RUN_RECORD).read_text())["@graph"]}
    run = graph["#run"]
    assert run["@type"] == "CreateAction" and run["instrument"] == {"@id": "workflow/Snakefile"}
    assert run["startTime"] == "2026-01-01T00:00:00+00:00" and run["endTime"]
    assert "snakemake --profile profiles/default" in run["description"] and "/opt" not in run["description"]
    env = {graph[e["@id"]]["name"]: graph[e["@id"]]["value"] for e in run["environment"]}
    assert env["BRAINALIGN_BACKEND"] == "numpy" and env["model clip device and dtype"] == "cpu float32"
    assert env["model clip requested device and dtype"] == "cpu bfloat16"
    assert graph["#input/stimuli:concepts.tsv"]["value"] == "sha256:" + "0" * 64
    assert graph["tables/encoding_group.parquet"]["sha256"] == io.sha256_file(good / "tables/encoding_group.parquet")
    assert {r["@id"] for r in run["result"]} >= {"tables/encoding_group.parquet", "dataset_description.json"}


def test_dataset_description_is_a_bids_derivative(good):
    description = io.read_json(good / "dataset_description.json")
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "brainalign"


def _one(problems: list[str], kind: str) -> str:
    assert len(problems) == 1 and problems[0].startswith(kind + ":"), problems
    return problems[0]


def test_changed_file_is_reported(bundle):
    io.write_table(pd.DataFrame({"roi": ["visual"], "mean_r": [0.9]}), bundle / "tables/encoding_group.parquet")
    assert "tables/encoding_group.parquet sha256 expected" in _one(verify_bundle(bundle, validate=False), "changed")


def test_missing_file_is_reported(bundle):
    (bundle / "maps/sub-01/sub-01_stat-r_statmap.nii.gz").unlink()
    assert "sub-01_stat-r_statmap.nii.gz is in MANIFEST.tsv" in _one(verify_bundle(bundle, validate=False), "missing")


def test_extra_file_is_reported(bundle):
    (bundle / "tables/notes.txt").write_text("added later\n")
    assert "tables/notes.txt" in _one(verify_bundle(bundle, validate=False), "extra")


def test_edited_sha256sums_is_reported(bundle):
    (bundle / "SHA256SUMS").write_text((bundle / "SHA256SUMS").read_text().replace("workflow/Snakefile", "x"))
    _one(verify_bundle(bundle, validate=False), "manifest")


@pytest.mark.parametrize("leak", ["/home/alice/data/sub-01_bold.nii.gz", "C:\\Users\\alice\\data", "{cwd}/results",
                                  "{host}"])
def test_private_paths_and_names_are_reported(bundle, leak, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "lab-node-17")
    text = leak.format(cwd=Path.cwd(), host="lab-node-17")
    io.write_json({"Sources": [text]}, bundle / "dataset_description.json")
    write_manifest(bundle)
    problems = verify_bundle(bundle, validate=False)
    assert problems and all(p.startswith("private: dataset_description.json") for p in problems), problems


def test_tampered_crate_is_reported(bundle):
    crate = json.loads((bundle / RUN_RECORD).read_text())
    for entity in crate["@graph"]:
        if entity["@id"] == "./":
            entity["hasPart"] = [p for p in entity["hasPart"] if p["@id"] != "dataset_description.json"]
        if entity["@id"] == "workflow/Snakefile":
            entity["@type"] = "File"
    (bundle / RUN_RECORD).write_text(json.dumps(crate))
    problems = verify_bundle(bundle)
    assert "crate: dataset_description.json is not described in ro-crate-metadata.json" in problems
    assert any(p.startswith("crate: workflow-ro-crate") and "Main Workflow" in p for p in problems), problems


def test_validator_rejects_a_crate_without_the_run(good, tmp_path):
    bundle = Path(shutil.copytree(good, tmp_path / "b"))
    crate = json.loads((bundle / RUN_RECORD).read_text())
    crate["@graph"] = [e for e in crate["@graph"] if e["@id"] != "#run"]
    (bundle / RUN_RECORD).write_text(json.dumps(crate))
    assert validate_crate(bundle), "a Workflow Run Crate without its CreateAction must not validate"


def test_command_line_keeps_no_absolute_path(tmp_path):
    command = f"/usr/bin/python -m snakemake --directory {tmp_path}/run --configfile=/etc/x.yaml --cores 2"
    assert relative_command(command, tmp_path) == "python -m snakemake --directory run '--configfile=…/x.yaml' --cores 2"


def test_profile_from_the_environment_keeps_no_absolute_path(tmp_path):
    environ = {"BRAINALIGN_COMMAND": "snakemake --cores 2", "SNAKEMAKE_PROFILE": "/home/alice/profiles/lab"}
    assert collect_run_record({}, [], environ=environ, cwd=tmp_path)["profile"] == "…/lab"
    environ["SNAKEMAKE_PROFILE"] = str(tmp_path / "profiles/lab")
    assert collect_run_record({}, [], environ=environ, cwd=tmp_path)["profile"] == "profiles/lab"


def test_scrub_paths_makes_report_paths_relative():
    text = '"/work/repo/containers/figures.sif" "/work/run/results/x.png" "/work/repo"'
    out = scrub_paths(text, {"/work/repo": "<workflow>/", "/work/run": ""})
    assert out == '"<workflow>/containers/figures.sif" "results/x.png" "<workflow>/"'


def test_drop_job_times_empties_the_reports_time_charts():
    """On the pinned Snakemake's own template and chart writers: times gone, the rest unchanged."""
    from importlib import resources

    from snakemake.report.html_reporter import data

    template = resources.files("snakemake").joinpath("report/html_reporter/template/index.html.jinja2").read_text()
    jobs = [{"rule": "fit_encoding", "runtime": 12.5}, {"rule": "make_report", "runtime": 3.0}]
    times = [{"rule": "fit_encoding", "starttime": "2026-12-06T08:57:13", "endtime": "2026-12-06T08:57:26"}]
    html = template.replace("{{runtimes}}", data.render_runtimes(jobs)).replace("{{timeline}}", data.render_timeline(times))
    out = drop_job_times(html)
    assert "2026-12-06" in html and "12.5" in html
    assert "2026-12-06" not in out and "12.5" not in out and "fit_encoding" not in out
    assert out.replace("\n", "").count("var runtimes_spec = {") == 1 and '"values": []' in out
    kept = [line for line in html.splitlines() if "_spec = " not in line]
    assert kept == [line for line in out.splitlines() if "_spec = " not in line]
    with pytest.raises(ValueError, match="runtimes and timeline charts"):
        drop_job_times(html.replace("var timeline_spec", "var timeline"))


def test_stable_rules_sorts_the_reports_rule_list_and_leaves_out_the_later_rules():
    html = '<script id="rules">\n    var rules = {"make_report": {"n": 1}, "fit_encoding": {"n": 2}, "extract": {"n": 3}};\n</script>'
    out = stable_rules(html)
    assert out == '<script id="rules">\n    var rules = {"extract": {"n": 3}, "fit_encoding": {"n": 2}};\n</script>'
    assert stable_rules(html.replace("make_report", "zz").replace("extract", "make_report")) != out
    with pytest.raises(ValueError, match="rule list"):
        stable_rules("<html></html>")


def test_group_mean_map_averages_subjects_and_refuses_other_grids(tmp_path):
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(7, 8, 9, 2)).astype(np.float32) for _ in range(3)]
    data[1][0, 0, 0, 0] = np.nan
    paths = []
    for i, d in enumerate(data):
        paths.append(tmp_path / f"sub-0{i}.nii.gz")
        nib.save(nib.Nifti1Image(d, np.diag([2, 2, 2, 1])), paths[-1])
    group_mean_map(paths, tmp_path / "g.nii.gz", tmp_path / "g.json")
    np.testing.assert_allclose(nib.load(tmp_path / "g.nii.gz").get_fdata(), np.nanmean(np.stack(data), 0), rtol=1e-6)
    nib.save(nib.Nifti1Image(data[0][:6], np.diag([2, 2, 2, 1])), paths[2])
    with pytest.raises(ValueError, match="must be on the grid of"):
        group_mean_map(paths, tmp_path / "h.nii.gz", tmp_path / "h.json")


# ---- the tiny demo (slow) ----------------------------------------------------------

BUNDLE_STAGE = ["results/bundle", "results/dataset_description.json", "results/group/maps"]


@pytest.mark.slow
def test_demo_bundle_verifies(demo_run):
    bundle = demo_run / "results/bundle"
    assert verify_bundle(bundle) == []
    paths = set(read_manifest(bundle)["path"])
    assert {"report.html", "provenance.json", "dataset_description.json", "workflow/Snakefile"} <= paths
    assert any(p.startswith("maps/group/") and p.endswith(".nii.gz") for p in paths)
    assert any(p.startswith("maps/sub-01/") and p.endswith(".json") for p in paths)
    report = (bundle / "report.html").read_text()
    assert str(REPO) not in report and str(demo_run) not in report
    provenance = io.read_json(bundle / "provenance.json")
    assert all(k.startswith(("dataset:", "stimuli:", "results/")) for k in provenance["inputs"])
    assert len(provenance["git"]["commit"]) == 40 and "checkout" not in provenance["git"]
    # the run record holds the device and dtype each model really ran on (from the extraction logs)
    graph = {e["@id"]: e for e in json.loads((bundle / RUN_RECORD).read_text())["@graph"]}
    env = {graph[e["@id"]]["name"]: graph[e["@id"]]["value"] for e in graph["#run"]["environment"]}
    used = {k: v for k, v in env.items() if k.startswith("model ") and k.endswith(" device and dtype")
            and "requested" not in k}
    from brainalign.features.loading import resolve_device

    assert used and set(used.values()) == {f"{resolve_device('auto')} float32"}, env
    assert env["model clip requested device and dtype"] == "auto float32"


def _git_of(run: Path) -> dict:
    return io.read_json(run / "results/bundle/provenance.json")["git"]


@pytest.mark.slow
def test_bundle_is_byte_identical_in_another_folder(demo_run, tmp_path):
    """The bundle stage rerun in a folder of another name gives the same bytes (run record aside).

    The copy keeps ``.snakemake`` (the job records the report is made of) and drops the
    bundle stage, the lock and the logs; Snakemake then remakes the provenance, group maps,
    BIDS description, copies, report, manifest and RO-Crate there.
    """
    other = tmp_path / "elsewhere" / "second-run"
    shutil.copytree(demo_run, other, symlinks=True,
                    ignore=shutil.ignore_patterns("locks", "incomplete", "log", "scripts"))
    for path in BUNDLE_STAGE:
        shutil.rmtree(other / path, ignore_errors=True) if (other / path).is_dir() else (other / path).unlink()
    proc = snakemake(other, "--cores", "2")
    remade = set(re.findall(r"rule (\w+):", proc.stdout + proc.stderr))
    assert {"make_report", "finish_bundle", "write_provenance", "make_group_map"} <= remade, remade
    first, second = demo_run / "results/bundle", other / "results/bundle"
    files = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file())
    assert _git_of(demo_run)["commit"] == _git_of(other)["commit"], "the checkout changed between the two runs; rerun"
    differ = [f for f in files if (first / f).read_bytes() != (second / f).read_bytes()]
    assert differ == [RUN_RECORD]
    assert verify_bundle(second, validate=False) == []
