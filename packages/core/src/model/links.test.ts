import { describe, expect, it } from 'vitest';
import { linkEnv, parseLink } from './links.js';

describe('legacy links', () => {
  it('parses NAME[:ALIAS]', () => {
    expect(parseLink('db:database')).toEqual({ name: 'db', alias: 'database' });
    expect(parseLink('db')).toEqual({ name: 'db', alias: 'db' });
    expect(() => parseLink('db:')).toThrow(/empty alias/);
    expect(() => parseLink(':x')).toThrow(/names no container/);
  });

  it('builds the variables Docker gave, the lowest port as ALIAS_PORT and the target env as ALIAS_ENV_*', () => {
    const env = linkEnv({ name: 'db', alias: 'my-db', ip: '10.0.0.5' }, 'web', [{ port: 5432, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], {
      POSTGRES_DB: 'shop',
      PATH: '/bin',
    });
    expect(env).toEqual({
      MY_DB_NAME: '/web/my-db',
      MY_DB_PORT: 'udp://10.0.0.5:53',
      MY_DB_PORT_53_UDP: 'udp://10.0.0.5:53',
      MY_DB_PORT_53_UDP_ADDR: '10.0.0.5',
      MY_DB_PORT_53_UDP_PORT: '53',
      MY_DB_PORT_53_UDP_PROTO: 'udp',
      MY_DB_PORT_5432_TCP: 'tcp://10.0.0.5:5432',
      MY_DB_PORT_5432_TCP_ADDR: '10.0.0.5',
      MY_DB_PORT_5432_TCP_PORT: '5432',
      MY_DB_PORT_5432_TCP_PROTO: 'tcp',
      MY_DB_ENV_POSTGRES_DB: 'shop',
    });
    expect(linkEnv({ name: 'db', alias: 'db', ip: '10.0.0.5' }, 'web', [], {})).toEqual({ DB_NAME: '/web/db' });
  });
});
