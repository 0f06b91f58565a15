// The names contract: every metric name the exporter stopped publishing, with what replaces it,
// and every name kept whose series changed. `npm run docs` renders both into docs/metrics.md
// ("Renamed and removed"); test/integration/metric-names.test.ts checks that no old name comes
// back in a real exposition; prometheus/rules/qwen-sentinel.legacy-names.yml gives the renamed
// gauges their old names back for a transition (opt-in).

export interface Renamed {
  /** The name as it was: a gauge, or a histogram (its `_bucket`, `_sum` and `_count` series). */
  old: string;
  oldType: 'gauge' | 'histogram';
  /** The name that carries the quantity now. */
  now: string;
  /** How a query of the old name reads now. */
  note: string;
}

/** A name kept whose series changed: queries of it may need a look. */
export interface Changed {
  name: string;
  note: string;
}

export const renamed: readonly Renamed[] = [
  {
    old: 'llm_probe_ttft_seconds',
    oldType: 'gauge',
    now: 'llm_probe_time_to_first_token_seconds',
    note: "The same gauge, spelled out like llm_probe_time_to_first_content_seconds and vLLM's vllm:time_to_first_token_seconds. qwen-sentinel.legacy-names.yml records the old name.",
  },
  {
    old: 'llm_probe_time_to_first_token_seconds',
    oldType: 'histogram',
    now: 'llm_probe_time_to_first_token_seconds',
    note: 'The histogram is gone (its `_bucket`, `_sum` and `_count`); its name is the gauge of the last run now. With a scrape per probe run the gauge holds every run: `avg_over_time(llm_probe_time_to_first_token_seconds[5m])` for the mean (was `rate(_sum) / rate(_count)`), `quantile_over_time(0.95, ...)` for a quantile, exact where buckets interpolate.',
  },
  {
    old: 'llm_probe_latency_seconds',
    oldType: 'histogram',
    now: 'llm_probe_duration_seconds',
    note: 'Gone: the duration of every run is llm_probe_duration_seconds (in /probe mode too, where the histogram was never published). Runs: `count_over_time(llm_probe_duration_seconds[1h])` (was `increase(_count)`); the share within 1 s: `count_over_time((llm_probe_duration_seconds <= 1)[1h:15s]) / count_over_time(llm_probe_duration_seconds[1h:15s])` (was `_bucket{le="1"} / _count`).',
  },
  {
    old: 'llm_probe_inter_token_latency_seconds',
    oldType: 'histogram',
    now: 'llm_probe_tokens_per_second',
    note: "Gone: the same quantity inverted. A run's mean inter-token latency is `1 / llm_probe_tokens_per_second`.",
  },
];

export const changed: readonly Changed[] = [
  {
    name: 'llm_probe_failure_reason',
    note: "Present (value 1) only while the probe's last run failed with that reason; the 0 series are gone. `== 1`, `max_over_time(...) == 1` and `unless ... == 1` read as before; an average of it alone reads 1 whenever present: count its samples against the probe's runs instead, `count_over_time(llm_probe_failure_reason{reason=\"saturated\"}[5m]) / ignoring (reason) count_over_time(llm_probe_success[5m])` (LLMServerSaturated).",
  },
  {
    name: 'llm_probe_failures_total',
    note: 'A series is created at the first failure of its reason, no longer at 0 for every reason a probe can give: `increase()` and `rate()` miss that first failure (the dashboard counts it: a series that appears counts its value). llm_probes_total is still there from the start.',
  },
];

/** Every sample name an old entry exposed: a histogram's three series. */
export const oldSampleNames = (r: Renamed): string[] => (r.oldType === 'histogram' ? [`${r.old}_bucket`, `${r.old}_sum`, `${r.old}_count`] : [r.old]);

/**
 * How the exporter's own names end: a base unit, `_total` (counters) or `_info`, or one of these
 * words for a quantity without a unit (a count of things, or a state that is 0 or 1).
 */
export const nameEndings = {
  units: ['seconds', 'bytes', 'per_second', 'ratio'],
  kinds: ['total', 'info'],
  unitless: ['up', 'success', 'reason', 'tokens', 'running', 'waiting', 'sleeping', 'loaded', 'successful'],
} as const;
