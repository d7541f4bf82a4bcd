// What every page of the signed-in app shares: the API client, who is signed in, the box's
// device record (name in the header) and the active alerts (the badge on "Alerts").

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import type { Alert, Device, Me } from '../api/types';

export interface AppState {
  client: ApiClient;
  me: Me;
  device: Device | null;
  refreshDevice: () => void;
  alerts: Alert[] | null;
  refreshAlerts: () => void;
  // Leaves the app for the "waiting for the box" screen after a restart or shutdown;
  // `bootIdBefore` is GET /setup's boot_id just before the restart was asked for.
  powerOff: (action: 'restart' | 'shutdown', bootIdBefore?: string) => void;
  // The box ended this session (the password changed): back to sign-in with `notice`.
  endSession: (notice: string) => void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const s = useContext(AppContext);
  if (!s) throw new Error('useApp outside the app');
  return s;
}
