// The webhook's hand check of Alertmanager's payload (quickWebhook) against the zod schema it
// stands in for: whatever it accepts, webhookSchema accepts with the same output; whatever it does
// not, parseWebhook leaves to webhookSchema. Checked over every field of valid payloads, each
// removed or replaced by values of every JSON type.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWebhook, quickWebhook, webhookSchema } from '../../src/remediator/alert-schema.ts';
import { payload } from '../helpers/fakes.ts';

type Json = Record<string, unknown>;

// Values of every JSON type, and the edges of the fields' rules (empty string, negative, fraction, unsafe integer).
const replacements: unknown[] = [null, true, 0, -0, 1, -1, 1.5, 2 ** 53, 2 ** 53 - 1, '', '4', 'x', 'firing', 'resolved', [], ['x'], [{}], {}, { a: 'b' }, { a: 1 }, { a: null }];

// As Alertmanager sends them: one alert, several, none, and one with the optional fields left out.
const valid: Json[] = [
  payload({}),
  payload({ labels: { target: 'nope' } }, { status: 'resolved', fingerprint: 'f' }, {}),
  { ...payload(), alerts: [] },
  { ...payload({}), notification_reason: 'new', routeLabels: { a: 'b' } },
  (() => {
    const p = payload({}) as Json;
    delete p.truncatedAlerts;
    const [alert] = p.alerts as Json[];
    for (const key of ['annotations', 'endsAt', 'generatorURL']) delete alert![key];
    return p;
  })(),
];

const clone = (v: Json): Json => structuredClone(v);

/** Every payload one change away from a valid one: each field (top level and first alert) removed or replaced. */
function* variants(base: Json): Generator<[string, unknown]> {
  yield ['as is', clone(base)];
  for (const key of Object.keys(base)) {
    const removed = clone(base);
    delete removed[key];
    yield [`without ${key}`, removed];
    for (const value of replacements) yield [`${key}: ${JSON.stringify(value)}`, { ...clone(base), [key]: value }];
  }
  const alerts = base.alerts as Json[];
  if (alerts.length === 0) return;
  const first = alerts[0]!;
  const withAlert = (alert: unknown) => ({ ...clone(base), alerts: [alert, ...alerts.slice(1)] });
  for (const key of Object.keys(first)) {
    const removed = structuredClone(first);
    delete removed[key];
    yield [`alert without ${key}`, withAlert(removed)];
    for (const value of replacements) yield [`alert ${key}: ${JSON.stringify(value)}`, withAlert({ ...structuredClone(first), [key]: value })];
  }
  for (const value of replacements) yield [`alert: ${JSON.stringify(value)}`, withAlert(value)];
  for (const field of ['labels', 'annotations']) {
    for (const value of replacements) yield [`a ${field} value ${JSON.stringify(value)}`, withAlert({ ...structuredClone(first), [field]: { ...(first[field] as object), extra: value } })];
  }
}

// JSON.parse makes `__proto__` an own key, which zod's records drop: the hand check leaves it to zod.
const protoKeys = [
  '{"__proto__": {"x": 1}, "version": "4", "status": "firing", "receiver": "r", "groupKey": "g", "alerts": []}',
  '{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g", "alerts": [{"status": "firing", "labels": {"__proto__": "x", "target": "t"}, "startsAt": "s", "fingerprint": "f"}]}',
  '{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g", "alerts": [{"status": "firing", "labels": {}, "annotations": {"__proto__": "x"}, "startsAt": "s", "fingerprint": "f"}]}',
];

test('the hand check accepts only what webhookSchema accepts, with the same output', () => {
  let quick = 0;
  let checked = 0;
  const inputs: Array<[string, unknown]> = [...valid.flatMap((v) => [...variants(v)]), ...protoKeys.map((text): [string, unknown] => [text, JSON.parse(text)])];
  const bodies: Array<[string, unknown]> = [['null', null], ['1', 1], ['"x"', 'x'], ['[]', []], ['{}', {}], ['an object without prototype', Object.create(null)], ['a Date', new Date(0)]];
  inputs.push(...bodies.map(([what, value]): [string, unknown] => [`body ${what}`, value]));
  for (const [what, input] of inputs) {
    checked += 1;
    const slow = webhookSchema.safeParse(input);
    const fast = quickWebhook(input);
    if (fast !== undefined) {
      quick += 1;
      assert.ok(slow.success, `${what}: the hand check accepted what webhookSchema refuses: ${slow.error?.message}`);
      assert.deepEqual(fast, slow.data, what);
    }
    // parseWebhook's answer is webhookSchema's, whichever way it came.
    const parsed = parseWebhook(input);
    assert.equal(parsed.success, slow.success, what);
    if (parsed.success) assert.deepEqual(parsed.data, slow.data, what);
    else assert.deepEqual(parsed.error.issues, slow.error!.issues, what);
  }
  assert.ok(checked > 500, `only ${checked} payloads checked`);
  // Not vacuous: the valid payloads and the harmless changes take the quick way.
  assert.ok(quick > 100, `only ${quick} of ${checked} payloads took the quick way`);
  for (const v of valid) assert.notEqual(quickWebhook(clone(v)), undefined, 'a payload as Alertmanager sends it takes the quick way');
  for (const text of protoKeys) assert.equal(quickWebhook(JSON.parse(text)), undefined, 'a __proto__ key is left to zod');
});
