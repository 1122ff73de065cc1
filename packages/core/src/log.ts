/** A minimal structured logger over any line writer (stderr in production, a buffer in tests). */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(write: (line: string) => void, component: string): Logger {
  const emit = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    const extra = fields
      ? Object.entries(fields)
          .map(([k, v]) => ` ${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
          .join('')
      : '';
    write(`${new Date().toISOString()} ${level} ${component}: ${msg}${extra}\n`);
  };
  return { info: (m, f) => emit('INFO', m, f), warn: (m, f) => emit('WARN', m, f), error: (m, f) => emit('ERROR', m, f) };
}
