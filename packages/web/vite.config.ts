// Builds the two faces of packages/web for the platform to serve: the console (index.html) into
// dist/ under /console/, and with `--mode app` the companion app (app/index.html) into dist/app/
// under /app/. Both share src/kit.tsx, src/api.ts and styles.css; each has its own hashed assets
// (served with a year-long immutable cache) and no inline script or style (the CSP allows 'self' only).
// @bulwark/protocol (the wire shapes the server defines too) is bundled from its TypeScript source
// (its `source` export), so the web build does not wait on the protocol's own build.
import { defaultClientConditions, defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig(({ mode }) => {
  const app = mode === 'app';
  return {
    base: app ? '/app/' : '/console/',
    root: app ? 'app' : '.',
    plugins: [react()],
    resolve: { conditions: ['source', ...defaultClientConditions] },
    build: {
      outDir: app ? '../dist/app' : 'dist',
      // The console's build empties dist/ (the app's included); the app's build runs after it.
      emptyOutDir: true,
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      sourcemap: false,
      reportCompressedSize: false,
    },
  };
});
