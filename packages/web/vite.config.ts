// Builds the two faces of packages/web for the platform to serve: the console (index.html) into
// dist/ under /console/, and with `--mode app` the companion app (app/index.html) into dist/app/
// under /app/. Both share src/kit.tsx, src/api.ts and styles.css; each has its own hashed assets
// (served with a year-long immutable cache) and no inline script or style (the CSP allows 'self' only).
// @bulwark/protocol (the wire shapes the server defines too) is bundled from its TypeScript source
// (its `source` export), so the web build does not wait on the protocol's own build.
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * jsQR (the app's QR reader where the browser has no BarcodeDetector) carries a Shift-JIS table
 * for QR codes in kanji mode: 35 of its 46 kB gzip. A claim label holds a link, which is never
 * encoded in kanji mode, so the table is left out of the build and the reader's chunk stays within
 * its budget (scripts/bundle-size.mjs); a kanji segment would read as NULs, which no claim code
 * holds. The build fails if a new jsQR no longer has the table where this expects it.
 */
function jsqrWithoutKanjiTable(): Plugin {
  return {
    name: 'jsqr-without-kanji-table',
    transform(code, id) {
      if (!id.replaceAll('\\', '/').endsWith('/node_modules/jsqr/dist/jsQR.js')) return null;
      const trimmed = code.replace(/exports\.shiftJISTable = \{[^}]*\};/, 'exports.shiftJISTable = {};');
      if (trimmed === code) this.error("jsQR's Shift-JIS table was not found: check vite.config.ts against this jsQR");
      return { code: trimmed, map: null };
    },
  };
}

export default defineConfig(({ mode }) => {
  const app = mode === 'app';
  return {
    base: app ? '/app/' : '/console/',
    root: app ? 'app' : '.',
    plugins: [react(), jsqrWithoutKanjiTable()],
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
