// Vite configuration for the SvelteKit app.
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const vanillaLib = fileURLToPath(new URL('../vanilla/lib', import.meta.url));

// `npm run dev` serves the app from Vite; its /ws is forwarded to a running pgcall server
// (PGCALL_URL, default pgcall's own default address) so the page keeps using its own origin.
const pgcall = process.env.PGCALL_URL || 'http://127.0.0.1:9000';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    // The dev server may read the shared modules of the vanilla frontend (outside this root).
    fs: { allow: [vanillaLib] },
    proxy: { '/ws': { target: pgcall, ws: true, changeOrigin: true } }
  },
  build: {
    // Never inline a .js asset as a data: URL: the AudioWorklet module must be fetched as its own
    // JavaScript file (audioWorklet.addModule needs a script of a JavaScript MIME type).
    assetsInlineLimit: (file) => (file.endsWith('.js') ? false : undefined)
  }
});
