import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// The renderer is built into resources/renderer: loaded from file:// by Electron and served by the
// browser-mode server, so asset paths are relative and nothing is inlined that the CSP would refuse.
export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [vue()],
  build: { outDir: '../resources/renderer', emptyOutDir: true, assetsInlineLimit: 0, sourcemap: true },
  logLevel: 'warn',
});
