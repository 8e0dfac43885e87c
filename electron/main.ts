// Electron's main process, kept thin: the window and its security settings, the IPC door to the
// backend (sender checked, every argument validated by the shared contract) and safeStorage for secrets.
// Everything else is electron/backend/, plain Node, tested without Electron.
import path from 'node:path';
import { app, BrowserWindow, ipcMain, safeStorage, session, type IpcMainInvokeEvent } from 'electron';
import { parseConsoleCall } from '../common/console-api.js';
import { contentSecurityPolicy } from './backend/browser-server.js';
import { createBackend, resourcesDir } from './backend/create-backend.js';

const resources = resourcesDir(__dirname); // bundled as resources/console/main.cjs
const indexFile = path.join(resources, 'renderer', 'index.html');
const pageUrl = `file://${indexFile.replace(/\\/g, '/')}`;

app.enableSandbox();

app.whenReady().then(() => {
  const backend = createBackend({
    dataDir: app.getPath('userData'),
    resources,
    cipher: {
      available: () => safeStorage.isEncryptionAvailable(),
      encrypt: (plain) => safeStorage.encryptString(plain),
      decrypt: (cipher) => safeStorage.decryptString(cipher),
    },
  });

  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy(null)] } });
  });

  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'Tandem',
    webPreferences: {
      preload: path.join(__dirname, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (event, url) => {
    if (url !== pageUrl) event.preventDefault();
  });

  const fromOurPage = (event: IpcMainInvokeEvent) => event.sender === win.webContents && event.senderFrame?.url.split('#')[0] === pageUrl;
  ipcMain.handle('tandem:call', async (event, method: unknown, args: unknown) => {
    if (!fromOurPage(event)) throw new Error('refused: the call did not come from the console window');
    const call = parseConsoleCall(method, args);
    const fn = (backend as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[call.method]!;
    return fn.apply(backend, call.args);
  });
  const unsubscribe = backend.onEvent((event) => {
    if (!win.isDestroyed()) win.webContents.send('tandem:event', event);
  });

  win.on('closed', () => {
    unsubscribe();
    void backend.close().finally(() => app.quit());
  });
  void win.loadFile(indexFile);
});

app.on('window-all-closed', () => app.quit());
