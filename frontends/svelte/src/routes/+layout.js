// The whole app runs in the browser: no server rendering, and nothing to prerender. The
// adapter's fallback page (index.html) boots the client for every path.
export const ssr = false;
export const prerender = false;
