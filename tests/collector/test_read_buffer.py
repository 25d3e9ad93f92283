"""The collector's read buffer in front of paho's socket: same bytes, fewer system calls."""

from __future__ import annotations

import socket

import pytest

from collector.mqtt import _ReadBuffer


def test_serves_small_reads_from_one_recv_and_reports_what_is_left() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        buffered = _ReadBuffer(b)
        a.sendall(b"\x30\x05hello\x30\x02hi")
        got = [buffered.recv(1), buffered.recv(1), buffered.recv(5)]
        assert got == [b"\x30", b"\x05", b"hello"]
        assert buffered.pending() == 4  # the next packet is here, the kernel has nothing
        assert buffered.recv(100) == b"\x30\x02hi"  # never more than is buffered
        assert buffered.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing buffered, nothing on the wire
            buffered.recv(1)
        assert buffered.fileno() == b.fileno()  # everything else is the socket's
        a.close()
        assert buffered.recv(1) == b""  # closed: paho sees the end of the connection
