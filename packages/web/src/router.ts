/**
 * A small history router for the few pages of each face (the console under /console/, the
 * companion app under /app/: the build's base): no library needed. Links call navigate(); the
 * back button fires popstate.
 */
import { useEffect, useState } from 'react';

/** The face's path, from the build's base (vite.config.ts): `/console` or `/app`. */
export const BASE = (import.meta as ImportMeta & { env: { BASE_URL: string } }).env.BASE_URL.replace(/\/$/, '');

export function navigate(path: string): void {
  window.history.pushState(null, '', `${BASE}${path}`);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

/** The path below the base (with the query string), e.g. `/devices?status=active`. */
export function usePath(): string {
  const read = () => (window.location.pathname.slice(BASE.length) || '/') + window.location.search;
  const [path, setPath] = useState(read);
  useEffect(() => {
    const update = () => setPath(read());
    window.addEventListener('popstate', update);
    return () => window.removeEventListener('popstate', update);
  }, []);
  return path;
}
