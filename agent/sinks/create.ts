// The notification sinks the configuration asks for. A sink that cannot work here (Kubernetes
// Events outside a cluster) is one warning at start-up, not a failure.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { AlertmanagerSink } from './alertmanager.js';
import { kubernetesEventSink } from './k8s-event.js';
import type { Sink } from './notify.js';
import { WebhookSink } from './webhook.js';

export async function createSinks(cfg: Config, log: Logger): Promise<Sink[]> {
  const sinks: Sink[] = [];
  if (cfg.sinks.alertmanagerUrl) sinks.push(new AlertmanagerSink({ url: cfg.sinks.alertmanagerUrl, pod: cfg.pod }));
  if (cfg.sinks.webhookUrl) sinks.push(new WebhookSink(cfg.sinks.webhookUrl, cfg.pod));
  if (cfg.sinks.kubernetesEvents) {
    try {
      sinks.push(await kubernetesEventSink({ pod: cfg.pod, fieldPath: cfg.mode === 'pod' }));
    } catch (err) {
      log.warn(`--kubernetes-events: disabled: ${(err as Error).message}`);
    }
  }
  if (sinks.length > 0) log.info(`notifications go to ${sinks.map((s) => s.name).join(', ')}`, { sinks: sinks.map((s) => s.name).join(',') });
  return sinks;
}
