// Alertmanager has no DingTalk receiver, so the remediator itself tells a DingTalk group, through a
// custom robot's webhook, what it restarted, why and how that ended. A send runs beside the
// remediation, never in its way: it starts after the outcome is recorded, is not awaited, has its
// own deadline, and a failure is only logged and counted.
import { createHmac } from 'node:crypto';
import { ConfigError } from '../../lib/errors.ts';
import type { RemediatorConfig } from '../config.ts';
import { readSecret } from '../../config/secrets.ts';
import type { Logger } from '../../lib/log.ts';
import type { Clock } from '../clock.ts';
import type { ActionEntry } from '../history.ts';
import type { RemediatorMetrics } from '../metrics.ts';

const channel = 'dingtalk';
const field = 'remediator.notify.dingtalk';
// DingTalk answers a few dozen bytes of JSON; anything much larger is not DingTalk.
const maxAnswerBytes = 64 * 1024;
// A command's output can be long; the message keeps the start of it (the history has the rest).
const maxValueChars = 500;

/** What one send needs, secrets read: the URL (with its access_token) and the signing secret. */
export interface DingtalkSettings {
  url: string;
  secret: string | undefined;
  timeoutMs: number;
  atMobiles: string[];
  atAll: boolean;
}

const isHttpUrl = (text: string) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol);

/** Reads the URL and secret the config names (at start-up, on reload, by --config.check); undefined when not configured. */
export async function readDingtalk(config: Pick<RemediatorConfig, 'remediator'>, env: NodeJS.ProcessEnv = process.env): Promise<DingtalkSettings | undefined> {
  const d = config.remediator.notify?.dingtalk;
  if (!d) return undefined;
  const url = d.url ?? (await readSecret({ file: d.url_file, env: d.url_env }, `${field}.url`, env))!;
  // The text is never quoted: it holds the access token.
  if (!isHttpUrl(url)) throw new ConfigError(`${field}.${d.url_file !== undefined ? 'url_file' : 'url_env'}: not an http(s) URL such as https://oapi.dingtalk.com/robot/send?access_token=...`);
  const secret = await readSecret({ file: d.secret_file, env: d.secret_env }, `${field}.secret`, env);
  return { url, secret, timeoutMs: d.timeout, atMobiles: d.at_mobiles ?? [], atAll: d.at_all };
}

/**
 * DingTalk's "加签": string_to_sign = timestamp + "\n" + secret, sign = Base64(HMAC-SHA256(key =
 * secret, string_to_sign)), URL-encoded, both appended to the webhook URL. The timestamp is Unix
 * milliseconds and must be within an hour of DingTalk's clock.
 */
export function signedUrl(url: string, secret: string, timestamp: number): string {
  const sign = createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64');
  return `${url}${url.includes('?') ? '&' : '?'}timestamp=${timestamp}&sign=${encodeURIComponent(sign)}`;
}

// Text from alerts and commands: one line each, so it cannot start a heading or a list item.
const oneLine = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > maxValueChars ? `${flat.slice(0, maxValueChars)}…` : flat;
};

/** The markdown message about one finished action. */
export function dingtalkMessage(a: Readonly<ActionEntry>, at: Pick<DingtalkSettings, 'atMobiles' | 'atAll'> = { atMobiles: [], atAll: false }) {
  const ok = a.outcome === 'success';
  const title = ok
    ? `qwen-sentinel: restarted ${a.target} (${a.action})`
    : `qwen-sentinel: restart of ${a.target} (${a.action}) ${a.outcome === 'interrupted' ? 'interrupted by a shutdown' : 'failed'}`;
  const why = a.trigger.source === 'exit' ? 'the server exited (restart_on_exit)' : `alert ${oneLine(a.trigger.alertname) || '(no alertname)'}`;
  const lines = [
    `#### ${ok ? '✅' : '❌'} ${oneLine(title)}`,
    `- **target:** ${oneLine(a.target)}`,
    `- **action:** ${a.action}`,
    `- **why:** ${why} (source: ${a.trigger.source})`,
    `- **outcome:** ${a.outcome}: ${oneLine(a.message)}`,
    `- **time to healthy:** ${a.time_to_healthy_seconds === undefined ? 'not reached' : `${a.time_to_healthy_seconds.toFixed(1)} s`}`,
    `- **started:** ${a.started_at}, **finished:** ${a.finished_at ?? '-'}`,
  ];
  // A member is only notified when the text names them too.
  if (at.atMobiles.length > 0) lines.push('', at.atMobiles.map((m) => `@${m}`).join(' '));
  return {
    msgtype: 'markdown',
    markdown: { title, text: lines.join('\n') },
    ...(at.atMobiles.length > 0 || at.atAll ? { at: { atMobiles: at.atMobiles, isAtAll: at.atAll } } : {}),
  };
}

/** Removes the URL's query (the access token) and the secret from text that came back from a send. */
function redact(text: string, s: DingtalkSettings): string {
  const hidden = [s.url, s.url.split('?')[1] ?? '', s.secret ?? '', ...new URL(s.url).searchParams.values()].filter((v) => v.length >= 4);
  return hidden.reduce((out, v) => out.replaceAll(v, '[redacted]'), text);
}

/** One POST; resolves when DingTalk said errcode 0, else rejects saying why. */
async function send(s: DingtalkSettings, body: string, timestamp: number): Promise<void> {
  const signal = AbortSignal.timeout(s.timeoutMs);
  const url = s.secret === undefined ? s.url : signedUrl(s.url, s.secret, timestamp);
  try {
    // undici is loaded with the first send, not with every remediator (~6 MB of RSS).
    const { request } = await import('undici');
    // One deadline for all of it: connecting, the headers and the answer.
    const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxAnswerBytes) throw new Error(`an answer larger than ${maxAnswerBytes} bytes`);
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    let answer: { errcode?: unknown; errmsg?: unknown };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw new Error('an answer that is not JSON');
    }
    if (answer?.errcode !== 0) throw new Error(`errcode ${String(answer?.errcode)}: ${String(answer?.errmsg).slice(0, 200)}`);
  } catch (err) {
    if (signal.aborted) throw new Error(`no answer within ${s.timeoutMs} ms`);
    throw err;
  }
}

export interface DingtalkNotifierOptions {
  settings: DingtalkSettings | undefined;
  logger: Logger;
  metrics: RemediatorMetrics;
  /** The signature's timestamp comes from its wall clock. */
  clock: Clock;
}

/**
 * Sends a signed DingTalk message about every finished action, in the background. One per
 * process: a reload swaps its settings (sends under way finish with the old ones); drain() waits
 * for the sends under way, for a shutdown or a test.
 */
export class DingtalkNotifier {
  readonly #o: DingtalkNotifierOptions;
  #settings: DingtalkSettings | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(options: DingtalkNotifierOptions) {
    this.#o = options;
    this.configure(options.settings);
  }

  /** The settings of a (re)loaded config; undefined: no DingTalk messages. */
  configure(settings: DingtalkSettings | undefined): void {
    this.#settings = settings;
    this.#o.metrics.setChannel(channel, settings !== undefined);
  }

  /** Starts a send about a finished action and returns at once; never throws. */
  notify(action: Readonly<ActionEntry>): void {
    const s = this.#settings;
    if (!s) return;
    const { logger, metrics, clock } = this.#o;
    const about = { channel, target: action.target, action_id: action.id, outcome: action.outcome };
    const sending = send(s, JSON.stringify(dingtalkMessage(action, s)), Math.floor(clock.wall())).then(
      () => {
        metrics.notifications.inc({ channel, outcome: 'success' });
        logger.debug(about, 'remediation reported to DingTalk');
      },
      (err: Error) => {
        metrics.notifications.inc({ channel, outcome: 'failure' });
        logger.warn({ ...about, err: redact(err.message, s) }, 'cannot report the remediation to DingTalk');
      },
    );
    this.#pending.add(sending);
    void sending.finally(() => this.#pending.delete(sending));
  }

  /** Resolves when every send started so far has ended (each is bounded by its timeout). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }
}
