// The console's data folder when Electron does not name it (browser mode): where each OS keeps an app's
// settings. Electron's app.getPath('userData') gives the same places.
import os from 'node:os';
import path from 'node:path';

export function defaultDataDir(platform = process.platform, env = process.env): string {
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), 'Tandem');
  if (platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'Tandem');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'Tandem');
}
