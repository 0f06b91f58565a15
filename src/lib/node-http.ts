// node:http as the CommonJS module, not through an ESM import: the ESM facade of a built-in reads
// every export, and node:http's lazy WebSocket, CloseEvent and MessageEvent then load Node's
// bundled undici (its source and compiled code: about 2 MB of the exporter's RSS), which nothing
// here uses. Types still come from `import type`.
export const http = process.getBuiltinModule('node:http');

/**
 * node:https, loaded the first time something uses TLS (an https target, a TLS listener): it brings
 * node:tls and OpenSSL's TLS state, some 3 MB of RSS a plain-HTTP service never needs.
 */
export const https = (): typeof import('node:https') => process.getBuiltinModule('node:https');
