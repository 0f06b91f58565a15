// The exporter's own section of the config, and what the exporter reads of the whole.
import { z } from 'zod';
import type { ProbingConfig } from '../probing/module.ts';

/** host, host:port or *.domain: what /probe may reach. */
const hostPattern = z.string().regex(/^(\*\.)?[A-Za-z0-9_.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, 'expected a host name or address, optionally :port, or *.domain');

export const exporterSchema = z
  .strictObject({
    allowed_probe_hosts: z
      .array(hostPattern)
      .optional()
      .describe('When set, GET /probe only reaches these hosts (host, host:port, [v6], or *.domain); other targets get 403.'),
  })
  .default({});

export type ExporterSection = z.output<typeof exporterSchema>;

/** What the exporter reads of a config: the modules and targets it probes, and its own section. */
export interface ExporterConfig extends ProbingConfig {
  exporter: ExporterSection;
}
