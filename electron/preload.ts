// The preload, kept thin: exposes exactly one object, window.tandem — the console API's transport
// (call + events) — to the isolated, sandboxed renderer. Arguments are validated in the main process.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { ConsoleEvent } from '../common/console-api.js';

contextBridge.exposeInMainWorld('tandem', {
  call: (method: string, args: unknown[]): Promise<unknown> => ipcRenderer.invoke('tandem:call', method, args),
  onEvent: (listener: (event: ConsoleEvent) => void): (() => void) => {
    const wrapped = (_e: IpcRendererEvent, event: ConsoleEvent) => listener(event);
    ipcRenderer.on('tandem:event', wrapped);
    return () => ipcRenderer.off('tandem:event', wrapped);
  },
});
