// Structured logs: one JSON object per line on stderr, with a level, a time, the component and fields.
// WEFT_LOG_LEVEL=debug|info|warn|error (default info). Loggers are passed in, never imported as globals.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string, fields?: Record<string, unknown>): Logger;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  component?: string;
  fields?: Record<string, unknown>;
  write?: (line: string) => void;
}

function serializeValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    return { message: v.message, ...(code !== undefined ? { code } : {}) };
  }
  return v;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env.WEFT_LOG_LEVEL as LogLevel | undefined;
  const level: LogLevel = opts.level ?? (envLevel && envLevel in ORDER ? envLevel : 'info');
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const base: Record<string, unknown> = { ...(opts.component ? { component: opts.component } : {}), ...opts.fields };
  const min = ORDER[level];

  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, ...base, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serializeValue(v);
    write(JSON.stringify(rec) + '\n');
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (l) => ORDER[l] >= min,
    child: (component, fields) =>
      createLogger({ level, write, component: base.component ? `${base.component}.${component}` : component, fields: { ...opts.fields, ...fields } }),
  };
}

/** A logger that drops everything; for tests that don't look at logs. */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => {} });
