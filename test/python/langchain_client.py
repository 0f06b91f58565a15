"""LangChain's ChatOpenAI (langchain-openai) against an OpenAI-compatible server, called exactly as
the seed article calls it; prints one JSON summary per run on stdout (see _common.py).

  python langchain_client.py --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen3-0.6B [--api-key EMPTY]

The article's call (only timeout and max_retries added, so a test is bounded; neither changes the
request):

  ChatOpenAI(model=..., temperature=0.5, base_url=..., api_key="EMPTY",
             extra_body={"enable_thinking": True, "return_reasoning": True}, streaming=True)
  .invoke("你是谁?")

Runs (each one request):
  article        the call above
  article_usage  the same with stream_usage=True (with a base_url of its own, ChatOpenAI asks for
                 no usage unless told)
  article_off    enable_thinking: false, the article's way to switch thinking off, with usage
  native_off     thinking off in the server's own dialect (--thinking-off), with usage
  whole          streaming=False: the non-streamed path

What this langchain-openai does with reasoning (read in its source, chat_models/base.py): ChatOpenAI
"targets official OpenAI API specifications only": `_convert_delta_to_message_chunk` and
`_convert_dict_to_message` copy content, function_call, tool_calls, audio, refusal and nothing else,
so `reasoning` / `reasoning_content` are dropped, whatever `return_reasoning` asks for. The runs
report additional_kwargs as they are, so a change in a later release shows up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.install_guard()
args = _common.parse_args(__doc__.splitlines()[0])
_common.hard_deadline(args.deadline)
# No tracing upload, whatever the environment says (the guard would stop it anyway).
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"
os.environ.pop("OPENAI_BASE_URL", None)

import langchain_core  # noqa: E402
import openai  # noqa: E402
from importlib.metadata import version  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

_common.capture_requests()

thinking_off: dict[str, Any] = json.loads(args.thinking_off)
ARTICLE_BODY = {"enable_thinking": True, "return_reasoning": True}


class Chunks(BaseCallbackHandler):
    """Counts what LangChain hands a streaming callback: every chunk, and those with text."""

    def __init__(self) -> None:
        self.chunks = 0
        self.with_text = 0

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.chunks += 1
        if token:
            self.with_text += 1


def call(extra_body: dict[str, Any], streaming: bool = True, **more: Any) -> dict[str, Any]:
    if args.max_tokens is not None:
        more["max_tokens"] = args.max_tokens
    chat_model = ChatOpenAI(
        model=args.model,
        temperature=0.5,
        base_url=args.base_url,
        api_key=args.api_key,
        extra_body=extra_body,
        streaming=streaming,
        timeout=args.request_timeout,
        max_retries=0,
        **more,
    )
    seen = Chunks()
    response = chat_model.invoke(_common.PROMPT, config={"callbacks": [seen]})
    content = response.content if isinstance(response.content, str) else json.dumps(response.content, ensure_ascii=False)
    return {
        "content": content,
        "additional_kwargs": response.additional_kwargs,
        "response_metadata": response.response_metadata,
        "usage_metadata": response.usage_metadata,
        "chunks": seen.chunks,
        "chunks_with_text": seen.with_text,
    }


_common.run_all(
    "langchain",
    {"langchain-openai": version("langchain-openai"), "langchain-core": langchain_core.__version__, "openai": openai.__version__},
    {
        "article": lambda: call(ARTICLE_BODY),
        "article_usage": lambda: call(ARTICLE_BODY, stream_usage=True),
        "article_off": lambda: call({"enable_thinking": False, "return_reasoning": True}, stream_usage=True),
        "native_off": lambda: call(thinking_off, stream_usage=True),
        "whole": lambda: call(ARTICLE_BODY, streaming=False),
    },
    args.only,
)
