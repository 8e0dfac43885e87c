// `npm test` first checks the Debian packages the suite needs (scripts/ensure-test-packages.sh): as root
// it installs what is missing; as any other user it stops at once, naming the packages and the command.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tools.js';

/** A copy of the script beside a package list of our choosing, readable by any user. */
function scriptWithList(packages: string[]): string {
  const dir = tempDir('pkgcheck');
  fs.chmodSync(dir, 0o755);
  fs.copyFileSync('scripts/ensure-test-packages.sh', path.join(dir, 'ensure-test-packages.sh'));
  fs.writeFileSync(path.join(dir, 'test-packages.txt'), `# a comment\n\n${packages.join('\n')}\n`);
  fs.chmodSync(path.join(dir, 'ensure-test-packages.sh'), 0o755);
  fs.chmodSync(path.join(dir, 'test-packages.txt'), 0o644);
  return path.join(dir, 'ensure-test-packages.sh');
}

describe('npm test package check', () => {
  it('passes silently when every listed package is installed', () => {
    const r = spawnSync('bash', [scriptWithList(['bash', 'coreutils'])], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
  });

  it('as a user other than root, names the missing packages and the command, and stops', () => {
    const script = scriptWithList(['bash', 'tandem-no-such-package']);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', script], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('these Debian packages are missing: tandem-no-such-package');
    expect(r.stderr).toContain('sudo apt-get update && sudo apt-get install -y --no-install-recommends tandem-no-such-package');
  });

  it('the shared list names every tool the suite starts', () => {
    const list = fs.readFileSync('scripts/test-packages.txt', 'utf8');
    for (const p of ['qemu-utils', 'libnbd-bin', 'nbdkit', 'fio', 'openssh-server', 'chromium']) expect(list).toMatch(new RegExp(`^${p}$`, 'm'));
    // Each one is known to dpkg here (the suite ran its check before these tests).
    const names = list.split('\n').filter((l) => l && !l.startsWith('#'));
    const status = execFileSync('dpkg-query', ['-W', '-f=${Status}\\n', ...names], { encoding: 'utf8' });
    expect(status.trim().split('\n').every((l) => l === 'install ok installed')).toBe(true);
  });
});
