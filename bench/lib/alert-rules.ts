// The restart alerts as the running Prometheus loaded them (GET /api/v1/rules): their names and
// `for` at the stack's interval, read from the outside, so the results say which rules they met.
import { getJson } from './net.ts';

export interface RestartRule {
  /** The alert's name, with its evidence label where it has one: "LLMServerHung (evidence=progress)". */
  name: string;
  forSeconds: number;
}

interface RulesBody {
  data?: { groups?: Array<{ rules?: Array<{ type?: string; name?: string; duration?: number; labels?: Record<string, string> }> }> };
}

export async function restartRules(prometheus: string): Promise<RestartRule[]> {
  const body = await getJson<RulesBody>(`${prometheus}/api/v1/rules?type=alert`);
  const rules = (body?.data?.groups ?? []).flatMap((g) => g.rules ?? []);
  return rules
    .filter((r) => r.type === 'alerting' && r.labels?.remediate === 'restart' && r.name)
    .map((r) => ({ name: r.labels?.evidence ? `${r.name} (evidence=${r.labels.evidence})` : r.name!, forSeconds: r.duration ?? 0 }));
}

export const describeRules = (rules: readonly RestartRule[]) => rules.map((r) => `${r.name} ${r.forSeconds} s`).join(', ');
