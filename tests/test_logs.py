"""The job log: every record in the file; warnings once each, naming the job, on stderr;
edge-of-grid alpha records of a job summarised in one line."""

from __future__ import annotations

import logging

import numpy as np

from brainalign.encoding.ridge import log_alpha_edges
from brainalign.logs import job_label, log_to_file


def test_job_label_names_rule_and_wildcards():
    assert job_label("results/logs/fit_encoding/sub-01_model-bert.log") == "fit_encoding sub-01_model-bert"
    assert job_label("/w/results/logs/summarize_best_layer.log") == "summarize_best_layer"


def test_warnings_reach_the_terminal_once_and_name_the_job(tmp_path, capsys):
    log = tmp_path / "results" / "logs" / "extract_features" / "model-clip.log"
    with log_to_file(log):
        for _ in range(3):
            logging.getLogger("brainalign.features").warning("half precision on cpu: float32")
        logging.getLogger("brainalign.features").info("loaded")
    err = capsys.readouterr().err
    assert err.count("half precision") == 1
    assert "WARNING [extract_features model-clip] brainalign.features: half precision" in err
    text = log.read_text()
    assert text.count("half precision") == 3 and "loaded" in text


def test_edge_alpha_warnings_become_one_summary(tmp_path, capsys):
    grid = np.array([1.0, 10.0, 100.0])
    log = tmp_path / "logs" / "fit_encoding" / "sub-01.log"
    with log_to_file(log):
        log_alpha_edges(np.full((2, 10), 100.0), grid)  # all at the max: warns
        log_alpha_edges(np.c_[np.full((2, 3), 100.0), np.full((2, 7), 10.0)], grid)  # 30%: warns
        log_alpha_edges(np.full((2, 10), 10.0), grid)  # none: info
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "[fit_encoding sub-01]" in err and "2 of 3 fits chose an edge alpha" in err
    assert "max 100%" in err and "mostly at the max 100" in err and "widen config 'encoding.alphas'" in err
    assert log.read_text().count("lie at an edge of the grid") == 3  # each fit stays in the file


def test_no_summary_without_edge_warnings(tmp_path, capsys):
    with log_to_file(tmp_path / "x.log"):
        log_alpha_edges(np.full((2, 10), 10.0), np.array([1.0, 10.0, 100.0]))
    assert capsys.readouterr().err == ""
