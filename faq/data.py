"""FAQ data: the Stack Overflow file format of the original architecture, its cleaning and split.

The original Azure architecture (MLAKSDeployAML) matched JavaScript questions to a set of
"original" Stack Overflow questions using three public files:

* ``orig-q.tsv.gz`` -- originals: ``Id, AnswerId, Text0, CreationDate``
* ``dup-q.tsv.gz``  -- duplicates: ``Id, AnswerId, Text0, CreationDate``
* ``ans.tsv.gz``    -- answers: ``Id, Text0``

A duplicate's ``AnswerId`` is the accepted answer of the original it duplicates; that is the only
link between the two files. This module reads files in exactly that format. The default is the
data set written for this project and shipped in ``faq/datasets/stackoverflow_js/`` (offline, no
downloads at run time); :func:`download_original` fetches the original public files, but only when
a user asks for it.
"""

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd

from faq import DATASET_DIR
from faq.text import clean_text, readable_text, title_of

DEFAULT_DATA_DIR: Path = DATASET_DIR
SOURCE_URL: str = "https://bostondata.blob.core.windows.net/stackoverflow/"

ORIGINALS_FILE = "orig-q.tsv.gz"
DUPLICATES_FILE = "dup-q.tsv.gz"
ANSWERS_FILE = "ans.tsv.gz"
FILES: tuple[str, ...] = (ORIGINALS_FILE, DUPLICATES_FILE, ANSWERS_FILE)

QUESTION_COLUMNS: tuple[str, ...] = ("Id", "AnswerId", "Text0", "CreationDate")
ANSWER_COLUMNS: tuple[str, ...] = ("Id", "Text0")

# Filters of the original architecture, meant for the large public files: they keep only
# originals with a substantial body and enough duplicates to learn from.
ORIGINAL_MIN_TEXT_LEN = 150
ORIGINAL_MIN_DUPES = 12

# Defaults for the shipped data set. It is small and curated: every original has 5-7 duplicates
# and many duplicates are deliberately short ("js remove item from array"), as real users write
# them. The original filters (150 chars, 12 duplicates) would drop most of it, so the defaults
# keep all of it and only discard texts that clean to (almost) nothing.
DEFAULT_MIN_TEXT_LEN = 10
DEFAULT_MIN_DUPES = 5


def download_original(
    dest_dir: Path,
    base_url: str = SOURCE_URL,
    *,
    overwrite: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download the original public files into ``dest_dir`` and return ``dest_dir``.

    Only for users with internet who ask for it explicitly (CLI ``download`` or this call):
    nothing in the project downloads at run time. Files already present are kept unless
    ``overwrite``; each file is written to ``*.part`` first so an interrupted download never
    leaves a truncated file that the loader would read.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = base_url if base_url.endswith("/") else base_url + "/"
    for name in FILES:
        target = dest_dir / name
        if target.exists() and not overwrite:
            continue
        part = target.with_name(name + ".part")
        with (
            urllib.request.urlopen(base + name, timeout=timeout) as resp,
            part.open("wb") as fh,
        ):
            shutil.copyfileobj(resp, fh)
        part.replace(target)
    return dest_dir


@dataclass(frozen=True)
class FaqDataset:
    """Cleaned FAQ data.

    ``originals``: ``faq_id`` (int64, the original question Id), ``question``, ``answer``
    (cleaned: what the model sees), ``answer_id`` (int64), ``question_text`` and ``answer_text``
    (as a person reads them: the title as written, the answer with its code); sorted by
    ``faq_id``, index ``0..n-1``.
    ``duplicates``: ``dup_id`` (int64), ``text`` (cleaned), ``faq_id`` (int64, the original it
    duplicates); sorted by ``dup_id``, index ``0..m-1``.
    """

    originals: pd.DataFrame
    duplicates: pd.DataFrame


def _read_tsv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one tab-separated (gzip) file and check it has the columns the format requires."""
    if not path.is_file():
        raise FileNotFoundError(
            f"FAQ data file not found: {path} (expected {', '.join(FILES)} in {path.parent})"
        )
    # Same reader settings as the original architecture (tab-separated, UTF-8, header row);
    # Text0 is kept as text even when a value looks like a number.
    df = pd.read_csv(path, sep="\t", encoding="utf-8", dtype={"Text0": str})
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(columns)}, found {', '.join(map(str, df.columns))}"
        )
    return df


def _int_ids(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Return ``column`` as int64, with a clear error when a value is not an integer Id."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        raise ValueError(f"{path}: column {column} has non-integer values in {int(bad.sum())} rows")
    return values.astype("int64")


def load_dataset(
    data_dir: Path | None = None,
    *,
    min_text_len: int = DEFAULT_MIN_TEXT_LEN,
    min_dupes: int = DEFAULT_MIN_DUPES,
) -> FaqDataset:
    """Load and clean ``orig-q``/``dup-q``/``ans`` from ``data_dir`` (default: shipped data set).

    Follows the original preparation: originals without an answer are dropped, duplicates are
    linked to originals through the shared ``AnswerId``, texts shorter than ``min_text_len``
    after cleaning are dropped, and originals with fewer than ``min_dupes`` remaining duplicates
    are dropped together with their duplicates. For the original public files use
    ``min_text_len=ORIGINAL_MIN_TEXT_LEN, min_dupes=ORIGINAL_MIN_DUPES``.
    """
    data_dir = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    if min_text_len < 0 or min_dupes < 1:
        raise ValueError(f"need min_text_len >= 0 and min_dupes >= 1, got {min_text_len}, {min_dupes}")
    orig_path, dup_path, ans_path = (data_dir / name for name in FILES)
    orig_raw = _read_tsv(orig_path, QUESTION_COLUMNS)
    dup_raw = _read_tsv(dup_path, QUESTION_COLUMNS)
    ans_raw = _read_tsv(ans_path, ANSWER_COLUMNS)

    answers = pd.DataFrame(
        {
            "answer_id": _int_ids(ans_raw, "Id", ans_path),
            "answer": ans_raw["Text0"].map(clean_text),
            "answer_text": ans_raw["Text0"].map(readable_text),
        }
    ).drop_duplicates("answer_id")

    # Keep originals that have an answer, and whose answer is in the answers file.
    orig_raw = orig_raw[orig_raw["AnswerId"].notna()]
    originals = pd.DataFrame(
        {
            "faq_id": _int_ids(orig_raw, "Id", orig_path),
            "question": orig_raw["Text0"].map(clean_text),
            "question_text": orig_raw["Text0"].map(title_of),
            "answer_id": _int_ids(orig_raw, "AnswerId", orig_path),
        }
    )
    # An AnswerId must identify one original, else duplicates could not be linked unambiguously.
    originals = originals.sort_values("faq_id", kind="stable").drop_duplicates("answer_id")
    originals = originals.merge(answers, on="answer_id", how="inner")
    originals = originals[originals["question"].str.len() >= min_text_len]

    dup_raw = dup_raw[dup_raw["AnswerId"].notna()]
    duplicates = pd.DataFrame(
        {
            "dup_id": _int_ids(dup_raw, "Id", dup_path),
            "text": dup_raw["Text0"].map(clean_text),
            "answer_id": _int_ids(dup_raw, "AnswerId", dup_path),
        }
    )
    duplicates = duplicates[duplicates["text"].str.len() >= min_text_len]
    duplicates = duplicates.merge(originals[["answer_id", "faq_id"]], on="answer_id", how="inner")

    counts = duplicates["faq_id"].value_counts()
    keep = counts.index[counts >= min_dupes]
    originals = originals[originals["faq_id"].isin(keep)]
    duplicates = duplicates[duplicates["faq_id"].isin(keep)]

    originals = (
        originals[["faq_id", "question", "answer", "answer_id", "question_text", "answer_text"]]
        .sort_values("faq_id", kind="stable")
        .reset_index(drop=True)
    )
    duplicates = (
        duplicates[["dup_id", "text", "faq_id"]]
        .drop_duplicates("dup_id")
        .sort_values("dup_id", kind="stable")
        .reset_index(drop=True)
    )
    return FaqDataset(originals=originals, duplicates=duplicates)


def split_duplicates(
    ds: FaqDataset, test_size: float = 0.2, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split duplicates into (train, test), stratified by ``faq_id`` with a fixed seed.

    Stratifying keeps every original represented on both sides, so test accuracy measures
    matching new wordings, not guessing originals never seen in training. Raises ``ValueError``
    when ``test_size`` is too small or too large for that (each original needs one duplicate on
    each side). Both frames are sorted by ``dup_id`` with a fresh index.
    """
    from sklearn.model_selection import train_test_split

    dups = ds.duplicates
    train, test = train_test_split(dups, test_size=test_size, random_state=seed, stratify=dups["faq_id"])
    for name, part in (("train", train), ("test", test)):
        absent = set(ds.originals["faq_id"]) - set(part["faq_id"])
        if absent:
            raise ValueError(
                f"test_size={test_size} leaves {len(absent)} original(s) without a duplicate in "
                f"the {name} split (e.g. faq_id {min(absent)}); choose a test_size that gives "
                "every original at least one duplicate on each side"
            )
    return (
        train.sort_values("dup_id").reset_index(drop=True),
        test.sort_values("dup_id").reset_index(drop=True),
    )


def build_cli():  # -> typer.Typer (typer is imported lazily so the loader stays light)
    """The ``python -m faq.data stats|download`` command line."""
    import typer

    app = typer.Typer(add_completion=False, help="FAQ data set: statistics and explicit download.")

    @app.command()
    def stats(
        data_dir: Annotated[Path, typer.Option(help="folder with the 3 files")] = DEFAULT_DATA_DIR,
        min_text_len: int = DEFAULT_MIN_TEXT_LEN,
        min_dupes: int = DEFAULT_MIN_DUPES,
        test_size: float = 0.2,
        seed: int = 42,
    ) -> None:
        """Print counts of originals, duplicates and the train/test split."""
        ds = load_dataset(data_dir, min_text_len=min_text_len, min_dupes=min_dupes)
        per = ds.duplicates["faq_id"].value_counts()
        typer.echo(f"data dir:          {data_dir}")
        typer.echo(f"originals:         {len(ds.originals)}")
        typer.echo(f"duplicates:        {len(ds.duplicates)}")
        if len(per):
            typer.echo(f"dupes per orig:    min {per.min()}, median {per.median():g}, max {per.max()}")
            train, test = split_duplicates(ds, test_size=test_size, seed=seed)
            typer.echo(f"split (seed {seed}):   train {len(train)}, test {len(test)}")

    @app.command()
    def download(
        dest: Annotated[Path, typer.Option(help="folder to write the 3 files into")],
        base_url: str = SOURCE_URL,
        overwrite: bool = False,
    ) -> None:
        """Download the original public Stack Overflow files (needs internet)."""
        out = download_original(dest, base_url, overwrite=overwrite)
        for name in FILES:
            typer.echo(f"{out / name}  {(out / name).stat().st_size} bytes")

    return app


if __name__ == "__main__":
    build_cli()()
