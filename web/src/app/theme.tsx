// Light and dark themes: the system's choice (prefers-color-scheme) until the admin picks one
// with the toggle; the choice is kept in localStorage and set as <html data-theme>.

import { useEffect, useState } from 'preact/hooks';

const kKey = 'fieldstack.theme';
type Theme = 'light' | 'dark';

function systemTheme(): Theme {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function storedTheme(): Theme | null {
  try {
    const t = window.localStorage.getItem(kKey);
    return t === 'light' || t === 'dark' ? t : null;
  } catch {
    return null;
  }
}

// Sets <html data-theme> from the stored choice; called before the first render.
export function applyStoredTheme(): void {
  const t = storedTheme();
  if (t) document.documentElement.dataset['theme'] = t;
}

// The theme in effect now, for code that draws (the chart) rather than styles.
export function currentTheme(): Theme {
  return (document.documentElement.dataset['theme'] as Theme | undefined) ?? systemTheme();
}

export const kThemeEvent = 'fieldstack-theme';

export function useThemeName(): Theme {
  const [theme, setTheme] = useState<Theme>(currentTheme);
  useEffect(() => {
    const on = () => setTheme(currentTheme());
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    mq?.addEventListener?.('change', on);
    window.addEventListener(kThemeEvent, on);
    return () => {
      mq?.removeEventListener?.('change', on);
      window.removeEventListener(kThemeEvent, on);
    };
  }, []);
  return theme;
}

export function ThemeToggle() {
  const theme = useThemeName();
  const dark = theme === 'dark';
  return (
    <button
      type="button"
      class="btn btn-ghost theme-toggle"
      aria-pressed={dark ? 'true' : 'false'}
      title={dark ? 'Use the light theme' : 'Use the dark theme'}
      onClick={() => {
        const next: Theme = dark ? 'light' : 'dark';
        document.documentElement.dataset['theme'] = next;
        try {
          window.localStorage.setItem(kKey, next);
        } catch {
          /* not kept: fine for this visit */
        }
        window.dispatchEvent(new Event(kThemeEvent));
      }}
    >
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
        <path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z" />
      </svg>
      Dark theme
    </button>
  );
}
