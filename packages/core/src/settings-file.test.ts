import { describe, expect, it } from 'vitest';
import { AGENT_SETTINGS, MANAGER_SETTINGS, parseSettingsFile, withSettings } from './settings-file.js';

describe('parseSettingsFile', () => {
  it('reads KEY=VALUE lines with comments, export and quotes', () => {
    const text = [
      '# ctagent settings',
      '',
      'CTNET_MANAGER=10.0.0.1:4700,10.0.0.2:4700',
      'export CTNET_ADVERTISE_ADDR = 10.0.0.7',
      '; old style comment',
      `CTNET_NODE_NAME="worker 1"`,
      "CTNET_LABELS='zone=a,rack=3'",
    ].join('\n');
    expect(parseSettingsFile(text, AGENT_SETTINGS, 'ctagent.env')).toEqual({
      CTNET_MANAGER: '10.0.0.1:4700,10.0.0.2:4700',
      CTNET_ADVERTISE_ADDR: '10.0.0.7',
      CTNET_NODE_NAME: 'worker 1',
      CTNET_LABELS: 'zone=a,rack=3',
    });
  });

  it('refuses an unknown key, naming it, the file and the line', () => {
    expect(() => parseSettingsFile('CTNET_DATA_DIR=/x\nCTNET_MANGER=1.2.3.4:4700\n', AGENT_SETTINGS, '/etc/ctnet/ctagent.env')).toThrow(
      /\/etc\/ctnet\/ctagent\.env:2: unknown setting CTNET_MANGER; remove it or use one of CTNET_MANAGER/,
    );
    // A manager setting is not an agent setting.
    expect(() => parseSettingsFile('CTNET_VXLAN_PORT=4789', AGENT_SETTINGS, 'f')).toThrow(/unknown setting CTNET_VXLAN_PORT/);
    expect(parseSettingsFile('CTNET_VXLAN_PORT=4789', MANAGER_SETTINGS, 'f')).toEqual({ CTNET_VXLAN_PORT: '4789' });
  });

  it('refuses lines that are not settings and unclosed quotes', () => {
    expect(() => parseSettingsFile('just words', MANAGER_SETTINGS, 'f')).toThrow(/f:1: "just words" is not KEY=VALUE/);
    expect(() => parseSettingsFile('CTNET_HTTP="127.0.0.1:1', MANAGER_SETTINGS, 'f')).toThrow(/no closing "/);
  });
});

describe('withSettings', () => {
  it('lets the environment override the file', () => {
    expect(withSettings({ CTNET_HTTP: '127.0.0.1:9', OTHER: undefined }, { CTNET_HTTP: '0.0.0.0:1', CTNET_LISTEN: ':4700' })).toEqual({
      CTNET_HTTP: '127.0.0.1:9',
      CTNET_LISTEN: ':4700',
    });
  });
});
