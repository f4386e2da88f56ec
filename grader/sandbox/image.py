"""The sandbox image: its content-hash tag, its base, its wheelhouse and `grader build-image`.

The tag is a hash of everything that goes into the image: the Dockerfile, the harness
(`grader/__init__.py`, `grader/harness/`), each assignment's checks, probes and data, the
reference solutions and the student dependency list (pinned to the versions installed on this
host, so `--sandbox local` and `--sandbox docker` grade with the same libraries). The image is
rebuilt only when that hash changes; `GRADER_IMAGE` names another image to use instead.

No image registry needs to be reachable: the base is Debian bookworm made here with
`debootstrap` and `docker import` (cached as a local image), and the wheels come from a
wheelhouse that `pip download` fills on the host (cached under the cache directory), sent to
the classic builder in the build context of a multi-stage build, so it never becomes a layer
of the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

from grader.assignments import PROJECT_ROOT, assignments_root, reference_root

IMAGE_NAME = "grader-sandbox"
DEFAULT_BASE = "grader-base:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
PYTHON_VERSION = "3.11"
# What goes into the image from each assignment directory (never solutions/ or samples/).
ASSIGNMENT_PARTS = ("assignment.toml", "probes.py", "checks", "data")
# Labels the image carries (the launcher reads the uids from them).
LABEL_HASH = "grader.content_hash"
LABEL_BASE = "grader.base"
# Paths of the debootstrapped tree that the image does not need.
BASE_TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
             "usr/share/info", "usr/share/locale", "usr/share/lintian", "var/log")

Echo = Callable[[str], None]


class BuildError(RuntimeError):
    """The image could not be built (no engine, no debootstrap, a failed step)."""


# ---- what goes into the image ------------------------------------------------------------

def dockerfile_path() -> Path:
    return PROJECT_ROOT / "Dockerfile"


def student_requirements() -> list[str]:
    """The `student` extra of pyproject.toml: what a submission may import."""
    data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["project"]["optional-dependencies"]["student"])


def pinned_requirements() -> list[str]:
    """The student requirements, each pinned to the version installed here when it satisfies
    the requirement (so the image grades with the host's libraries); else left as declared."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging comes with pytest
        return student_requirements()
    pinned = []
    for line in student_requirements():
        requirement = Requirement(line)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            pinned.append(line)
            continue
        if requirement.specifier.contains(installed, prereleases=True):
            pinned.append(f"{requirement.name}=={installed}")
        else:
            pinned.append(line)
    return pinned


def _files_under(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def context_files() -> list[tuple[str, Path]]:
    """(name in the build context, file on the host) for everything but the wheelhouse."""
    files = [("Dockerfile", dockerfile_path()), ("pyproject.toml", PROJECT_ROOT / "pyproject.toml"),
             ("grader/__init__.py", PROJECT_ROOT / "grader" / "__init__.py")]
    harness = PROJECT_ROOT / "grader" / "harness"
    files += [(f"grader/harness/{p.relative_to(harness).as_posix()}", p) for p in _files_under(harness)]
    root = assignments_root()
    for toml_path in sorted(root.glob("*/assignment.toml")):
        directory = toml_path.parent
        for part in ASSIGNMENT_PARTS:
            path = directory / part
            found = [path] if path.is_file() else list(_files_under(path)) if path.is_dir() else []
            files += [(f"assignments/{p.relative_to(root).as_posix()}", p) for p in found]
    reference = reference_root()
    if reference.is_dir():
        files += [(f"reference/{p.relative_to(reference).as_posix()}", p) for p in _files_under(reference)]
    return files


def content_hash() -> str:
    """Hash of the image's content; equal hashes build equal images."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"requirements": pinned_requirements(), "python": PYTHON_VERSION,
                              "machine": platform.machine()}).encode())
    for name, path in context_files():
        if name == "pyproject.toml":
            continue  # only its student list matters, hashed above
        data = path.read_bytes()
        digest.update(f"\0{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def content_tag() -> str:
    return content_hash()[:16]


def image_ref() -> str:
    """The image the docker sandbox runs: `GRADER_IMAGE`, else the current content-hash tag."""
    return os.environ.get("GRADER_IMAGE") or f"{IMAGE_NAME}:{content_tag()}"


def cache_dir() -> Path:
    if os.environ.get("GRADER_CACHE_DIR"):
        return Path(os.environ["GRADER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grader"


# ---- the engine ---------------------------------------------------------------------------

def docker_client(timeout: int = 3600):
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:
        raise BuildError(f"no Docker engine answers ({exc}); start one (see .ci/setup-docker.sh)") from None


def image_exists(client, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


# ---- the base image -----------------------------------------------------------------------

def debian_mirror() -> str:
    """The Debian mirror this host's apt uses (deb822 `URIs:` line, else sources.list)."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"]:
                urls = [w for w in words[1:] if "://" in w]
                if urls:
                    return urls[0]
    raise BuildError("cannot tell the Debian mirror: no URIs: line in /etc/apt/sources.list.d/debian.sources "
                     "and no deb line in /etc/apt/sources.list")


def make_base(client, name: str, echo: Echo) -> None:
    """Debian bookworm with python3 by debootstrap, trimmed, imported as image `name`."""
    if shutil.which("debootstrap") is None:
        raise BuildError("making the base image needs debootstrap (apt-get install debootstrap), "
                         "or pass --base with an image that has python3 3.11 and its venv module")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root; run `grader build-image` as root or pass --base")
    mirror = debian_mirror()
    work = cache_dir() / "base-build"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=work) as root:
        echo(f"== base image {name}: debootstrap --variant=minbase {DEBIAN_SUITE} from {mirror}")
        started = time.monotonic()
        log_path = work / "debootstrap.log"
        with open(log_path, "wb") as log:
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
                 DEBIAN_SUITE, root, mirror], stdout=log, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise BuildError(f"debootstrap failed (exit {result.returncode}), log {log_path}:\n{tail}")
        for relative in BASE_TRIM:
            path = Path(root, relative)
            if path.is_dir():
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        echo(f"   debootstrap done in {time.monotonic() - started:.0f} s; importing")
        with tempfile.NamedTemporaryFile(dir=work, suffix=".tar") as archive:
            subprocess.run(["tar", "-C", root, "-c", "."], stdout=archive, check=True)
            archive.flush()
            repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
            client.api.import_image_from_file(
                archive.name, repository=repository, tag=tag,
                changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
    image = client.images.get(name)
    echo(f"   base image {name}: {image.attrs['Size'] / 1e6:.0f} MB")


# ---- the wheelhouse -----------------------------------------------------------------------

def platform_tags() -> list[str]:
    """manylinux tags a bookworm (glibc 2.36) image accepts on this machine's architecture."""
    machine = platform.machine()
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def ensure_wheelhouse(requirements: list[str], echo: Echo) -> Path:
    """Wheels of `requirements` (and their dependencies) for CPython 3.11 on Linux, cached."""
    key = hashlib.sha256(json.dumps([requirements, PYTHON_VERSION, platform_tags()]).encode()).hexdigest()[:16]
    target = cache_dir() / "wheelhouse" / key
    if (target / ".complete").exists():
        echo(f"== wheelhouse: cached in {target}")
        return target
    partial = target.with_name(key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    echo(f"== wheelhouse: pip download {' '.join(requirements)}")
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
               "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
               "--abi", "cp" + PYTHON_VERSION.replace(".", "")]
    for tag in platform_tags():
        command += ["--platform", tag]
    result = subprocess.run([*command, "--dest", str(partial), *requirements], capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"pip download failed:\n{result.stderr[-3000:]}")
    (partial / ".complete").write_text("\n".join(sorted(p.name for p in partial.glob("*.whl"))) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    size = sum(p.stat().st_size for p in target.glob("*.whl"))
    echo(f"   {len(list(target.glob('*.whl')))} wheels, {size / 1e6:.0f} MB in {target}")
    return target


# ---- the build ----------------------------------------------------------------------------

def _student_pyproject(requirements: list[str]) -> bytes:
    """A pyproject.toml holding only the (pinned) student extra: the Dockerfile reads that list, and
    the builder's layer cache then survives changes to the rest of the real pyproject.toml."""
    return ("# Made by `grader build-image`: the student extra of pyproject.toml, pinned to this host's versions.\n"
            "[project]\nname = \"grader-sandbox\"\n\n[project.optional-dependencies]\n"
            f"student = {json.dumps(requirements)}\n").encode()


def _write_context(archive, wheelhouse: Path, requirements: list[str]) -> None:
    import io

    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, path in context_files():
            if name == "pyproject.toml":
                data = _student_pyproject(requirements)
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            tar.add(path, arcname=name, recursive=False)
        for path in sorted(wheelhouse.glob("*.whl")):
            tar.add(path, arcname=f"wheelhouse/{path.name}", recursive=False)


def build_image(force: bool = False, base: str | None = None, echo: Echo = print) -> str:
    """Build the sandbox image for the current content unless it exists; return its reference."""
    client = docker_client()
    tag = content_tag()
    ref = f"{IMAGE_NAME}:{tag}"
    extra_tags = [f"{IMAGE_NAME}:latest"]
    if os.environ.get("GRADER_IMAGE") and os.environ["GRADER_IMAGE"] != ref:
        extra_tags.append(os.environ["GRADER_IMAGE"])
    if image_exists(client, ref) and not force:
        echo(f"{ref} is up to date (content hash {tag})")
        _tag_all(client, ref, extra_tags)
        return ref
    started = time.monotonic()
    base = base or os.environ.get("GRADER_IMAGE_BASE") or DEFAULT_BASE
    if not image_exists(client, base):
        if base == DEFAULT_BASE:
            make_base(client, base, echo)
        else:
            echo(f"== pulling base image {base}")
            try:
                client.images.pull(base)
            except Exception as exc:
                raise BuildError(f"base image {base} is not here and cannot be pulled: {exc}") from None
    else:
        echo(f"== base image {base}: present")
    requirements = pinned_requirements()
    wheelhouse = ensure_wheelhouse(requirements, echo)
    echo(f"== building {ref} from {base} (classic builder, no network)")
    with tempfile.TemporaryFile() as archive:
        _write_context(archive, wheelhouse, requirements)
        archive.seek(0)
        stream = client.api.build(
            fileobj=archive, custom_context=True, tag=ref, buildargs={"BASE": base},
            rm=True, forcerm=True, pull=False, network_mode="none", decode=True,
            labels={LABEL_HASH: tag, LABEL_BASE: base},
        )
        _follow(stream, echo)
    if not image_exists(client, ref):
        raise BuildError(f"the build finished but {ref} is not there")
    _tag_all(client, ref, extra_tags)
    image = client.images.get(ref)
    echo(f"== built {ref}: {image.attrs['Size'] / 1e6:.0f} MB in {time.monotonic() - started:.0f} s")
    remove_old_builders(client)
    removed = remove_old_images(client, keep={ref, *extra_tags})
    if removed:
        echo(f"   removed {len(removed)} older sandbox image(s): {', '.join(removed)}")
    return ref


def remove_old_builders(client) -> int:
    """Delete the builder stages of earlier builds, all but the newest (the next build's cache)."""
    try:
        builders = client.images.list(filters={"dangling": True, "label": "grader.stage=builder"})
    except Exception:
        return 0
    builders.sort(key=lambda image: image.attrs.get("Created", ""), reverse=True)
    removed = 0
    for image in builders[1:]:
        try:
            client.images.remove(image.id)
            removed += 1
        except Exception:
            pass
    return removed


def remove_old_images(client, keep: set[str]) -> list[str]:
    """Delete earlier sandbox images: other content-hash tags, and untagged ones a rebuild under
    the same tag left behind (those a container still uses stay)."""
    removed = []
    try:
        images = client.images.list(name=IMAGE_NAME) + client.images.list(filters={"dangling": True, "label": LABEL_HASH})
    except Exception:
        return removed
    for image in images:
        if set(image.tags) & keep:
            continue
        try:
            client.images.remove(image.id)
            removed += image.tags or [image.short_id]
        except Exception:
            pass  # in use by a container, or already gone
    return removed


def _follow(stream, echo: Echo) -> None:
    for chunk in stream:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise BuildError(f"docker build failed: {detail.strip()}")
        text = chunk.get("stream", "")
        for line in text.splitlines():
            line = line.rstrip()
            if line and not line.startswith(" ---> ") and not line.startswith("Removing intermediate"):
                echo(f"   {line}")


def _tag_all(client, ref: str, tags: list[str]) -> None:
    image = client.images.get(ref)
    for name in tags:
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        image.tag(repository, tag)
