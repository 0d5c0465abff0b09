// Volumes, backups and backup schedules: create volumes, back up, restore, verify, remove.
import { InputDialog, Notification } from '@jupyterlab/apputils';

import { request } from './api';
import { ago, button, bytes, el } from './format';
import { scheduleDialog } from './containers';
import { attempt, confirm, Hooks, Info, reload, streamed } from './model';
import { Section } from './section';

export class VolumesSection extends Section {
  info: Info | null = null;

  constructor(private hooks: Hooks) {
    super('volumes', 'Volumes');
    this.tools.append(
      button('New', 'Create a volume', async () => {
        const answer = await InputDialog.getText({ title: 'New volume', label: 'Name (empty: generated)' });
        if (answer.button.accept) {
          await attempt('create volume', () => request('volumes', 'POST', { Name: answer.value || '' }));
          reload('volumes');
        }
      })
    );
  }

  update(list: any[]): void {
    const rows = list
      .slice()
      .sort((a, b) => a.Name.localeCompare(b.Name))
      .map(v => this.row(v));
    this.body.replaceChildren(...(rows.length ? rows : [el('div', { class: 'pj-empty' }, 'No volumes.')]));
    this.setCount(list.length);
  }

  private row(v: any): HTMLElement {
    const name = v.Name;
    const actions = el(
      'div',
      { class: 'pj-row-actions' },
      button('Back up', `Back up volume ${name}`, async () => {
        await streamed(this.hooks, `Backup of volume ${name}`, `volumes/${encodeURIComponent(name)}/backup`);
        reload('backups');
      }),
      button('Schedule', `Back up ${name} on a schedule`, () => scheduleDialog({ Volume: name }))
    );
    if (!this.info || this.info.actions.includes('remove')) {
      actions.append(
        button('Remove', `Remove volume ${name}`, async () => {
          if (await confirm(`Remove volume ${name}?`, `Its data is deleted. This cannot be undone.`, 'Remove')) {
            await attempt(`remove ${name}`, () => request(`volumes/${encodeURIComponent(name)}`, 'DELETE'));
            reload('volumes');
          }
        }, 'pj-danger')
      );
    }
    return el(
      'div',
      { class: 'pj-row pj-volume-row', 'data-name': name },
      el('div', { class: 'pj-row-main' }, el('span', { class: 'pj-name' }, name)),
      el(
        'div',
        { class: 'pj-row-sub' },
        el('span', {}, v.Driver || 'local'),
        el('span', { class: 'pj-path', title: v.Mountpoint || '' }, v.Mountpoint || '')
      ),
      actions
    );
  }
}

export class BackupsSection extends Section {
  info: Info | null = null;
  private list = el('div', { class: 'pj-backups' });
  private schedules = el('div', { class: 'pj-schedules' });

  constructor() {
    super('backups', 'Backups');
    this.body.append(this.list, el('div', { class: 'pj-subhead' }, 'Schedules'), this.schedules);
  }

  private allowed(action: string): boolean {
    return !this.info || this.info.actions.includes(action);
  }

  update(backups: any[]): void {
    const rows = backups
      .slice()
      .sort((a, b) => String(b.Created).localeCompare(String(a.Created)))
      .map(b => this.row(b));
    this.list.replaceChildren(...(rows.length ? rows : [el('div', { class: 'pj-empty' }, 'No backups.')]));
    this.setCount(backups.length);
  }

  updateSchedules(list: any[]): void {
    const rows = list.map(s => this.scheduleRow(s));
    this.schedules.replaceChildren(...(rows.length ? rows : [el('div', { class: 'pj-empty' }, 'No schedules.')]));
  }

  private row(b: any): HTMLElement {
    const id = b.Id || b.Name;
    const what = b.Volume ? `volume ${b.Volume}` : b.Container || '';
    const actions = el(
      'div',
      { class: 'pj-row-actions' },
      button('Verify', `Check ${id}'s checksums`, async () => {
        const result = await attempt(`verify ${id}`, () => request(`backups/${encodeURIComponent(id)}/verify`, 'POST'));
        if (result) {
          Notification.success(`${id} is valid (${result.Members} members)`, { autoClose: 4000 });
        }
      })
    );
    if (this.allowed('restore')) {
      actions.append(
        button('Restore', `Restore ${id} into a new container`, async () => {
          const answer = await InputDialog.getText({
            title: `Restore ${id}`,
            label: 'Name of the new container (empty: the original name)'
          });
          if (!answer.button.accept) {
            return;
          }
          const q = answer.value ? `?name=${encodeURIComponent(answer.value)}` : '';
          const made = await attempt(`restore ${id}`, () =>
            request(`backups/${encodeURIComponent(id)}/restore${q}`, 'POST')
          );
          if (made) {
            Notification.success(`Restored ${id}`, { autoClose: 4000 });
            reload('containers');
          }
        })
      );
    }
    if (this.allowed('remove')) {
      actions.append(
        button('Remove', `Delete ${id}`, async () => {
          if (await confirm(`Delete backup ${id}?`, 'The archive is deleted. This cannot be undone.', 'Delete')) {
            await attempt(`delete ${id}`, () => request(`backups/${encodeURIComponent(id)}`, 'DELETE'));
            reload('backups');
          }
        }, 'pj-danger')
      );
    }
    // the catalogue answers RFC 3339 text, the Engine API Unix seconds: show both as an age
    const seconds = typeof b.Created === 'number' ? b.Created : Date.parse(String(b.Created)) / 1000;
    const created = Number.isFinite(seconds) ? ago(seconds) : String(b.Created || '');
    return el(
      'div',
      { class: 'pj-row pj-backup-row', 'data-id': id },
      el('div', { class: 'pj-row-main' }, el('span', { class: 'pj-name', title: b.Name || id }, b.Name || id)),
      el(
        'div',
        { class: 'pj-row-sub' },
        el('span', {}, what),
        el('span', {}, bytes(b.Size)),
        el('span', { title: String(b.Created || '') }, created)
      ),
      actions
    );
  }

  private scheduleRow(s: any): HTMLElement {
    const what = s.Container || `volume ${s.Volume}`;
    const when = s.Cron ? `cron ${s.Cron}` : `every ${s.Interval} s`;
    const next = s.NextRun ? `next ${new Date(s.NextRun * 1000).toLocaleTimeString()}` : '';
    const actions = el('div', { class: 'pj-row-actions' });
    if (this.allowed('remove')) {
      actions.append(
        button('Remove', 'Remove this schedule', async () => {
          if (await confirm('Remove the schedule?', `Stop backing up ${what} ${when}.`, 'Remove')) {
            await attempt('remove schedule', () => request(`schedules/${encodeURIComponent(s.Id)}`, 'DELETE'));
            reload('backups');
          }
        }, 'pj-danger')
      );
    }
    return el(
      'div',
      { class: 'pj-row pj-schedule-row', 'data-id': s.Id },
      // the name line holds only what is backed up: the sidebar is too narrow for more
      el('div', { class: 'pj-row-main' }, el('span', { class: 'pj-name', title: `${what} · ${when}` }, what)),
      el(
        'div',
        { class: 'pj-row-sub' },
        el('span', { class: 'pj-when' }, when),
        el('span', {}, `keep ${s.Keep || 'all'}`),
        el('span', {}, `${s.Runs || 0} runs`),
        el('span', {}, next),
        s.LastError ? el('span', { class: 'pj-error-text' }, s.LastError) : null
      ),
      actions
    );
  }
}
