// Real clients against every flavor of the simulator, called as the seed article calls the server:
// the openai SDK and LangChain's ChatOpenAI, streaming, with Qwen3's extra body fields.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ChatOpenAI, ChatOpenAICompletions } from '@langchain/openai';
import OpenAI from 'openai';
import { flavorNames, flavors } from '../../src/sim/flavors/index.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';

// LangChain estimates token counts by downloading a tokenizer; these machines have no internet.
ChatOpenAICompletions.prototype.getNumTokens = async (content: unknown) => Math.ceil(JSON.stringify(content).length / 4);

const sims: RunningSim[] = [];
after(() => Promise.all(sims.map((s) => s.close())));

for (const flavor of flavorNames) {
  describe(`${flavor} flavor`, () => {
    const model = flavors[flavor].server.exampleModel;
    const start = async () => {
      const s = await startSim({ host: '127.0.0.1', port: 0, flavor, ttftMs: 5, tokensPerSecond: 2000, onCrash: () => {} });
      sims.push(s);
      return s;
    };

    test('openai SDK: streamed with usage, thinking switched off its own way; and not streamed', async () => {
      const s = await start();
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'EMPTY', maxRetries: 0 });
      // Extra body fields go in the params object (the SDK's `body` option would replace the body).
      const thinkingOff = flavor === 'ollama' ? { reasoning_effort: 'none' } : { chat_template_kwargs: { enable_thinking: false } };
      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: '你是谁?' }], stream: true, stream_options: { include_usage: true }, max_tokens: 12, ...thinkingOff } as OpenAI.ChatCompletionCreateParamsStreaming);
      let content = '';
      let reasoning = '';
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning?: string; reasoning_content?: string } | undefined;
        content += delta?.content ?? '';
        reasoning += delta?.reasoning ?? delta?.reasoning_content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.match(content, /^I am Qwen/);
      assert.equal(reasoning, '');
      assert.equal(usage?.completion_tokens, 12);
      const whole = await client.chat.completions.create({ model, messages: [{ role: 'user', content: '你是谁?' }], max_tokens: 30 });
      const message = whole.choices[0]!.message as { content: string | null; reasoning?: string; reasoning_content?: string };
      assert.ok((message.reasoning ?? message.reasoning_content ?? '').startsWith('Okay,'), 'thinking is on by default');
    });

    test('LangChain ChatOpenAI as in the seed article: streaming, extra_body enable_thinking / return_reasoning', async () => {
      const s = await start();
      const chat = new ChatOpenAI({
        model,
        temperature: 0.5,
        apiKey: 'EMPTY',
        configuration: { baseURL: `${s.url}/v1` },
        modelKwargs: { enable_thinking: true, return_reasoning: true },
        streaming: true,
        maxRetries: 0,
      });
      const response = await chat.invoke('你是谁?');
      assert.match(String(response.content), /I am Qwen, a large language model/);
      // LangChain surfaces reasoning_content (vLLM's deprecated copy, SGLang, llama.cpp), not `reasoning` (Ollama).
      const reasoning = response.additional_kwargs.reasoning_content;
      if (flavor === 'ollama') assert.equal(reasoning, undefined);
      else assert.match(String(reasoning), /^Okay, the user wants a reply/);
    });
  });
}
