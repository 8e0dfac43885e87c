// What deployment writes on a node, as pure text so it can be checked without a node: the wrappers
// that put the manual's CLIs on the PATH, the systemd unit, and the fallback service script for nodes
// without systemd. Paths are the node's (Linux) paths.
import { AGENT_FILE, INSTALL_DIR, NODE_PROGRAMS, SYSTEMD_UNIT } from '../../../common/agent-layout.js';

export const AGENT_PATH = `${INSTALL_DIR}/${AGENT_FILE}`;
export const UPLOAD_PATH = `${INSTALL_DIR}/.${AGENT_FILE}.upload`;
export const BIN_DIR = `${INSTALL_DIR}/bin`;
export const LINK_DIR = '/usr/local/sbin';
export const SERVICE_SCRIPT = `${BIN_DIR}/tandem-agent-service`;
export const UNIT_PATH = `/etc/systemd/system/${SYSTEMD_UNIT}`;
export const FALLBACK_LOG = '/var/log/tandem-agent.log';
export const FALLBACK_PID = '/run/tandem/agent.pid';

/** Single-quotes for sh. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `node --version` output → [major, minor, patch], or null if it is not a version. */
export function parseNodeVersion(out: string): [number, number, number] | null {
  const m = /^v(\d+)\.(\d+)\.(\d+)/.exec(out.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export const MIN_NODE_MAJOR = 18;

export function wrapperScript(program: string): string {
  return `#!/bin/sh\n# Installed by the Tandem console: runs the agent bundle as ${program}.\nTANDEM_PROGRAM=${program} exec node ${AGENT_PATH} "$@"\n`;
}

export function wrapperPrograms(): string[] {
  return [...NODE_PROGRAMS, 'tandem-agent'];
}

/** tandem-agent itself (no TANDEM_PROGRAM: the bundle's own commands: run, export, version). */
export function agentWrapper(): string {
  return `#!/bin/sh\n# Installed by the Tandem console.\nexec node ${AGENT_PATH} "$@"\n`;
}

export function systemdUnit(node: string): string {
  return `# Installed by the Tandem console. State: /var/lib/tandem; sockets: /run/tandem.
[Unit]
Description=Tandem agent (block replication) for node ${node}
After=network-online.target local-fs.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/env node ${AGENT_PATH} run --node ${node}
Restart=on-failure
RestartSec=2
# Stop cleanly: the agent flushes its bitmaps and closes its exports on SIGTERM.
KillSignal=SIGTERM
TimeoutStopSec=60
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/**
 * For nodes without systemd (containers, the test lab): start|stop|restart|status with a pid file; the
 * agent is detached with setsid so it outlives the SSH session that started it.
 */
export function fallbackServiceScript(node: string): string {
  return `#!/bin/sh
# Installed by the Tandem console where systemd is absent. Usage: tandem-agent-service start|stop|restart|status
PID=${FALLBACK_PID}
running() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }
start() {
  if running; then echo "tandem-agent is running (pid $(cat "$PID"))"; return 0; fi
  mkdir -p /run/tandem && chmod 700 /run/tandem
  setsid node ${AGENT_PATH} run --node ${sq(node)} >>${FALLBACK_LOG} 2>&1 < /dev/null &
  echo $! > "$PID"
  echo "tandem-agent started (pid $!)"
}
stop() {
  if ! running; then rm -f "$PID"; echo "tandem-agent is not running"; return 0; fi
  p=$(cat "$PID"); kill -TERM "$p"
  i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  kill -0 "$p" 2>/dev/null && kill -KILL "$p"
  rm -f "$PID"; echo "tandem-agent stopped"
}
case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running; then echo "running (pid $(cat "$PID"))"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
`;
}

/** A shell command that writes `content` to `file` with `mode`, atomically (temp file + rename). */
export function writeFileCommand(file: string, content: string, mode: string): string {
  const b64 = Buffer.from(content).toString('base64');
  const tmp = `${file}.tmp`;
  return `printf %s ${sq(b64)} | base64 -d > ${sq(tmp)} && chmod ${mode} ${sq(tmp)} && mv -f ${sq(tmp)} ${sq(file)}`;
}
