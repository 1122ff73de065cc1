import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeDaemonDns, writeDaemonDns } from './daemon-config.js';

describe('the Docker daemon configuration line', () => {
  it('adds "dns" to an empty or missing file, keeps every other setting, and is idempotent', async () => {
    expect(mergeDaemonDns('', '169.254.53.53', false)).toEqual({ text: '{\n  "dns": [\n    "169.254.53.53"\n  ]\n}\n', changed: true });
    const merged = mergeDaemonDns('{"live-restore": true, "log-driver": "local"}', '169.254.53.53', false);
    expect(JSON.parse(merged.text)).toEqual({ 'live-restore': true, 'log-driver': 'local', dns: ['169.254.53.53'] });
    expect(mergeDaemonDns(merged.text, '169.254.53.53', false)).toEqual({ text: merged.text, changed: false });
    const dir = mkdtempSync(join(tmpdir(), 'ctnet-daemon-'));
    try {
      const file = join(dir, 'daemon.json');
      expect(await writeDaemonDns(file, '169.254.53.53', false)).toBe(true);
      expect(await writeDaemonDns(file, '169.254.53.53', false)).toBe(false);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ dns: ['169.254.53.53'] });
      writeFileSync(file, '{"dns": ["8.8.8.8"]');
      await expect(writeDaemonDns(file, '169.254.53.53', false)).rejects.toThrow(/not a JSON object/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to replace other DNS servers unless forced', () => {
    expect(() => mergeDaemonDns('{"dns": ["8.8.8.8"]}', '169.254.53.53', false)).toThrow(/already names DNS servers \(\["8.8.8.8"\]\).*--force/);
    expect(JSON.parse(mergeDaemonDns('{"dns": ["8.8.8.8"]}', '169.254.53.53', true).text)).toEqual({ dns: ['169.254.53.53'] });
  });
});
