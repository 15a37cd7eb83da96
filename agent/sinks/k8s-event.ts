// Kubernetes Events on the pod (core/v1 Event, the kind `kubectl describe pod` and `kubectl get
// events` show): OOMRisk (Warning), OOMRiskCleared (Normal), OOMKilled (Warning). Like the kubelet,
// the same (reason, container) within 10 minutes updates the existing Event (count + 1,
// lastTimestamp, message) with a merge patch instead of creating another one.
// In-cluster auth: the service account token (re-read each time: kubelet rotates it), its CA and
// KUBERNETES_SERVICE_HOST/PORT. RBAC: create and patch on events (deploy/kustomize/components/rbac).
import { readFile } from 'node:fs/promises';
import { HttpError, request } from './http.js';
import { description } from './describe.js';
import type { Notification, NotifyEvent, PodRef, Sink } from './notify.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const AGGREGATE_MS = 10 * 60_000;

export interface KubernetesEventOptions {
  readonly pod: PodRef;
  /** set involvedObject.fieldPath spec.containers{name}: true when container names are the pod's (pod mode) */
  readonly fieldPath: boolean;
  /** token, ca.crt, namespace (default the in-cluster mount) */
  readonly serviceAccountDir?: string;
  /** https://host:port of the API server (default from KUBERNETES_SERVICE_HOST/PORT) */
  readonly apiServer?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface CoreV1Event {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  involvedObject: { apiVersion: 'v1'; kind: 'Pod'; name: string; namespace: string; fieldPath?: string };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

/** metav1.Time: RFC 3339, whole seconds */
const k8sTime = (t: number) => new Date(Math.floor(t / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function reasonOf(e: NotifyEvent): { reason: string; type: 'Normal' | 'Warning' } {
  if (e.type === 'oom_kill') return { reason: 'OOMKilled', type: 'Warning' };
  return e.to === 'ok' ? { reason: 'OOMRiskCleared', type: 'Normal' } : { reason: 'OOMRisk', type: 'Warning' };
}

/** Where and how to talk to the API server; throws a plain-words Error when not in a cluster. */
export async function kubernetesEventSink(opts: KubernetesEventOptions): Promise<KubernetesEventSink> {
  const env = opts.env ?? process.env;
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (!opts.pod.name) throw new Error('POD_NAME is not set (downward API metadata.name): no pod to attach Events to');
  let apiServer = opts.apiServer;
  if (!apiServer) {
    const host = env['KUBERNETES_SERVICE_HOST'];
    const port = env['KUBERNETES_SERVICE_PORT'] || '443';
    if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: not running in a Kubernetes cluster');
    apiServer = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  let namespace = opts.pod.namespace;
  if (!namespace) {
    namespace = (await readFile(`${dir}/namespace`, 'utf8').catch(() => '')).trim() || undefined;
    if (!namespace) throw new Error(`POD_NAMESPACE is not set and ${dir}/namespace cannot be read`);
  }
  // Fail early and clearly when the service account is not mounted (automountServiceAccountToken: false).
  await readFile(`${dir}/token`, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read the service account token ${dir}/token (${err.code ?? err.message}); is automountServiceAccountToken off?`);
  });
  return new KubernetesEventSink(apiServer, dir, opts.pod.name, namespace, opts.fieldPath);
}

export class KubernetesEventSink implements Sink {
  readonly name = 'kubernetes';
  /** (reason, container) -> the Event last written */
  private readonly recent = new Map<string, { name: string; count: number; last: number }>();
  private seq = 0;

  constructor(
    private readonly apiServer: string,
    private readonly dir: string,
    private readonly podName: string,
    private readonly namespace: string,
    private readonly fieldPath: boolean,
  ) {}

  private async auth(): Promise<{ token: string; ca: Buffer | undefined }> {
    const token = (await readFile(`${this.dir}/token`, 'utf8')).trim();
    const ca = await readFile(`${this.dir}/ca.crt`).catch(() => undefined);
    return { token, ca };
  }

  /** The Event a notification creates (exported for tests). */
  event(e: NotifyEvent, time: number): CoreV1Event {
    const { reason, type } = reasonOf(e);
    const name = `${this.podName}.${(BigInt(time) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16)}`;
    return {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name, namespace: this.namespace },
      involvedObject: {
        apiVersion: 'v1', kind: 'Pod', name: this.podName, namespace: this.namespace,
        ...(this.fieldPath ? { fieldPath: `spec.containers{${e.container}}` } : {}),
      },
      reason, type, message: description(e),
      source: { component: 'headroom' }, reportingComponent: 'headroom', reportingInstance: this.podName,
      firstTimestamp: k8sTime(time), lastTimestamp: k8sTime(time), count: 1,
    };
  }

  async send(n: Notification, signal: AbortSignal): Promise<boolean> {
    if (n.kind !== 'event') return false;
    const e = n.event;
    const { reason } = reasonOf(e);
    const key = `${reason}\0${e.container}`;
    const { token, ca } = await this.auth();
    const base = `${this.apiServer}/api/v1/namespaces/${encodeURIComponent(this.namespace)}/events`;
    const headers = { authorization: `Bearer ${token}` };
    const prev = this.recent.get(key);
    if (prev && n.time - prev.last < AGGREGATE_MS) {
      const patch = { count: prev.count + 1, lastTimestamp: k8sTime(n.time), message: description(e) };
      try {
        await request({
          url: `${base}/${encodeURIComponent(prev.name)}`, method: 'PATCH', body: patch, ca, signal,
          headers: { ...headers, 'content-type': 'application/merge-patch+json' },
        });
        this.recent.set(key, { name: prev.name, count: patch.count, last: n.time });
        return true;
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err;
        // The Event expired (the API server keeps them 1 h by default) or was deleted: create a new one.
      }
    }
    const ev = this.event(e, n.time);
    await request({ url: base, method: 'POST', body: ev, ca, signal, headers });
    this.recent.set(key, { name: ev.metadata.name, count: 1, last: n.time });
    return true;
  }
}
