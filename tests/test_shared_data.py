"""Missing ../shared data: a skip on a developer machine, a failure under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_shared


def test_present_data_is_returned(tmp_path: Path) -> None:
    assert require_shared(tmp_path) == tmp_path


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("TRUE", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_missing_data_skips_or_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str, outcome) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="NB101 subset not found at .*missing"):
        require_shared(tmp_path / "missing", "NB101 subset")
