// Pure parsers for the flat formats the kernel uses in cgroup and proc files.
// Absent means undefined, never a made-up 0. Errors carry the file path and line.
import { ParseError } from './read.js';

const UINT = /^\d+$/;

/** Values at or above this are the kernel's "no limit" (v1 prints PAGE_COUNTER_MAX * PAGE_SIZE, ~2^63). */
export const UNLIMITED_THRESHOLD = 2 ** 60;

export function parseUint(raw: string, path: string, line?: number): number {
  if (!UINT.test(raw)) throw new ParseError(path, line, `expected a non-negative integer, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}

/** A file holding one integer, e.g. memory.current, memory.usage_in_bytes, memory.failcnt. */
export function parseSingleValue(text: string, path: string): number {
  const t = text.trim();
  if (t === '') throw new ParseError(path, 1, 'file is empty');
  return parseUint(t, path, 1);
}

/**
 * A limit file: memory.max / memory.high / memory.swap.max ("max" = unlimited) or
 * memory.limit_in_bytes (v1: a huge value = unlimited). Unlimited is undefined.
 */
export function parseLimit(text: string, path: string): number | undefined {
  const t = text.trim();
  if (t === 'max') return undefined;
  const v = parseSingleValue(t, path);
  return v >= UNLIMITED_THRESHOLD ? undefined : v;
}

/**
 * "key value" lines: memory.stat, memory.events, memory.oom_control.
 * Blank lines are skipped; a line that is not "key <uint>" is an error.
 */
export function parseFlatKeyed(text: string, path: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new ParseError(path, i + 1, `expected "key value", got ${JSON.stringify(line.slice(0, 60))}`);
    out.set(parts[0]!, parseUint(parts[1]!, path, i + 1));
  }
  if (out.size === 0) throw new ParseError(path, undefined, 'file is empty');
  return out;
}

/** "Key:   123 kB" lines of /proc/PID/status and smaps_rollup; values in kB become bytes. Non-numeric keys are skipped. */
export function parseKbLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_()0-9]+):\s+(\d+)(\s+kB)?\s*$/.exec(line);
    if (m) out.set(m[1]!, m[3] ? Number(m[2]) * 1024 : Number(m[2]));
  }
  return out;
}
