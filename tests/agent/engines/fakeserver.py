"""A real HTTP server on loopback that plays a `vllm serve` replica: /v1/models, and
/v1/completions answered by a test's function (an event stream, a status, a hang, a cut)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Stream:
    """Events to send, each a JSON value (sent with raw non-ASCII characters, as vLLM does) or
    a str sent as it is; ``cut``: close the connection after them, mid-body."""

    events: list[Any]
    cut: bool = False
    pieces: int = 1  # write each event in this many pieces (the client must join them)


@dataclass
class Status:
    code: int
    message: str = "unavailable"


@dataclass
class Hang:
    seconds: float


Answer = Stream | Status | Hang


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeReplica:
    answer: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)
    healthy: bool = True  # what /v1/models says
    url: str = ""


def completion(ids: list[int], texts: list[str] | None = None, cached: int = 0) -> list[Any]:
    """The events of a completion that streams ``ids`` one per event, then usage."""
    texts = texts or ["" for _ in ids]
    events: list[Any] = [
        {
            "choices": [
                {
                    "index": 0,
                    "text": text,
                    "token_ids": [i],
                    "finish_reason": "stop" if n == len(ids) - 1 else None,
                }
            ]
        }
        for n, (i, text) in enumerate(zip(ids, texts, strict=True))
    ]
    events.append(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": len(ids),
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    )
    return events


def _handler(replica: FakeReplica) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, code: int, value: Any) -> None:
            data = json.dumps(value).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if replica.healthy:
                self._json(200, {"data": [{"id": "tiny", "max_model_len": 4096}]})
            else:
                self._json(503, {"error": {"message": "down"}})

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(size))
            seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            replica.seen.append(seen)
            answer = replica.answer(seen)
            if isinstance(answer, Hang):
                time.sleep(answer.seconds)
                self.close_connection = True
                return
            if isinstance(answer, Status):
                self._json(answer.code, {"error": {"message": answer.message}})
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream; charset=utf-8")
            self.send_header("transfer-encoding", "chunked")  # as uvicorn streams
            self.end_headers()
            self.close_connection = True
            for event in answer.events:
                text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
                data = f"data: {text}\n\n".encode()
                step = max(1, len(data) // answer.pieces)
                for k in range(0, len(data), step):
                    self._chunk(data[k : k + step])
            if answer.cut:  # the connection closes in the middle of the body, like a kill -9
                return
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def serve_fake(answer: Callable[[Seen], Answer], host: str = "127.0.0.1") -> Iterator[FakeReplica]:
    """Run a FakeReplica in a thread until the generator is closed."""
    replica = FakeReplica(answer)
    server = ThreadingHTTPServer((host, 0), _handler(replica))
    server.daemon_threads = True
    replica.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replica
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
