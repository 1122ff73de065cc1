#!/usr/bin/env node
// Bundles one role's compiled entry point (packages/<pkg>/dist/main.js) and everything it
// imports into ONE self-contained executable file, run by the host's Node.js (>= 20):
//   node deploy/bundle.mjs ctmgr    -> packages/cli/dist/bin/ctmgr
//   node deploy/bundle.mjs ctagent  -> packages/agent/dist/bin/ctagent
// Why a bundle and not a single-executable application: see README "Run it on your hosts".
// CommonJS on purpose: an extensionless file outside any package.json is loaded as CommonJS
// by every Node.js >= 20, so /usr/local/bin/ctmgr needs nothing beside it (in the tree,
// dist/bin/package.json says so over the package's "type": "module"). Modules reached
// only through `import()` stay un-evaluated until called (esbuild wraps them lazily), so
// `ctmgr --version` evaluates almost nothing.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const REPO = join(import.meta.dirname, '..');
const ROLES = {
  ctmgr: { pkg: 'cli' },
  ctagent: { pkg: 'agent' },
};

const role = process.argv[2];
if (!(role in ROLES)) {
  console.error(`bundle: unknown role "${role ?? ''}"; give one of: ${Object.keys(ROLES).join(', ')}`);
  process.exit(2);
}
const pkgDir = join(REPO, 'packages', ROLES[role].pkg);
const outfile = join(pkgDir, 'dist', 'bin', role);
await mkdir(dirname(outfile), { recursive: true });
await writeFile(join(dirname(outfile), 'package.json'), '{ "type": "commonjs" }\n');

// etcd3 reads its .proto files from disk when it is first evaluated
// (loadSync(`${__dirname}/../proto/rpc.proto`)). A single file has no such directory: parse
// the protos here, at build time, and hand proto-loader the same definitions as JSON.
const etcd3Protos = {
  name: 'etcd3-protos-inline',
  setup(b) {
    b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const call = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, \{/;
      if (!call.test(source)) throw new Error(`bundle: etcd3's proto loading changed in ${args.path}; update deploy/bundle.mjs`);
      const require = createRequire(args.path);
      const protobuf = require('protobufjs');
      const root = new protobuf.Root();
      root.loadSync(join(dirname(args.path), '..', 'proto', 'rpc.proto'), { keepCase: true });
      const json = JSON.stringify(root.toJSON());
      return { contents: source.replace(call, `(0, proto_loader_1.fromJSON)(${json}, {`), loader: 'js' };
    });
  },
};

const result = await build({
  entryPoints: [join(pkgDir, 'dist', 'main.js')],
  bundle: true,
  write: false,
  outfile,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Whitespace and syntax only: names stay, so stack traces still read.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [etcd3Protos],
});
const source = result.outputFiles[0].text.replace(/^#!.*\n/, '');

// Start-up is mostly V8 compiling ~2 MB of JavaScript. The executable therefore carries V8's
// code cache for its own source, made here by running `<role> --help` once: a host whose
// Node.js has the same V8 skips that compile; any other compiles as usual (V8 rejects a
// cache that does not match, and the loader then just goes on).
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAP_TAIL = '\n});';
const PAYLOAD_MARK = 'ctnet-bundle';
const work = await mkdtemp(join(tmpdir(), 'ctnet-bundle-'));
try {
  const sourcePath = join(work, 'source.js');
  const cachePath = join(work, 'cache.bin');
  await writeFile(sourcePath, source);
  await writeFile(join(work, 'train.cjs'), trainer(sourcePath, cachePath, outfile));
  execFileSync(process.execPath, [join(work, 'train.cjs'), '--help'], { stdio: 'ignore', timeout: 60_000 });
  const cache = (await readFile(cachePath)).toString('base64');
  await writeFile(outfile, executable(role, source, cache), { mode: 0o755 });
} finally {
  await rm(work, { recursive: true, force: true });
}
await chmod(outfile, 0o755);
const { size } = await stat(outfile);
console.log(`bundle: ${outfile.slice(REPO.length + 1)} (${(size / 1024 / 1024).toFixed(1)} MiB)`);

/**
 * The shipped file: a small loader, then the bundle and its code cache inside one block
 * comment at the end. Node compiles the whole file it is given; a comment is the one thing V8
 * skips almost for free (as a 2 MB string literal it cost ~10 ms to scan), so the loader reads
 * the tail of its own file and compiles the bundle itself, with the cache. In the comment
 * every "*" "/" of the bundle is written with a \x01 between (the bundle has none of its own).
 */
function executable(name, src, cacheBase64) {
  if (src.includes('\x01')) throw new Error('bundle: the bundle contains \\x01; deploy/bundle.mjs needs another escape');
  const escaped = src.replaceAll('*/', '*\x01/');
  const payloadBytes = Buffer.byteLength(escaped) + 1 + cacheBase64.length;
  const loader = (offset, lines) => `#!/usr/bin/env node
// ${name}: ctnet's ${name} in one file, bundled by deploy/bundle.mjs from packages/${ROLES[name].pkg}. Do not edit.
'use strict';
(function start() {
  const fs = require('node:fs');
  const payload = Buffer.allocUnsafe(${payloadBytes});
  const fd = fs.openSync(__filename, 'r');
  try { fs.readSync(fd, payload, 0, payload.length, ${String(offset).padStart(10, ' ')}); } finally { fs.closeSync(fd); }
  const split = payload.lastIndexOf(10);
  const source = payload.toString('utf8', 0, split).replaceAll('*\\x01/', '*/');
  const script = new (require('node:vm').Script)(${JSON.stringify(WRAP_HEAD)} + source + ${JSON.stringify(WRAP_TAIL)}, {
    filename: __filename,
    lineOffset: ${lines}, // stack traces name the lines of this file
    cachedData: Buffer.from(payload.toString('latin1', split + 1), 'base64'),
  });
  script.runInThisContext().call(module.exports, module.exports, require, module, __filename, __dirname);
})();
/*${PAYLOAD_MARK}
`;
  const lines = loader(0, 0).split('\n').length - 1;
  const offset = Buffer.byteLength(loader(0, lines));
  return `${loader(offset, lines)}${escaped}\n${cacheBase64}\n*/\n`;
}

/** Runs the bundle as the executable will, and writes V8's cache (with what ran) at exit. */
function trainer(sourcePath, cachePath, filename) {
  return `'use strict';
const fs = require('node:fs');
const vm = require('node:vm');
const source = fs.readFileSync(${JSON.stringify(sourcePath)}, 'utf8');
const script = new vm.Script(${JSON.stringify(WRAP_HEAD)} + source + ${JSON.stringify(WRAP_TAIL)}, { filename: ${JSON.stringify(filename)} });
process.on('exit', () => fs.writeFileSync(${JSON.stringify(cachePath)}, script.createCachedData()));
script.runInThisContext().call(module.exports, module.exports, require, module, ${JSON.stringify(filename)}, ${JSON.stringify(dirname(filename))});
`;
}
