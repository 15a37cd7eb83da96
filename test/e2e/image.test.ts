// The container image without a container engine: the Dockerfile's runtime stage is checked as
// text, then its file layout (package.json, production node_modules, dist/agent) is rebuilt in a
// temporary directory the way the Dockerfile builds it, and the agent runs from there as UID/GID
// 65532, the image's user, and serves /metrics.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startAgent, waitFor, type Agent } from '../helpers/agent.js';
import { value } from '../helpers/metrics.js';

const NONROOT = 65532;
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string; scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string>;
};

interface Stage { readonly from: string; readonly name: string | undefined; readonly lines: string[] }

/** The Dockerfile's stages, instructions joined across line continuations, comments dropped. */
function stages(text: string): Stage[] {
  const out: Stage[] = [];
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of joined) {
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ from: from[1]!, name: from[2], lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const all = stages(dockerfile);
const runtime = all.at(-1)!;
const instr = (s: Stage, word: string) => s.lines.filter((l) => l.toUpperCase().startsWith(`${word} `));

/** The runtime stage's CMD as an argument list (the distroless entrypoint is node). */
function imageCmd(): string[] {
  const line = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('CMD ')).at(-1)!;
  return JSON.parse(line.slice(4)) as string[];
}

describe('Dockerfile', () => {
  it('builds on node:22 and installs production dependencies without running scripts', () => {
    const builders = all.slice(0, -1);
    expect(builders.length).toBeGreaterThan(0);
    for (const s of builders) expect(s.from).toMatch(/^node:22(-|$)/);
    // "prepare" runs tsc, a dev dependency: the production install must skip scripts.
    expect(pkg.scripts['prepare']).toMatch(/\btsc\b/);
    const prod = builders.flatMap((s) => instr(s, 'RUN')).filter((l) => /npm ci/.test(l) && /--omit=dev/.test(l));
    expect(prod, 'a RUN npm ci --omit=dev --ignore-scripts').toHaveLength(1);
    expect(prod[0]).toMatch(/--ignore-scripts/);
    expect(builders.flatMap((s) => instr(s, 'RUN')).some((l) => /npm run build|tsc/.test(l))).toBe(true);
  });

  it('runs on distroless nodejs22 nonroot as numeric USER 65532 with only the agent, its dependencies and package.json', () => {
    expect(runtime.from).toBe('gcr.io/distroless/nodejs22-debian12:nonroot');
    const user = instr(runtime, 'USER');
    expect(user).toHaveLength(1);
    expect(user[0]).toMatch(/^USER\s+65532(:65532)?$/);
    // node flags first (lite mode, small heap: measured in docs/benchmarks.md), then the agent
    expect(imageCmd().at(-1)).toBe('dist/agent/main.js');
    expect(imageCmd().slice(0, -1).every((a) => a.startsWith('--'))).toBe(true);
    expect(instr(runtime, 'ENTRYPOINT')).toEqual([]); // the base image's entrypoint is node
    expect(instr(runtime, 'EXPOSE')).toEqual(['EXPOSE 9847']);
    expect(instr(runtime, 'RUN')).toEqual([]); // no shell in distroless
    const copied = instr(runtime, 'COPY').map((l) => l.split(/\s+/).slice(1).filter((w) => !w.startsWith('--')).slice(0, -1).join(' '));
    expect(copied.sort()).toEqual(['/app/node_modules', '/src/dist/agent', 'package.json'].sort());
    const labels = instr(runtime, 'LABEL').join(' ');
    for (const k of ['title', 'description', 'version', 'licenses']) expect(labels).toContain(`org.opencontainers.image.${k}=`);
    expect(dockerfile).toMatch(new RegExp(`ARG VERSION=${pkg.version.replace(/\./g, '\\.')}\\b`));
  });

  it('.dockerignore keeps tests, fixtures, .git, node_modules, dist, docs, deploy, scripts and tmp out of the context, and nothing the build copies', () => {
    const ignored = new Set(readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim().replace(/^\/|\/$/g, '')).filter((l) => l && !l.startsWith('#')));
    for (const p of ['test', 'fixtures', '.git', 'node_modules', 'dist', 'docs', 'deploy', 'scripts', 'tmp']) expect(ignored, p).toContain(p);
    const fromContext = all.flatMap((s) => instr(s, 'COPY')).filter((l) => !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect([...new Set(fromContext)].sort()).toEqual(['agent', 'package-lock.json', 'package.json', 'tsconfig.json']);
    for (const p of fromContext) expect(ignored.has(p), `${p} is needed by the build`).toBe(false);
    expect([...ignored].some((p) => p.includes('!'))).toBe(false);
  });
});

describe('the runtime stage, rebuilt without an engine', () => {
  let root: string;
  let target: ChildProcess | undefined;
  let agent: Agent | undefined;

  beforeAll(() => {
    const main = join(REPO, 'dist/agent/main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: build first (npx tsc -p tsconfig.json)`);
    root = mkdtempSync(join(tmpdir(), 'headroom-image-'));
    chmodSync(root, 0o755); // like WORKDIR /app: readable by the image's user
    cpSync(join(REPO, 'package.json'), join(root, 'package.json'));
    cpSync(join(REPO, 'package-lock.json'), join(root, 'package-lock.json'));
    // The Dockerfile's deps stage.
    const npm = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: root, encoding: 'utf8', timeout: 280_000, env: { ...process.env, NODE_ENV: 'production' },
    });
    if (npm.status !== 0) throw new Error(`npm ci --omit=dev failed (${npm.error?.message ?? npm.status}):\n${npm.stderr}`);
    rmSync(join(root, 'package-lock.json')); // the runtime stage copies only package.json
    cpSync(join(REPO, 'dist/agent'), join(root, 'dist/agent'), { recursive: true });
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    target?.kill('SIGKILL');
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('holds only production dependencies', () => {
    const installed = readdirSync(join(root, 'node_modules'));
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(root, 'node_modules', dep)), dep).toBe(true);
    for (const dev of [...Object.keys(pkg.devDependencies), 'vitest', 'typescript']) {
      expect(existsSync(join(root, 'node_modules', dev)), `dev dependency ${dev}`).toBe(false);
    }
    expect(installed).not.toContain('.bin'); // no tsc, no vitest
    const kib = (p: string) => Number(execFileSync('du', ['-sk', p], { encoding: 'utf8' }).split('\t')[0]);
    const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
    console.log(`image layout: node_modules ${mib(kib(join(root, 'node_modules')))} (${installed.filter((n) => !n.startsWith('.')).length} top-level packages), dist/agent ${mib(kib(join(root, 'dist/agent')))}`);
  });

  it('runs the agent as UID/GID 65532 and serves headroom metrics for a process of the same user', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test switches to UID 65532 with setpriv: run it as root');
    if (spawnSync('setpriv', ['--version']).error) throw new Error('setpriv is needed (Debian package util-linux)');
    const asNonroot = ['setpriv', `--reuid=${NONROOT}`, `--regid=${NONROOT}`, '--clear-groups', '--'];
    // The app: same UID/GID as headroom, as in the pod (runAsUser/runAsGroup = the app's).
    target = spawn(asNonroot[0]!, [...asNonroot.slice(1), process.execPath, '-e', 'const a = Buffer.alloc(8 << 20, 1); setInterval(() => a[0]++, 1000)'], { stdio: 'ignore' });
    const pid = target.pid!;
    agent = await startAgent(['--pid', String(pid), '--container', 'app', '--interval', '200ms'], {
      main: join(root, 'dist/agent/main.js'),
      nodeArgs: imageCmd().slice(0, -1), // exactly as the image starts it
      cwd: root,
      wrap: asNonroot,
      env: { NODE_ENV: 'production' },
    });
    // every line on stderr is a JSON log event, also with the image's node flags (no V8 warnings)
    expect(agent.logs.filter((l) => l.level === 'raw').map((l) => l.msg)).toEqual([]);
    const status = readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(NONROOT));
    expect(/^Gid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(NONROOT));

    const series = await waitFor('headroom_memory_* series', async () => {
      const s = await agent!.metrics();
      return s.some((x) => x.name === 'headroom_memory_usage_bytes') ? s : undefined;
    }, 20_000, 200);
    const build = series.filter((s) => s.name === 'headroom_build_info');
    expect(build).toHaveLength(1);
    expect(build[0]!.labels['version']).toBe(pkg.version);
    expect(build[0]!.value).toBe(1);
    expect(value(series, 'headroom_memory_usage_bytes', { container: 'app' })).toBeGreaterThan(0);
    expect(series.some((s) => s.name === 'headroom_memory_working_set_bytes' && s.labels['container'] === 'app')).toBe(true);
    expect(value(series, 'headroom_target_readable', { container: 'app' })).toBe(1);
    expect(agent.logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});
