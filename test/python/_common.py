"""What both client scripts share: arguments, a loopback-only network guard, a hard time bound, and
the JSON summary they print on stdout (one object, the only thing on stdout).

The guard is a Python audit hook (PEP 578): every socket connect and DNS lookup goes through it, so
a library that reaches for the internet at run time (tiktoken fetching its encodings, LangSmith
tracing, a telemetry ping) fails at once with the attempt recorded in `outside`, instead of
hanging on a machine that has no internet. It is installed before the clients are imported.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

PROMPT = "你是谁?"  # the seed article's question

outside: list[str] = []
sent: list[Any] = []  # the JSON bodies the openai SDK sent during the current run


def _loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(event: str, args: tuple) -> None:
    host = None
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address:
            host = address[0]
        else:
            return  # a Unix socket: local by nature
    else:
        return
    if host is None or _loopback(host):
        return
    outside.append(f"{event} {host!r}")
    raise ConnectionRefusedError(f"test guard: no network beyond loopback ({event} {host!r})")


def install_guard() -> None:
    sys.addaudithook(_guard)


def capture_requests() -> None:
    """Records each request body exactly as the openai SDK (LangChain's transport too) puts it on the
    wire, so a summary shows where extra_body keys and stream_options ended up. Observes only."""
    import openai._base_client as base

    build = base.SyncAPIClient._build_request

    def recording(self: Any, options: Any, **kwargs: Any) -> Any:
        request = build(self, options, **kwargs)
        try:
            sent.append(json.loads(request.content or b"null"))
        except Exception as e:  # noqa: BLE001 - an odd body must not break the run
            sent.append({"unreadable": repr(e)})
        return request

    base.SyncAPIClient._build_request = recording


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--base-url", required=True, help="the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True)
    p.add_argument("--api-key", default="EMPTY")
    p.add_argument("--thinking-off", default='{"chat_template_kwargs": {"enable_thinking": false}}',
                   help="JSON extra body that turns thinking off in this server's own dialect")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="a bound for the requests the article leaves unbounded (default: none, as the article)")
    p.add_argument("--request-timeout", type=float, default=20.0, help="seconds per request")
    p.add_argument("--deadline", type=float, default=90.0, help="seconds for the whole run: then exit 3")
    p.add_argument("--only", default=None, help="comma-separated run names to do (default: all)")
    return p.parse_args()


def hard_deadline(seconds: float) -> None:
    """Whatever hangs (a stuck read the client's own timeout misses), the process ends in time."""

    def expire(_sig: int, _frame: Any) -> None:
        sys.stderr.write(f"deadline of {seconds} s reached\n")
        os._exit(3)

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run_all(client: str, versions: dict[str, str], runs: dict[str, Callable[[], dict[str, Any]]], only: str | None) -> None:
    wanted = set(only.split(",")) if only else None
    out: dict[str, Any] = {"client": client, "versions": versions, "runs": {}}
    for name, fn in runs.items():
        if wanted is not None and name not in wanted:
            continue
        sent.clear()
        started = time.monotonic()
        try:
            result = fn()
        except Exception as e:  # the summary reports the error as the user would see it
            result = {"error": {"type": type(e).__name__, "message": str(e)[:2000],
                                "where": traceback.format_exc(limit=-3)[-2000:]}}
        result["seconds"] = round(time.monotonic() - started, 3)
        result["sent"] = list(sent)
        out["runs"][name] = result
    out["outside"] = outside
    sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
