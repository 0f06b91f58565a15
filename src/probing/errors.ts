// Failures that are the exporter's, not the server's: they must never read as the server down.

/**
 * Codes of errors the exporter's own host causes: out of file descriptors (EMFILE, ENFILE), of
 * local ports (EADDRNOTAVAIL) or of buffer memory (ENOBUFS, ENOMEM).
 */
export const localErrorCodes: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS', 'ENOMEM']);

/** A probe could not be run for a reason of the exporter's own: its round is skipped, not failed. */
export class ExporterError extends Error {
  override name = 'ExporterError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}
