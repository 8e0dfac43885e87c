// Minimal leveled logging to stderr; the level comes from TANDEM_LOG (debug, info, warn, error).
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(prefix: string): Logger;
}

export function createLogger(prefix = 'tandem-agent', level: Level = parseLevel(process.env.TANDEM_LOG)): Logger {
  const min = LEVELS.indexOf(level);
  const emit = (l: Level, msg: string) => {
    if (LEVELS.indexOf(l) >= min) process.stderr.write(`${new Date().toISOString()} ${l.padEnd(5)} ${prefix}: ${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (p) => createLogger(`${prefix} ${p}`, level),
  };
}

function parseLevel(value: string | undefined): Level {
  return (LEVELS as readonly string[]).includes(value ?? '') ? (value as Level) : 'info';
}
