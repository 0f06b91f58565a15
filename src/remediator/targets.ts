// The targets the remediator acts for, each with its action built from the config: built once at
// start-up, then re-planned on each reload (a target whose server the remediator owns cannot be
// touched by one; an unchanged target keeps its action and state).
import { isDeepStrictEqual } from 'node:util';
import { ConfigError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { actions } from './actions/index.ts';
import type { ActionHooks } from './actions/types.ts';
import type { Clock } from './clock.ts';
import type { Remediation, RemediatorConfig } from './config.ts';
import type { RemediatorMetrics } from './metrics.ts';
import type { ManagedTarget } from './stages.ts';
import type { StateStore } from './state.ts';

export interface Entry {
  managed: ManagedTarget;
  remediation: Remediation;
}

/** The targets the remediator acts for; a config with none is refused, at start-up and on reload. */
export function remediationTargets(config: Pick<RemediatorConfig, 'targets'>, source: string): Array<{ name: string; remediation: Remediation }> {
  const targets = config.targets.flatMap((t) => (t.remediation ? [{ name: t.name, remediation: t.remediation }] : []));
  if (targets.length === 0) throw new ConfigError(`${source}: targets: no target has a remediation section`);
  return targets;
}

/** The action kinds whose server the remediator starts and owns. */
const ownerKinds = Object.values(actions).filter((k) => k.owns).map((k) => k.name).join(', ');

export interface TargetSetDeps {
  metrics: RemediatorMetrics;
  store: StateStore;
  clock: Clock;
  logger: Logger;
  stdio?: 'inherit' | 'ignore' | undefined;
  /** What an action reports of its server, by target. */
  hooks: (name: string) => ActionHooks;
}

/** A plan for a reload: the entries to run with, and the ones being replaced (to stop first). */
export interface TargetPlan {
  next: Map<string, Entry>;
  replaced: Entry[];
  removed: Entry[];
}

export class TargetSet {
  readonly #d: TargetSetDeps;
  #entries = new Map<string, Entry>();

  constructor(deps: TargetSetDeps) {
    this.#d = deps;
  }

  get names(): string[] {
    return [...this.#entries.keys()];
  }

  get managed(): ManagedTarget[] {
    return [...this.#entries.values()].map((e) => e.managed);
  }

  /** Builds every target's action at start-up. */
  async build(config: RemediatorConfig, source: string): Promise<void> {
    for (const { name, remediation } of remediationTargets(config, source)) this.#entries.set(name, await this.#build(name, remediation));
  }

  /**
   * What a reload would run with. It may add, change or drop targets whose servers the remediator
   * does not own; it may not touch one whose server it owns (that server runs under this remediator).
   * Throws a ConfigError naming the targets, and then nothing has changed.
   */
  async plan(config: RemediatorConfig, source: string): Promise<TargetPlan> {
    const wanted = new Map(remediationTargets(config, source).map((t) => [t.name, t.remediation]));
    const touched = [...new Set([...this.#entries.keys(), ...wanted.keys()])].filter((name) => {
      const [before, after] = [this.#entries.get(name)?.remediation, wanted.get(name)];
      const owned = (x: Remediation | undefined) => x !== undefined && actions[x.action].owns;
      return (owned(before) || owned(after)) && !isDeepStrictEqual(before, after);
    });
    if (touched.length > 0) {
      throw new ConfigError(`${source}: targets: ${touched.join(', ')}: a target whose server the remediator owns (action ${ownerKinds}) cannot be added, changed or removed by a reload; restart the remediator`);
    }
    const next = new Map<string, Entry>();
    for (const [name, remediation] of wanted) {
      const kept = this.#entries.get(name);
      next.set(name, kept && isDeepStrictEqual(kept.remediation, remediation) ? kept : await this.#build(name, remediation));
    }
    const replaced = [...this.#entries].filter(([name, entry]) => next.get(name) !== entry).map(([, entry]) => entry);
    const removed = [...this.#entries].filter(([name]) => !next.has(name)).map(([, entry]) => entry);
    return { next, replaced, removed };
  }

  /** Puts a plan into effect, once the remediator runs with its targets. */
  commit(plan: TargetPlan): void {
    for (const entry of plan.removed) this.#d.metrics.removeTarget(entry.managed.name, entry.remediation.action);
    this.#entries = plan.next;
  }

  async #build(name: string, remediation: Remediation): Promise<Entry> {
    const { metrics, store, clock, logger, stdio } = this.#d;
    metrics.addTarget(name, remediation.action);
    const kind = actions[remediation.action];
    const record = await store.load(name);
    const action = kind.create(remediation as never, { target: name, logger, record, persist: () => store.save(name), clock, stdio, hooks: this.#d.hooks(name) });
    const managed: ManagedTarget = {
      name,
      action,
      owns: kind.owns,
      cooldownMs: remediation.cooldown,
      startupTimeoutMs: remediation.startup_timeout,
      confirm: remediation.confirm,
      circuit: { maxRestarts: remediation.circuit.max_restarts, windowMs: remediation.circuit.window },
      restartOnExit: kind.restartsOnExit?.(remediation as never) ?? false,
    };
    return { managed, remediation };
  }
}
