import type { Remediation } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import { CommandAction } from './command.ts';
import { ProcessAction } from './process.ts';
import type { Action, ActionHooks } from './types.ts';

export interface ActionFactoryOptions {
  target: string;
  logger: Logger;
  hooks: ActionHooks;
  stdio?: 'inherit' | 'ignore';
}

/** Every action kind by name; the config schema's `action` values are these keys. */
export const actionFactories: { [K in Remediation['action']]: (config: Extract<Remediation, { action: K }>, o: ActionFactoryOptions) => Action } = {
  process: (config, o) => new ProcessAction({ ...o, config }),
  command: (config, o) => new CommandAction({ target: o.target, logger: o.logger, config }),
};

export function createAction(config: Remediation, options: ActionFactoryOptions): Action {
  const factory = actionFactories[config.action] as (c: Remediation, o: ActionFactoryOptions) => Action;
  return factory(config, options);
}
