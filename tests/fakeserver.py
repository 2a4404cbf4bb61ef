"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for tests and for trying the pipeline by hand.

Scripted replies queued with ``enqueue`` are served first, in order; after that ``responder`` answers from the
request. Every request is recorded in ``history``. Run it by hand with::

    python -m tests.fakeserver --port 8080 --mode reference --delay 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT.parent / "shared" / "reference"
# The lenses of the published reference pages, in their order. The pages name no lens, so this is how their
# quotes are told apart; it is a fact about those two pages, not the project's panel, which personas/ sets.
REFERENCE_PANEL = ("builder", "skeptic", "buyer", "futurist")

# Valid quotes in our own words, one per lens of the test project, hitting every beat; {name} is the tool's name.
# A lens without its own (a persona added by a test, say) gets OTHER_LENS, which hits the builder's beats in other
# words: a persona copied from builder.toml passes with it, and it does not repeat the builder's point.
SYNTHETIC = {
    "builder": (
        "The core primitive of {name} is small enough to hold in your head, and that is the point. The DX bet is "
        "that a developer should reach a working result before reading a second page of documentation, and it is "
        "the right bet for a team that wants to try ideas quickly. The moment of truth is `pip install {slug}` "
        "followed by one call from a notebook, and it behaves on the first attempt instead of failing on a "
        "missing flag. Error messages say what to change, defaults are sensible, and nothing forces a config file "
        "on you before you need one. The decision that earns the ship is keeping the surface narrow: fewer knobs "
        "mean fewer ways to hold it wrong, and the ones that remain are named for what they do."
    ),
    "skeptic": (
        "The category is crowded, and {name} has direct competitors with bigger budgets and louder launches. It "
        "breaks in the scenario every team eventually hits: traffic triples during a launch week, limits tighten, "
        "and nobody can see which layer is slow or why. What kills it within 12 months is a rival that bundles "
        "the same capability into a product teams already pay for, turning a standalone tool into a checkbox on "
        "someone else's pricing page. I could be wrong if the makers keep shipping faster than the incumbents can "
        "copy them, and if their users keep choosing it when a bundled option is one click away."
    ),
    "buyer": (
        "The buyer for {name} is a small engineering team with a real budget line for developer tooling and a "
        "lead who signs off without a procurement cycle. The pricing is simple enough to forecast, which matters "
        "more to that buyer than the headline rate, and margins hold as long as usage grows faster than discounts. "
        "The moat is habit: once a team wires it into builds and dashboards, switching costs show up as lost "
        "weeks rather than line items. The stress test is a downturn, when finance asks for every tool's return "
        "and this one has to prove it saves more hours than it costs."
    ),
    "futurist": (
        "My thesis is falsifiable: within two years, most teams in this space will treat {name} or something "
        "like it as plumbing rather than a product decision. The trend it rides is the steady fall in the cost "
        "of running models, and it arrives on time, neither ahead of demand nor behind it. The second-order "
        "effect that matters is organisational: once the tool is cheap and dull, small teams attempt projects "
        "that used to need a platform group, and budgets move with them. The future state, if this wins, is a "
        "default that nobody debates, chosen as quietly as a logging library."
    ),
}

OTHER_LENS = (
    "What {name} hands an operator is one building block that survives a pager rotation. The bet its makers "
    "placed is that the people who run it at three in the morning matter as much as the people who write the "
    "first call, and I agree with them. My check is `{slug} --version` on a fresh host, then a restart under load, "
    "and the service comes back with its state intact and its logs readable. Upgrades roll forward one node at a "
    "time and roll back without a migration script. The decision I would defend in a review is the plain config "
    "format: one file, read at start, diffable in a pull request, so nobody debugs a setting they cannot see."
)

# Fluent and on-topic, but it hits none of the beats of any lens.
OFFBEAT = (
    "{name} arrives with a tidy website, a friendly launch post and a clear sense of who its makers hope will "
    "notice it. The documentation reads well, the examples are short, and the screenshots suggest a team that "
    "cares about polish. People who tried it over the weekend describe a pleasant afternoon, and several of them "
    "say they will keep an eye on it as it matures. There is a community chat with helpful regulars, a roadmap "
    "page that is updated often, and a newsletter that explains each release in plain language. Overall it "
    "feels like a thoughtful piece of work from people who enjoy what they build, and that energy comes through "
    "in every page they have published so far, from the tutorials to the changelog."
)


# The endless body (FakeChatServer.endless): what it repeats, and where it stops sending (it never ends the body).
ENDLESS_CHUNK = b"and on " * 9362  # about 64 KB
ENDLESS_CEILING = 64 * 1024 * 1024


def reference_quotes(directory: Path = REFERENCE_DIR) -> dict[tuple[str, str], str]:
    """(lens, tool name) -> published quote, read from the reference pages."""
    quotes: dict[tuple[str, str], str] = {}
    for page in sorted(directory.glob("*.txt")):
        lines = page.read_text(encoding="utf-8").splitlines()
        name_a, name_b = lines[1].split(" vs ")
        found = [line.strip()[1:-1] for line in lines if line.startswith("“")]
        for index, quote in enumerate(found):
            quotes[(REFERENCE_PANEL[index // 2], (name_a, name_b)[index % 2])] = quote
    return quotes


def lens_and_tool(request: dict[str, Any]) -> tuple[str, str]:
    """The lens, and the tool's name: from the fenced fact sheet (the prompt names the tool nowhere else), or from a
    ``Tool:`` line."""
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    lens = re.search(r"^Lens: (\S+)$", text, re.MULTILINE)
    fenced = re.search(r"^(=====FACT-SHEET-\w+=====)\n(.*?)\n\1$", text, re.MULTILINE | re.DOTALL)
    tool = re.search(r"^Tool: (.+)$", text, re.MULTILINE)
    try:
        name = str(json.loads(fenced.group(2))["name"]) if fenced else tool.group(1).strip() if tool else "?"
    except (ValueError, KeyError, TypeError):
        name = "?"
    return (lens.group(1) if lens else "?", name)


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def synthetic(request: dict[str, Any]) -> str:
    lens, name = lens_and_tool(request)
    quote = SYNTHETIC.get(lens, OTHER_LENS).format(name=name, slug=slug_of(name))
    return json.dumps({"verdict": "skip" if lens == "skeptic" else "ship", "quote": quote})


# How each lens cites the entry price in ``attentive``: in its own words, as four reviewers would (one sentence
# in all four would be a stock sentence, which the sameness check rightly flags).
CITING_ENTRY = {
    "builder": "Entry is {entry}, which sets the bar.",
    "skeptic": "Rivals only have to beat {entry} to win the comparison.",
    "buyer": "A budget holder reads {entry} before anything else on the card.",
    "futurist": "Watch how {entry} moves over the coming year.",
}


def attentive(request: dict[str, Any]) -> str:
    """Like ``synthetic``, but the quote also cites the entry price from the fact sheet, as a real model would:
    a changed fact sheet gives a changed quote."""
    reply = json.loads(synthetic(request))
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    entry = re.search(r'"entry": "([^"]*)"', text)
    citing = CITING_ENTRY.get(lens_and_tool(request)[0], "Operators will check {entry} against their hosting budget.")
    reply["quote"] += " " + citing.format(entry=entry.group(1) if entry else "unknown")
    return json.dumps(reply)


def echoing_key(content: str, authorization: str) -> str:
    """``content`` with the key the request was sent with (its Authorization header) at the end of the quote, as a
    server or a model that echoes what it was given would write it."""
    key = authorization.removeprefix("Bearer ")
    try:
        reply = json.loads(content)
        reply["quote"] += f" (It was asked with the key {key}.)"
        return json.dumps(reply)
    except (ValueError, KeyError, TypeError):
        return f"{content} {key}"


def offbeat(request: dict[str, Any]) -> str:
    return json.dumps({"verdict": "ship", "quote": OFFBEAT.format(name=lens_and_tool(request)[1])})


def reference(quotes: dict[tuple[str, str], str] | None = None) -> Callable[[dict[str, Any]], str]:
    """The published quote for the lens and tool; a lens the reference pages lack gets the synthetic quote."""
    quotes = reference_quotes() if quotes is None else quotes

    def answer(request: dict[str, Any]) -> str:
        lens, tool = lens_and_tool(request)
        if lens not in REFERENCE_PANEL:
            return synthetic(request)
        return json.dumps({"verdict": "ship", "quote": quotes[(lens, tool)]})
    return answer


@dataclass
class Scripted:
    """One queued reply: a status, headers, and either a message content or a raw body."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float = 0.0
    finish_reason: str = "stop"
    drop: bool = False  # send half of the body, then close the connection
    choices: list[Any] | None = None  # replace the choices list (e.g. [] for an empty one)


PROVIDER_HEADER = "x-inference-provider"  # the router names the provider that answered, on replies and errors alike


def suffix_of(model: str) -> str:
    """The provider or policy a ``model:suffix`` names (the router's spelling), or "" for the model alone (auto)."""
    return model.rpartition(":")[2] if ":" in model else ""


def alternate(*providers: str) -> Callable[[dict[str, Any]], str]:
    """A router's choice for ``FakeChatServer.serve``: a request whose model names a provider (``model:together``)
    goes to it; one that names none, or a policy, to each of ``providers`` in turn."""
    turn = itertools.cycle(providers)
    lock = threading.Lock()

    def serve(request: dict[str, Any]) -> str:
        named = suffix_of(str(request.get("model", "")))
        if named and named not in ("auto", "fastest", "cheapest"):
            return named
        with lock:
            return next(turn)
    return serve


def shape_of(request: dict[str, Any]) -> str:
    """The response_format shape of a request, named as pipeline/dialects.py names dialects: ``json_schema``
    (OpenAI's), ``json_object_schema`` (llama.cpp's), ``tgi`` (``value``), ``json_object`` (no schema), ``none``."""
    shape = request.get("response_format")
    if not isinstance(shape, dict):
        return "none"
    if shape.get("type") == "json_schema":
        return "json_schema"
    if shape.get("type") == "json_object":
        return "json_object_schema" if "schema" in shape else "tgi" if "value" in shape else "json_object"
    return str(shape.get("type"))


def completion_body(model: str, content: str | None, finish_reason: str = "stop",
                    usage: tuple[int, int] | None = (400, 200)) -> bytes:
    """A chat-completions answer; ``usage=None`` leaves the usage out, as some servers do."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return json.dumps(body).encode()


class QuietServer(ThreadingHTTPServer):
    request_queue_size = 256  # a client opening 64 connections at once is not refused by a short listen backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout, interrupt) closes its end: that is the test's point, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeChatServer:
    def __init__(self, responder: Callable[[dict[str, Any]], str] = synthetic, delay: float = 0.0,
                 port: int = 0) -> None:
        self.responder = responder
        self.delay = delay
        self.usage: tuple[int, int] | None = (400, 200)  # token counts every reply reports; None: no usage
        self.lens_delay: dict[str, float] = {}  # lens -> extra seconds before its replies (some slow, some not)
        self.trickle: float | None = None  # send each body one byte at a time, this many seconds apart
        # Answer every chat request with a body that never ends: a reply's JSON opened, then its content in chunks
        # of 64 KB without end (up to ENDLESS_CEILING bytes, so that a client with no cap cannot take the test
        # machine's memory; the body is then held open, never finished). ``endless_sent`` counts the body's bytes
        # the server managed to send before the client closed the connection.
        self.endless = False
        self.endless_sent = 0
        self.down: dict[str, int] = {}  # model name -> the status every request for it gets (a provider that is down)
        self.failing: dict[str, int] = {}  # tool name -> the status every request about that tool gets
        self.history: list[dict[str, Any]] = []
        self.echo_key = False  # every answer from ``responder`` repeats the request's key (see ``echoing_key``)
        # GET /v1/models: the model list, as the router documents it ([{"id": ..., "providers": [...]}]) or as an
        # endpoint's server gives it ([{"id": ..., "owned_by": ...}]), served as {"object": "list", "data": ...};
        # None answers 404 (at once, whole). GET requests are recorded in ``gets`` (path and headers), apart from
        # the chat requests in ``history``.
        self.models: list[dict[str, Any]] | None = None
        self.gets: list[dict[str, Any]] = []
        # Structured output as a server understands it: the response_format shapes it takes (see ``shape_of``);
        # any other gets ``refusal`` (status, with a message naming response_format). None: every shape is taken.
        self.accepts: set[str] | None = None
        self.refusal = 500
        self.in_flight = 0
        self.replied: list[float] = []  # when each answer was sent (time.perf_counter), for the benchmark
        self.max_in_flight = 0
        # A provider's concurrency limit: a request arriving while ``limit`` are being worked on is answered 429
        # at once, with ``Retry-After: limit_retry_after``. None: no limit.
        self.limit: int | None = None
        self.limit_retry_after = "1"
        self.working = 0  # requests being worked on (between arrival and their answer), 429s aside
        self.max_working = 0
        self.overloaded = 0  # requests answered 429 for the limit
        # Inference Providers behind the router: ``serve(request)`` names the provider that takes a chat request (see
        # ``alternate``), sent back as x-inference-provider on its answer and recorded as the request's "provider" in
        # ``history``. ``provider_status``: provider -> the status every request it takes gets (429 with
        # ``Retry-After: provider_retry_after``, say), with ``provider_error``'s message; ``provider_fenced``:
        # providers that ignore response_format and wrap their JSON in a Markdown fence.
        self.serve: Callable[[dict[str, Any]], str] | None = None
        self.provider_status: dict[str, int] = {}
        self.provider_error: dict[str, str] = {}  # provider -> the error message its refusals carry
        self.provider_retry_after = "1"
        self.provider_fenced: set[str] = set()
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # ends trickles and slow replies when the server stops
        self._server = QuietServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def enqueue(self, *replies: Scripted) -> None:
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> FakeChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self) -> Scripted | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without TCP_NODELAY, Nagle's algorithm holds the body until
            # the client's delayed ACK (about 40 ms) on a kept-alive connection, as no real server does.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.served = {}
                with fake._lock:
                    fake.gets.append({"path": self.path, "headers": dict(self.headers)})
                models = fake.models
                path = self.path.split("?", 1)[0]  # a key may ride in the query string
                if models is None or not path.startswith("/v1/models"):
                    body = b'{"error": "not found"}'
                    self.send_response(404)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif path.rstrip("/") == "/v1/models":
                    self._send(200, json.dumps({"object": "list", "data": models}).encode(), {})
                else:
                    wanted = path.removeprefix("/v1/models/")
                    model = next((m for m in models if m.get("id") == wanted), None)
                    self._send(200 if model else 404, json.dumps(model or {"error": "not found"}).encode(), {})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw)
                except json.JSONDecodeError:
                    request = {}
                provider = fake.serve(request) if fake.serve is not None else ""
                self.served = {PROVIDER_HEADER: provider} if provider else {}
                with fake._lock:
                    fake.history.append({"path": self.path, "headers": dict(self.headers), "json": request,
                                         "at": time.perf_counter(), "provider": provider})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._answer(request)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                        fake.replied.append(time.perf_counter())

            def _answer(self, request: dict[str, Any]) -> None:
                if fake.limit is not None:
                    with fake._lock:
                        over = fake.working >= fake.limit
                        if over:
                            fake.overloaded += 1
                        else:
                            fake.working += 1
                            fake.max_working = max(fake.max_working, fake.working)
                    if over:
                        self._send(429, b'{"error": "too many requests in flight"}',
                                   {"Retry-After": fake.limit_retry_after})
                        return
                    self.holding = True
                    try:
                        self._answer_within_limit(request)
                    finally:
                        self._let_go()
                    return
                self._answer_within_limit(request)

            def _let_go(self) -> None:
                """The request is done with, as the provider counts: before its answer is on the wire, so the
                client's next request never finds it still counted."""
                if getattr(self, "holding", False):
                    self.holding = False
                    with fake._lock:
                        fake.working -= 1

            def _answer_within_limit(self, request: dict[str, Any]) -> None:
                provider = self.served.get(PROVIDER_HEADER, "")
                status = fake.provider_status.get(provider)
                if status is not None:
                    said = fake.provider_error.get(provider, f"{provider} is refusing requests ({status})")
                    body = json.dumps({"error": {"message": said}}).encode()
                    self._send(status, body, {"Retry-After": fake.provider_retry_after} if status == 429 else {})
                    return
                status = fake.down.get(str(request.get("model")))
                if status is not None:
                    time.sleep(fake.delay)
                    self._send(status, json.dumps({"error": f"{request.get('model')} is down"}).encode(), {})
                    return
                status = fake.failing.get(lens_and_tool(request)[1])
                if status is not None:
                    self._send(status, json.dumps({"error": "this review fails every time"}).encode(), {})
                    return
                shape = shape_of(request)
                if fake.accepts is not None and shape != "none" and shape not in fake.accepts:
                    message = f"response_format: {shape} is not supported by this server"
                    self._send(fake.refusal, json.dumps({"error": {"message": message}}).encode(), {})
                    return
                if fake.endless and self.path.endswith("/chat/completions"):
                    self._send_endless()
                    return
                scripted = fake._next()
                extra = fake.lens_delay.get(lens_and_tool(request)[0], 0.0)
                fake._stopping.wait(fake.delay + extra + (scripted.delay if scripted else 0.0))
                if not self.path.split("?", 1)[0].endswith("/chat/completions"):
                    self._send(404, b'{"error": "not found"}', {})
                elif scripted is None:
                    content = fake.responder(request)
                    if provider in fake.provider_fenced:  # valid for the pipeline, but not the schema it was sent
                        content = f"```json\n{content}\n```"
                    if fake.echo_key:
                        content = echoing_key(content, self.headers.get("authorization", ""))
                    self._send(200, completion_body(request.get("model", "fake"), content, usage=fake.usage), {})
                elif scripted.raw is not None or scripted.status != 200:
                    body = scripted.raw if scripted.raw is not None else json.dumps(
                        {"error": f"scripted {scripted.status}"}).encode()
                    self._send(scripted.status, body, scripted.headers)
                else:
                    body = completion_body(request.get("model", "fake"), scripted.content, scripted.finish_reason,
                                           usage=fake.usage)
                    if scripted.choices is not None:
                        body = json.dumps({**json.loads(body), "choices": scripted.choices}).encode()
                    self._send(200, body, scripted.headers, drop=scripted.drop)

            def _send_endless(self) -> None:
                self._let_go()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                head = b'{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"index": 0, ' \
                    b'"message": {"role": "assistant", "content": "'
                try:
                    for piece in itertools.chain([head], itertools.repeat(ENDLESS_CHUNK)):
                        if fake.endless_sent >= ENDLESS_CEILING or fake._stopping.is_set():
                            break
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        with fake._lock:
                            fake.endless_sent += len(piece)
                except ConnectionError:  # the client stopped reading and closed: what the test looks for
                    return
                fake._stopping.wait()  # the body is never finished

            def _send(self, status: int, body: bytes, headers: dict[str, str], drop: bool = False) -> None:
                self._let_go()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in {**getattr(self, "served", {}), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                if drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the peer sees the body end short of content-length
                    return
                if fake.trickle is not None:  # every read gets a byte in time; the whole body takes minutes
                    for index in range(len(body)):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        if fake._stopping.wait(fake.trickle):
                            return
                    return
                self.wfile.write(body)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default: 8080)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply (default: 0)")
    parser.add_argument("--mode", choices=["synthetic", "attentive", "reference", "offbeat", "endless"],
                        default="synthetic",
                        help="how every request is answered (default: synthetic):\n"
                        "  synthetic  a valid quote in our own words per lens, hitting every beat (an unknown\n"
                        "             lens gets the builder's)\n"
                        "  attentive  like synthetic, citing the fact sheet's entry: a changed sheet, a changed quote\n"
                        "  reference  the published quote of the reference pages (only their tools; a lens they\n"
                        "             lack gets the synthetic quote)\n"
                        "  offbeat    a fluent quote that hits no beat: re-asked until the draft gives up (exit 4)\n"
                        "  endless    a reply whose body never ends (64 KB chunks; the client must stop reading)")
    parser.add_argument("--echo-key", action="store_true",
                        help="every quote ends by repeating the key the request was sent with")
    args = parser.parse_args()
    responder = {"synthetic": synthetic, "attentive": attentive, "offbeat": offbeat,
                 "endless": synthetic}.get(args.mode) or reference()
    server = FakeChatServer(responder, delay=args.delay, port=args.port)
    server.echo_key = args.echo_key
    server.endless = args.mode == "endless"
    server.start()
    print(f"fake chat-completions server on {server.base_url} ({args.mode}), Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
