// The container and Kubernetes deployment, validated statically (no Docker engine or cluster
// runs here; 61-deploy-image.sh builds and runs the image itself): the files parse, every
// Kubernetes object passes the Kubernetes API's JSON schema for its kind (npm kubernetes-models,
// Kubernetes 1.27), references resolve (selectors, services, depends_on, env, ConfigMap keys,
// volumes), every flag they pass is one the built binaries accept, nodes accept the Host names
// outside clients use, readiness means /readyz and liveness /healthz, and Redis keeps its data on
// a volume. The same topology runs as processes in the cluster tests and deploy/local/start.sh.
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
// The value of --name in an argument list ("--name=v" or "--name v"), or undefined.
const flagValue = (args, name) => {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (typeof args[i] === 'string' && args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
};

// Dockerfile: builds the three programs and copies them from where CMake puts them.
const dockerfile = readFileSync(path.join(root, 'deploy/Dockerfile'), 'utf8');
for (const [name, rel] of Object.entries(bins)) {
  check(dockerfile.includes(`--target`) && dockerfile.includes(name) && dockerfile.includes(`/build/${rel}`),
    `Dockerfile builds ${name} and copies /build/${rel}`);
  check(existsSync(path.join(build, rel)), `CMake puts ${name} at <build>/${rel}`);
}
const installed = /^COPY --from=\S+ (?:.|\\\n)* (\/\S+\/)$/m.exec(dockerfile)?.[1];
check(installed, `Dockerfile copies the programs into a directory (${installed})`);

// docker-compose.
const compose = YAML.parse(readFileSync(path.join(root, 'deploy/docker-compose.yml'), 'utf8'), { merge: true });
const services = compose.services || {};
for (const s of ['redis', 'n1', 'n2', 'n3', 'n4', 'balancer'])
  check(services[s], `compose defines service ${s}`);
const dependsOn = (svc) => (Array.isArray(svc.depends_on) ? Object.fromEntries(svc.depends_on.map((d) => [d, {}]))
  : svc.depends_on || {});
const nodeSvcs = Object.entries(services).filter(([, s]) => s.image === 'mcpgw:latest' && !s.entrypoint);
for (const [name, svc] of Object.entries(services)) {
  for (const d of Object.keys(dependsOn(svc))) check(services[d], `compose ${name} depends on an existing service (${d})`);
  if (name === 'redis') continue;
  const entry = svc.entrypoint || ['/usr/local/bin/mcpgw-node'];
  const bin = entry[0].split('/').pop();
  const bad = unknownFlags(bin, svc.command || []);
  check(bin in flagsOf && bad.length === 0, `compose ${name}: ${bin} accepts every flag${bad.length ? ` (unknown: ${bad})` : ''}`);
  check(entry[0] === `${installed}${bin}`, `compose ${name}: its program ${entry[0]} is where the Dockerfile puts it`);
  if (svc.build) check(existsSync(path.join(root, 'deploy', svc.build.context, svc.build.dockerfile)),
    `compose ${name}: build context and Dockerfile exist`);
}
const ids = ['n1', 'n2', 'n3', 'n4'].map((n) => {
  const c = services[n].command; return c[c.indexOf('--node-id') + 1];
});
check(new Set(ids).size === 4, `compose node ids are unique (${ids})`);
for (const [name, svc] of nodeSvcs) {
  check(svc.healthcheck?.test?.join(' ').includes(':8801/readyz'), `compose ${name}: healthy means ready (/readyz)`);
  const hosts = flagValue(svc.command, 'allowed-hosts') || '';
  check(/^\$\{MCPGW_ALLOWED_HOSTS:-[^}]*localhost[^}]*\}$/.test(hosts),
    `compose ${name}: --allowed-hosts comes from MCPGW_ALLOWED_HOSTS, localhost by default (${hosts})`);
}
const balDeps = dependsOn(services.balancer || {});
check(nodeSvcs.every(([n]) => balDeps[n]?.condition === 'service_healthy'),
  'compose balancer starts once every node is healthy (ready)');

// Kubernetes.
const docs = YAML.parseAllDocuments(readFileSync(path.join(root, 'deploy/k8s/mcpgw.yaml'), 'utf8')).map((d) => d.toJS());
const k8sModel = async (d) => {
  try {
    return (await import(path.join(npm, 'node_modules/kubernetes-models', d.apiVersion, 'index.js')))[d.kind];
  } catch { return undefined; }
};
for (const d of docs) {
  const Model = d.apiVersion && d.kind ? await k8sModel(d) : undefined;
  let err = Model ? '' : `no schema for ${d.apiVersion} ${d.kind}`;
  if (Model) try { new Model(d).validate(); } catch (e) { err = e.message.split('\n')[0]; }
  check(!err && d.metadata?.name && (d.kind === 'Namespace' || d.metadata.namespace),
    `k8s ${d.kind}/${d.metadata?.name} passes the Kubernetes schema of ${d.apiVersion} ${d.kind}${err ? `: ${err}` : ''}`);
}
const byKind = (k) => docs.filter((d) => d.kind === k);
const workloads = docs.filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind));
const servicesK = byKind('Service');
const configMaps = byKind('ConfigMap');
// A container's args with $(VAR) replaced by the env value it names, where that is a literal or a
// ConfigMap key ("" if the reference does not resolve).
const envValue = (c, name) => {
  const e = (c.env || []).find((v) => v.name === name);
  if (!e) return undefined;
  if (e.value !== undefined) return e.value;
  const ref = e.valueFrom?.configMapKeyRef;
  if (ref) return configMaps.find((m) => m.metadata.name === ref.name)?.data?.[ref.key];
  return `<${name}>`; // fieldRef: known only in the pod
};
const containersOf = (bin) => workloads.flatMap((w) => w.spec.template.spec.containers
  .filter((c) => (c.command || [])[0]?.endsWith(`/${bin}`)).map((c) => ({ w, c })));
for (const w of workloads) {
  const labels = w.spec.template.metadata.labels;
  const sel = w.spec.selector.matchLabels;
  check(Object.entries(sel).every(([k, v]) => labels[k] === v), `k8s ${w.metadata.name}: selector matches its pod labels`);
  for (const c of w.spec.template.spec.containers) {
    for (const e of c.env || []) {
      const ref = e.valueFrom?.configMapKeyRef;
      if (ref) check(configMaps.some((m) => m.metadata.name === ref.name && ref.key in (m.data || {})),
        `k8s ${w.metadata.name}/${c.name}: env ${e.name} names an existing ConfigMap key (${ref.name}/${ref.key})`);
    }
    for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean)) {
      const port = (probe.httpGet || probe.tcpSocket).port;
      check((c.ports || []).some((p) => p.containerPort === port || p.name === port),
        `k8s ${w.metadata.name}: probe port ${port} is a container port`);
    }
    for (const m of c.volumeMounts || []) {
      const known = (w.spec.template.spec.volumes || []).some((v) => v.name === m.name) ||
        (w.spec.volumeClaimTemplates || []).some((v) => v.metadata.name === m.name);
      check(known, `k8s ${w.metadata.name}/${c.name}: volume ${m.name} is defined`);
    }
    const bin = (c.command || ['redis-server'])[0].split('/').pop();
    if (!(bin in flagsOf)) continue;
    const bad = unknownFlags(bin, c.args || []);
    check(bad.length === 0, `k8s ${w.metadata.name}/${c.name}: ${bin} accepts every flag${bad.length ? ` (unknown: ${bad})` : ''}`);
    const envs = new Set((c.env || []).map((e) => e.name));
    const refs = [...(c.args || []).join(' ').matchAll(/\$\(([A-Z_]+)\)/g)].map((m) => m[1]);
    check(refs.every((r) => envs.has(r)), `k8s ${w.metadata.name}/${c.name}: every $(VAR) in args is defined`);
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

// Nodes: accept the Host names clients use, ready on /readyz, live on /healthz, a store that exists.
const balancerPods = containersOf('mcpgw-balancer');
const front = servicesK.filter((s) => balancerPods.some(({ w }) =>
  Object.entries(s.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v)));
check(front.some((s) => ['LoadBalancer', 'NodePort'].includes(s.spec.type)) || byKind('Ingress').length > 0,
  'k8s: the balancers are reachable from outside the cluster (a LoadBalancer Service or an Ingress)');
const frontNames = front.flatMap((s) => { const n = s.metadata.name, ns = s.metadata.namespace;
  return [n, `${n}.${ns}`, `${n}.${ns}.svc`, `${n}.${ns}.svc.cluster.local`]; });
const ingressHosts = byKind('Ingress').flatMap((i) => (i.spec.rules || []).map((r) => r.host).filter(Boolean));
const nodePods = containersOf('mcpgw-node');
check(nodePods.length > 0, 'k8s runs mcpgw nodes');
for (const { w, c } of nodePods) {
  const raw = flagValue(c.args || [], 'allowed-hosts');
  const hosts = (raw || '').replace(/\$\(([A-Z_]+)\)/g, (_, v) => envValue(c, v) ?? '').split(',').filter(Boolean);
  check(raw !== undefined, `k8s ${w.metadata.name}: nodes get --allowed-hosts (the default, localhost only, refuses every outside client with 403)`);
  const missing = [...frontNames, ...ingressHosts].filter((h) => !hosts.includes(h) && !hosts.includes('*'));
  check(missing.length === 0, `k8s ${w.metadata.name}: --allowed-hosts includes the balancer Service's names and Ingress hosts${missing.length ? ` (missing: ${missing})` : ''}`);
  check(hosts.some((h) => h === '*' || (h.includes('.') && !h.endsWith('.svc') && !h.endsWith('.cluster.local') && !frontNames.includes(h))),
    `k8s ${w.metadata.name}: --allowed-hosts has a name for clients outside the cluster (${hosts})`);
  check(c.readinessProbe?.httpGet?.path === '/readyz', `k8s ${w.metadata.name}: readiness is /readyz (store connected, not draining)`);
  check(c.livenessProbe?.httpGet?.path === '/healthz', `k8s ${w.metadata.name}: liveness is /healthz`);
  const store = /^redis:\/\/([^:/]+):(\d+)$/.exec(flagValue(c.args || [], 'store') || '');
  const svc = store && servicesK.find((s) => [s.metadata.name, `${s.metadata.name}.${s.metadata.namespace}.svc.cluster.local`].includes(store[1]));
  check(svc && svc.spec.ports.some((p) => p.port === Number(store[2])), `k8s ${w.metadata.name}: --store names a Service and port that exist (${store?.[0]})`);
}
for (const { w, c } of balancerPods) {
  check(c.readinessProbe?.httpGet?.path === '/healthz' && c.readinessProbe.httpGet.port === 8900,
    `k8s ${w.metadata.name}: balancer readiness is its admin /healthz (a node up, not draining)`);
  check(c.livenessProbe && !c.livenessProbe.httpGet?.path?.startsWith('/healthz'),
    `k8s ${w.metadata.name}: balancer liveness does not depend on the nodes (an outage of every node must not restart it)`);
}

// Redis keeps its data (append-only file) on a persistent volume.
const redis = workloads.find((w) => w.spec.template.spec.containers.some((c) => /^redis(:|$)/.test(c.image)));
const rc = redis?.spec.template.spec.containers.find((c) => /^redis(:|$)/.test(c.image));
const dir = rc && (rc.args || []).includes('--dir') ? rc.args[rc.args.indexOf('--dir') + 1] : undefined;
const claim = redis?.spec.volumeClaimTemplates?.find((v) => (rc.volumeMounts || []).some((m) => m.name === v.metadata.name && m.mountPath === dir));
check(redis?.kind === 'StatefulSet' && rc.args.includes('--appendonly') && (rc.args || []).includes('--dir') && claim,
  `k8s redis: a StatefulSet writing its append-only file to --dir ${dir} on a volume claim (${claim?.metadata.name})`);
check(claim?.spec.resources?.requests?.storage, `k8s redis: the claim requests storage (${claim?.spec.resources?.requests?.storage})`);
console.log(`${failures === 0 ? 'ok' : 'FAIL'} - deployment files: ${failures} problems`);
process.exit(failures ? 1 : 0);
