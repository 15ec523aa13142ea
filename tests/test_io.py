"""Labelled, atomic, deterministic file I/O."""

import numpy as np
import pandas as pd
import pytest

from brainalign import io


def test_arrays_round_trip_with_labels(tmp_path):
    arrays = {"layer-00": np.arange(15, dtype=np.float32).reshape(3, 5), "run": np.array([1, 1, 2], np.int32)}
    meta = {"stimuli": ["b", "a", "c"], "model": "m", "affine": np.eye(4)}
    io.save_arrays(tmp_path / "x.safetensors", arrays, meta)
    back, back_meta = io.load_arrays(tmp_path / "x.safetensors")
    np.testing.assert_array_equal(back["layer-00"], arrays["layer-00"])
    assert back["run"].dtype == np.int32
    assert back_meta["stimuli"] == ["b", "a", "c"] and back_meta["affine"][0] == [1.0, 0.0, 0.0, 0.0]


def test_same_content_same_bytes(tmp_path):
    for name in ("a", "b"):
        io.save_arrays(tmp_path / f"{name}.safetensors", {"x": np.ones(3)}, {"k": 1, "j": [2]})
        io.write_table(pd.DataFrame({"x": [1.5, 2.0], "y": ["p", "q"]}), tmp_path / f"{name}.parquet")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.tsv"
    with pytest.raises(RuntimeError):
        with io.atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"array file '.*nope.safetensors' does not exist"):
        io.load_arrays(tmp_path / "nope.safetensors")
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match=r"has no 'brainalign' metadata; it was not written by brainalign"):
        io.load_arrays(tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match=r"must end in .parquet or .tsv; got '.csv'"):
        io.write_table(pd.DataFrame(), tmp_path / "t.csv")


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        io.write_json({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(mask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644
