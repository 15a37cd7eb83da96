// PSI ("pressure stall information") parser: memory.pressure in cgroup v2 and /proc/pressure/memory.
//   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
// total is cumulative stall time in microseconds.
import { ParseError } from './read.js';

export interface PressureLine {
  readonly avg10: number;
  readonly avg60: number;
  readonly avg300: number;
  /** cumulative stall time, microseconds */
  readonly totalUs: number;
}

export interface Pressure {
  readonly some: PressureLine;
  /** absent on files that only have "some" (e.g. /proc/pressure/cpu on old kernels) */
  readonly full?: PressureLine;
}

export function parsePressure(text: string, path: string): Pressure {
  const lines = new Map<string, PressureLine>();
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim();
    if (row === '') continue;
    const [kind, ...fields] = row.split(/\s+/);
    if (kind !== 'some' && kind !== 'full') throw new ParseError(path, i + 1, `unknown PSI line ${JSON.stringify(kind)}`);
    const kv = new Map<string, string>();
    for (const f of fields) {
      const eq = f.indexOf('=');
      if (eq <= 0) throw new ParseError(path, i + 1, `bad field ${JSON.stringify(f)}`);
      kv.set(f.slice(0, eq), f.slice(eq + 1));
    }
    const num = (k: string, int: boolean): number => {
      const v = kv.get(k);
      if (v === undefined || !(int ? /^\d+$/ : /^\d+(\.\d+)?$/).test(v)) throw new ParseError(path, i + 1, `missing or bad ${k}`);
      return Number(v);
    };
    lines.set(kind, { avg10: num('avg10', false), avg60: num('avg60', false), avg300: num('avg300', false), totalUs: num('total', true) });
  }
  const some = lines.get('some');
  if (!some) throw new ParseError(path, undefined, 'no "some" line');
  const full = lines.get('full');
  return full ? { some, full } : { some };
}
