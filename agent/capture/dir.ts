// The capture directory: a bounded store. Count and total size are capped; the oldest files go
// first. Only regular, non-hidden files directly in it count (downloads in progress are hidden).
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface CaptureFile {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  /** ms */
  readonly mtime: number;
}

/** Newest first. A missing directory is empty; other errors throw. */
export async function listCaptures(dir: string): Promise<CaptureFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: CaptureFile[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    try {
      const s = await lstat(path);
      if (s.isFile()) files.push({ name, path, bytes: s.size, mtime: s.mtimeMs });
    } catch { /* removed meanwhile */ }
  }
  return files.sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? 1 : -1));
}

/**
 * Which files to delete so that at most maxFiles and maxBytes remain: the newest files are kept
 * while both caps hold; the first one that does not fit and everything older go. Pure; files newest
 * first, as listCaptures gives them.
 */
export function overCap(files: readonly CaptureFile[], maxFiles: number, maxBytes: number): CaptureFile[] {
  let bytes = 0;
  let keep = 0;
  while (keep < files.length && keep < maxFiles && bytes + files[keep]!.bytes <= maxBytes) bytes += files[keep++]!.bytes;
  return files.slice(keep);
}

export interface PruneResult {
  readonly removed: readonly CaptureFile[];
  readonly kept: number;
  readonly keptBytes: number;
  readonly errors: readonly string[];
}

export async function prune(dir: string, maxFiles: number, maxBytes: number): Promise<PruneResult> {
  const files = await listCaptures(dir);
  const drop = overCap(files, maxFiles, maxBytes);
  const removed: CaptureFile[] = [];
  const errors: string[] = [];
  for (const f of drop) {
    try {
      await unlink(f.path);
      removed.push(f);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') removed.push(f);
      else errors.push(`${f.path}: ${e.code ?? e.message}`);
    }
  }
  const gone = new Set(removed.map((f) => f.path));
  const left = files.filter((f) => !gone.has(f.path));
  return { removed, kept: left.length, keptBytes: left.reduce((n, f) => n + f.bytes, 0), errors };
}

export interface NewFile {
  readonly file: CaptureFile;
  /** its size stayed the same for three polls in a row: the app finished writing it */
  readonly settled: boolean;
}

/**
 * After a signal: the first file that appeared or changed since `since` and then kept its size for
 * three polls in a row (settled). When `stop` aborts or the time is up first, the newest new file
 * as it is then (not settled; possibly empty). undefined when no file appeared at all.
 */
export async function waitForNewFile(
  dir: string, since: number, timeoutMs: number, pollMs = 500, stop?: AbortSignal,
): Promise<NewFile | undefined> {
  const deadline = Date.now() + timeoutMs;
  const sizes = new Map<string, { bytes: number; stable: number }>();
  const fresh = (f: CaptureFile) => f.mtime >= since - 1000; // mtime is coarse on some file systems
  while (Date.now() < deadline && !stop?.aborted) {
    let files: CaptureFile[] = [];
    try { files = await listCaptures(dir); } catch { /* retried */ }
    for (const f of files) {
      if (!fresh(f)) continue;
      const seen = sizes.get(f.path);
      if (seen && seen.bytes === f.bytes && f.bytes > 0) {
        if (++seen.stable >= 3) return { file: f, settled: true };
      } else {
        sizes.set(f.path, { bytes: f.bytes, stable: 0 });
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    const f = (await listCaptures(dir)).find(fresh);
    return f ? { file: f, settled: false } : undefined;
  } catch {
    return undefined;
  }
}
