"""The sandbox's fork server: `python -m grader.harness.forkserver CONFIG_JSON`.

It imports and warms torch and friends once, then, per submission, forks a grader process
(pytest over the checks, reference loaded) and, on the grader's request, student processes
(drop to the slot's student uid, new session, limits, then the submission). It never runs
student code itself. It talks to the host over stdin/stdout in length-prefixed JSON frames;
nothing a student process can write reaches that channel.
"""

from __future__ import annotations

import gc
import json
import math
import os
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.harness import isolation
from grader.harness.protocol import Channel, ChannelClosed

SPAWNED, KILLED = b"s", b"k"


def warm_up() -> dict:
    """Import what graders and students use, and trigger torch's lazy imports, before any fork."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pytest  # noqa: F401
    import torch
    import torch.utils.data  # noqa: F401

    import grader.harness.plugin  # noqa: F401
    import grader.harness.runner  # noqa: F401

    torch.set_num_threads(1)
    b = torch.tensor(4.0, requires_grad=True)
    optimizer = torch.optim.SGD([b], lr=0.1, maximize=True)
    (2 * (3.0 - b) + 5.0).backward()
    optimizer.step()
    optimizer.zero_grad()
    adam = torch.optim.Adam([b], lr=0.1)
    (b * b).backward()
    adam.step()
    buffer = io.BytesIO()
    torch.save({"b": b.detach(), "n": [1, 2.0, "x", (3,)]}, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)
    list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 2)), batch_size=3, shuffle=True))
    gc.collect()
    gc.freeze()  # the warm heap stays shared with every fork: no copy-on-write from the collector
    return {"torch": torch.__version__, "python": sys.version.split()[0], "pid": os.getpid()}


class ForkServer:
    """Config keys (JSON from the launcher): assignments_dir, reference_dir; student_uid and
    grader_uid (absent: no uid change); isolate, hide, keep (namespaces and hidden paths, local
    root only); scratch_root (where the student's work dir goes; absent: a temp dir);
    scratch_dirs (emptied and checked between submissions); grader_tmp (the checks' temp dir)."""

    def __init__(self, config: dict, channel: Channel):
        self.config = config
        self.host = channel
        self.student_uid = config.get("student_uid")
        self.student_gid = config.get("student_gid", self.student_uid)
        self.grader_uid = config.get("grader_uid")
        self.grader_gid = config.get("grader_gid", self.grader_uid)
        self.student_pids: list[int] = []
        scratch = config.get("scratch_root") or tempfile.mkdtemp(prefix="grader-scratch-")
        self.scratch_root = scratch
        self.workdir = os.path.join(scratch, "work")
        if config.get("grader_tmp"):
            os.makedirs(config["grader_tmp"], mode=0o700, exist_ok=True)
            if self.grader_uid is not None:
                os.chown(config["grader_tmp"], self.grader_uid, self.grader_gid)

    # ---- host loop -------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                message = self.host.recv_json()
            except ChannelClosed:
                return
            if message["op"] == "exit":
                return
            if message["op"] == "grade":
                self.host.send_json(self.grade(message["job"]))

    # ---- one submission --------------------------------------------------------------
    def grade(self, job: dict) -> dict:
        started = time.monotonic()
        server_end, grader_end = socket.socketpair()
        grader_pid = os.fork()
        if grader_pid == 0:
            server_end.close()
            self._grader_process(grader_end, job)
        grader_end.close()
        channel = Channel.of_socket(server_end)
        outcome = {"event": "result", "results": {}, "notes": [], "error": None}
        while True:
            try:
                message = channel.recv_json()
            except ChannelClosed:
                break
            if message["op"] == "spawn":
                self._kill_students()
                grader_side = self._spawn_student(job, server_end)
                socket.send_fds(server_end, [SPAWNED], [grader_side.fileno()])
                grader_side.close()
            elif message["op"] == "kill":
                self._kill_students()
                server_end.sendall(KILLED)
            elif message["op"] == "result":
                outcome.update(results=message["results"], notes=message["notes"])
        _, status = os.waitpid(grader_pid, 0)
        server_end.close()
        if status != 0 and not outcome["results"]:
            outcome["error"] = f"the grader process ended abnormally (wait status {status})"
        self._kill_students()
        outcome["clean"] = self._clean()
        outcome["elapsed"] = time.monotonic() - started
        return outcome

    def _grader_process(self, sock: socket.socket, job: dict) -> None:
        code = 1
        try:
            isolation.close_fds_except({sock.fileno()})
            isolation.redirect_stdio()
            if self.grader_uid is not None:
                isolation.drop_privileges(self.grader_uid, self.grader_gid)
            tempfile.tempdir = self.config.get("grader_tmp")  # None: the usual default
            channel = Channel.of_socket(sock)
            results, notes = self._run_checks(sock, channel, job)
            channel.send_json({"op": "result", "results": results, "notes": notes})
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)

    def _run_checks(self, sock: socket.socket, channel: Channel, job: dict) -> tuple[dict, list]:
        from grader.harness.clients import StudentClient
        from grader.harness.runner import run_checks

        limits = job["limits"]
        deadline = time.monotonic() + limits["total_timeout"]

        def spawn() -> Channel:
            channel.send_json({"op": "spawn"})
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
            return Channel.of_socket(socket.socket(fileno=fds[0]))

        def kill() -> None:
            channel.send_json({"op": "kill"})
            sock.recv(1)

        clients = []

        def make_student(seeder):
            client = StudentClient(spawn, kill, limits["probe_timeout"], limits["import_timeout"], deadline, seeder)
            clients.append(client)
            return client

        assignment_dir = Path(self.config["assignments_dir"]) / job["slug"]
        reference = Path(self.config["reference_dir"]) / f"{job['slug']}.py"
        results = run_checks(assignment_dir, reference, make_student, job["seed"], deadline)
        client = clients[0]
        notes = list(client.import_notes or [])
        if client.import_failure:
            notes.append({"kind": "import_error", "message": client.import_failure})
        return results, notes

    # ---- student processes -----------------------------------------------------------
    def _spawn_student(self, job: dict, server_end: socket.socket) -> socket.socket:
        """Fork a student process; return the grader's end of its socket."""
        grader_side, student_side = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            grader_side.close()
            server_end.close()
            self._student_process(student_side, job)
        student_side.close()
        self.student_pids.append(pid)
        return grader_side

    def _student_process(self, sock: socket.socket, job: dict) -> None:
        from grader.harness import student

        channel = Channel.of_socket(sock)
        try:
            probes = self._prepare_student(sock, job)
        except BaseException:
            import traceback

            channel.send_data({"setup_error": traceback.format_exc()[-3000:]})
            os._exit(1)
        # From here on the process runs student code and may be hostile.
        try:
            module_name = "__main__" if job["kind"] == "ipynb" else "submission"
            module, notes = student.execute_cells(job["cells"], module_name)
            channel.send_data({"notes": notes})
            student.serve(channel, module, probes)
        finally:
            os._exit(0)

    def _prepare_student(self, sock: socket.socket, job: dict):
        """Session, isolation, working directory, uid, limits: everything before the first cell."""
        from grader.harness import student

        os.setsid()
        isolation.close_fds_except({sock.fileno()})
        isolation.redirect_stdio()
        limits = job["limits"]
        assignment_dir = Path(self.config["assignments_dir"]) / job["slug"]
        probes = student.load_module(assignment_dir / "probes.py", "probes")
        data_dir = assignment_dir / "data"
        data = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()} if data_dir.is_dir() else {}
        if self.config.get("isolate"):
            isolation.isolate_filesystem(self.config["hide"], self.config["keep"], self.config["private"],
                                         limits["workdir_mb"])
        os.makedirs(self.workdir, exist_ok=True)
        for name, content in data.items():
            Path(self.workdir, name).write_bytes(content)
        if self.student_uid is not None:
            for path in [self.workdir, *(str(Path(self.workdir, n)) for n in data)]:
                os.chown(path, self.student_uid, self.student_gid)
            isolation.drop_privileges(self.student_uid, self.student_gid)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, 9)  # after the uid change, which clears it
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
        isolation.apply_limits(
            limits["memory_mb"],
            limits["pids"] if self.student_uid is not None else None,
            limits["file_size_mb"],
            math.ceil(limits["total_timeout"]) + 1,
        )
        os.chdir(self.workdir)
        os.environ.update(HOME=self.workdir, TMPDIR=self.workdir, MPLBACKEND="Agg", MPLCONFIGDIR=self.workdir)
        student.seed_everything(job["seed"])
        return probes

    def _kill_students(self) -> None:
        if self.student_uid is not None:
            isolation.kill_uid(self.student_uid)
        else:
            for pid in self.student_pids:
                isolation.kill_session(pid)
        for pid in self.student_pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.student_pids.clear()
        isolation.reap_children()

    def _clean(self) -> bool:
        """Empty every directory the student uid could write, and say whether that worked."""
        left = []
        for path in self.config.get("scratch_dirs", [self.scratch_root]):
            left += isolation.empty_directory(path)
        alive = isolation.pids_of_uid(self.student_uid) if self.student_uid is not None else []
        return not left and not alive


def main() -> None:
    config = json.loads(sys.argv[1])
    # The host channel is our original stdout; anything else printed goes to stderr.
    host_out = os.dup(1)
    os.dup2(2, 1)
    channel = Channel(0, host_out)
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    if config.get("isolate"):
        with ThreadPoolExecutor(1) as scanner:
            private = scanner.submit(isolation.world_writable_dirs)
            info = warm_up()
            config["private"] = private.result()
    else:
        info = warm_up()
    channel.send_json({"event": "ready", **info})
    ForkServer(config, channel).serve()


if __name__ == "__main__":
    main()
