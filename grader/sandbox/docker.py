"""`--sandbox docker`: the fork server in a container of the sandbox image (docker SDK).

The container runs `python -m grader.harness.forkserver` as root with only the capabilities
the fork server needs (switching to the student and grader uids, chowning the student's work
directory, and emptying whatever the student uid wrote), no network, a read-only root, tmpfs
scratch space, a memory limit without swap, a pids limit and a CPU quota. The host talks to it
over the container's stdin/stdout: attached without a tty, docker multiplexes stdout and stderr
with 8-byte headers, so a pump thread demultiplexes stdout into a socket pair whose other end is
the frame channel, and keeps the tail of stderr for diagnostics.

Containers never outlive their owner: they are removed on close, removed by the engine when the
fork server exits (which it does when the host's end of stdin closes, e.g. when the host process
is killed), and labelled with their owner so that the next start-up reaps any left behind.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import struct
import threading
import time
import weakref

from grader.harness.protocol import Channel
from grader.sandbox import SandboxError
from grader.sandbox.forkserver_client import ForkServerSandbox
from grader.sandbox.slots import Slot

LABEL = "grader.sandbox"
LABEL_OWNER = "grader.owner"
ASSIGNMENTS_DIR = "/opt/grader/assignments"
REFERENCE_DIR = "/opt/grader/reference"
# The fork server's own writable state (matplotlib's config and font cache): root only.
PRIVATE_DIR = "/run/grader"
# Everything the student uid can write in the container; emptied and checked after each submission.
SCRATCH_DIRS = ["/tmp", "/dev/shm", "/dev/mqueue"]
# Switch uids (setuid, setgid, setgroups), chown the work directory, and remove whatever the
# student left, even in its own 0700 or sticky directories (dac_override, fowner).
CAPABILITIES = ["SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "FOWNER"]
# IPC objects outlive their processes: SysV shared memory is removed with its last user, and
# SysV message queues, semaphore sets and POSIX message queues cannot be created at all.
SYSCTLS = {"kernel.shm_rmid_forced": "1", "kernel.msgmni": "0", "kernel.sem": "250 32000 32 0",
           "fs.mqueue.queues_max": "0"}
DEFAULT_STUDENT_UID_BASE = 62000
DEFAULT_GRADER_UID = 61001
ENGINE_TIMEOUT = 60

_open_sandboxes: "weakref.WeakSet[DockerSandbox]" = weakref.WeakSet()
_reaped = False
_reap_lock = threading.Lock()
_available: bool | None = None
_available_lock = threading.Lock()


# ---- the engine ---------------------------------------------------------------------------

def _client(timeout: int = ENGINE_TIMEOUT):
    import docker

    client = docker.from_env(timeout=timeout)
    client.ping()
    return client


def engine_running() -> bool:
    """Does a Docker engine answer? Never raises."""
    try:
        _client(timeout=5)
        return True
    except Exception:
        return False


def engine_available() -> bool:
    """An engine answers and the sandbox image for the current content exists (cached; never raises)."""
    global _available
    with _available_lock:
        if _available is None:
            try:
                from grader.sandbox.image import image_ref

                _client(timeout=5).images.get(image_ref())
                _available = True
            except Exception:
                _available = False
        return _available


def _forget_availability() -> None:
    global _available
    with _available_lock:
        _available = None


engine_available.cache_clear = _forget_availability  # type: ignore[attr-defined]


# ---- ownership and reaping ----------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _owner_label() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def _owner_alive(owner: str) -> bool:
    """False only when the owner was a process of this host that is gone."""
    try:
        host, pid, started = owner.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another machine's: not ours to judge
    current = _start_time(pid)
    return current is not None and (started == "?" or current == started)


def reap_stale_containers(client) -> int:
    """Remove sandbox containers whose owner process died without removing them."""
    removed = 0
    try:
        containers = client.containers.list(all=True, filters={"label": f"{LABEL}=1"})
    except Exception:
        return 0
    for container in containers:
        if not _owner_alive(container.labels.get(LABEL_OWNER, "")):
            if _remove(client, container.id):
                removed += 1
    return removed


def _remove(client, container_id: str, timeout: float = 20.0) -> bool:
    """Force-remove a container and wait until the engine no longer knows it."""
    import docker.errors

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            pass  # e.g. the engine is already removing it (auto-remove): wait below
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return True
        except Exception:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@atexit.register
def _remove_all_at_exit() -> None:
    for box in list(_open_sandboxes):
        try:
            box.close()
        except Exception:
            pass


# ---- the multiplexed stream ---------------------------------------------------------------

def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _pump(source: socket.socket, stdout: socket.socket, stderr_tail: bytearray, limit: int = 16384) -> None:
    """Copy the container's stdout frames to `stdout` and keep the tail of its stderr; close
    `stdout` when the stream ends, so the channel reader sees the end."""
    try:
        while True:
            header = _recv_exact(source, 8)
            if header is None:
                break
            kind, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = _recv_exact(source, size)
            if payload is None:
                break
            if kind == 1:
                stdout.sendall(payload)
            elif kind == 2:
                stderr_tail += payload
                del stderr_tail[:-limit]
    except OSError:
        pass
    finally:
        try:
            stdout.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        stdout.close()


# ---- the sandbox --------------------------------------------------------------------------

def _limits() -> dict:
    """Container limits: enough for the largest assignment's student limits plus the fork server."""
    from grader import assignments

    specs = list(assignments.all_assignments().values())
    memory_mb = max([s.limits.memory_mb for s in specs] or [1024]) + 1024
    pids = max([s.limits.pids for s in specs] or [256]) + 64
    scratch_mb = max([s.limits.workdir_mb for s in specs] or [256])
    memory_mb = int(os.environ.get("GRADER_DOCKER_MEMORY_MB", memory_mb))
    cpus = float(os.environ.get("GRADER_DOCKER_CPUS", "1"))
    return {"memory_mb": memory_mb, "pids": pids, "scratch_mb": scratch_mb, "cpus": cpus}


class DockerSandbox(ForkServerSandbox):
    kind = "docker"

    def __init__(self, image: str | None = None) -> None:
        super().__init__()
        import docker.errors

        from grader.sandbox.image import image_ref

        self.container_id: str | None = None
        self._socket = None
        self._pump_thread: threading.Thread | None = None
        self._stderr = bytearray()
        self._logs = ""
        try:
            self.client = _client()
        except Exception as exc:
            raise SandboxError(f"no Docker engine answers ({exc}); use --sandbox local or start one") from None
        self.image = image or image_ref()
        try:
            labels = self.client.images.get(self.image).labels or {}
        except docker.errors.ImageNotFound:
            raise SandboxError(f"the sandbox image {self.image} is not built: run `grader build-image`") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"the Docker engine failed: {exc}") from None
        global _reaped
        with _reap_lock:
            if not _reaped:
                _reaped = True
                reap_stale_containers(self.client)
        # Each container's students get a uid of their own: the per-uid process cap (RLIMIT_NPROC)
        # is counted host-wide, so a fork bomb in one container must not starve another.
        self.slot = Slot()
        self.student_uid = self.slot.uid("GRADER_DOCKER_UID_BASE", DEFAULT_STUDENT_UID_BASE)
        self.grader_uid = int(labels.get("grader.grader_uid", DEFAULT_GRADER_UID))
        config = {
            "assignments_dir": labels.get("grader.assignments_dir", ASSIGNMENTS_DIR),
            "reference_dir": labels.get("grader.reference_dir", REFERENCE_DIR),
            "student_uid": self.student_uid,
            "grader_uid": self.grader_uid,
            "isolate": False,  # the container is the isolation
            "scratch_root": "/tmp",
            "scratch_dirs": SCRATCH_DIRS,
            # The checks' working directory, out of the student's /tmp (traversable, not listable).
            "grader_tmp": f"{PRIVATE_DIR}/checks",
        }
        _open_sandboxes.add(self)
        try:
            self._start(config)
        except SandboxError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SandboxError(f"the docker sandbox could not start: {exc}; {self.diagnostics()}") from None
        self._handshake(Channel(os.dup(self._reader.fileno()), os.dup(self._socket.fileno())))

    def _start(self, config: dict) -> None:
        limits = _limits()
        matplotlib_dir = f"{PRIVATE_DIR}/matplotlib"
        # Copy the image's prebuilt font cache where matplotlib may write (it insists), then
        # become the fork server.
        script = (f"mkdir -p {matplotlib_dir} && cp -p /opt/grader/mplconfig/* {matplotlib_dir}/ 2>/dev/null; "
                  'exec python -m grader.harness.forkserver "$1"')
        container = self.client.containers.create(
            self.image,
            command=["/bin/sh", "-c", script, "grader-sandbox", json.dumps(config)],
            # detach=False with stdin_open makes docker-py set StdinOnce: the engine closes the
            # fork server's stdin when our attachment ends, even if this process is killed.
            stdin_open=True, tty=False, detach=False,
            user="0:0", working_dir="/",
            environment={"MPLCONFIGDIR": matplotlib_dir, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                         "OMP_NUM_THREADS": "1"},
            labels={LABEL: "1", LABEL_OWNER: _owner_label()},
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits['scratch_mb']}m,mode=1777",
                   PRIVATE_DIR: "rw,nosuid,nodev,noexec,size=64m,mode=0711"},
            shm_size="64m",
            mem_limit=f"{limits['memory_mb']}m", memswap_limit=f"{limits['memory_mb']}m",
            pids_limit=limits["pids"],
            nano_cpus=int(limits["cpus"] * 1e9),
            cap_drop=["ALL"], cap_add=CAPABILITIES,
            security_opt=["no-new-privileges"],
            sysctls=SYSCTLS,
            auto_remove=True,
            log_config={"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
        )
        self.container_id = container.id
        attached = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        self._socket = getattr(attached, "_sock", attached)
        self._attached = attached
        self._reader, writer = socket.socketpair()
        self._pump_thread = threading.Thread(target=_pump, args=(self._socket, writer, self._stderr),
                                             name=f"docker-pump-{container.short_id}", daemon=True)
        self._pump_thread.start()
        container.start()

    def diagnostics(self) -> str:
        text = self._stderr.decode(errors="replace").strip()
        if not text and self.container_id:
            try:
                text = self.client.api.logs(self.container_id, stdout=False, stderr=True, tail=40).decode(errors="replace")
            except Exception:
                text = self._logs
        return (text[-2000:] or "(the container wrote nothing on stderr)")

    def alive(self) -> bool:
        return super().alive() and self._pump_thread is not None and self._pump_thread.is_alive()

    def close(self) -> None:
        super().close()  # asks the fork server to exit and closes the channel
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
            try:
                self._attached.close()
            except Exception:
                pass
            self._socket = None
        if self.container_id is not None:
            _remove(self.client, self.container_id)
            self.container_id = None
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
            self._reader = None
        _open_sandboxes.discard(self)
        if getattr(self, "slot", None) is not None:
            self.slot.release()
