// The two models the real-Ollama tests create from the tiny Qwen3 GGUF that
// write-tiny-qwen3-gguf.ts writes: a chat model (a Modelfile with Qwen3's template, so Ollama gives
// it thinking) and an embedding-only copy (the GGUF with qwen3.pooling_type set), which Ollama lists
// beside it but refuses to chat with, as it does a real Qwen3-Embedding or nomic-embed-text.
import { readFile, writeFile } from 'node:fs/promises';
import { readGguf, ValueType } from './write-tiny-qwen3-gguf.ts';

/** The chat model and the model that cannot chat, as the tests name them. */
export const CHAT_MODEL = 'tiny-qwen3';
export const EMBEDDING_MODEL = 'tiny-qwen3-embedding';

/**
 * Qwen3's chat template as a Go template, after the one Ollama's library publishes for qwen3 (the
 * library cannot be reached here, so this is written from it, not copied). It is needed:
 * `ollama create` matches a GGUF's Jinja template against its few built-in ones (Levenshtein
 * distance under 100), finds none close to Qwen3's, and falls back to `{{ .Prompt }}`, which has no
 * chat turns and no thinking (checked: capabilities ["completion"] only). With this one Ollama sees
 * `.Thinking` in it, gives the model the thinking capability, and parses <think>...</think> out of
 * the answer. Thinking off (`reasoning_effort: "none"`, `think: false`) writes the empty think block
 * into the prompt, as Qwen3's own template does for enable_thinking false. No trailing newline: it
 * would end the prompt with "\n\n" and the tiny model's chain would skip its thinking.
 */
export const QWEN3_TEMPLATE = `{{- $lastUserIdx := -1 -}}
{{- range $idx, $msg := .Messages -}}
{{- if eq $msg.Role "user" }}{{ $lastUserIdx = $idx }}{{ end -}}
{{- end }}
{{- if or .System .Tools }}<|im_start|>system
{{ if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end -}}
<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}
{{- if and $.IsThinkSet (eq $i $lastUserIdx) }}
   {{- if $.Think -}}
      {{- " "}}/think
   {{- else -}}
      {{- " "}}/no_think
   {{- end -}}
{{- end }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if (and $.IsThinkSet (and .Thinking (or $last (gt $i $lastUserIdx)))) -}}
<think>{{ .Thinking }}</think>
{{ end -}}
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ if and $.IsThinkSet (not $.Think) -}}
<think>

</think>

{{ end -}}
{{ end }}
{{- end }}`;

/**
 * One compute thread: with the default (one per core) the runner's threads spin-wait for each
 * other at every step, and a core taken by another process stalls each token for a whole time
 * slice (measured: 7 tokens/s and 0.8 s TTFT on a busy 2-core machine, against hundreds alone).
 */
const ONE_THREAD = 'PARAMETER num_thread 1\n';

/** The Modelfile of the chat model: the tiny GGUF, Qwen3's template and its stop words. */
export const chatModelfile = (gguf: string) => `FROM ${gguf}\nTEMPLATE """${QWEN3_TEMPLATE}"""\nPARAMETER stop <|im_start|>\nPARAMETER stop <|im_end|>\n${ONE_THREAD}`;

/** The Modelfile of the embedding model: the GGUF alone (no template: Ollama gives it `{{ .Prompt }}`). */
export const embeddingModelfile = (gguf: string) => `FROM ${gguf}\n${ONE_THREAD}`;

/**
 * Writes a copy of the tiny Qwen3 GGUF that Ollama takes for an embedding model: Ollama decides a
 * model's capabilities from its GGUF, and `<arch>.pooling_type` present means "embedding" and not
 * "completion" (server/images.go Capabilities), so chat to it is refused. Real Qwen3-Embedding
 * GGUFs are this: the qwen3 architecture with qwen3.pooling_type 3 (last token).
 *
 * The key/values are inserted at the head of the key/value section, padded (general.description)
 * to a multiple of the file's alignment so the tensor data keeps its padding and offsets.
 */
export async function writeEmbeddingVariant(source: string, dest: string): Promise<void> {
  const input = await readFile(source);
  const gguf = readGguf(input);
  const alignment = gguf.kv.get('general.alignment');
  const align = alignment && alignment.type !== ValueType.Array ? Number(alignment.value) : 32;
  if (gguf.kv.has('qwen3.pooling_type') || gguf.kv.has('general.description')) throw new Error(`${source}: already has the keys to add`);
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  const pooling = Buffer.concat([str('qwen3.pooling_type'), u32(ValueType.U32), u32(3)]);
  const description = (text: string) => Buffer.concat([str('general.description'), u32(ValueType.String), str(text)]);
  const text = 'tiny-qwen3 as an embedding model: qwen3.pooling_type set, as Qwen3-Embedding GGUFs have';
  const unpadded = pooling.length + description(text).length;
  const inserted = Buffer.concat([pooling, description(text.padEnd(text.length + ((align - (unpadded % align)) % align)))]);
  // Header: magic u32, version u32, tensor count u64, key/value count u64; key/values from byte 24.
  const out = Buffer.concat([input.subarray(0, 16), u64(gguf.kv.size + 2), inserted, input.subarray(24)]);
  const check = readGguf(out);
  if (check.dataOffset !== gguf.dataOffset + inserted.length || check.kv.get('qwen3.pooling_type')?.type !== ValueType.U32) throw new Error('embedding variant: header rewrite went wrong');
  await writeFile(dest, out);
}
