// `tandem ctl`: joins stdin/stdout to the agent's control socket, so the console drives a node through
// an SSH exec channel (`sudo tandem ctl`) and no control port is ever opened on the network.
import net from 'node:net';
import { agentPaths } from '../daemon/home.js';

export function runCtl(): Promise<number> {
  const socketPath = agentPaths().controlSocket;
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? `no agent is running (nothing listening on ${socketPath}); start it with: tandem-agent run (or systemctl start tandem-agent)`
        : e.code === 'EACCES' ? `permission denied on ${socketPath}; the control socket is root-only: run tandem ctl with sudo` : e.message;
      process.stderr.write(`tandem ctl: ${why}\n`);
      resolve(2);
    });
    socket.once('connect', () => {
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
      // The console closing its channel ends stdin: the agent then sees the connection close too.
      process.stdin.once('end', () => socket.end());
      socket.once('close', () => resolve(0));
    });
  });
}
