import { readFileSync } from 'node:fs';

/** The package version, read once at start-up from package.json (two levels above dist/agent/). */
export const VERSION: string = (() => {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const v = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')).version;
      if (typeof v === 'string') return v;
    } catch { /* try the next */ }
  }
  return 'unknown';
})();
