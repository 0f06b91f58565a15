// The layers of src/, as docs/development.md draws them; `npm test` fails when an import breaks one.
//
//   cli.ts -> cmd/          composition: one file per command, the composed config schema
//   exporter/  remediator/  sim/          the three programs: never import each other
//   probing/                the probing core: round, probes, series, HTTP client
//   servers/                what each server type means on the wire
//   config/                 reading a YAML file against a schema, secrets
//   lib/                    plumbing: flags, logs, HTTP serving, lifecycle; knows no domain
//
// Type-only imports count: a type is a dependency too.
const layer = (dir) => `^src/${dir}/`;
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'No import cycles.', severity: 'error', from: {}, to: { circular: true } },
    forbid('lib-knows-no-domain', 'Plumbing (lib/) imports nothing of the domain.', layer('lib'), '^src/(?!lib/)'),
    forbid('config-is-generic', 'config/ reads files against schemas it is given; it knows no part of the program.', layer('config'), '^src/(?!lib/|config/)'),
    forbid('servers-below-probing', 'servers/ says what a server type means; it imports no probing, program or command code.', layer('servers'), '^src/(?!lib/|config/|servers/)'),
    forbid('probing-below-programs', 'The probing core serves the exporter and the remediator; it imports neither, nor the simulator or a command.', layer('probing'), '^src/(exporter|remediator|sim|cmd)/|^src/cli\\.ts$'),
    forbid('exporter-alone', 'The exporter imports neither the remediator, nor the simulator, nor a command.', layer('exporter'), '^src/(remediator|sim|cmd)/|^src/cli\\.ts$'),
    forbid('remediator-alone', 'The remediator imports neither the exporter, nor the simulator, nor a command.', layer('remediator'), '^src/(exporter|sim|cmd)/|^src/cli\\.ts$'),
    forbid('sim-alone', 'The simulator imports neither the exporter, the remediator, the probing core, nor a command: it mirrors the server types, it does not probe them.', layer('sim'), '^src/(exporter|remediator|probing|cmd)/|^src/cli\\.ts$'),
    forbid('commands-on-top', 'Only the CLI and other commands import a command.', '^src/(?!cmd/|cli\\.ts$)', layer('cmd')),
    forbid('src-not-tests', 'The product never imports tests or benchmarks.', '^src/', '^(test|bench)/'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
