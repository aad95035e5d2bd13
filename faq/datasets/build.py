"""Build the shipped Stack Overflow-format FAQ files from the human-editable YAML source.

``python -m faq.datasets.build`` rewrites ``orig-q.tsv.gz``, ``dup-q.tsv.gz`` and ``ans.tsv.gz``
in ``faq/datasets/stackoverflow_js/`` from ``source/*.yaml``; ``--check`` only verifies that the
shipped files are what the source builds (CI / unit test). Output is deterministic: Ids and
dates are derived from each entry's ``id``, and gzip is written with ``mtime=0`` and no file name.

Source entry (one per original question)::

    - id: 7                      # small, unique, never reused; all file Ids derive from it
      topic: arrays              # free text, for the README and for humans
      title: How do I ...?
      body: <p>HTML body, may hold <pre><code>...</code></pre> and <a href="...">links</a></p>
      answer: <p>short correct answer, HTML</p>
      duplicates:                # >= 5; each is the full Text0 of one duplicate (title [+ body])
        - how to ...
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from faq.data import (
    DEFAULT_DATA_DIR,
    DEFAULT_MIN_DUPES,
    DEFAULT_MIN_TEXT_LEN,
    clean_text,
)

SOURCE_DIR = DEFAULT_DATA_DIR / "source"

# Id scheme (unique across the three files, like real Stack Overflow post Ids):
#   original question: 4_000_000 + 1000 * id      accepted answer: question Id + 1
#   duplicate k (0-based): 20_000_000 + 100 * id + k
ORIG_BASE, DUP_BASE = 4_000_000, 20_000_000
MAX_ENTRY_ID, MAX_DUPES = 999, 99
_EPOCH = datetime(2010, 1, 4, 9, 0, 0)


def _one_line(text: str) -> str:
    """Join lines with spaces: the TSV holds one record per line, with no tabs or newlines."""
    if "\t" in text:
        raise ValueError(f"tab in text: {text[:60]!r}")
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _stamp(key: str, start: datetime, max_days: int) -> datetime:
    """A deterministic pseudo-random timestamp after ``start`` (hash of ``key``)."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return start + timedelta(days=1 + h % max_days, seconds=(h >> 20) % 86400, milliseconds=(h >> 40) % 1000)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def load_source(source_dir: Path = SOURCE_DIR) -> list[dict[str, Any]]:
    """Read and validate every ``*.yaml`` entry (sorted by file name, then file order)."""
    entries: list[dict[str, Any]] = []
    for path in sorted(source_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for entry in data:
            entry = dict(entry, _file=path.name)
            entries.append(entry)
    seen_ids: set[int] = set()
    seen_texts: dict[str, str] = {}
    for e in entries:
        where = f"{e['_file']} id={e.get('id')}"
        for key in ("id", "title", "body", "answer", "duplicates"):
            if key not in e:
                raise ValueError(f"{where}: missing key {key!r}")
        if not isinstance(e["id"], int) or not 1 <= e["id"] <= MAX_ENTRY_ID or e["id"] in seen_ids:
            raise ValueError(f"{where}: id must be a unique int in 1..{MAX_ENTRY_ID}")
        seen_ids.add(e["id"])
        fields = {"title": e["title"], "body": e["body"], "answer": e["answer"]}
        fields.update({f"duplicates[{k}]": d for k, d in enumerate(e["duplicates"])})
        for key, value in fields.items():
            if not isinstance(value, str):
                raise ValueError(
                    f"{where}: {key} must be a string (quote it in YAML if it holds ': '), got {value!r}"
                )
        if not DEFAULT_MIN_DUPES <= len(e["duplicates"]) <= MAX_DUPES:
            raise ValueError(f"{where}: needs {DEFAULT_MIN_DUPES}..{MAX_DUPES} duplicates")
        texts = [_one_line(f"{e['title']} {e['body']}")] + [_one_line(d) for d in e["duplicates"]]
        for t in texts:
            if t.startswith('"'):
                raise ValueError(f"{where}: text must not start with a quote: {t[:60]!r}")
            cleaned = clean_text(t)
            if len(cleaned) < DEFAULT_MIN_TEXT_LEN:
                raise ValueError(f"{where}: cleaned text shorter than {DEFAULT_MIN_TEXT_LEN}: {t!r}")
            if cleaned in seen_texts:
                raise ValueError(f"{where}: same cleaned text as {seen_texts[cleaned]}: {cleaned!r}")
            seen_texts[cleaned] = where
    return entries


def build_tables(entries: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    """Rows (header first) of the three files, in Id order."""
    orig = [["Id", "AnswerId", "Text0", "CreationDate"]]
    dup = [["Id", "AnswerId", "Text0", "CreationDate"]]
    ans = [["Id", "Text0"]]
    for e in sorted(entries, key=lambda e: e["id"]):
        qid = ORIG_BASE + 1000 * e["id"]
        aid = qid + 1
        asked = _stamp(f"q{e['id']}", _EPOCH, 2500)
        orig.append([str(qid), str(aid), _one_line(f"{e['title']} {e['body']}"), _iso(asked)])
        ans.append([str(aid), _one_line(e["answer"])])
        for k, text in enumerate(e["duplicates"]):
            when = _stamp(f"d{e['id']}-{k}", asked, 1500)
            dup.append(
                [
                    str(DUP_BASE + 100 * e["id"] + k),
                    str(aid),
                    _one_line(text),
                    _iso(when),
                ]
            )
    return {"orig-q.tsv.gz": orig, "dup-q.tsv.gz": dup, "ans.tsv.gz": ans}


def gzip_tsv(rows: list[list[str]]) -> bytes:
    """Tab-separated UTF-8 with ``\\n`` line ends, gzip level 9, mtime 0, no name: reproducible."""
    raw = "".join("\t".join(r) + "\n" for r in rows).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def build(source_dir: Path = SOURCE_DIR) -> dict[str, bytes]:
    """File name -> gzip bytes for the whole source."""
    return {name: gzip_tsv(rows) for name, rows in build_tables(load_source(source_dir)).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    parser.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    files = build()
    stale = []
    for name, data in files.items():
        target = args.out / name
        current = target.read_bytes() if target.exists() else None
        if current is not None and gzip.decompress(current) == gzip.decompress(data):
            continue
        stale.append(name)
        if not args.check:
            target.write_bytes(data)
    if args.check and stale:
        print(
            f"out of date: {', '.join(stale)} (run python -m faq.datasets.build)",
            file=sys.stderr,
        )
        return 1
    print(("up to date" if not stale else f"wrote {', '.join(stale)}") + f" in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
