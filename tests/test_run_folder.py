"""A run's folder (dlexp.run.folder): job folder names and numbers."""

from __future__ import annotations

from pathlib import Path

from dlexp.run.folder import MAX_FOLDER_NAME, job_folder_name, job_number


def test_job_folder_names_escape_slashes_and_stay_short():
    assert job_folder_name(3, "") == "3"
    assert job_folder_name(3, "experiment=a/b") == "3_experiment=a%2Fb"
    long = job_folder_name(12, "model.n_hidden=[" + ",".join(["1024"] * 60) + "]")
    assert len(long) == MAX_FOLDER_NAME and long.startswith("12_model.n_hidden=[1024")
    other = job_folder_name(12, "model.n_hidden=[" + ",".join(["1024"] * 61) + "]")
    assert other != long  # the hash tells long names apart
    assert job_number(Path(long)) == 12 and job_number(Path("summary")) is None
