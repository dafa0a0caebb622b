// SvelteKit configuration: a static single-page app.
//
// pgcall serves the files of build/ itself, from the same origin as its WebSocket, and answers
// every unknown path with index.html; so the adapter writes an SPA fallback page and nothing is
// rendered on a server (see src/routes/+layout.js).
import adapter from '@sveltejs/adapter-static';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  kit: {
    adapter: adapter({
      pages: 'build',
      assets: 'build',
      fallback: 'index.html',
      precompress: false,
      strict: true
    }),
    alias: {
      // The protocol, relay client, jitter buffer, resampler and capture code live once, in the
      // vanilla frontend's ES modules; this app imports them instead of keeping a second copy.
      $vanilla: '../vanilla/lib'
    }
  }
};

export default config;
