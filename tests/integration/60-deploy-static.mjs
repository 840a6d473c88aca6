// The container and Kubernetes deployment, validated statically (no Docker engine or cluster
// runs here): the files parse, references resolve (selectors, services, depends_on, env), and
// every flag they pass is one the built binaries accept. The same topology runs as processes in
// the cluster tests and deploy/local/start.sh.
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const YAML = createRequire(path.join(npm, 'node_modules/'))('yaml');

let failures = 0;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) failures++; };

const bins = { 'mcpgw-node': 'node/mcpgw-node', 'mcpgw-balancer': 'balancer/mcpgw-balancer',
  'mcpgw-loadgen': 'loadgen/mcpgw-loadgen' };
const flagsOf = {};
for (const [name, rel] of Object.entries(bins)) {
  const help = execFileSync(path.join(build, rel), ['--help']).toString();
  flagsOf[name] = new Set([...help.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
}
// Flags in an argument list: "--name=value" or "--name value".
const flagsIn = (args) => args.filter((a) => typeof a === 'string' && a.startsWith('--'))
  .map((a) => a.slice(2).split('=')[0]);
const unknownFlags = (bin, args) => flagsIn(args).filter((f) => !flagsOf[bin].has(f));

// Dockerfile: builds the three programs and copies them from where CMake puts them.
const dockerfile = readFileSync(path.join(root, 'deploy/Dockerfile'), 'utf8');
for (const [name, rel] of Object.entries(bins)) {
  check(dockerfile.includes(`--target`) && dockerfile.includes(name) && dockerfile.includes(`/build/${rel}`),
    `Dockerfile builds ${name} and copies /build/${rel}`);
  check(existsSync(path.join(build, rel)), `CMake puts ${name} at <build>/${rel}`);
}

// docker-compose.
const compose = YAML.parse(readFileSync(path.join(root, 'deploy/docker-compose.yml'), 'utf8'), { merge: true });
const services = compose.services || {};
for (const s of ['redis', 'n1', 'n2', 'n3', 'n4', 'balancer'])
  check(services[s], `compose defines service ${s}`);
for (const [name, svc] of Object.entries(services)) {
  for (const d of svc.depends_on || []) check(services[d], `compose ${name} depends on an existing service (${d})`);
  if (name === 'redis') continue;
  const bin = (svc.entrypoint || ['/usr/local/bin/mcpgw-node'])[0].split('/').pop();
  const bad = unknownFlags(bin, svc.command || []);
  check(bin in flagsOf && bad.length === 0, `compose ${name}: ${bin} accepts every flag${bad.length ? ` (unknown: ${bad})` : ''}`);
  if (svc.build) check(existsSync(path.join(root, 'deploy', svc.build.context, svc.build.dockerfile)),
    `compose ${name}: build context and Dockerfile exist`);
}
const ids = ['n1', 'n2', 'n3', 'n4'].map((n) => {
  const c = services[n].command; return c[c.indexOf('--node-id') + 1];
});
check(new Set(ids).size === 4, `compose node ids are unique (${ids})`);

// Kubernetes.
const docs = YAML.parseAllDocuments(readFileSync(path.join(root, 'deploy/k8s/mcpgw.yaml'), 'utf8')).map((d) => d.toJS());
for (const d of docs) check(d.apiVersion && d.kind && d.metadata?.name, `k8s ${d.kind}/${d.metadata?.name} has apiVersion, kind and name`);
const workloads = docs.filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind));
const servicesK = docs.filter((d) => d.kind === 'Service');
for (const w of workloads) {
  const labels = w.spec.template.metadata.labels;
  const sel = w.spec.selector.matchLabels;
  check(Object.entries(sel).every(([k, v]) => labels[k] === v), `k8s ${w.metadata.name}: selector matches its pod labels`);
  for (const c of w.spec.template.spec.containers) {
    const bin = (c.command || ['redis-server'])[0].split('/').pop();
    if (!(bin in flagsOf)) continue;
    const bad = unknownFlags(bin, c.args || []);
    check(bad.length === 0, `k8s ${w.metadata.name}/${c.name}: ${bin} accepts every flag${bad.length ? ` (unknown: ${bad})` : ''}`);
    const envs = new Set((c.env || []).map((e) => e.name));
    const refs = [...(c.args || []).join(' ').matchAll(/\$\(([A-Z_]+)\)/g)].map((m) => m[1]);
    check(refs.every((r) => envs.has(r)), `k8s ${w.metadata.name}/${c.name}: every $(VAR) in args is defined`);
    for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean)) {
      const port = probe.httpGet.port;
      check((c.ports || []).some((p) => p.containerPort === port), `k8s ${w.metadata.name}: probe port ${port} is a container port`);
    }
  }
  if (w.kind === 'StatefulSet') {
    const svc = servicesK.find((s) => s.metadata.name === w.spec.serviceName);
    check(svc && svc.spec.clusterIP === 'None', `k8s ${w.metadata.name}: serviceName names a headless Service`);
  }
}
for (const s of servicesK) {
  const match = workloads.some((w) => Object.entries(s.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
  check(match, `k8s Service ${s.metadata.name} selects a workload`);
}
console.log(`${failures === 0 ? 'ok' : 'FAIL'} - deployment files: ${failures} problems`);
process.exit(failures ? 1 : 0);
