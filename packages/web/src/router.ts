/**
 * A small history router for the console's few pages under /console/: no library needed for
 * four routes. Links call navigate(); the back button fires popstate.
 */
import { useEffect, useState } from 'react';

export const BASE = '/console';

export function navigate(path: string): void {
  window.history.pushState(null, '', `${BASE}${path}`);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

/** The path below /console (with the query string), e.g. `/devices?status=active`. */
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
