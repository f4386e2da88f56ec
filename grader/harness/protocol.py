"""Length-prefixed frames on sockets and pipes.

Control messages (host <-> fork server <-> grader process) are JSON. Everything that crosses
from the student process is `torch.save` bytes read back with `torch.load(weights_only=True)`:
data only (tensors, numbers, strings, lists, tuples, dicts), never pickle.
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import struct
import time
from typing import Any, BinaryIO

_HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024


class ChannelClosed(EOFError):
    """The other side went away (crashed, exited or was killed)."""


class ChannelTimeout(TimeoutError):
    """No frame arrived in time."""


def _read_exact(read, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = read(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("peer closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _wait_readable(fileno: int, deadline: float | None) -> None:
    if deadline is None:
        return
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelTimeout("timed out waiting for a reply")
        ready, _, _ = select.select([fileno], [], [], remaining)
        if ready:
            return


class Channel:
    """Frames over a socket or a pair of pipes (file descriptors)."""

    def __init__(self, read_fd: int, write_fd: int | None = None, max_frame: int = MAX_FRAME):
        self.read_fd = read_fd
        self.write_fd = read_fd if write_fd is None else write_fd
        self.max_frame = max_frame

    @classmethod
    def of_socket(cls, sock: socket.socket, **kwargs) -> "Channel":
        channel = cls(sock.fileno(), **kwargs)
        channel.sock = sock  # the socket owns the fd: closing the channel closes it
        return channel

    def send_bytes(self, payload: bytes) -> None:
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        while data:
            written = os.write(self.write_fd, data)
            data = data[written:]

    def recv_bytes(self, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        read = self._reader(deadline)
        (size,) = _HEADER.unpack(_read_exact(read, _HEADER.size))
        if size > self.max_frame:
            raise ChannelClosed(f"frame of {size} bytes is over the {self.max_frame} byte limit")
        return _read_exact(read, size)

    def _reader(self, deadline: float | None):
        def read(n: int) -> bytes:
            _wait_readable(self.read_fd, deadline)
            return os.read(self.read_fd, n)
        return read

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(message).encode())

    def recv_json(self, timeout: float | None = None) -> dict[str, Any]:
        return json.loads(self.recv_bytes(timeout))

    def send_data(self, value: Any) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(value, buffer)
        self.send_bytes(buffer.getvalue())

    def recv_data(self, timeout: float | None = None) -> Any:
        import torch

        return torch.load(io.BytesIO(self.recv_bytes(timeout)), weights_only=True)

    sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            return
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass


def stream_channel(reader: BinaryIO, writer: BinaryIO) -> Channel:
    return Channel(reader.fileno(), writer.fileno())
