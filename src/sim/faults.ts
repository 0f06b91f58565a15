// Faults the simulator can inject, chosen to match the failure modes the sentinel must tell apart.
export const simFaults = ['none', 'hang', 'hang-generation', 'error', 'slow', 'crash'] as const;
export type SimFault = (typeof simFaults)[number];

/** One line per fault, for --help and error messages. */
export const simFaultHelp: Record<SimFault, string> = {
  none: 'behave normally',
  hang: 'accept connections, never answer /v1/* or /health (the /sim/ control endpoints still answer)',
  'hang-generation': 'the real-world hang: /v1/models and /health answer 200, completions never produce a token',
  error: 'completions answer 500 with a vLLM error body',
  slow: 'tokens at a tenth of the configured rate',
  crash: 'the process exits with code 1 at once',
};

export function isSimFault(value: unknown): value is SimFault {
  return typeof value === 'string' && (simFaults as readonly string[]).includes(value);
}
