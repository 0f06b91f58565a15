// Faults the simulator can inject, chosen to match the failure modes the sentinel must tell apart,
// and the states it must not mistake for one (busy, paused, asleep).
export const simFaults = ['none', 'hang', 'hang-generation', 'error', 'engine-dead', 'slow', 'saturated', 'paused', 'asleep', 'crash'] as const;
export type SimFault = (typeof simFaults)[number];

/** One line per fault, for --help and error messages. */
export const simFaultHelp: Record<SimFault, string> = {
  none: 'behave normally',
  hang: 'accept connections, never answer /v1/* or /health (the /sim/ control endpoints still answer)',
  'hang-generation': 'the real-world hang: /v1/models and /health answer 200, generation stops, its progress counters freeze',
  error: 'completions answer 500 with the flavor\'s error body',
  'engine-dead': "a dead engine behind a live front end: /health 503 (vllm, sglang; llamacpp's stays ok), chat 500 with an empty body, listing 200",
  slow: 'tokens at a tenth of the configured rate',
  saturated: 'the engine is busy with other requests and keeps generating for them; new requests wait in the queue',
  paused: 'requests are accepted but not processed (vLLM /pause); /health 200, /is_paused true',
  asleep: 'the engine sleeps (vLLM /sleep, llama.cpp --sleep-idle-seconds); requests wait for it to wake',
  crash: 'the process exits with code 1 at once',
};

/** Faults under which the engine starts no request and advances none. */
export const stalls: ReadonlySet<SimFault> = new Set(['hang-generation', 'paused', 'asleep']);

export function isSimFault(value: unknown): value is SimFault {
  return typeof value === 'string' && (simFaults as readonly string[]).includes(value);
}
