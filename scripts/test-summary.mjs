#!/usr/bin/env node
// Adds up vitest JSON reports (host run + VM run) into one closing line: "N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

let passed = 0, failed = 0, skipped = 0;
for (const f of process.argv.slice(2)) {
  try {
    const r = JSON.parse(readFileSync(f, 'utf8'));
    passed += r.numPassedTests ?? 0;
    failed += r.numFailedTests ?? 0;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    if (r.numFailedTestSuites) failed += r.testResults.filter((t) => t.status === 'failed' && t.assertionResults.length === 0).length;
  } catch (err) {
    console.error(`no test report in ${f}: ${err.message}`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
