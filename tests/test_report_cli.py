"""dlexp-report on a real tiny sweep with a failing job, on its jobs, and on a synthetic search."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from dlexp.report.cli import main, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tiny_cifar, tmp_path_factory) -> Path:
    """`optim.lr=1e-3,-1,2e-3 model.n_hidden=[8],[16]`: six jobs, the two with lr -1 fail."""
    folder = tmp_path_factory.mktemp("report") / "sweep"
    args = [
        sys.executable, "-m", "dlexp", "-m", "optim.lr=1e-3,-1,2e-3", "model.n_hidden=[8],[16]",
        "max_steps=4", "eval_freq=2", "log_freq=1", "batch_size=20", "data.validation_size=50",
        f"data.root={tiny_cifar}", "progress=false", f"hydra.sweep.dir={folder}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the failed jobs make the sweep exit 1
    return folder


def markdown_section(markdown: str, title_start: str) -> str:
    """The text of the `## <title...>` section."""
    sections = re.split(r"^## ", markdown, flags=re.M)
    return next(s for s in sections if s.startswith(title_start))


def table_rows(section: str) -> list[dict[str, str]]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def job_records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


def test_sweep_report_sorts_every_job_by_val_accuracy(sweep):
    write_report(sweep)
    markdown = (sweep / "report.md").read_text()
    rows = table_rows(markdown_section(markdown, "Runs by val/accuracy"))
    assert len(rows) == 6
    assert [r["status"] for r in rows] == ["completed"] * 4 + ["failed"] * 2
    values = [float(r["best val/accuracy"]) for r in rows[:4]]
    assert values == sorted(values, reverse=True)
    assert all("learning rate must be > 0" in r["reason"] for r in rows[4:])
    assert all(r["lr"] == "-1" for r in rows[4:]) and {r["n_hidden"] for r in rows} == {
        "[8]",
        "[16]",
    }
    records = job_records(sweep)
    best_job = max(
        (j for j in records if records[j]["status"] == "completed"),
        key=lambda j: records[j]["objective"],
    )
    assert rows[0]["job"] == best_job.split("_")[0]  # folders are `<number>_<overrides>`

    best_config = markdown_section(markdown, "Best config")
    config = yaml.safe_load(best_config.split("```")[1])
    assert (
        config["optim"]["lr"]
        == yaml.safe_load((sweep / best_job / ".hydra" / "config.yaml").read_text())["optim"]["lr"]
    )
    assert config["output_dir"] == str(sweep / best_job)  # resolved, not ${hydra:...}
    assert "dlexp-train -m" in markdown and "'model.n_hidden=[8],[16]'" in markdown
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (sweep / link).read_bytes()[:8] == PNG_SIGNATURE
    names = sorted(p.name for p in (sweep / "report_files").iterdir())
    assert names == [
        "param_model.n_hidden.png",
        "param_optim.lr.png",
        "top_val_accuracy.png",
        "top_val_loss.png",
    ]


def test_sweep_report_html_is_self_contained(sweep):
    write_report(sweep)
    page = (sweep / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    sources = re.findall(r"<img [^>]*src=\"([^\"]+)\"", page)
    assert len(sources) == 4 == page.count("<img ")
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(io.BytesIO(png), format="png").shape
        assert height > 100 and width > 100
    assert "failed" in page and "learning rate must be &gt; 0" in page  # escaped, not raw


def test_report_of_one_completed_job(sweep):
    records = job_records(sweep)
    job = next(j for j, r in records.items() if r["status"] == "completed")
    main([str(sweep / job)])
    markdown = (sweep / job / "report.md").read_text()
    assert "dlexp-train optim.lr=" in markdown and "-m" not in markdown.split("```")[1]
    metrics = table_rows(markdown_section(markdown, "Final and best metrics"))
    val = next(r for r in metrics if r["metric"] == "val/accuracy")
    assert float(val["final"]) == pytest.approx(records[job]["final"]["val/accuracy"], abs=1e-4)
    timing = markdown_section(markdown, "Timing and device")
    assert "wall_s" in timing and "steps_per_s" in timing and "device" in timing
    assert "n_hidden:" in markdown_section(markdown, "Resolved config")
    assert (sweep / job / "report_files" / "accuracy.png").is_file()
    assert (sweep / job / "report.html").read_text().count("data:image/png;base64,") == 2


def test_report_of_a_failed_job_gives_the_reason(sweep):
    records = job_records(sweep)
    job = next(j for j, r in records.items() if r["status"] == "failed")
    write_report(sweep / job)
    outcome = markdown_section((sweep / job / "report.md").read_text(), "Outcome")
    assert "| status | failed |" in outcome and "learning rate must be > 0" in outcome


def write_job(folder: Path, lr: str, record: dict) -> None:
    """A job folder without curves: .hydra/ and metrics.json, as a search leaves them."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optim.lr={lr}"]))
    config = {"optim": {"lr": float(lr)}, "optimized_metric": "val/loss", "device": "cpu"}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps(record))


def test_a_search_on_val_loss_sorts_low_first_with_pruned_and_failed_rows(tmp_path):
    def done(loss, status="completed", reason=""):
        return {
            "status": status,
            "reason": reason,
            "steps": 10,
            "final": {"val/loss": loss},
            "best": {"val/loss": loss},
        }

    write_job(tmp_path / "0", "0.1", done(0.9))
    write_job(
        tmp_path / "1", "0.2", {"status": "failed", "reason": "training diverged", "steps": 3}
    )
    write_job(tmp_path / "2", "0.3", done(0.4, "pruned", "pruned at step 5"))  # lower, yet pruned
    write_job(tmp_path / "3", "0.4", done(0.7))
    write_report(tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    rows = table_rows(markdown_section(markdown, "Runs by val/loss"))
    assert [(r["job"], r["status"]) for r in rows] == [
        ("2", "pruned"),
        ("3", "completed"),
        ("0", "completed"),
        ("1", "failed"),
    ]
    assert rows[0]["reason"] == "pruned at step 5" and rows[3]["reason"] == "training diverged"
    assert "lower is better" in markdown
    assert markdown_section(markdown, "Best run").startswith(
        "Best run: job 3"
    )  # never a pruned run
    assert "| device | cpu (as configured) |" in markdown


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p, lambda p: p / "file.txt"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make):
    (tmp_path / "file.txt").write_text("not a run")
    with pytest.raises(SystemExit) as stop:
        main([str(make(tmp_path))])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("dlexp-report: error: ") and err.count("\n") == 1
    assert not (tmp_path / "report.md").exists()


def test_warnings_in_metrics_json_show_in_run_and_sweep_reports(tmp_path):
    sweep = tmp_path / "outputs" / "numpy_mlp" / "multiruns" / "2026"
    quiet = {"status": "completed", "steps": 10, "final": {"val/loss": 0.5}}
    noisy = {**quiet, "warnings": ["data: 3 images repeated", "resumed from step 5"]}
    write_job(sweep / "0_a", "0.1", quiet)
    write_job(sweep / "1_b", "0.2", noisy)
    write_report(sweep)
    markdown = (sweep / "report.md").read_text()
    rows = table_rows(markdown_section(markdown, "Warnings"))
    assert rows == [
        {"job": "1", "warning": "data: 3 images repeated"},
        {"job": "1", "warning": "resumed from step 5"},
    ]
    assert "Folder: 0_a" in markdown  # relative to the sweep folder, where report.md lies
    assert str(tmp_path) not in markdown and "_numpy_mlp/multiruns/2026 ·" in markdown
    write_report(sweep / "1_b")
    run_rows = table_rows(markdown_section((sweep / "1_b" / "report.md").read_text(), "Warnings"))
    assert run_rows == [{"warning": "data: 3 images repeated"}, {"warning": "resumed from step 5"}]
    write_report(sweep / "0_a")
    assert "## Warnings" not in (sweep / "0_a" / "report.md").read_text()
