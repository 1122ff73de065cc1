// The closing line CI reads, "tests: N passed, N failed, N skipped", summed from the vitest
// JSON reports of every workspace, such that a red run can never look smaller than it is:
//
// - every test file that exists in a workspace (*.test.* / *.spec.*, outside node_modules and
//   dist) is counted: one that appears in no report did not run, and counts as one failed;
// - a workspace whose tests should have written .vitest-report.json (it has test files, or
//   its test script asks for one) and did not, fails loudly, by name;
// - a file that failed outside any single test (an import error, a failing beforeAll) counts
//   as one failed;
// - a non-zero exit of the test runner with no failure in any report counts as one failed.
//
//   node deploy/test-summary.mjs --clean                   before the run: removes every report
//   node deploy/test-summary.mjs [--runner-status N] [--smoke-status N]
//                                                          after it (from the repository root);
//                                                          a failed benchmark smoke run counts as one failed
//
// Problems go to stderr first; the summary line is always the last line printed.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const REPORT = '.vitest-report.json';
const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', '.turbo', '.git']);

/** @param {string} dir @returns {string[]} absolute paths of the test files under dir */
function testFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) found.push(...testFiles(join(dir, entry.name)));
    } else if (TEST_FILE.test(entry.name)) {
      found.push(resolve(dir, entry.name));
    }
  }
  return found;
}

/** @param {string} file */
function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** @param {string} root @returns {string[]} the workspace directories, as package.json lists them */
function workspaces(root) {
  return readJson(join(root, 'package.json')).workspaces ?? [];
}

/**
 * @param {string} root the repository root
 * @param {number} runnerStatus the test runner's exit status
 * @returns {{ passed: number, failed: number, skipped: number, problems: string[] }}
 */
function summarize(root, runnerStatus) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const problems = [];
  const rel = (/** @type {string} */ p) => relative(root, p);

  for (const ws of workspaces(root)) {
    const dir = resolve(root, ws);
    const script = existsSync(join(dir, 'package.json')) ? readJson(join(dir, 'package.json')).scripts?.test : undefined;
    const files = testFiles(dir);
    if (script === undefined) {
      if (files.length) {
        failed += files.length;
        problems.push(`${ws}: ${files.length} test file(s) but no "test" script, so none of them ran: ${files.map(rel).join(', ')}`);
      }
      continue;
    }
    const reportPath = join(dir, REPORT);
    const wantsReport = files.length > 0 || script.includes(REPORT);
    if (!existsSync(reportPath)) {
      if (!wantsReport) continue; // no test files and no report asked for: nothing to count
      failed += Math.max(1, files.length);
      problems.push(`${ws}: no ${REPORT}: its tests did not run or crashed before reporting` + (files.length ? `; counted as failed: ${files.map(rel).join(', ')}` : ''));
      continue;
    }
    let report;
    try {
      report = readJson(reportPath);
    } catch (err) {
      failed += Math.max(1, files.length);
      problems.push(`${ws}: ${REPORT} is unreadable (${err instanceof Error ? err.message : String(err)}); its ${files.length} test file(s) counted as failed`);
      continue;
    }
    const reported = new Set();
    for (const result of report.testResults ?? []) {
      reported.add(resolve(dir, result.name));
      let failedHere = 0;
      for (const a of result.assertionResults ?? []) {
        if (a.status === 'passed') passed++;
        else if (a.status === 'failed') failedHere++;
        else skipped++; // skipped, pending, todo
      }
      // A file that fails to load, or a failing hook, fails no single test: count the file.
      if (result.status === 'failed' && failedHere === 0) {
        failedHere = 1;
        problems.push(`${rel(resolve(dir, result.name))}: failed outside any test: ${String(result.message ?? '').split('\n')[0] || 'no message'}`);
      }
      failed += failedHere;
    }
    const missing = files.filter((f) => !reported.has(f));
    if (missing.length) {
      failed += missing.length;
      problems.push(`${ws}: ${missing.length} test file(s) in no report, counted as failed: ${missing.map(rel).join(', ')}`);
    }
  }

  if (runnerStatus !== 0 && failed === 0) {
    failed = 1;
    problems.push(`the test runner exited with status ${runnerStatus}, yet no report shows a failure: counted as one failed (see its output above)`);
  }
  if (passed === 0) problems.push('no test passed: nothing ran');
  return { passed, failed, skipped, problems };
}

if (process.argv.includes('--clean')) {
  // A report left from an earlier run would stand in for a package that did not run this time.
  for (const ws of workspaces(process.cwd())) rmSync(join(process.cwd(), ws, REPORT), { force: true });
  process.exit(0);
}
const statusIdx = process.argv.indexOf('--runner-status');
const runnerStatus = statusIdx >= 0 ? Number(process.argv[statusIdx + 1]) : 0;
const smokeIdx = process.argv.indexOf('--smoke-status');
const smokeStatus = smokeIdx >= 0 ? Number(process.argv[smokeIdx + 1]) : 0;
const summary = summarize(process.cwd(), Number.isInteger(runnerStatus) ? runnerStatus : 1);
let { failed } = summary;
const { passed, skipped, problems } = summary;
if (smokeStatus !== 0) {
  failed += 1;
  problems.push('bench:smoke failed: a benchmark no longer runs (see its output above); counted as one failed');
}
for (const p of problems) console.log(`test-summary: ${p}`); // same stream as the last line: never after it
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
