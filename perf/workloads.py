"""Real inputs for every load test: FAQ questions users asked, photos that ship in packages.

The questions are the held-out duplicates of the FAQ test split (wordings the model never
trained on, as real traffic is); the photos come from :mod:`imaging.samples`. Both tools get
the same data: perf_analyzer as its input-data JSON, locust as one workload JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from perf import perf_analyzer


def faq_questions(limit: int | None = None) -> list[str]:
    """Test-split duplicate questions (cleaned text), in a fixed order."""
    from faq.data import load_dataset, split_duplicates

    _, test = split_duplicates(load_dataset())
    questions = [str(t) for t in test["text"]]
    return questions[:limit] if limit else questions


def image_files() -> list[Path]:
    """The photos that ship in installed wheels (JPEG and PNG, sizes from 300 px to 1 Mpx)."""
    from imaging.samples import all_samples

    return list(all_samples().values())


def write_workload(path: Path, questions: list[str], images: list[Path]) -> Path:
    """The locust workload file (see ``perf/locustfile.py``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"questions": questions, "image_files": [str(p) for p in images]}, indent=1))
    return path


def write_pa_inputs(out_dir: Path, questions: list[str], images: list[Path]) -> dict[str, Path]:
    """perf_analyzer input-data files: ``{"faq": ..., "image": ...}`` (keys present when data is)."""
    files: dict[str, Path] = {}
    if questions:
        files["faq"] = perf_analyzer.text_input_data(out_dir / "pa_input_faq.json", "TEXT", questions)
    if images:
        files["image"] = perf_analyzer.image_input_data(
            out_dir / "pa_input_image.json", "IMAGE", [p.read_bytes() for p in images]
        )
    return files
