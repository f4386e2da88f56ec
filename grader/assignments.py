"""Assignment specs: `assignments/<slug>/assignment.toml` loaded into typed, validated models."""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def assignments_root() -> Path:
    return Path(os.environ.get("GRADER_ASSIGNMENTS_DIR", PROJECT_ROOT / "assignments"))


def reference_root() -> Path:
    return Path(os.environ.get("GRADER_REFERENCE_DIR", PROJECT_ROOT / "reference"))


class UnknownAssignment(LookupError):
    """Raised for a slug with no assignment directory."""


class Limits(BaseModel):
    probe_timeout: float = Field(10.0, gt=0, description="seconds per student.run call")
    import_timeout: float = Field(60.0, gt=0, description="seconds to run the submission's top level")
    total_timeout: float = Field(300.0, gt=0, description="seconds for the whole submission")
    memory_mb: int = Field(1024, gt=0, description="memory the student process may add")
    pids: int = Field(256, gt=0, description="processes the student uid may run")
    file_size_mb: int = Field(64, gt=0, description="largest file the student may write")
    workdir_mb: int = Field(256, gt=0, description="size of the student's scratch space")


class Check(BaseModel):
    id: str = Field(description="the pytest test function's name")
    name: str
    function: str = Field(description="the API function the check grades")
    points: float = Field(ge=0)
    visibility: Literal["visible", "hidden"] = "visible"


class Assignment(BaseModel):
    slug: str
    title: str
    version: str
    description: str = ""
    functions: list[str] = Field(description="the public API a submission must define")
    limits: Limits = Limits()
    checks: list[Check]
    directory: Path

    @model_validator(mode="after")
    def _checks_cover_api(self) -> "Assignment":
        ids = [c.id for c in self.checks]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate check ids in {self.slug}")
        graded = {c.function for c in self.checks}
        if missing := [f for f in self.functions if f not in graded]:
            raise ValueError(f"{self.slug}: no check grades {', '.join(missing)}")
        if unknown := sorted(graded - set(self.functions)):
            raise ValueError(f"{self.slug}: checks grade functions not in the API: {', '.join(unknown)}")
        return self

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def checks_dir(self) -> Path:
        return self.directory / "checks"

    @property
    def probes_path(self) -> Path:
        return self.directory / "probes.py"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def starter_path(self) -> Path:
        return self.directory / "starter.ipynb"

    @property
    def samples_dir(self) -> Path:
        return self.directory / "samples"

    @property
    def reference_path(self) -> Path:
        return reference_root() / f"{self.slug}.py"


def load(directory: Path) -> Assignment:
    """Read one assignment directory; raise ValueError naming the file on a bad spec."""
    toml_path = directory / "assignment.toml"
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        return Assignment(directory=directory, **raw)
    except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
        raise ValueError(f"{toml_path}: {exc}") from exc


@cache
def _registry(root: Path) -> dict[str, Assignment]:
    found = {}
    for toml_path in sorted(root.glob("*/assignment.toml")):
        spec = load(toml_path.parent)
        found[spec.slug] = spec
    return found


def all_assignments() -> dict[str, Assignment]:
    return _registry(assignments_root())


def get(slug: str) -> Assignment:
    try:
        return all_assignments()[slug]
    except KeyError:
        known = ", ".join(all_assignments()) or "none"
        raise UnknownAssignment(f"unknown assignment {slug!r} (known: {known})") from None
