"""`make screenshots` (tools/screenshots.py): the report's shot from a tiny run, and a clear exit
2 when there is no run to shoot. The MLflow UI half is left to `make screenshots` itself: the
UI takes 25-45 s to serve on the shared cores, and tests/integration/test_mlflow_ui.py already
starts that server."""

from __future__ import annotations

import pytest
from PIL import Image

from tools import screenshots
from tools.browser import HEIGHT, WIDTH, browser

pytestmark = pytest.mark.training


def test_the_report_shot_is_a_small_palette_png_of_the_first_screen(tiny_run, tmp_path):
    report = tiny_run.root / "reports" / tiny_run.run_id / "report.html"
    with browser() as chromium:
        path = screenshots.shot(chromium, report.as_uri(), tmp_path / "report.png")
    with Image.open(path) as image:
        assert image.size == (WIDTH, HEIGHT) and image.mode == "P"
    assert path.stat().st_size < 200 * 1024


def test_no_finished_run_exits_2_and_says_to_train_first(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    code = screenshots.main(
        [
            "-o", f"mlflow.tracking_uri={store}",
            "-o", f"mlflow.artifact_location={tmp_path / 'art'}",
            "-o", f"output.reports_dir={tmp_path / 'reports'}",
            "--out", str(tmp_path / "shots"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "no finished training run" in capsys.readouterr().err
    assert not (tmp_path / "shots").exists()
