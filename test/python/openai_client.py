"""The Python openai SDK against an OpenAI-compatible server, as a user of the seed article's server
would call it; prints one JSON summary per run on stdout (see _common.py).

  python openai_client.py --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen3-0.6B [--api-key EMPTY]

Runs (each one request):
  article      streamed, the article's extra_body {enable_thinking: true, return_reasoning: true},
               temperature 0.5, stream_options.include_usage
  article_off  the same with enable_thinking: false, the article's way to switch thinking off
               (a top-level key: which servers honour it is what this run shows)
  native_off   streamed, thinking off in the server's own dialect (--thinking-off)
  no_usage     streamed without stream_options: the SDK asks for no usage unless told
  whole        not streamed: the message as the SDK parses it

Reasoning is not part of the openai SDK's types: servers send it as `reasoning` (vLLM, Ollama) or
`reasoning_content` (vLLM's deprecated copy, SGLang, llama.cpp), and the SDK keeps such unknown
fields as extra attributes of the delta / message (pydantic extra="allow"). Both are read here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.install_guard()
args = _common.parse_args(__doc__.splitlines()[0])
_common.hard_deadline(args.deadline)

import openai  # noqa: E402

_common.capture_requests()

REASONING_FIELDS = ("reasoning", "reasoning_content")

client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=args.request_timeout, max_retries=0)
thinking_off: dict[str, Any] = json.loads(args.thinking_off)
bound = {} if args.max_tokens is None else {"max_tokens": args.max_tokens}


def extra(model: Any) -> dict[str, Any]:
    return dict(model.model_extra or {}) if model is not None else {}


def streamed(extra_body: dict[str, Any], include_usage: bool, temperature: float | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if include_usage:
        params["stream_options"] = {"include_usage": True}
    if temperature is not None:
        params["temperature"] = temperature
    stream = client.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": _common.PROMPT}], stream=True,
        extra_body=extra_body, **bound, **params)
    content, reasoning = "", ""
    chunks, roles, finish, usage, fields = 0, [], None, None, set()
    order: list[str] = []  # reasoning / content, consecutive duplicates merged
    usage_chunks = 0
    with stream:
        for chunk in stream:
            chunks += 1
            if chunk.usage is not None:
                usage = chunk.usage.model_dump(exclude_none=True)
                usage_chunks += 1
            for choice in chunk.choices:
                delta = choice.delta
                if delta.role:
                    roles.append(delta.role)
                more = extra(delta)
                for name in REASONING_FIELDS:
                    if more.get(name):
                        fields.add(name)
                # vLLM sends the same text in both fields: take one, never both.
                piece = more.get("reasoning") or more.get("reasoning_content") or ""
                if piece:
                    reasoning += piece
                    if not order or order[-1] != "reasoning":
                        order.append("reasoning")
                if delta.content:
                    content += delta.content
                    if not order or order[-1] != "content":
                        order.append("content")
                if choice.finish_reason:
                    finish = choice.finish_reason
    return {"content": content, "reasoning": reasoning, "reasoning_fields": sorted(fields), "order": order,
            "usage": usage, "usage_chunks": usage_chunks, "chunks": chunks, "roles": roles, "finish_reason": finish}


def whole() -> dict[str, Any]:
    r = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": _common.PROMPT}], **bound)
    message = r.choices[0].message
    more = extra(message)
    return {"content": message.content, "reasoning": more.get("reasoning") or more.get("reasoning_content") or "",
            "reasoning_fields": sorted(n for n in REASONING_FIELDS if more.get(n)),
            "usage": r.usage.model_dump(exclude_none=True) if r.usage else None, "finish_reason": r.choices[0].finish_reason}


_common.run_all(
    "openai",
    {"openai": openai.__version__},
    {
        "article": lambda: streamed({"enable_thinking": True, "return_reasoning": True}, True, 0.5),
        "article_off": lambda: streamed({"enable_thinking": False, "return_reasoning": True}, True, 0.5),
        "native_off": lambda: streamed(thinking_off, True),
        "no_usage": lambda: streamed({}, False),
        "whole": whole,
    },
    args.only,
)
