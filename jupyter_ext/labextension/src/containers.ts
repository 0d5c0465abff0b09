// The containers section: rows keyed by id (only changed rows are rebuilt, so 200
// containers stay cheap), grouping by compose project or a label, actions, details with
// live CPU/memory sparklines, the equivalent %container run line, and cell snippets.
import { Clipboard, InputDialog, Notification } from '@jupyterlab/apputils';

import { openSocket, request } from './api';
import { button, el, shellQuote, shortId } from './format';
import { attempt, confirm, Hooks, Info, Options, reload, streamed } from './model';
import { cellSnippets, runLine } from './runline';
import { Section } from './section';
import { Sparkline } from './sparkline';

const COMPOSE = 'com.docker.compose.project';

interface Row {
  node: HTMLElement;
  sig: string;
  detail: HTMLElement | null;
  stats: WebSocket | null;
  cpu: Sparkline | null;
  mem: Sparkline | null;
}

export function containerName(c: any): string {
  return ((c.Names && c.Names[0]) || c.Id.slice(0, 12)).replace(/^\//, '');
}

function health(status: string): string {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status || '');
  return m ? m[1].replace('health: ', '') : '';
}

function ports(c: any): string {
  return (c.Ports || [])
    .map((p: any) =>
      p.PublicPort ? `${p.IP && p.IP !== '0.0.0.0' ? p.IP + ':' : ''}${p.PublicPort}→${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`
    )
    .join(', ');
}

function uptime(c: any): string {
  return (c.Status || '').replace(/\s*\((healthy|unhealthy|health: starting)\)/, '');
}

export class ContainersSection extends Section {
  private rows = new Map<string, Row>();
  private groups = new Map<string, HTMLElement>();
  private expanded = new Set<string>();
  private filter: HTMLInputElement;
  private groupSelect: HTMLSelectElement;
  private data: any[] = [];
  info: Info | null = null;
  lastRenderMs = 0;

  constructor(
    private hooks: Hooks,
    private options: () => Options
  ) {
    super('containers', 'Containers');
    this.filter = el('input', { type: 'search', class: 'pj-filter', placeholder: 'Filter' });
    this.filter.addEventListener('input', () => this.render());
    this.groupSelect = el('select', { class: 'pj-group-select', title: 'Group by' });
    for (const [value, label] of [
      ['none', 'No groups'],
      ['compose', 'Compose project'],
      ['label', 'Label…']
    ]) {
      this.groupSelect.append(el('option', { value }, label));
    }
    this.groupSelect.addEventListener('change', async () => {
      let value = this.groupSelect.value;
      if (value === 'label') {
        const key = await InputDialog.getText({
          title: 'Group containers by label',
          label: 'Label key',
          text: this.options().groupLabel
        });
        if (!key.button.accept || !key.value) {
          this.groupSelect.value = this.options().groupBy;
          return;
        }
        this.hooks.setOption('groupLabel', key.value);
        value = 'label';
      }
      this.hooks.setOption('groupBy', value);
    });
    this.tools.append(this.filter, this.groupSelect);
  }

  update(list: any[]): void {
    this.data = list;
    this.render();
  }

  private allowed(action: string): boolean {
    return !this.info || this.info.actions.includes(action);
  }

  private groupOf(c: any, opts: Options): string {
    const labels = c.Labels || {};
    if (opts.groupBy === 'compose') {
      return labels[COMPOSE] || '';
    }
    if (opts.groupBy === 'label' && opts.groupLabel) {
      return labels[opts.groupLabel] !== undefined ? `${opts.groupLabel}=${labels[opts.groupLabel]}` : '';
    }
    return '';
  }

  render(): void {
    const t0 = performance.now();
    const opts = this.options();
    this.groupSelect.value = opts.groupBy;
    const query = this.filter.value.toLowerCase();
    const shown = this.data.filter(
      c =>
        (opts.showStopped || c.State === 'running' || c.State === 'paused') &&
        (!query || `${containerName(c)} ${c.Image} ${c.State}`.toLowerCase().includes(query))
    );
    const grouped = new Map<string, any[]>();
    for (const c of shown) {
      const g = this.groupOf(c, opts);
      if (!grouped.has(g)) {
        grouped.set(g, []);
      }
      grouped.get(g)!.push(c);
    }
    const keys = [...grouped.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
    const children: HTMLElement[] = [];
    const seen = new Set<string>();
    for (const key of keys) {
      const members = grouped.get(key)!.sort((a, b) => containerName(a).localeCompare(containerName(b)));
      if (keys.length > 1 || key !== '') {
        children.push(this.groupHeader(key, members));
      }
      for (const c of members) {
        seen.add(c.Id);
        children.push(this.row(c).node);
      }
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.stats?.close();
        this.rows.delete(id);
      }
    }
    if (!shown.length) {
      children.push(el('div', { class: 'pj-empty' }, this.data.length ? 'No container matches.' : 'No containers.'));
    }
    this.body.replaceChildren(...children);
    this.setCount(this.data.length);
    this.lastRenderMs = performance.now() - t0;
    this.body.dataset.renderMs = this.lastRenderMs.toFixed(2);
    this.body.dataset.rows = String(shown.length);
  }

  private groupHeader(key: string, members: any[]): HTMLElement {
    let node = this.groups.get(key);
    if (!node) {
      node = el('div', { class: 'pj-group', 'data-group': key });
      this.groups.set(key, node);
    }
    const running = members.filter(c => c.State === 'running').length;
    node.textContent = `${key || '(no group)'} · ${running}/${members.length} running`;
    return node;
  }

  private row(c: any): Row {
    const open = this.expanded.has(c.Id);
    const sig = JSON.stringify([c.Names, c.Image, c.State, c.Status, c.Ports, open, this.info?.actions]);
    let row = this.rows.get(c.Id);
    if (row && row.sig === sig) {
      return row;
    }
    if (!row) {
      row = { node: el('div'), sig, detail: null, stats: null, cpu: null, mem: null };
      this.rows.set(c.Id, row);
    }
    row.sig = sig;
    const name = containerName(c);
    const hs = health(c.Status);
    const node = el(
      'div',
      { class: 'pj-row pj-container', 'data-id': c.Id, 'data-name': name, 'data-state': c.State },
      el(
        'div',
        { class: 'pj-row-main' },
        el('span', { class: `pj-expander${open ? ' pj-open' : ''}` }),
        el('span', { class: 'pj-name', title: c.Id }, name),
        el('span', { class: `pj-badge pj-state pj-state-${c.State}` }, c.State),
        hs ? el('span', { class: `pj-badge pj-health pj-health-${hs}` }, hs) : null
      ),
      el(
        'div',
        { class: 'pj-row-sub' },
        el('span', { class: 'pj-image' }, c.Image),
        ports(c) ? el('span', { class: 'pj-ports' }, ports(c)) : null,
        el('span', { class: 'pj-uptime' }, uptime(c))
      ),
      this.actions(c, name)
    );
    node.querySelector('.pj-row-main')!.addEventListener('click', () => this.toggle(c.Id));
    row.node.replaceWith(node);
    row.node = node;
    if (open) {
      row.detail = row.detail || this.detail(c, name, row);
      node.append(row.detail);
      this.follow(c, row);
    } else {
      this.unfollow(row);
      row.detail = null;
    }
    return row;
  }

  private toggle(id: string): void {
    if (this.expanded.has(id)) {
      this.expanded.delete(id);
    } else {
      this.expanded.add(id);
    }
    this.render();
  }

  private actions(c: any, name: string): HTMLElement {
    const box = el('div', { class: 'pj-row-actions' });
    const id = c.Id;
    const act = (action: string, label: string, destructive: boolean, query = '') => {
      if (!this.allowed(action)) {
        return;
      }
      box.append(
        button(label, `${label} ${name}`, async () => {
          if (destructive && !(await confirm(`${label} ${name}?`, `${label} the container ${name} (${shortId(id)}).`, label))) {
            return;
          }
          await attempt(`${label} ${name}`, () =>
            request(`containers/${encodeURIComponent(id)}/${action}${query}`, 'POST')
          );
        }, destructive ? 'pj-danger' : '')
      );
    };
    if (c.State === 'running') {
      act('stop', 'Stop', true);
      act('restart', 'Restart', true);
      act('pause', 'Pause', false);
    } else if (c.State === 'paused') {
      act('unpause', 'Resume', false);
      act('stop', 'Stop', true);
    } else {
      act('start', 'Start', false);
    }
    box.append(button('Logs', `Logs of ${name}`, () => this.hooks.openLogs(id, name)));
    box.append(
      button('Inspect', `Inspect ${name}`, async () => {
        const data = await attempt('inspect', () => request(`containers/${encodeURIComponent(id)}`));
        if (data) {
          this.hooks.openInspect(name, data);
        }
      })
    );
    if (this.allowed('remove')) {
      box.append(
        button('Remove', `Remove ${name}`, async () => {
          const running = c.State === 'running' || c.State === 'paused';
          const ok = await confirm(
            `Remove ${name}?`,
            `Remove the container ${name}${running ? ' (it is running: it will be killed)' : ''}. This cannot be undone.`,
            'Remove'
          );
          if (ok) {
            await attempt(`remove ${name}`, () =>
              request(`containers/${encodeURIComponent(id)}${running ? '?force=1' : ''}`, 'DELETE')
            );
          }
        }, 'pj-danger')
      );
    }
    return box;
  }

  private detail(c: any, name: string, row: Row): HTMLElement {
    const points = this.options().sparklinePoints;
    row.cpu = new Sparkline('cpu', points);
    row.mem = new Sparkline('mem', points);
    const cpuText = el('span', { class: 'pj-spark-value', 'data-metric': 'cpu' }, '–');
    const memText = el('span', { class: 'pj-spark-value', 'data-metric': 'mem' }, '–');
    (row.cpu as any).text = cpuText;
    (row.mem as any).text = memText;
    const snippets = el('select', { class: 'pj-snippets', title: 'Insert a cell into the current notebook' });
    snippets.append(el('option', { value: '' }, 'Insert a cell that…'));
    const codes = cellSnippets(name);
    for (const label of Object.keys(codes)) {
      snippets.append(el('option', { value: label }, label));
    }
    snippets.addEventListener('change', () => {
      const code = codes[snippets.value];
      snippets.value = '';
      if (code && !this.hooks.insertCell(code)) {
        Notification.warning('Open a notebook first: the cell goes into the current one.', { autoClose: 4000 });
      }
    });
    snippets.addEventListener('click', ev => ev.stopPropagation());
    const copyRun = button('Copy run line', 'Copy the equivalent %container run line', async () => {
      const line = await attempt('run line', async () => {
        const info = await request(`containers/${encodeURIComponent(c.Id)}`);
        const image = await request(`images/${encodeURIComponent(info.Image)}`).catch(() => null);
        return runLine(info, image);
      });
      if (line) {
        Clipboard.copyToSystem(line);
        copyRun.dataset.copied = line;
        Notification.success(`Copied: ${line}`, { autoClose: 4000 });
      }
    });
    const backup = button('Back up', `Back up ${name}`, async () => {
      const answer = await InputDialog.getText({ title: `Back up ${name}`, label: 'Backup name (optional)' });
      if (answer.button.accept) {
        const q = answer.value ? `?name=${encodeURIComponent(answer.value)}` : '';
        await streamed(this.hooks, `Backup of ${name}`, `containers/${encodeURIComponent(c.Id)}/backup${q}`);
        reload('backups');
      }
    });
    const schedule = button('Schedule backups', `Back up ${name} on a schedule`, () =>
      scheduleDialog({ Container: name })
    );
    return el(
      'div',
      { class: 'pj-row-detail' },
      el(
        'div',
        { class: 'pj-sparks' },
        el('div', { class: 'pj-spark-line' }, el('span', { class: 'pj-spark-label' }, 'CPU'), row.cpu.node, cpuText),
        el('div', { class: 'pj-spark-line' }, el('span', { class: 'pj-spark-label' }, 'MEM'), row.mem.node, memText)
      ),
      el('div', { class: 'pj-row-actions' }, copyRun, backup, schedule, snippets),
      el('div', { class: 'pj-id' }, `${shortId(c.Id)} · ${shellQuote(name)}`)
    );
  }

  private follow(c: any, row: Row): void {
    if (c.State !== 'running') {
      this.unfollow(row);
      return;
    }
    if (row.stats) {
      return;
    }
    row.stats = openSocket(`containers/${encodeURIComponent(c.Id)}/stats/ws?interval=1`, item => {
      if (item.error || !row.cpu || !row.mem) {
        return;
      }
      // scaled to the window's own peak, so small loads still show their shape
      row.cpu.push(item.cpu_percent || 0);
      row.mem.push(item.mem_usage || 0);
      (row.cpu as any).text.textContent = `${(item.cpu_percent || 0).toFixed(1)}%`;
      (row.mem as any).text.textContent = `${((item.mem_usage || 0) / 1048576).toFixed(1)} MiB`;
    });
  }

  private unfollow(row: Row): void {
    row.stats?.close();
    row.stats = null;
  }

  dispose(): void {
    for (const row of this.rows.values()) {
      this.unfollow(row);
    }
  }
}

/** Ask for a schedule (interval or cron, how many to keep) and create it. */
export async function scheduleDialog(target: { Container?: string; Volume?: string }): Promise<void> {
  const what = target.Container || target.Volume;
  const when = await InputDialog.getText({
    title: `Back up ${what} on a schedule`,
    label: 'Every N seconds (e.g. 3600) or a cron line (e.g. 0 3 * * *)',
    text: '3600'
  });
  if (!when.button.accept || !when.value) {
    return;
  }
  const keep = await InputDialog.getNumber({ title: 'Keep how many backups? (0: all)', value: 7 });
  if (!keep.button.accept) {
    return;
  }
  const value = when.value.trim();
  const body: any = { ...target, Keep: Math.max(0, Math.floor(keep.value || 0)) };
  if (/^\d+(\.\d+)?$/.test(value)) {
    body.Interval = Number(value);
  } else {
    body.Cron = value;
  }
  const made = await attempt('schedule', () => request('schedules', 'POST', body));
  if (made) {
    Notification.success(`Scheduled backups of ${what}`, { autoClose: 3000 });
    reload('backups');
  }
}
