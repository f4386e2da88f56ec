"""Linux process isolation for the student process: namespaces, mounts, uid drop, rlimits, kill-by-uid.

Used by the fork server both on the host (`--sandbox local`, strongest when root) and inside
the Docker container (where the container already gives no network and a read-only root).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import sys
import time
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

# Directories anyone may write on a stock Debian host; the student gets private empty ones.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _tmpfs(target: str, size_mb: int, mode: str = "1777") -> None:
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode={mode}")


def isolate_filesystem(hide: list[str], keep: list[str], private: list[str], scratch_mb: int) -> None:
    """New mount, network and IPC namespaces (no SysV or POSIX IPC object outlives the process): `private` (every directory anyone may write) replaced
    by empty tmpfs, `hide` covered by empty tmpfs (reference, checks, other submissions, the
    host user's home), `keep` (the Python installation) shown again inside them."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _tmpfs("/tmp", scratch_mb)
    hide = [p for p in hide if os.path.isdir(p)]
    hide = [p for p in hide if not any(other != p and _inside(p, other) for other in hide)]
    rescued = [p for p in keep if any(_inside(p, h) for h in hide) and os.path.isdir(p)]
    staged = []
    for number, path in enumerate(rescued):
        stage = f"/tmp/.keep{number}"
        os.mkdir(stage)
        _mount(path, stage, None, MS_BIND | MS_REC)
        staged.append((stage, path))
    for path in hide:
        _tmpfs(path, 1, mode="0755")
    for stage, path in staged:
        os.makedirs(path, exist_ok=True)
        _mount(stage, path, None, MS_MOVE)
        os.rmdir(stage)
    for path in private:
        if path != "/tmp" and os.path.isdir(path) and not any(_inside(path, h) for h in hide + ["/tmp"]):
            _tmpfs(path, 16)


def world_writable_dirs() -> list[str]:
    """Directories anyone may write on the root filesystem (the student gets private ones).
    A walk of the whole tree: the fork server runs it while it warms up."""
    found = set(SHARED_WRITABLE)
    root_dev = os.stat("/").st_dev
    for top, dirnames, _ in os.walk("/"):
        info = os.stat(top)
        if top in ("/proc", "/sys", "/dev") or info.st_dev != root_dev:
            dirnames[:] = []
        elif info.st_mode & stat.S_IWOTH:
            found.add(top)
            dirnames[:] = []  # what is inside is hidden with it
    return sorted(p for p in found if os.path.isdir(p))


def _inside(path: str, parent: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(parent)]) == os.path.abspath(parent)


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def apply_limits(memory_mb: int, pids: int | None, file_size_mb: int, cpu_seconds: int) -> None:
    """Memory is counted on top of the warm process's own address space (torch maps a lot)."""
    vm_size = _vm_size_bytes()
    memory = vm_size + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_mb << 20, file_size_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if pids is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over the cap fails to write, not the process


def _vm_size_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def pids_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except FileNotFoundError:
                continue
    return found


def reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_uid(uid: int, timeout: float = 5.0) -> bool:
    """SIGKILL every process of `uid` from a process of that uid, until /proc shows none."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pids_of_uid(uid):
            return True
        killer = os.fork()
        if killer == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                for _ in range(50):
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except ProcessLookupError:
                        break
            finally:
                os._exit(0)
        os.waitpid(killer, 0)
        reap_children()
        time.sleep(0.01)
    return not pids_of_uid(uid)


def kill_session(pid: int) -> None:
    """Without root (no uid of its own), the student's session is the best handle we have."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    reap_children()


def close_fds_except(keep: set[int]) -> None:
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        if fd not in keep and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def redirect_stdio() -> None:
    """Standard streams to /dev/null: nothing printed can reach the host channel or cost points."""
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)


def empty_directory(path: str) -> list[str]:
    """Remove everything under `path`; return what could not be removed."""
    import shutil

    left = []
    for entry in Path(path).iterdir() if os.path.isdir(path) else ():
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            pass
        if os.path.lexists(entry):
            left.append(str(entry))
    return left
