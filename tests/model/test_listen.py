"""The workers' shared socket (``model/__main__.py``): accepted connections get TCP_NODELAY.

asyncio sets TCP_NODELAY on an accepted connection only when the listening socket's protocol
is TCP; a socket made as ``socket.socket(AF_INET)`` (protocol 0, as uvicorn's ``bind_socket``
makes it) does not qualify, and every keep-alive answer then waits for a delayed ACK (~40 ms).
"""

from __future__ import annotations

import asyncio
import socket

from model.__main__ import listen


async def _accepted_nodelay(server_socket: socket.socket) -> int:
    """Serve ``server_socket`` with asyncio, connect once, return TCP_NODELAY of the accepted socket."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=server_socket)
    port = server_socket.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    value = await asyncio.wait_for(seen, 10)
    writer.close()
    server.close()
    await server.wait_closed()
    return value


def test_connections_accepted_from_the_workers_socket_have_nodelay() -> None:
    sock = listen("127.0.0.1", 0)
    sock.listen()
    assert sock.proto == socket.IPPROTO_TCP
    assert asyncio.run(_accepted_nodelay(sock)) != 0


def test_a_protocol_zero_socket_would_not_get_it() -> None:
    # the mechanism the workaround is for: same family and type, protocol left 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    assert asyncio.run(_accepted_nodelay(sock)) == 0
