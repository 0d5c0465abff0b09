// What the sections share: settings, the server's info, and the app-level hooks.
import { Dialog, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';

import { ApiError, streamLines } from './api';

export interface Options {
  daemonAddress: string;
  showContainers: boolean;
  showImages: boolean;
  showVolumes: boolean;
  showBackups: boolean;
  showStopped: boolean;
  groupBy: 'none' | 'compose' | 'label';
  groupLabel: string;
  sparklinePoints: number;
}

export const DEFAULT_OPTIONS: Options = {
  daemonAddress: '',
  showContainers: true,
  showImages: true,
  showVolumes: true,
  showBackups: true,
  showStopped: true,
  groupBy: 'compose',
  groupLabel: '',
  sparklinePoints: 60
};

export interface Hooks {
  openLogs(id: string, name: string): void;
  openInspect(title: string, data: unknown): void;
  insertCell(code: string): boolean;
  openProgress(title: string): (line: any) => void;
  setOption(key: keyof Options, value: unknown): void;
}

export interface Info {
  host: string;
  read_only: boolean;
  actions: string[];
  destructive_actions: string[];
}

/** Ask before an action that cannot be undone; true when the user agreed. */
export async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

// JupyterLab cuts a notification's text after this many characters
const NOTIFICATION_MAX = 140;

/** A failure short enough for a notification: Docker-style messages put the reason after
 * the last " - " ("conflict: unable to remove … (must force) - container … is using …"),
 * so a long one keeps that part rather than losing it to the cut. */
export function failureSummary(what: string, message: string): string {
  let text = `${what}: ${message}`;
  if (text.length > NOTIFICATION_MAX && message.includes(' - ')) {
    text = `${what}: ${message.slice(message.lastIndexOf(' - ') + 3)}`;
  }
  return text.length > NOTIFICATION_MAX ? `${text.slice(0, NOTIFICATION_MAX - 1)}…` : text;
}

/** Run an action, reporting a failure as a notification (the daemon's own message; when
 * that had to be shortened, its *Details* button shows all of it). */
export async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const message = err instanceof ApiError ? err.message : String(err);
    const text = failureSummary(what, message);
    const details = {
      label: 'Details',
      callback: () => void showErrorMessage(what, { message })
    };
    Notification.error(text, { autoClose: 8000, actions: text === `${what}: ${message}` ? [] : [details] });
    return undefined;
  }
}

/** A streamed action (backup, build) shown in a progress view; resolves with the last line. */
export async function streamed(
  hooks: Hooks,
  title: string,
  path: string,
  body?: unknown
): Promise<any> {
  const show = hooks.openProgress(title);
  return attempt(title, async () => {
    const last = await streamLines(path, body, show);
    show({ done: true });
    Notification.success(`${title}: done`, { autoClose: 4000 });
    return last;
  });
}

/** After an action of ours, reload that list at once: the daemon does not emit an event
 * for every change (a build, for one), and the events stream stays the source otherwise. */
export function reload(kind: 'containers' | 'images' | 'volumes' | 'backups'): void {
  document.dispatchEvent(new CustomEvent('pyjail-reload', { detail: kind }));
}
