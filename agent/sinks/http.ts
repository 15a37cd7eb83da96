// One small HTTP(S) client for the sinks: node:http/https (a custom CA for the Kubernetes API needs
// https.request, which fetch cannot take without an extra dependency). Non-2xx is an error.
import http from 'node:http';
import https from 'node:https';

export interface HttpRequest {
  readonly url: string;
  readonly method: 'POST' | 'PATCH' | 'PUT' | 'GET';
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  /** PEM CA bundle to trust (https only) */
  readonly ca?: string | Buffer;
  readonly signal?: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;

export function request(req: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(req.url);
    const body = req.body === undefined ? undefined : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
    const headers: Record<string, string | number> = { 'user-agent': 'headroom', accept: 'application/json', ...req.headers };
    if (body) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = body.length;
    }
    const opts: https.RequestOptions = { method: req.method, headers, signal: req.signal };
    if (url.protocol === 'https:' && req.ca !== undefined) opts.ca = req.ca;
    const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!mod) { reject(new Error(`unsupported URL scheme ${url.protocol}`)); return; }
    const r = mod.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if (size < MAX_BODY) { chunks.push(c); size += c.length; } });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve({ status, body: text });
        else reject(new HttpError(status, `${req.method} ${url.origin}${url.pathname}: HTTP ${status}${text ? `: ${text.trim().slice(0, 300)}` : ''}`));
      });
    });
    r.on('error', (err) => reject(req.signal?.aborted ? new Error(`${req.method} ${url.origin}${url.pathname}: timed out`) : err));
    r.end(body);
  });
}
