// The left-sidebar panel: a header (daemon, live status) and the four sections. Lists are
// fetched once, then again only when the daemon's event stream says that kind changed.
import { Widget } from '@lumino/widgets';

import { openSocket, request } from './api';
import { ContainersSection } from './containers';
import { el } from './format';
import { ImagesSection } from './images';
import { attempt, Hooks, Info, Options } from './model';
import { BackupsSection, VolumesSection } from './storage';

type Kind = 'containers' | 'images' | 'volumes' | 'backups';

const EVENT_KINDS: Record<string, Kind[]> = {
  container: ['containers'],
  image: ['images'],
  volume: ['volumes'],
  backup: ['backups']
};

export class PyjailPanel extends Widget {
  readonly containers: ContainersSection;
  readonly images: ImagesSection;
  readonly volumes: VolumesSection;
  readonly backups: BackupsSection;
  private hostLabel = el('span', { class: 'pj-host' }, '…');
  private live = el('span', { class: 'pj-live', title: 'Event stream' }, 'offline');
  // a badge of its own: a suffix on the (long, ellipsised) address would be cut off
  private readOnly = el('span', { class: 'pj-read-only', title: 'Destructive actions are disabled (PyjailJupyterConfig.read_only)' }, 'read-only');
  private events: WebSocket | null = null;
  private inflight = new Set<Kind>();
  private again = new Set<Kind>();
  private lastEvent = 0;
  private reconnectDelay = 500;
  private disposedFlag = false;
  info: Info | null = null;

  constructor(
    hooks: Hooks,
    private options: () => Options
  ) {
    super();
    this.readOnly.hidden = true;
    this.id = 'pyjail-sidebar';
    this.addClass('pj-panel');
    this.containers = new ContainersSection(hooks, options);
    this.images = new ImagesSection();
    this.volumes = new VolumesSection(hooks);
    this.backups = new BackupsSection();
    const refresh = el('button', { class: 'pj-btn', title: 'Reload everything' }, '⟳');
    refresh.addEventListener('click', () => this.start());
    this.node.append(
      el(
        'div',
        { class: 'pj-header' },
        el('span', { class: 'pj-title' }, 'pyjail'),
        this.hostLabel,
        this.readOnly,
        this.live,
        refresh
      ),
      this.containers.node,
      this.images.node,
      this.volumes.node,
      this.backups.node
    );
    document.addEventListener('pyjail-reload', ev => void this.load((ev as CustomEvent).detail as Kind));
  }

  applyOptions(): void {
    const o = this.options();
    this.containers.visible = o.showContainers;
    this.images.visible = o.showImages;
    this.volumes.visible = o.showVolumes;
    this.backups.visible = o.showBackups;
    this.containers.render();
  }

  /** (Re)load the info and every list, and (re)open the event stream. */
  async start(): Promise<void> {
    this.applyOptions();
    this.connectEvents();
    try {
      this.info = await request<Info>('info');
      this.hostLabel.textContent = this.info.host;
      this.hostLabel.title = this.info.host;
      this.readOnly.hidden = !this.info.read_only;
      this.node.dataset.readOnly = String(this.info.read_only);
      for (const s of [this.containers, this.images, this.volumes, this.backups]) {
        s.info = this.info;
      }
    } catch (err) {
      this.hostLabel.textContent = `daemon unreachable: ${(err as Error).message}`;
    }
    await Promise.all((['containers', 'images', 'volumes', 'backups'] as Kind[]).map(k => this.load(k)));
  }

  /** After the server switched daemons: the open event stream (and its `since=` clock)
   * belong to the old one, so drop them before loading everything again. */
  async switchedDaemon(): Promise<void> {
    const old = this.events;
    this.events = null;   // its close must not schedule a reconnect
    old?.close();
    this.lastEvent = 0;
    await this.start();
  }

  private connectEvents(): void {
    if (this.events && this.events.readyState <= WebSocket.OPEN) {
      return;
    }
    // since: replay what happened while we were (re)connecting
    const since = this.lastEvent ? `?since=${Math.floor(this.lastEvent)}` : '';
    // a dropped stream's last frames (old daemon) must not move our since= clock
    const ws = openSocket(`events/ws${since}`, item => this.events === ws && this.onEvent(item), () => {
      if (this.events !== ws) {
        return;   // a stream we dropped (daemon switched): the new one is in charge
      }
      this.live.textContent = 'offline';
      this.live.dataset.state = 'offline';
      if (!this.disposedFlag) {
        this.events = null;
        setTimeout(() => this.reconnect(), this.reconnectDelay);
        this.reconnectDelay = Math.min(this.reconnectDelay * 2, 10000);
      }
    });
    ws.onopen = () => {
      this.reconnectDelay = 500;
      this.live.textContent = 'live';
      this.live.dataset.state = 'live';
    };
    this.events = ws;
  }

  private reconnect(): void {
    this.connectEvents();
    // anything may have changed while the stream was down
    for (const kind of ['containers', 'images', 'volumes', 'backups'] as Kind[]) {
      void this.load(kind);
    }
  }

  private onEvent(event: any): void {
    if (event.error) {
      this.live.textContent = `error: ${event.error.message}`;
      return;
    }
    this.lastEvent = event.time || Date.now() / 1000;
    const action = String(event.Action || event.status || '');
    if (action.startsWith('exec_') || action === 'top' || action.startsWith('attach')) {
      return;
    }
    for (const kind of EVENT_KINDS[event.Type] || []) {
      void this.load(kind);
    }
  }

  /** Fetch one list and render it; calls while one is in flight coalesce into one more. */
  async load(kind: Kind): Promise<void> {
    if (this.inflight.has(kind)) {
      this.again.add(kind);
      return;
    }
    this.inflight.add(kind);
    try {
      do {
        this.again.delete(kind);
        await this.fetchAndRender(kind);
      } while (this.again.has(kind));
    } finally {
      this.inflight.delete(kind);
    }
  }

  private async fetchAndRender(kind: Kind): Promise<void> {
    try {
      switch (kind) {
        case 'containers':
          this.containers.update(await request('containers?all=1'));
          this.containers.showError(null);
          break;
        case 'images':
          this.images.update(await request('images'));
          this.images.showError(null);
          break;
        case 'volumes':
          this.volumes.update(await request('volumes'));
          this.volumes.showError(null);
          break;
        case 'backups': {
          const [backups, schedules] = await Promise.all([
            request('backups'),
            attempt('schedules', () => request('schedules'))
          ]);
          this.backups.update(backups);
          this.backups.updateSchedules(schedules || []);
          this.backups.showError(null);
          break;
        }
      }
    } catch (err) {
      this[kind].showError((err as Error).message);
    }
  }

  dispose(): void {
    this.disposedFlag = true;
    this.events?.close();
    this.containers.dispose();
    super.dispose();
  }
}
