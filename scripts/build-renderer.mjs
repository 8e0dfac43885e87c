// Builds the renderer (Vue 3 + Pinia) with Vite into resources/renderer.
import { build } from 'vite';

await build({ configFile: 'vite.config.ts' });
console.log('built resources/renderer');
