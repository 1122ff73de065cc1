import { invalidArgument } from '../errors.js';
import { parseName } from './names.js';
import type { ExposedPort } from './ports.js';

/** A legacy `--link NAME:ALIAS`, resolved by the manager to the linked container's address. */
export interface Link {
  readonly name: string; // the linked container
  readonly alias: string;
  readonly ip: string;
}

/** `--link NAME[:ALIAS]` (the alias defaults to the name, as in Docker). */
export function parseLink(text: string): { name: string; alias: string } {
  const t = text.trim();
  const colon = t.indexOf(':');
  const nameText = colon < 0 ? t : t.slice(0, colon);
  const aliasText = colon < 0 ? t : t.slice(colon + 1);
  if (nameText === '') throw invalidArgument(`--link "${text}" names no container; write --link NAME[:ALIAS], e.g. --link db:database`);
  if (aliasText === '') throw invalidArgument(`--link "${text}" has an empty alias; write --link NAME:ALIAS or leave out the ":"`);
  return { name: parseName(nameText, 'container'), alias: parseName(aliasText, 'link alias') };
}

/**
 * The environment Docker's --link gave the new container: `ALIAS_NAME`, `ALIAS_PORT` (the
 * lowest exposed port), `ALIAS_PORT_<port>_<PROTO>` with `_ADDR`, `_PORT`, `_PROTO` for each
 * exposed port, and `ALIAS_ENV_<KEY>` for each variable the linked container was started with.
 */
export function linkEnv(
  link: Link,
  container: string,
  exposed: readonly ExposedPort[],
  targetEnv: Readonly<Record<string, string>>,
): Record<string, string> {
  const prefix = link.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const env: Record<string, string> = { [`${prefix}_NAME`]: `/${container}/${link.alias}` };
  const ports = [...exposed].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
  if (ports[0]) env[`${prefix}_PORT`] = `${ports[0].protocol}://${link.ip}:${ports[0].port}`;
  for (const p of ports) {
    const key = `${prefix}_PORT_${p.port}_${p.protocol.toUpperCase()}`;
    env[key] = `${p.protocol}://${link.ip}:${p.port}`;
    env[`${key}_ADDR`] = link.ip;
    env[`${key}_PORT`] = String(p.port);
    env[`${key}_PROTO`] = p.protocol;
  }
  for (const [k, v] of Object.entries(targetEnv)) {
    if (k === 'HOME' || k === 'PATH' || k === 'HOSTNAME') continue; // Docker leaves these out too
    env[`${prefix}_ENV_${k}`] = v;
  }
  return env;
}
