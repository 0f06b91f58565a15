// The simulator's flavors and the server-type table cover each other: each flavor imitates one
// server type and answers, on that type's own paths, what that type's parsers read (health,
// progress, stall state, the listing and its model matching). A new server type, or a renamed path
// or metric on either side, fails here.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { servers, serverNames } from '../../src/servers/index.ts';
import type { ListedModel } from '../../src/servers/types.ts';
import { flavorNames, flavors } from '../../src/sim/flavors/index.ts';
import { startSim, type RunningSim } from '../../src/sim/server.ts';

const running = new Set<RunningSim>();
after(() => Promise.all([...running].map((s) => s.close())));

test('every server type the simulator can be has a flavor named after it, and only the generic openai type has none', () => {
  for (const name of flavorNames) assert.equal(flavors[name].server, servers[name], `flavor ${name} imitates ${flavors[name].server.name}`);
  assert.deepEqual(serverNames.filter((s) => !(flavorNames as string[]).includes(s)), ['openai']);
});

const get = async (s: RunningSim, path: string) => {
  const res = await fetch(s.url + path, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
};
const setFault = (s: RunningSim, fault: string) => fetch(`${s.url}/sim/fault`, { method: 'POST', body: JSON.stringify({ fault }), signal: AbortSignal.timeout(5000) });

for (const name of flavorNames) {
  const type = servers[name];
  test(`${name}: the flavor answers what the ${name} server type reads, on its paths`, async () => {
    const s = await startSim({ host: '127.0.0.1', port: 0, flavor: name, ttftMs: 5, tokensPerSecond: 1000, onCrash: () => {} });
    running.add(s);
    await s.ready;
    // The listing, wherever the flavor serves it, holds the model the server type would match.
    for (const path of flavors[name].listingPaths) {
      const listing = JSON.parse((await get(s, path)).body) as { data: ListedModel[] };
      assert.ok(type.matchModel(listing.data, type.exampleModel), `${path}: ${type.exampleModel} not matched in ${JSON.stringify(listing.data.map((m) => m.id))}`);
    }
    if (type.healthPath) assert.equal((await get(s, type.healthPath)).status, 200, type.healthPath);
    if (type.progress) {
      const answer = await get(s, type.progress.path);
      assert.equal(answer.status, 200, type.progress.path);
      const progress = type.progress.parse(answer.body, type.exampleModel);
      if (type.loadsOnDemand) assert.equal(progress.modelLoaded, false, `${type.progress.path}: a cold model`);
      else for (const key of ['running', 'waiting', 'generated'] as const) assert.equal(typeof progress[key], 'number', `${type.progress.path}: ${key} from ${answer.body.slice(0, 300)}`);
    }
    if (type.stallState) {
      const path = type.stallState.path;
      assert.equal(type.stallState.parse((await get(s, path)).body, type.exampleModel), undefined, `${path} while healthy`);
      // Each stall state the server type can read, the flavor can say.
      const said = [];
      for (const fault of ['paused', 'asleep']) {
        await setFault(s, fault);
        said.push(type.stallState.parse((await get(s, path).catch(() => ({ body: '' }))).body, type.exampleModel));
        await setFault(s, 'none');
      }
      assert.ok(said.some((v) => v !== undefined), `${path} never says paused or asleep`);
    }
  });
}
