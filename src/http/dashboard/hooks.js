import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/**
 * Loads data with `load()` when `deps` change, and again every `interval` ms while the tab is
 * visible (0 = no polling). Answers that arrive after a newer request started are dropped, so
 * a slow page never overwrites a fresh one.
 */
export function useResource(load, deps, { interval = 0 } = {}) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);

  // New inputs: keep showing the last answer until the new one arrives (no flashing tables).
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
  }, [reload]);

  useEffect(() => {
    if (!interval) return undefined;
    const timer = setInterval(() => {
      if (!document.hidden) reload();
    }, interval);
    return () => clearInterval(timer);
  }, [reload, interval]);

  return { ...state, reload };
}

/** `value`, but only once it stopped changing for `delay` ms. */
export function useDebounced(value, delay) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delay);
    return () => clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

/** The current hash route: `#/webhooks/sub_1?tab=x` -> {path: '/webhooks/sub_1', params}. */
export function useRoute() {
  const read = () => {
    const raw = location.hash.replace(/^#/, '') || '/';
    const [path, search = ''] = raw.split('?');
    return { path, params: new URLSearchParams(search) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(path) {
  location.hash = '#' + path;
}
