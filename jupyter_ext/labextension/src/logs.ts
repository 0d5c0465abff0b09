// A container's log in the main area: follows (auto-scroll), searches, copies.
import { Clipboard, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { openSocket } from './api';
import { el } from './format';

const MAX_LINES = 20000;

export class LogsView extends Widget {
  private pre: HTMLPreElement;
  private search: HTMLInputElement;
  private follow: HTMLInputElement;
  private onlyMatches: HTMLInputElement;
  private status: HTMLSpanElement;
  private socket: WebSocket | null = null;
  private partial: HTMLSpanElement | null = null;
  private lines: HTMLSpanElement[] = [];

  constructor(
    readonly containerId: string,
    readonly containerName: string
  ) {
    super();
    this.addClass('pj-logs');
    this.id = `pyjail-logs-${containerId.slice(0, 12)}`;
    this.title.label = `Logs: ${containerName}`;
    this.title.closable = true;
    this.follow = el('input', { type: 'checkbox', class: 'pj-logs-follow' });
    this.follow.checked = true;
    this.search = el('input', {
      type: 'search',
      class: 'pj-logs-search',
      placeholder: 'Search the log'
    });
    this.onlyMatches = el('input', { type: 'checkbox', class: 'pj-logs-only' });
    this.status = el('span', { class: 'pj-logs-status' }, 'connecting');
    const copy = el('button', { class: 'pj-btn pj-logs-copy', title: 'Copy the whole log' }, 'Copy');
    copy.addEventListener('click', () => {
      Clipboard.copyToSystem(this.text());
      Notification.success('Log copied to the clipboard', { autoClose: 2000 });
    });
    const bar = el(
      'div',
      { class: 'pj-logs-bar' },
      el('label', {}, this.follow, ' Follow'),
      this.search,
      el('label', {}, this.onlyMatches, ' Only matches'),
      copy,
      this.status
    );
    this.pre = el('pre', { class: 'pj-logs-text' });
    this.node.append(bar, this.pre);
    this.search.addEventListener('input', () => this.applySearch());
    this.onlyMatches.addEventListener('change', () => this.applySearch());
    this.connect();
  }

  /** The log as plain text (what Copy puts on the clipboard). */
  text(): string {
    return this.pre.textContent || '';
  }

  private connect(): void {
    this.socket = openSocket(
      `containers/${encodeURIComponent(this.containerId)}/logs/ws?tail=1000`,
      item => {
        if (item.error) {
          this.status.textContent = `error: ${item.error.message}`;
          return;
        }
        this.append(item.text || '', item.stream === 'stderr');
      },
      () => {
        this.status.textContent = 'ended';
        this.status.dataset.state = 'ended';
      }
    );
    this.socket.onopen = () => {
      this.status.textContent = 'following';
      this.status.dataset.state = 'open';
    };
  }

  private append(text: string, stderr: boolean): void {
    const pieces = text.split('\n');
    pieces.forEach((piece, i) => {
      if (!this.partial) {
        this.partial = el('span', { class: stderr ? 'pj-log-line pj-stderr' : 'pj-log-line' });
        this.pre.append(this.partial);
        this.lines.push(this.partial);
      }
      this.partial.textContent += piece;
      if (i < pieces.length - 1) {
        this.partial.textContent += '\n';
        this.mark(this.partial);
        this.partial = null;
      }
    });
    while (this.lines.length > MAX_LINES) {
      this.lines.shift()!.remove();
    }
    if (this.follow.checked) {
      this.pre.scrollTop = this.pre.scrollHeight;
    }
  }

  private mark(line: HTMLSpanElement): void {
    const query = this.search.value.toLowerCase();
    const hit = !!query && (line.textContent || '').toLowerCase().includes(query);
    line.classList.toggle('pj-hit', hit);
    line.hidden = this.onlyMatches.checked && !!query && !hit;
  }

  private applySearch(): void {
    for (const line of this.lines) {
      this.mark(line);
    }
    const first = this.pre.querySelector('.pj-hit');
    if (first && !this.follow.checked) {
      first.scrollIntoView({ block: 'nearest' });
    }
  }

  dispose(): void {
    this.socket?.close();
    super.dispose();
  }
}

export function logsWidget(id: string, name: string): MainAreaWidget<LogsView> {
  const content = new LogsView(id, name);
  const widget = new MainAreaWidget({ content });
  widget.id = content.id;
  widget.title.label = content.title.label;
  widget.title.closable = true;
  return widget;
}
