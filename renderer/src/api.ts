// The console API as the renderer sees it: Electron's preload (window.tandem) or, in browser mode, the
// WebSocket of the server that served this page (token from the page's URL). Same calls, same events.
import type { ConsoleApi, ConsoleEvent, ConsoleMethod } from '../../common/console-api.js';

interface Transport {
  call(method: ConsoleMethod, args: unknown[]): Promise<unknown>;
  onEvent(listener: (e: ConsoleEvent) => void): () => void;
}

declare global {
  interface Window {
    tandem?: Transport;
  }
}

/** The page's globals this module uses, typed here so that Node-side tests can load the stores too. */
const page = globalThis as unknown as { location: { search: string; host: string }; tandem?: Transport };

function webSocketTransport(): Transport {
  const location = page.location;
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const listeners = new Set<(e: ConsoleEvent) => void>();
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  let socket: WebSocket | null = null;
  let opened: Promise<WebSocket> | null = null;
  const open = (): Promise<WebSocket> => {
    opened ??= new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/api?token=${encodeURIComponent(token)}`);
      ws.onopen = () => {
        socket = ws;
        resolve(ws);
      };
      ws.onerror = () => reject(new Error('cannot reach the console backend: is `npm run serve` still running, and is the token in the address right?'));
      ws.onclose = () => {
        socket = null;
        opened = null;
        for (const [, p] of pending) p.reject(new Error('the console backend closed the connection'));
        pending.clear();
        for (const l of listeners) l({ type: 'output', entry: { time: Date.now(), server: '', action: 'Console', command: '', ok: false, message: 'connection to the console backend lost; reload the page' } });
      };
      ws.onmessage = (m) => {
        const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown; error?: { message: string }; event?: ConsoleEvent };
        if (msg.event) {
          for (const l of listeners) l(msg.event);
          return;
        }
        const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
        if (!p) return;
        pending.delete(msg.id!);
        if (msg.error) p.reject(new Error(msg.error.message));
        else p.resolve(msg.result);
      };
    });
    return opened;
  };
  return {
    async call(method, args) {
      const ws = socket ?? (await open());
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, args }));
      });
    },
    onEvent(listener) {
      listeners.add(listener);
      void open().catch(() => undefined);
      return () => listeners.delete(listener);
    },
  };
}

const transport: Transport = page.tandem ?? webSocketTransport();

/** The typed API: api.cluster(), api.agentCall(...), … */
export const api = new Proxy({} as ConsoleApi, {
  get: (_t, method: string) => (...args: unknown[]) => transport.call(method as ConsoleMethod, args),
});

export const onConsoleEvent = (listener: (e: ConsoleEvent) => void): (() => void) => transport.onEvent(listener);
