"""docs/tutorial.py runs as documented and finds what it plants."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.py"


def test_tutorial_runs_and_recovers_the_planted_structure(capsys):
    code = [line for line in TUTORIAL.read_text().split('"""', 2)[2].splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 25  # "in about 20 lines"
    runpy.run_path(str(TUTORIAL), run_name="__main__")
    out = capsys.readouterr().out
    numbers = re.search(r"driven voxels r = ([\d.]+), noise voxels r = ([-+\d.]+); significant (\d+)/30 "
                        r"driven, (\d+)/30 noise", out)
    driven, noise, hits, false = float(numbers[1]), float(numbers[2]), int(numbers[3]), int(numbers[4])
    assert driven > 0.5 and abs(noise) < 0.05 and hits >= 27 and false <= 3
    assert "RidgeEncoder: coef_ (40, 60)" in out
    rsa = re.search(r"rho = ([\d.]+) \(p = ([\d.]+)\), noise ceiling \[([\d.]+), ([\d.]+)\]", out)
    rho, p, lower, upper = map(float, rsa.groups())
    assert p < 0.01 and 0 < rho < upper and lower < upper
