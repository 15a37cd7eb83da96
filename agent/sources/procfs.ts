// /proc/PID readers. Only stat, status, smaps_rollup, comm and cgroup are read: never environ or
// cmdline in full (they can hold secrets); later features read single named keys only.
import { join } from 'node:path';
import { parseKbLines } from './parse.js';
import { listDir, ParseError, readParsed, readText, readTextAsync, type ReadResult } from './read.js';

export async function listPids(procRoot: string): Promise<ReadResult<number[]>> {
  const r = await listDir('proc', procRoot);
  if (!r.ok) return r;
  const pids: number[] = [];
  for (const name of r.value) if (/^\d+$/.test(name)) pids.push(Number(name));
  pids.sort((a, b) => a - b);
  return { ok: true, value: pids };
}

export async function readComm(procRoot: string, pid: number): Promise<ReadResult<string>> {
  const r = await readText('proc', join(procRoot, String(pid), 'comm'));
  return r.ok ? { ok: true, value: r.value.replace(/\n$/, '') } : r;
}

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  /** PF_* flags; PF_KTHREAD = 0x00200000 */
  readonly flags: number;
  /** clock ticks since boot */
  readonly startTime: number;
  readonly rssPages: number;
}

const PF_KTHREAD = 0x00200000;

/** /proc/PID/stat. comm may contain spaces and parentheses: split at the LAST ')'. */
export function parseProcStat(text: string, path: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new ParseError(path, 1, 'no "(comm)" field');
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const field = (n: number): number => {
    const v = rest[n - 3];
    if (v === undefined || !/^-?\d+$/.test(v)) throw new ParseError(path, 1, `field ${n} missing or not a number`);
    return Number(v);
  };
  if (!Number.isInteger(pid)) throw new ParseError(path, 1, 'bad pid');
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: field(4),
    flags: field(9),
    startTime: field(22),
    rssPages: field(24),
  };
}

export function isKernelThread(s: ProcStat): boolean {
  return (s.flags & PF_KTHREAD) !== 0;
}

export function readProcStat(procRoot: string, pid: number | 'self'): Promise<ReadResult<ProcStat>> {
  return readParsed('proc', join(procRoot, String(pid), 'stat'), parseProcStat);
}

export interface ProcMemory {
  /** bytes; undefined when the file did not have the key */
  readonly rss: number | undefined;
  readonly pss: number | undefined;
  /** unique set size: Private_Clean + Private_Dirty (+ Private_Hugetlb) */
  readonly uss: number | undefined;
  readonly swap: number | undefined;
}

/** /proc/PID/smaps_rollup (4.14+). Exact PSS/USS; costs a page-table walk, so read it for few PIDs. */
export function parseSmapsRollup(text: string, path: string): ProcMemory {
  const kv = parseKbLines(text);
  if (!kv.has('Rss')) throw new ParseError(path, undefined, 'no Rss line');
  const pc = kv.get('Private_Clean');
  const pd = kv.get('Private_Dirty');
  return {
    rss: kv.get('Rss'),
    pss: kv.get('Pss'),
    uss: pc === undefined || pd === undefined ? undefined : pc + pd + (kv.get('Private_Hugetlb') ?? 0),
    swap: kv.get('Swap'),
  };
}

/** /proc/PID/status: cheap RSS (VmRSS) and swap (VmSwap); no PSS. Kernel threads have no VmRSS. */
export function parseStatusMemory(text: string, path: string): ProcMemory & { readonly name: string | undefined } {
  // Read per process every --process-interval: pick the three lines out instead of parsing ~55.
  const name = lineValue(text, 'Name:');
  if (name === undefined) throw new ParseError(path, undefined, 'no Name line');
  return { name, rss: kbValue(text, 'VmRSS:'), pss: undefined, uss: undefined, swap: kbValue(text, 'VmSwap:') };
}

function lineValue(text: string, key: string): string | undefined {
  const at = text.startsWith(key) ? 0 : text.indexOf('\n' + key) + 1;
  if (at <= 0 && !text.startsWith(key)) return undefined;
  const end = text.indexOf('\n', at);
  return text.slice(at + key.length, end < 0 ? undefined : end).trim();
}

function kbValue(text: string, key: string): number | undefined {
  const v = lineValue(text, key);
  const m = v === undefined ? null : /^(\d+) kB$/.exec(v);
  return m ? Number(m[1]) * 1024 : undefined;
}

export function readSmapsRollup(procRoot: string, pid: number): Promise<ReadResult<ProcMemory>> {
  return readParsed('proc', join(procRoot, String(pid), 'smaps_rollup'), parseSmapsRollup, readTextAsync);
}

export function readStatusMemory(procRoot: string, pid: number) {
  return readParsed('proc', join(procRoot, String(pid), 'status'), parseStatusMemory);
}

/**
 * /proc/PID/status SigCgt: the signals the process has a handler for (bit n-1 = signal n). Only
 * that line is looked at. A signal nobody catches takes its default action, which for SIGUSR1/2
 * is to terminate: a process that does not catch it must not get it.
 */
export function parseCaughtSignals(text: string, path: string): bigint {
  const v = lineValue(text, 'SigCgt:');
  if (v === undefined || !/^[0-9a-fA-F]{1,16}$/.test(v)) throw new ParseError(path, undefined, 'no SigCgt line');
  return BigInt(`0x${v}`);
}

export function catches(mask: bigint, signalNumber: number): boolean {
  return signalNumber >= 1 && signalNumber <= 64 && ((mask >> BigInt(signalNumber - 1)) & 1n) === 1n;
}

export function readCaughtSignals(procRoot: string, pid: number): Promise<ReadResult<bigint>> {
  return readParsed('proc', join(procRoot, String(pid), 'status'), parseCaughtSignals);
}
