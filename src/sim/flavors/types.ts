import type { ChatPlan, ChunkMeta, RequestRules, SimToken } from '../completion.ts';
import type { Engine, LatencyHistogram } from '../engine.ts';
import type { SimFault } from '../faults.ts';
import type { ServerType } from '../../servers/types.ts';

/** An HTTP answer: an object body is sent as JSON, a string as text, undefined as an empty body. */
export interface Reply {
  status: number;
  body?: unknown;
  contentType?: string;
}

/** What a flavor's endpoints can read of the running simulator. */
export interface SimState {
  /** The id the listing and every completion name: the served name, or llama.cpp's first --alias. */
  model: string;
  /** The model as given (llama.cpp: the .gguf path, /props model_path). */
  modelPath: string;
  /** llama.cpp --alias names, sorted and without duplicates (empty: none given). */
  aliases: readonly string[];
  created: number;
  engine: Engine;
  fault(): SimFault;
  /** Monotonic milliseconds (the engine's clock). */
  now(): number;
  /** Ollama: the model is in memory until this Unix time in ms; undefined when unloaded. */
  loadedUntil: number | undefined;
  /** SGLang: started, still warming up (/health 503). */
  warming: boolean;
  /** SGLang: how long /health waits for its test generation before answering 503 (20 s). */
  healthTimeoutMs: number;
}

/** Builds one completion's stream, one payload per SSE event (the server adds [DONE]). */
export interface Streamer {
  /** A slot took the request: prompt processing starts (llama.cpp's timings count from here). */
  started(): object[];
  /** One engine step's tokens; `first` for the engine's first output. Tokens no server shows
   * (see SimToken) send no delta, but the first output still brings the role chunk where a server
   * sends one then. */
  tokens(tokens: SimToken[], first: boolean, last: boolean): object[];
  /** After the last token: the finish and usage chunks a flavor sends on their own. */
  ended(): object[];
}

/** The HTTP library's own part of an answer (cpp-httplib for llama.cpp). */
export interface HttpDetails {
  /** Headers on every answer (llama.cpp: `Server: llama.cpp`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Content type of a JSON answer (default application/json). */
  readonly jsonType?: string;
  /** Content type and extra headers of an event stream (default text/event-stream; charset=utf-8, Cache-Control: no-cache). */
  readonly streamHeaders?: Readonly<Record<string, string>>;
  /** Send no Date header. */
  readonly noDate?: boolean;
  /** An error answer (4xx, 5xx) closes the connection (`Connection: close`). */
  readonly closeOnError?: boolean;
}

/**
 * One real server's behaviour on the wire: its start-up, the shapes of its answers, its auth rules,
 * its health and progress endpoints. Each follows that server's source (see each file) so the
 * exporter is tested against what it will meet.
 */
export interface Flavor {
  /** The server type it imitates: its name, the model id it serves by default, and the paths of
   * its health, progress and stall endpoints come from there (a test holds the two tables together). */
  readonly server: ServerType;
  readonly description: string;
  /** Where the listing answers (llama.cpp also at /models). */
  readonly listingPaths: readonly string[];
  /** --alias names the model: listed as its id (the first, sorted) and under `aliases` (llama.cpp). */
  readonly aliases?: boolean;
  /** How it reads max_tokens and messages (default: vLLM's rules). */
  readonly request?: RequestRules;
  /** What a body that is not JSON gets (default: the flavor's 400). */
  invalidJson?(): Reply;
  /** What its HTTP library adds to every answer; the default is Node's (Date, chunked streams). */
  readonly http?: HttpDetails;
  /** A header that carries the API key besides Authorization: Bearer (llama.cpp's X-Api-Key). */
  readonly keyHeader?: string;
  /** The server has API keys at all (Ollama has none). */
  readonly apiKeys: boolean;
  /** The message of the 404 for a model it does not serve. */
  modelMissing(model: string): string;
  /** A chat request to a dead engine: FastAPI's bare 500 (vLLM, SGLang), else an error in its shape. */
  readonly engineDead?: Reply;
  /** Listening, /health answers 503 until a warm-up generation is done (SGLang). */
  readonly warmsUp?: boolean;
  /** refuse: no listening socket until loaded (vLLM, SGLang); loading-503: every path answers 503
   * while loading (llama.cpp); on-first-request: the model loads when first asked for (Ollama). */
  readonly startup: 'refuse' | 'loading-503' | 'on-first-request';
  /** When a streamed completion's headers go out. */
  readonly headers: 'at-once' | 'with-slot' | 'with-first-token';
  readonly slots: number;
  readonly streamInterval: number;
  /** Whether an API key guards this path. */
  guarded(path: string): boolean;
  readonly unauthorized: Reply;
  /** Whether Qwen3's thinking is on for this request, in this server's dialect, or the 400 message. */
  thinking(body: Record<string, unknown>): boolean | string;
  modelMatches(requested: string, served: string): boolean;
  /** An error answer in this server's shape. */
  error(status: number, message: string): Reply;
  /** What an unknown path gets. */
  readonly notFound: Reply;
  /** A completion's id (Ollama's are small random numbers, not unique). */
  completionId?(): string;
  listing(state: SimState): object;
  /** GET routes beyond the listing: health, progress, info. */
  routes(state: SimState): Record<string, () => Reply | Promise<Reply>>;
  streamer(meta: ChunkMeta, plan: ChatPlan, state: SimState): Streamer;
  completion(meta: ChunkMeta, plan: ChatPlan, state: SimState): object;
  /** The error fault after the stream began: the payloads, and whether [DONE] follows. */
  streamError(message: string): { payloads: object[]; done: boolean };
}

type Sample = { name: string; type: 'gauge' | 'counter'; labels: string; value: number } | { name: string; type: 'histogram'; labels: string; histogram: LatencyHistogram };

function lines(m: Sample): string {
  if (m.type !== 'histogram') return `${m.name}${m.type === 'counter' ? '_total' : ''}{${m.labels}} ${m.value}\n`;
  const h = m.histogram;
  const buckets = h.buckets.map((le, i) => `${m.name}_bucket{${m.labels},le="${le}"} ${h.counts[i]}\n`).join('');
  return `${buckets}${m.name}_bucket{${m.labels},le="+Inf"} ${h.count}\n${m.name}_sum{${m.labels}} ${h.sum}\n${m.name}_count{${m.labels}} ${h.count}\n`;
}

/** Prometheus text exposition of a few samples, as a server's own /metrics. */
export function exposition(metrics: Sample[]): Reply {
  const text = metrics.map((m) => `# HELP ${m.name} ${m.name}\n# TYPE ${m.name} ${m.type}\n${lines(m)}`).join('');
  return { status: 200, body: text, contentType: 'text/plain; version=0.0.4; charset=utf-8' };
}

/** A promise that never settles: an endpoint served by a loop that is stuck. */
export const never = <T>() => new Promise<T>(() => {});
