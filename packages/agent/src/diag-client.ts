import { connect } from 'node:net';
import { CtnetError, ErrorCode, type HostDiagnosis } from '@ctnet/core';

/** One request on the agent's control socket (diag.ts): `{"op":"diag"}` in, the report out. */
export function askControl(path: string, timeoutMs = 35_000): Promise<HostDiagnosis> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const fail = (err: CtnetError): void => {
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new CtnetError(ErrorCode.DeadlineExceeded, `the agent did not answer on ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('{"op":"diag"}\n'));
    sock.on('data', (chunk: string) => (buf += chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `no agent answers on ${path}: ctagent is not running with this --data-dir, or is still starting (joining the cluster, opening its sockets); see systemctl status ctagent and journalctl -u ctagent`
          : err.code === 'EACCES'
            ? `cannot open ${path}: it is root's; run ctagent diag as root`
            : `${path}: ${err.message}`;
      fail(new CtnetError(ErrorCode.Unavailable, why));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      let body: { report?: HostDiagnosis; error?: string };
      try {
        body = JSON.parse(buf) as typeof body;
      } catch {
        return reject(new CtnetError(ErrorCode.Internal, `the agent's answer on ${path} is not JSON`));
      }
      if (body.report) resolve(body.report);
      else reject(new CtnetError(ErrorCode.Unavailable, body.error ?? 'the agent gave no diagnosis'));
    });
  });
}
