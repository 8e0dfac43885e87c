// Prints the slowest ten test files (so growth of the suite is visible run by run), then the closing
// line CI reads: "N passed, N failed" (", N skipped" when some were skipped).
// A test file that could not even load counts as one failure, so a broken file never reads as green.
import type { Reporter, TestModule } from 'vitest/node';

const SLOWEST = 10;

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    const durations: Array<{ file: string; ms: number }> = [];
    for (const mod of testModules) {
      if (mod.errors().length > 0) failed += 1;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped += 1;
      }
      const d = mod.diagnostic();
      durations.push({ file: mod.relativeModuleId, ms: d.duration + d.collectDuration + d.setupDuration });
    }
    durations.sort((a, b) => b.ms - a.ms);
    const total = durations.reduce((sum, d) => sum + d.ms, 0);
    const lines = durations.slice(0, SLOWEST).map((d) => `  ${(d.ms / 1000).toFixed(1).padStart(7)} s  ${d.file}`);
    process.stdout.write(`\nSlowest test files (of ${durations.length}, ${(total / 1000).toFixed(0)} s in all):\n${lines.join('\n')}\n`);
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
