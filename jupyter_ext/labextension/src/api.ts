// The sidebar's only way to the server: REST, streamed JSON lines and WebSockets under
// <base_url>pyjail/api/, authenticated by the Jupyter server (cookie/token + XSRF).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

const settings = ServerConnection.makeSettings();

/** An error the server answered with: its status and its `{"message"}` text. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

async function failure(resp: Response): Promise<ApiError> {
  let message = `HTTP ${resp.status}`;
  try {
    message = (await resp.json()).message || message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(resp.status, message);
}

function url(path: string): string {
  return URLExt.join(settings.baseUrl, 'pyjail/api', path);
}

/** A JSON request; `undefined` for 204 answers. */
export async function request<T = any>(
  path: string,
  method = 'GET',
  body?: unknown
): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
  }
  const resp = await ServerConnection.makeRequest(url(path), init, settings);
  if (!resp.ok) {
    throw await failure(resp);
  }
  if (resp.status === 204) {
    return undefined as T;
  }
  return (await resp.json()) as T;
}

/** POST that answers JSON lines (build, backup): `onLine` sees each as it arrives. */
export async function streamLines(
  path: string,
  body: unknown,
  onLine: (line: any) => void
): Promise<any> {
  const resp = await ServerConnection.makeRequest(
    url(path),
    { method: 'POST', body: body === undefined ? '' : JSON.stringify(body) },
    settings
  );
  if (!resp.ok || !resp.body) {
    throw await failure(resp);
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let last: any = null;
  for (;;) {
    const { value, done } = await reader.read();
    buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
    const lines = buffered.split('\n');
    buffered = done ? '' : lines.pop() || '';
    for (const text of lines) {
      if (text.trim()) {
        last = JSON.parse(text);
        onLine(last);
      }
    }
    if (done) {
      break;
    }
  }
  if (last && last.error) {
    throw new ApiError(500, String(last.error));
  }
  return last;
}

/** A WebSocket under pyjail/api whose JSON frames go to `onItem`. */
export function openSocket(
  path: string,
  onItem: (item: any) => void,
  onClose?: (ev: CloseEvent) => void
): WebSocket {
  let address = URLExt.join(settings.wsUrl, 'pyjail/api', path);
  if (settings.token) {
    address += (address.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(settings.token);
  }
  const ws = new WebSocket(address);
  ws.onmessage = ev => onItem(JSON.parse(ev.data));
  if (onClose) {
    ws.onclose = onClose;
  }
  return ws;
}
