/** One entry of a /v1/models listing, as far as model matching needs it. */
export interface ListedModel {
  id: string;
  /** vLLM: the model path behind a served name. */
  root?: string | null;
  /** vLLM: the base model a LoRA adapter belongs to (null for a base model). */
  parent?: string | null;
  /** llama.cpp: further names of the same model. */
  aliases?: string[];
}

/** What a server's own progress signal says (its /metrics, or Ollama's /api/ps). */
export interface Progress {
  /** Requests being generated now. */
  running?: number;
  /** Requests queued behind them. */
  waiting?: number;
  /** The server's own cumulative count of generated tokens: it moves while anything is generated. */
  generated?: number;
  sleeping?: boolean;
  /** Ollama: the probed model is in memory (a cold one loads on the next request). */
  modelLoaded?: boolean;
}

/** A GET endpoint on the server's origin and how to read it. */
export interface Endpoint<T> {
  path: string;
  parse(body: string, model: string | undefined): T;
}

/**
 * What one kind of model server means on the wire: how to ask it for a completion, which health
 * endpoint it has, how its model ids match. One file per server type, in the table in index.ts;
 * the exporter's probes read these, and the simulator's flavors mirror them.
 */
export interface ServerType {
  readonly name: string;
  /** One line for docs and --help. */
  readonly description: string;
  /** Request fields that turn Qwen3's thinking on or off: servers disagree on the switch. */
  thinking(enabled: boolean): Record<string, unknown>;
  /** GET path on the server's origin that tells whether it can serve, if it has one. */
  readonly healthPath: string | undefined;
  /** The server cannot pick a model itself (Ollama lists every model on disk): `model` is required. */
  readonly requiresModel: boolean;
  /**
   * It may accept connections and answer nothing while it loads. None of the known servers does
   * (vLLM and SGLang refuse connections, llama.cpp answers 503, Ollama answers its listing): for
   * them, a listing that times out is a frozen server, and the rules act on it at once.
   */
  readonly silentWhileLoading: boolean;
  /** A typical model id of this server type (Qwen3-0.6B as it names it): for messages, and the simulator's default. */
  readonly exampleModel: string;
  /** The listed id that serves `wanted`, or undefined. */
  matchModel(listing: readonly ListedModel[], wanted: string): string | undefined;
  /** The probes of the shipped module named after this server type, in the order a round runs them. */
  readonly defaultProbes: readonly string[];
  /** Whether an error answer means the server is still starting (llama.cpp's 503 "Loading model"). */
  starting?(status: number, body: string): boolean;
  /** The server's own progress signal, if it has one. */
  readonly progress?: Endpoint<Progress>;
  /** The job of prometheus/prometheus.yml that scrapes its own /metrics for the dashboard's row of it, if it has one. */
  readonly metricsJob?: string;
  /** Its progress signal is answered by the decode loop itself (llama.cpp's /metrics): when the loop hangs, so does the signal. */
  readonly progressThroughLoop?: boolean;
  /** Where a server says it is paused or asleep, read when a generation stalls. */
  readonly stallState?: Endpoint<'paused' | 'asleep' | undefined>;
  /** Ollama loads a model on first use: a cold probe gets a longer deadline (the load is aborted
   * when the client gives up). */
  readonly loadsOnDemand?: boolean;
}

/** Parses a JSON body, or undefined when it is not JSON. */
export function json<T>(body: string): T | undefined {
  try {
    return JSON.parse(body) as T;
  } catch {
    return undefined;
  }
}

/** vLLM, SGLang and llama.cpp take Qwen3's switch through the chat template. */
export const templateThinking = (enabled: boolean) => ({ chat_template_kwargs: { enable_thinking: enabled } });

/** The listed id equal to wanted, or an entry that names it as an alias. */
export function exactMatch(listing: readonly ListedModel[], wanted: string): string | undefined {
  return listing.find((m) => m.id === wanted || m.aliases?.includes(wanted))?.id;
}
