"""Find one submission per student in a directory or a zip, laid out the way LMS downloads are.

Two layouts, mixed freely: one file per student (`alice.py`; the id is the file's stem) or one
folder per student (`alice/hw1.ipynb`; the id is the folder's name). A zip or directory that
only wraps everything in one top folder (`class/...`) is unwrapped. `pattern` (a regular
expression searched in the stem or folder name) picks the id out of longer names: its group
`id` (else its first group, else the whole match) is the id, and an optional group `name` is
the display name (Canvas's `smithjane_123456_789_hw1.py` with
`^(?P<name>[a-z]+)(?:_LATE)?_(?P<id>\\d+)_`).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from grader.intake import DEFAULT_MAX_BYTES

SUBMISSION_SUFFIXES = (".py", ".ipynb")
IGNORED_NAMES = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", "Thumbs.db"}
# What a corrupt, encrypted or exotic zip raises from zipfile (a bad member name is a ValueError too).
ZIP_ERRORS = (OSError, zipfile.BadZipFile, RuntimeError, EOFError, NotImplementedError, ValueError, zlib.error)


class CollectError(ValueError):
    """PATH is not something submissions can be read from (missing, not a zip, corrupt zip)."""


@dataclass(frozen=True)
class Entry:
    """One student's submission. `problem` says why it cannot be graded before intake even runs."""

    student: str
    filename: str
    data: bytes
    name: str = ""
    problem: str | None = None


Loader = Callable[[], bytes]


def collect(path: Path, pattern: str | None = None, *, exclude: Path | None = None,
            max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[Entry], list[str]]:
    """Entries sorted by student id, and warnings for the instructor (names the pattern missed)."""
    regex = _compile(pattern)
    if path.is_dir():
        files = _directory_files(path, exclude, max_bytes + 1)
    elif zipfile.is_zipfile(path):
        files = _zip_files(path, max_bytes + 1, str(path))
    elif path.exists():
        raise CollectError(f"{path}: not a directory or a zip file")
    else:
        raise CollectError(f"{path}: no such file or directory")
    return _group(files, regex)


def collect_zip(data: bytes, label: str, pattern: str | None = None, *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[Entry], list[str]]:
    """`collect` for a zip held in memory (an upload), named `label` in messages."""
    regex = _compile(pattern)
    archive = io.BytesIO(data)
    if not zipfile.is_zipfile(archive):
        raise CollectError(f"{label}: not a zip file")
    return _group(_zip_files(archive, max_bytes + 1, label), regex)


def _group(files: list[tuple[PurePosixPath, Loader]], regex: re.Pattern | None) -> tuple[list[Entry], list[str]]:
    """One entry per student id (a folder or a file stem), sorted, and warnings for names the pattern missed."""
    files = _unwrap(files)
    groups: dict[str, list[tuple[PurePosixPath, Loader]]] = {}
    names: dict[str, str] = {}
    warnings = []
    for rel, loader in files:
        key = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        student, name, matched = _student_id(key, regex)
        if not matched:
            warnings.append(f"{rel}: the id pattern does not match {key!r}; using it whole as the student id")
        groups.setdefault(student, []).append((rel, loader))
        names.setdefault(student, name)
    entries = [_entry(student, names[student], group) for student, group in sorted(groups.items())]
    return entries, warnings


def _compile(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise CollectError(f"bad id pattern {pattern!r}: {exc}") from None


def _student_id(key: str, regex: re.Pattern | None) -> tuple[str, str, bool]:
    match = regex.search(key) if regex else None
    if match is None:
        return key, key, regex is None
    groups = match.groupdict()
    student = groups.get("id") or (match.group(1) if regex.groups else match.group(0))
    return student, groups.get("name") or student, True


def _entry(student: str, name: str, files: list[tuple[PurePosixPath, Loader]]) -> Entry:
    """Pick the one .py/.ipynb file (a lone file of another kind goes to intake, which says why not)."""
    candidates = [f for f in files if f[0].suffix.lower() in SUBMISSION_SUFFIXES] or (files if len(files) == 1 else [])
    listed = ", ".join(str(rel) for rel, _ in files)
    if len(candidates) == 1:
        rel, loader = candidates[0]
        try:
            return Entry(student, str(rel), loader(), name)
        except ZIP_ERRORS as exc:
            return Entry(student, str(rel), b"", name, f"{rel} could not be read: {exc}")  # corrupt, encrypted
    problem = (f"several submissions for {student}: {listed}; keep exactly one .py or .ipynb file" if candidates
               else f"no .py or .ipynb file for {student} (found {listed})")
    return Entry(student, str(files[0][0]), b"", name, problem)


def _ignored(rel: PurePosixPath) -> bool:
    return any(part.startswith(".") or part in IGNORED_NAMES for part in rel.parts)


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _directory_files(root: Path, exclude: Path | None, limit: int) -> list[tuple[PurePosixPath, Loader]]:
    excluded = exclude.resolve() if exclude else None
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (excluded and path.resolve().is_relative_to(excluded)):
            continue
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if not _ignored(rel):
            found.append((rel, partial(_read_file, path, limit)))
    return found


def _zip_files(path: Path | BinaryIO, limit: int, label: str) -> list[tuple[PurePosixPath, Loader]]:
    """Members are read lazily and at most `limit` bytes each, so a zip bomb costs nothing."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
    except ZIP_ERRORS as exc:
        raise CollectError(f"{label}: unreadable zip file ({exc})") from None

    def read(info: zipfile.ZipInfo) -> bytes:
        with zipfile.ZipFile(path) as archive, archive.open(info) as member:
            return member.read(limit)

    found = []
    for info in sorted(infos, key=lambda i: i.filename):
        rel = PurePosixPath(info.filename)
        if not _ignored(rel) and not rel.is_absolute() and ".." not in rel.parts:
            found.append((rel, partial(read, info)))
    return found


def _unwrap(files: list[tuple[PurePosixPath, Loader]]) -> list[tuple[PurePosixPath, Loader]]:
    """Strip a top folder that wraps the whole class (but not a lone student's folder)."""
    while files and len({rel.parts[0] for rel, _ in files}) == 1 and all(len(rel.parts) > 1 for rel, _ in files):
        inner = [PurePosixPath(*rel.parts[1:]) for rel, _ in files]
        candidates = [rel for rel in inner if rel.suffix.lower() in SUBMISSION_SUFFIXES]
        if not any(len(rel.parts) > 1 for rel in inner) and len(candidates) <= 1:
            break
        files = [(rel, loader) for rel, (_, loader) in zip(inner, files)]
    return files
