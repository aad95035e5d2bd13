"""``python -m faq.release`` as a user runs it, on a repository no server runs on: a release from
the shipped data is promoted (the configs now pin it), one from a FAQ without duplicates is
written but not promoted (exit 2, and why), ``list`` shows both, ``rollback`` returns, and a
malformed FAQ stops it before anything is written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from export.build_repository import build
from faq.release import CLASSIFIER, app
from faq.specs import MODEL_NAME
from serving.versions import on_disk, served


def test_release_list_rollback_and_a_refused_faq(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    build("cpu", repository, only=[MODEL_NAME], with_steps=True)
    runner, where = CliRunner(), ["--repository", str(repository)]

    done = runner.invoke(app, ["new", *where])
    assert done.exit_code == 0, done.output
    assert "version 2" in done.output and "promoted" in done.output and "no server runs on it" in done.output
    assert served(repository, MODEL_NAME)[CLASSIFIER] == 2

    own = tmp_path / "own"
    own.mkdir()
    rows = "\n".join(f'{i},"How do I do thing {i} in JavaScript?","Call `thing{i}()`."' for i in range(1, 7))
    (own / "faq.csv").write_text("id,question,answer\n" + rows + "\n")
    done = runner.invoke(app, ["new", "--data", str(own), *where])
    assert done.exit_code == 2 and "too few duplicates" in done.output, done.output
    assert on_disk(repository, CLASSIFIER) == [1, 2, 3] and served(repository, MODEL_NAME)[CLASSIFIER] == 2

    listed = runner.invoke(app, ["list", *where])
    assert listed.exit_code == 0 and "*   2" in listed.output and "release 2" in listed.output, listed.output

    done = runner.invoke(app, ["rollback", *where])
    assert done.exit_code == 0 and served(repository, MODEL_NAME)[CLASSIFIER] == 1, done.output

    (own / "faq.csv").write_text("id,question\n1,no answers here\n")
    done = runner.invoke(app, ["new", "--data", str(own), *where])
    assert done.exit_code == 1 and "missing column(s) answer" in done.output
    assert on_disk(repository, CLASSIFIER) == [1, 2, 3]  # nothing written
