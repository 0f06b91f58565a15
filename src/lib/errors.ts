// Errors the CLI reports as one line (no stack), kept free of dependencies so that the CLI can
// recognise them without loading the code that throws them.

/** The config file is invalid: the message names the field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A listen address is taken or cannot be bound. */
export class ListenError extends Error {
  override name = 'ListenError';
}
