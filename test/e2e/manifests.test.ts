// The Kubernetes manifests, rendered offline with `kubectl kustomize` and checked two ways:
//   - kubernetes-models / @kubernetes-models/prometheus-operator validate every object against the
//     API's JSON schemas (types, required fields, formats, patterns);
//   - the TypeScript compiler checks the same objects against those packages' types, which catches
//     what JSON-schema validation lets through: a field the API does not have (a typo such as
//     `restartpolicy`, or a field at the wrong level), as `kubectl apply --validate=strict` would.
// Then what headroom needs from the pod: shared PID namespace, native sidecar, env, port, probes,
// restricted security context, and a PodMonitor that selects the pod and its port.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { parseCli } from '../../agent/config.js';
import { REPO } from '../helpers/agent.js';

type Obj = Record<string, any>;

const KUSTOMIZE = join(REPO, 'deploy/kustomize');
const COMPONENT = (name: string) => join(KUSTOMIZE, 'components', name);
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

// apiVersion/kind -> [module, model class, TypeScript interface]
const MODELS: Record<string, readonly [string, string, string]> = {
  'v1/Namespace': ['kubernetes-models/v1/Namespace', 'Namespace', 'INamespace'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'ConfigMap', 'IConfigMap'],
  'v1/ServiceAccount': ['kubernetes-models/v1/ServiceAccount', 'ServiceAccount', 'IServiceAccount'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'Deployment', 'IDeployment'],
  'rbac.authorization.k8s.io/v1/Role': ['kubernetes-models/rbac.authorization.k8s.io/v1/Role', 'Role', 'IRole'],
  'rbac.authorization.k8s.io/v1/RoleBinding': ['kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding', 'RoleBinding', 'IRoleBinding'],
  'monitoring.coreos.com/v1/PodMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', 'PodMonitor', 'IPodMonitor'],
  'monitoring.coreos.com/v1/PrometheusRule': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'PrometheusRule', 'IPrometheusRule'],
};
const keyOf = (o: Obj) => `${o['apiVersion']}/${o['kind']}`;
const nameOf = (o: Obj) => `${o['kind']} ${o['metadata']?.['namespace'] ? `${o['metadata']['namespace']}/` : ''}${o['metadata']?.['name']}`;

function kustomize(dir: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) {
    throw new Error(`kubectl is needed to render the manifests (kubectl kustomize, kustomize >= v5): ${r.error.message}`);
  }
  if (r.status !== 0) throw new Error(`kubectl kustomize ${relative(REPO, dir) || dir} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => {
    if (d.errors.length > 0) throw new Error(`kubectl kustomize printed bad YAML: ${d.errors[0]!.message}`);
    return d.toJS() as Obj;
  }).filter((o) => o);
}

/** JSON-schema validation by kubernetes-models: throws with the object's name and the failures. */
async function validateSchema(objs: readonly Obj[]): Promise<void> {
  for (const o of objs) {
    const m = MODELS[keyOf(o)];
    if (!m) throw new Error(`${nameOf(o)}: no schema for ${keyOf(o)} (add it to MODELS)`);
    const Model = (await import(m[0]))[m[1]] as new (data: Obj) => { validate(): void };
    try {
      new Model(o).validate();
    } catch (err) {
      throw new Error(`${nameOf(o)} is not a valid ${keyOf(o)}: ${(err as Error).message}`);
    }
  }
}

/**
 * Unknown fields and wrong types, by type-checking each object as an object literal of its
 * kubernetes-models interface (TypeScript's excess-property check). Returns one line per problem.
 */
function typeCheck(objs: readonly Obj[]): string[] {
  const file = join(REPO, 'test/e2e/__manifests_typecheck__.ts'); // in memory only, never written
  const ranges: { end: number; name: string }[] = [];
  let src = '';
  objs.forEach((o, i) => {
    const m = MODELS[keyOf(o)];
    if (!m) throw new Error(`${nameOf(o)}: no type for ${keyOf(o)}`);
    src += `export const o${i}: import(${JSON.stringify(m[0])}).${m[2]} = ${JSON.stringify(o, null, 1)};\n`;
    ranges.push({ end: src.length, name: nameOf(o) });
  });
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'], types: [], strict: true, noEmit: true, skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => name === file ? ts.createSourceFile(name, src, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => name === file ? src : readFile(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file?.fileName === file ? ranges.find((r) => d.start! < r.end)?.name : d.file?.fileName;
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n')[0];
    return `${where ?? 'compiler'} (line ${line} of the generated check): ${text}`;
  });
}

async function validate(objs: readonly Obj[]): Promise<void> {
  await validateSchema(objs);
  expect(typeCheck(objs)).toEqual([]);
}

/** The restricted Pod Security Standard, as far as one pod template shows it. */
function restrictedViolations(pod: Obj): string[] {
  const out: string[] = [];
  const podSc = pod['securityContext'] ?? {};
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[k]) out.push(`pod: ${k}`);
  for (const v of pod['volumes'] ?? []) if (v['hostPath']) out.push(`volume ${v['name']}: hostPath`);
  for (const c of [...(pod['initContainers'] ?? []), ...(pod['containers'] ?? [])]) {
    const sc = c['securityContext'] ?? {};
    const bad = (why: string) => out.push(`container ${c['name']}: ${why}`);
    if (sc['privileged']) bad('privileged');
    if (sc['allowPrivilegeEscalation'] !== false) bad('allowPrivilegeEscalation is not false');
    if ((sc['runAsNonRoot'] ?? podSc['runAsNonRoot']) !== true) bad('runAsNonRoot is not true');
    if ((sc['runAsUser'] ?? podSc['runAsUser']) === 0) bad('runAsUser 0');
    if (!(sc['capabilities']?.['drop'] ?? []).includes('ALL')) bad('capabilities do not drop ALL');
    for (const cap of sc['capabilities']?.['add'] ?? []) if (cap !== 'NET_BIND_SERVICE') bad(`adds capability ${cap}`);
    const seccomp = (sc['seccompProfile'] ?? podSc['seccompProfile'])?.['type'];
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') bad(`seccompProfile ${seccomp ?? 'unset'}`);
    for (const p of c['ports'] ?? []) if (p['hostPort']) bad(`hostPort ${p['hostPort']}`);
  }
  return out;
}

/** Every resourceFieldRef of every container names a container of the pod (else the API rejects the pod). */
function danglingResourceRefs(pod: Obj): string[] {
  const all = [...(pod['initContainers'] ?? []), ...(pod['containers'] ?? [])];
  const names = new Set(all.map((c: Obj) => c['name']));
  return all.flatMap((c: Obj) => (c['env'] ?? [])
    .map((e: Obj) => e['valueFrom']?.['resourceFieldRef']?.['containerName'])
    .filter((n: string | undefined) => n !== undefined && !names.has(n))
    .map((n: string) => `${c['name']}: resourceFieldRef to container ${n}`));
}

const deployments = (objs: readonly Obj[]) => objs.filter((o) => o['kind'] === 'Deployment');
const one = (objs: readonly Obj[], kind: string, name?: string): Obj => {
  const hits = objs.filter((o) => o['kind'] === kind && (name === undefined || o['metadata']['name'] === name));
  expect(hits.map(nameOf), `one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return hits[0]!;
};
const podOf = (d: Obj): Obj => d['spec']['template']['spec'];
const headroomIn = (list: Obj[] | undefined) => (list ?? []).filter((c) => c['name'] === 'headroom');
const env = (c: Obj, name: string): Obj | undefined => (c['env'] ?? []).find((e: Obj) => e['name'] === name);

/** What the native-sidecar component must give a pod whose app container is `app`. */
function expectHeadroomSidecar(d: Obj, app: string): Obj {
  const pod = podOf(d);
  expect(pod['shareProcessNamespace']).toBe(true);
  expect(pod['automountServiceAccountToken']).toBe(false);
  expect(headroomIn(pod['containers'])).toEqual([]);
  const [h, ...more] = headroomIn(pod['initContainers']);
  expect(h, 'headroom in initContainers').toBeDefined();
  expect(more).toEqual([]);
  expect(h!['restartPolicy']).toBe('Always');
  expect(h!['image']).toMatch(new RegExp(`(^|/)headroom:${VERSION.replace(/\./g, '\\.')}$`));
  expect(pod['containers'].map((c: Obj) => c['name'])).toContain(app);

  expect(env(h!, 'HEADROOM_TARGET_CONTAINER')).toEqual({ name: 'HEADROOM_TARGET_CONTAINER', value: app });
  expect(env(h!, 'POD_NAME')?.['valueFrom']).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
  expect(env(h!, 'POD_NAMESPACE')?.['valueFrom']).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
  expect(env(h!, 'HEADROOM_MEMORY_REQUEST')?.['valueFrom']).toEqual({ resourceFieldRef: { containerName: app, resource: 'requests.memory' } });
  expect(env(h!, 'HEADROOM_MEMORY_LIMIT')?.['valueFrom']).toEqual({ resourceFieldRef: { containerName: app, resource: 'limits.memory' } });
  for (const e of h!['env']) expect(Object.keys(e).sort(), e['name']).toEqual(e['valueFrom'] ? ['name', 'valueFrom'] : ['name', 'value']);
  expect(danglingResourceRefs(pod)).toEqual([]);

  expect(h!['ports']).toEqual([{ name: 'metrics', containerPort: 9847, protocol: 'TCP' }]);
  expect(h!['readinessProbe']['httpGet']).toEqual({ path: '/readyz', port: 'metrics' });
  expect(h!['livenessProbe']['httpGet']).toEqual({ path: '/healthz', port: 'metrics' });

  const sc = h!['securityContext'];
  expect(sc).toMatchObject({
    runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(sc['capabilities']['add']).toBeUndefined();
  expect(sc['runAsUser']).toBeGreaterThan(0);
  expect(sc['runAsGroup']).toBeGreaterThanOrEqual(0);
  expect(restrictedViolations({ ...pod, containers: [], initContainers: [h] })).toEqual([]);

  expect(h!['resources']).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '128Mi' } });

  const meta = d['spec']['template']['metadata'];
  expect(meta['labels']['headroom.dev/scrape']).toBe('true');
  expect(meta['annotations']).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9847', 'prometheus.io/path': '/metrics' });
  // The pod template's labels still match the Deployment's selector.
  for (const [k, v] of Object.entries(d['spec']['selector']['matchLabels'] as Record<string, string>)) expect(meta['labels'][k]).toBe(v);
  return h!;
}

/** Write a kustomization with a minimal Deployment (container `app`) and the given components. */
function scratch(dirs: string[], opts: { components: string[]; extra?: Obj; deployments?: Obj[] }): string {
  const dir = mkdtempSync(join(tmpdir(), 'headroom-kustomize-'));
  dirs.push(dir);
  const deps = opts.deployments ?? [minimalDeployment('web', 'app')];
  writeFileSync(join(dir, 'deployments.yaml'), deps.map((d) => stringify(d)).join('---\n'));
  writeFileSync(join(dir, 'kustomization.yaml'), stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: ['deployments.yaml'],
    components: opts.components.map((c) => relative(dir, COMPONENT(c))),
    ...opts.extra,
  }));
  return dir;
}

function minimalDeployment(name: string, app: string, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': name } },
        spec: {
          initContainers: [{ name: 'migrate', image: 'busybox:1.36', command: ['true'] }],
          containers: [{
            name: app, image: 'nginx:1.27',
            resources: { requests: { memory: '64Mi' }, limits: { memory: '128Mi' } },
          }],
        },
      },
    },
  };
}

/** The YAML a kustomization.yaml shows in its comments after `#   <first>:` up to the next `#` line. */
function documentedSnippet(kustomization: string, first: string): Obj {
  const lines = readFileSync(kustomization, 'utf8').split('\n');
  const start = lines.findIndex((l) => l === `#   ${first}:`);
  expect(start, `${relative(REPO, kustomization)} documents "${first}:"`).toBeGreaterThanOrEqual(0);
  const block: string[] = [];
  for (const l of lines.slice(start)) {
    if (!l.startsWith('#   ')) break;
    block.push(l.slice(4));
  }
  return parseYaml(block.join('\n')) as Obj;
}

describe('deploy/kustomize', () => {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  describe('examples/leaky-app (components headroom + monitoring)', () => {
    let objs: Obj[];
    beforeAll(() => { objs = kustomize(join(KUSTOMIZE, 'examples/leaky-app')); });

    it('renders valid objects, all in one namespace that enforces the restricted standard', async () => {
      expect(objs.map((o) => o['kind']).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'PodMonitor', 'PrometheusRule']);
      await validate(objs);
      const ns = one(objs, 'Namespace');
      expect(ns['metadata']['labels']['pod-security.kubernetes.io/enforce']).toBe('restricted');
      for (const o of objs.filter((x) => x['kind'] !== 'Namespace')) expect(o['metadata']['namespace'], nameOf(o)).toBe(ns['metadata']['name']);
    });

    it('gives the app a native headroom sidecar with the app\'s UID and GID, and both meet the restricted standard', () => {
      const d = one(objs, 'Deployment', 'leaky-app');
      const h = expectHeadroomSidecar(d, 'app');
      const app = podOf(d)['containers'].find((c: Obj) => c['name'] === 'app');
      expect(app['resources']['requests']['memory']).toBeDefined();
      expect(app['resources']['limits']['memory']).toBe('128Mi');
      expect(h['securityContext']['runAsUser']).toBe(app['securityContext']['runAsUser']);
      expect(h['securityContext']['runAsGroup']).toBe(app['securityContext']['runAsGroup']);
      expect(restrictedViolations(podOf(d))).toEqual([]);
    });

    it('has a PodMonitor that selects the pod and scrapes headroom\'s port, with the same release label as the rules', () => {
      const d = one(objs, 'Deployment', 'leaky-app');
      const labels = d['spec']['template']['metadata']['labels'];
      const pm = one(objs, 'PodMonitor');
      for (const [k, v] of Object.entries(pm['spec']['selector']['matchLabels'] as Record<string, string>)) expect(labels[k], k).toBe(v);
      expect(pm['spec']['selector']['matchExpressions']).toBeUndefined();
      expect(pm['spec']['namespaceSelector']).toBeUndefined(); // its own namespace, the pod's
      const [ep, ...more] = pm['spec']['podMetricsEndpoints'];
      expect(more).toEqual([]);
      const h = headroomIn(podOf(d)['initContainers'])[0]!;
      expect(h['ports'].map((p: Obj) => p['name'])).toContain(ep['port']);
      expect(ep).toMatchObject({ port: 'metrics', path: '/metrics', interval: '15s', honorLabels: true });
      expect(ep['relabelings']).toContainEqual({ sourceLabels: ['__meta_kubernetes_pod_container_name'], regex: 'headroom', action: 'keep' });
      const release = pm['metadata']['labels']['release'];
      expect(release).toBe('kube-prometheus-stack');
      expect(one(objs, 'PrometheusRule')['metadata']['labels']['release']).toBe(release);
    });

    it('ships the Grafana dashboard as ConfigMap headroom-dashboard for the Grafana sidecar', () => {
      const cm = one(objs, 'ConfigMap');
      expect(cm['metadata']['name']).toBe('headroom-dashboard'); // no hash suffix
      expect(cm['metadata']['labels']['grafana_dashboard']).toBe('1');
      const json = JSON.parse(cm['data']['headroom-dashboard.json']) as Obj;
      expect(json['panels']?.length ?? json['rows']?.length).toBeGreaterThan(0);
    });

    it('wires pre-OOM capture: the app writes heap snapshots into a volume headroom shares and caps, and headroom\'s env is a valid configuration', () => {
      const d = one(objs, 'Deployment', 'leaky-app');
      const pod = podOf(d);
      const h = headroomIn(pod['initContainers'])[0]!;
      const app = pod['containers'].find((c: Obj) => c['name'] === 'app');
      const env: Record<string, string> = {};
      for (const e of h['env'] as Obj[]) if (typeof e['value'] === 'string') env[e['name']] = e['value'];
      const parsed = parseCli([], env);
      if (parsed.kind !== 'run') throw new Error('expected a configuration');
      expect(parsed.config.capture).toMatchObject({ signal: 'SIGUSR2', on: 'warning', dir: '/captures', maxFiles: 3 });
      expect(app['command']).toContain('--heapsnapshot-signal=SIGUSR2');
      expect(app['command']).toContain(`--diagnostic-dir=${parsed.config.capture!.dir}`);
      const mountOf = (c: Obj) => (c['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === '/captures');
      expect(mountOf(app)['name']).toBe(mountOf(h)['name']);
      const vol = (pod['volumes'] as Obj[]).find((v) => v['name'] === mountOf(h)['name']);
      expect(vol['emptyDir']['sizeLimit']).toBe('256Mi');
      // headroom's byte cap fits inside the volume's own limit
      expect(parsed.config.capture!.maxBytes).toBeLessThan(256 * 1024 * 1024);
    });

    it('pins the headroom image to the package version', () => {
      const k = parseYaml(readFileSync(join(KUSTOMIZE, 'examples/leaky-app/kustomization.yaml'), 'utf8')) as Obj;
      expect(k['images']).toContainEqual(expect.objectContaining({ name: 'headroom', newTag: VERSION }));
    });
  });

  describe('components on a minimal Deployment', () => {
    it('headroom: adds the native sidecar, keeps the app\'s own init containers, and skips headroom.dev/inject: "false"', async () => {
      const dir = scratch(dirs, {
        components: ['headroom'],
        deployments: [minimalDeployment('web', 'app'), minimalDeployment('skip', 'app', { 'headroom.dev/inject': 'false' })],
      });
      const objs = kustomize(dir);
      await validate(objs);
      const web = one(objs, 'Deployment', 'web');
      expectHeadroomSidecar(web, 'app');
      expect(podOf(web)['initContainers'].map((c: Obj) => c['name']).sort()).toEqual(['headroom', 'migrate']);
      const skip = one(objs, 'Deployment', 'skip');
      expect(skip).toEqual(minimalDeployment('skip', 'app', { 'headroom.dev/inject': 'false' }));
      expect(JSON.stringify(objs)).not.toContain('any-deployment');
    });

    it('headroom: the documented patch sets the image, the app\'s UID/GID and another container name', async () => {
      const doc = documentedSnippet(join(COMPONENT('headroom'), 'kustomization.yaml'), 'images');
      const more = documentedSnippet(join(COMPONENT('headroom'), 'kustomization.yaml'), 'patches');
      const dir = scratch(dirs, { components: ['headroom'], deployments: [minimalDeployment('my-api', 'api')], extra: { ...doc, ...more } });
      const objs = kustomize(dir);
      await validate(objs);
      const h = expectHeadroomSidecar(one(objs, 'Deployment', 'my-api'), 'api');
      expect(h['image']).toBe(`registry.example.com/headroom:${VERSION}`);
      expect(h['securityContext']).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true });
    });

    it('headroom-legacy: the same container, under containers and without restartPolicy', async () => {
      const objs = kustomize(scratch(dirs, { components: ['headroom-legacy'] }));
      await validate(objs);
      const pod = podOf(one(objs, 'Deployment', 'web'));
      expect(headroomIn(pod['initContainers'])).toEqual([]);
      const [h] = headroomIn(pod['containers']);
      expect(h, 'headroom in containers').toBeDefined();
      expect(h!['restartPolicy']).toBeUndefined();
      expect(pod['shareProcessNamespace']).toBe(true);
      const tmpl = one(objs, 'Deployment', 'web')['spec']['template']['metadata'];
      expect(tmpl['annotations']['kubectl.kubernetes.io/default-container']).toBe('app');

      const native = headroomIn(podOf(one(kustomize(scratch(dirs, { components: ['headroom'] })), 'Deployment', 'web'))['initContainers'])[0]!;
      const { restartPolicy, ...nativeRest } = native;
      expect(restartPolicy).toBe('Always');
      expect(h).toEqual(nativeRest);
    });

    it('monitoring: the documented patch changes the release label of the PodMonitor and the PrometheusRule', async () => {
      const doc = documentedSnippet(join(COMPONENT('monitoring'), 'kustomization.yaml'), 'patches');
      const objs = kustomize(scratch(dirs, { components: ['headroom', 'monitoring'], extra: { namespace: 'shop', ...doc } }));
      await validate(objs);
      for (const kind of ['PodMonitor', 'PrometheusRule']) {
        const o = one(objs, kind);
        expect(o['metadata']['labels']['release'], kind).toBe('my-prometheus');
        expect(o['metadata']['namespace']).toBe('shop');
      }
      expect(one(objs, 'ConfigMap', 'headroom-dashboard')['metadata']['labels']['grafana_dashboard']).toBe('1');
    });

    it('rbac: a service account that may create and patch events in its namespace, used by the pod', async () => {
      const objs = kustomize(scratch(dirs, { components: ['headroom', 'rbac'], extra: { namespace: 'shop' } }));
      await validate(objs);
      const sa = one(objs, 'ServiceAccount', 'headroom');
      const role = one(objs, 'Role');
      expect(role['rules']).toEqual([
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ]);
      const rb = one(objs, 'RoleBinding');
      expect(rb['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role['metadata']['name'] });
      expect(rb['subjects']).toEqual([{ kind: 'ServiceAccount', name: sa['metadata']['name'], namespace: 'shop' }]);
      for (const o of [sa, role, rb]) expect(o['metadata']['namespace']).toBe('shop');
      const pod = podOf(one(objs, 'Deployment', 'web'));
      expect(pod['serviceAccountName']).toBe('headroom');
      expect(pod['automountServiceAccountToken']).toBe(true);
      // ... and switches the Events sink on in the native sidecar: one env more, nothing else changed
      expect(headroomIn(pod['containers'])).toEqual([]);
      const [h, ...more] = headroomIn(pod['initContainers']);
      expect(h, 'headroom in initContainers').toBeDefined();
      expect(more).toEqual([]);
      expect(env(h!, 'HEADROOM_KUBERNETES_EVENTS')).toEqual({ name: 'HEADROOM_KUBERNETES_EVENTS', value: 'true' });
      const without = headroomIn(podOf(one(kustomize(scratch(dirs, { components: ['headroom'], extra: { namespace: 'shop' } })), 'Deployment', 'web'))['initContainers'])[0]!;
      expect({ ...h, env: h!['env'].filter((e: Obj) => e['name'] !== 'HEADROOM_KUBERNETES_EVENTS') }).toEqual(without);
    });

    it('rbac with headroom-legacy: switches Events on in the headroom container under containers', async () => {
      const objs = kustomize(scratch(dirs, { components: ['headroom-legacy', 'rbac'], extra: { namespace: 'shop' } }));
      await validate(objs);
      const pod = podOf(one(objs, 'Deployment', 'web'));
      expect(pod['serviceAccountName']).toBe('headroom');
      expect(pod['automountServiceAccountToken']).toBe(true);
      expect(headroomIn(pod['initContainers'])).toEqual([]);
      const [h, ...more] = headroomIn(pod['containers']);
      expect(h, 'headroom in containers').toBeDefined();
      expect(more).toEqual([]);
      expect(h!['restartPolicy']).toBeUndefined();
      expect(env(h!, 'HEADROOM_KUBERNETES_EVENTS')).toEqual({ name: 'HEADROOM_KUBERNETES_EVENTS', value: 'true' });
      const without = headroomIn(podOf(one(kustomize(scratch(dirs, { components: ['headroom-legacy'], extra: { namespace: 'shop' } })), 'Deployment', 'web'))['containers'])[0]!;
      expect({ ...h, env: h!['env'].filter((e: Obj) => e['name'] !== 'HEADROOM_KUBERNETES_EVENTS') }).toEqual(without);
    });

    it('rbac skips a Deployment labelled headroom.dev/inject: "false"', () => {
      const objs = kustomize(scratch(dirs, {
        components: ['headroom', 'rbac'],
        deployments: [minimalDeployment('web', 'app'), minimalDeployment('skip', 'app', { 'headroom.dev/inject': 'false' })],
      }));
      expect(one(objs, 'Deployment', 'skip')).toEqual(minimalDeployment('skip', 'app', { 'headroom.dev/inject': 'false' }));
    });

    it('without rbac, no service account, role or binding', () => {
      const objs = kustomize(scratch(dirs, { components: ['headroom', 'monitoring'] }));
      expect(objs.map((o) => o['kind']).filter((k) => /ServiceAccount|Role/.test(k))).toEqual([]);
      expect(podOf(one(objs, 'Deployment', 'web'))['serviceAccountName']).toBeUndefined();
      const h = expectHeadroomSidecar(one(objs, 'Deployment', 'web'), 'app');
      expect(env(h, 'HEADROOM_KUBERNETES_EVENTS'), 'no Events without rbac').toBeUndefined();
      const legacy = headroomIn(podOf(one(kustomize(scratch(dirs, { components: ['headroom-legacy', 'monitoring'] })), 'Deployment', 'web'))['containers'])[0]!;
      expect(legacy, 'headroom in containers').toBeDefined();
      expect(env(legacy, 'HEADROOM_KUBERNETES_EVENTS'), 'no Events without rbac (legacy)').toBeUndefined();
    });
  });

  it('the checks catch a field the API does not have and a value of the wrong type', async () => {
    const typo = minimalDeployment('typo', 'app');
    typo['spec']['template']['spec']['containers'][0]['restartpolicy'] = 'Always';
    await validateSchema([typo]); // JSON schemas allow unknown fields ...
    expect(typeCheck([typo]).join('\n')).toMatch(/Deployment typo .*restartpolicy.* does not exist in type 'IContainer'/); // ... the types do not
    const port = minimalDeployment('port', 'app');
    port['spec']['template']['spec']['containers'][0]['ports'] = [{ containerPort: '9847' }];
    await expect(validateSchema([port])).rejects.toThrow(/Deployment port is not a valid apps\/v1\/Deployment: .*containerPort must be integer/);
    expect(typeCheck([port]).join('\n')).toMatch(/Deployment port .*not assignable to type 'number'/);
  });
});

describe('deploy/prometheus/scrape-config.yaml', () => {
  const cfg = parseYaml(readFileSync(join(REPO, 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as Obj;
  const job = cfg['scrape_configs']?.[0] as Obj;

  it('keeps the headroom container\'s metrics port of labelled pods and adds namespace and pod', () => {
    expect(cfg['scrape_configs']).toHaveLength(1);
    expect(job['kubernetes_sd_configs']).toEqual([{ role: 'pod' }]);
    expect(job['honor_labels']).toBe(true);
    const rl = job['relabel_configs'] as Obj[];
    expect(rl).toContainEqual({ source_labels: ['__meta_kubernetes_pod_label_headroom_dev_scrape'], regex: 'true', action: 'keep' });
    expect(rl).toContainEqual({ source_labels: ['__meta_kubernetes_pod_container_name', '__meta_kubernetes_pod_container_port_name'], regex: 'headroom;metrics', action: 'keep' });
    expect(rl).toContainEqual({ source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' });
    expect(rl).toContainEqual({ source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' });
    expect(rl.some((r) => r['target_label'] === 'container')).toBe(false); // headroom's own label
  });

  it('passes promtool check config (with static targets: Debian\'s promtool has no Kubernetes discovery)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'headroom-scrape-'));
    try {
      const { kubernetes_sd_configs: _sd, ...rest } = job;
      writeFileSync(join(dir, 'prometheus.yml'), stringify({ scrape_configs: [{ ...rest, static_configs: [{ targets: ['127.0.0.1:9847'] }] }] }));
      const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      if (r.error) throw new Error(`promtool is needed (Debian package "prometheus"; .ci/run installs it): ${r.error.message}`);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
