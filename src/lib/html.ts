// Server-rendered pages with no build step: a tagged template that escapes every value it is
// given (target names, error messages from model servers), unless the value is already markup.

const marked = Symbol('html');
export interface Html {
  readonly [marked]: true;
  readonly text: string;
}

const raw = (text: string): Html => ({ [marked]: true, text });

export function escape(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (typeof value === 'object' && marked in value) return value.text;
  return escape(value);
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  return raw(strings.reduce((out, s, i) => out + s + (i < values.length ? render(values[i]!) : ''), ''));
}

const style = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.muted{color:#777}code{font-size:13px}`;

/** A whole page: title, navigation links, body. */
export function page(title: string, links: Record<string, string>, body: Html): string {
  const nav = Object.entries(links).map(([text, href]) => html`<a href="${href}">${text}</a>`);
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${raw(style)}</style></head>
<body><h1>${title}</h1><nav>${nav.map((a, i) => html`${i ? ' · ' : ''}${a}`)}</nav>${body}</body></html>`.text;
}

/** Seconds as a short human duration. */
export function seconds(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms` : `${s.toFixed(2)} s`;
}
